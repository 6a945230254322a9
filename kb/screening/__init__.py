"""Screening: many patients at once, the same rules as SQL in DuckDB."""
