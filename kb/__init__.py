"""Explainable eligibility knowledge base for trial NCT06420154.

The flow of a question: patient files are loaded and normalised (`kb.patients`), the rules
in `kb/rules/*.dl` are parsed, checked and compiled (`kb.language`), one patient's facts are
built as of the reference dates (`kb.factbase`), the pyDatalog engine decides each criterion
(`kb.engine`, `kb.evaluation`), and `kb.trace` explains the answer.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
