"""The rule language: Datalog text -> typed AST -> static checks -> pyDatalog clauses."""

from __future__ import annotations

from kb.language.checks import check_program
from kb.language.parser import parse_file, parse_text
from kb.language.syntax import (
    Atom,
    BinOp,
    Comparison,
    Const,
    Declaration,
    Literal,
    Negation,
    Program,
    Rule,
    Term,
    Var,
)

__all__ = [
    "Atom",
    "BinOp",
    "Comparison",
    "Const",
    "Declaration",
    "Literal",
    "Negation",
    "Program",
    "Rule",
    "Term",
    "Var",
    "check_program",
    "parse_file",
    "parse_text",
]
