"""Explainable eligibility knowledge base for trial NCT06420154.

The flow of a question: patient files are loaded and normalised (`kb.records.patients`), the rules
in `kb/rules/*.dl` are parsed, checked and compiled (`kb.language`), one patient's facts are
built as of the reference dates (`kb.factbase.build`), the pyDatalog engine decides each criterion
(`kb.language.engine`, `kb.reasoning.evaluation`), and `kb.reasoning.trace` explains the answer.

The public API is `kb.api`, re-exported here: `kb.load_knowledge`, `kb.assess`, … (see its
`__all__`). It is loaded on first use (PEP 562), not with the package: Python runs this file
before any `kb.<module>`, and importing the façade here would load the whole library (the
engine, DuckDB, z3: seconds) for `import kb.status`, and have the package import, at the
top of every import, a module that imports all of its children.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and editors see; at run time, `__getattr__` below
    from kb.api import *  # noqa: F403


def __getattr__(name: str) -> Any:
    """A name of the façade (and `__all__`, which `from kb import *` reads), from `kb.api`."""
    api = importlib.import_module("kb.api")
    if name == "__all__":
        return ["__version__", *api.__all__]
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'kb' has no attribute {name!r}")
