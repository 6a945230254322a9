"""The catalogue: the protocol's criteria, assumptions, vocabularies, instruments and derived-value formulas."""
