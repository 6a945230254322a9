"""The Streamlit pages: UI only, every answer comes from the `kb` library."""
