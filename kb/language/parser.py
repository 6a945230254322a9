"""Parse `.dl` text with lark into the AST of `kb.language.syntax`.

Nothing here executes the text: lark builds a tree, the transformer builds dataclasses.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from kb.errors import KbError, Problem
from kb.language.syntax import (
    Atom,
    BinOp,
    Comparison,
    Const,
    Declaration,
    Literal,
    Negation,
    Pos,
    Program,
    Rule,
    Var,
)

__all__ = ["RuleSyntaxError", "parse_file", "parse_text"]

_EXPECTED_NAMES = {
    "NAME": "a lower-case name",
    "VAR": "a variable (Upper-case)",
    "NUMBER": "a number",
    "STRING": "a quoted string",
    "DOT": "'.' at the end of the rule",
    "COMMA": "','",
    "LPAR": "'('",
    "RPAR": "')'",
    "COLON": "':'",
    "IF": "':-'",
    "COMPOP": "a comparison",
    "NOT": "'not'",
    "SIGN": "'-'",
    "ADDOP": "'+' or '-'",
    "MULOP": "'*' or '/'",
}


class RuleSyntaxError(KbError):
    """A rule file that does not parse; it never reaches the engine."""


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse_file(path: Path | str, display_path: str | None = None) -> Program:
    path = Path(path)
    return parse_text(path.read_text(encoding="utf-8"), display_path or str(path))


def parse_text(text: str, path: str = "<rules>") -> Program:
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise RuleSyntaxError(f"{path}: the rule file does not parse", [_syntax_problem(exc, text, path)]) from None
    return _Builder(path, text).transform(tree)


def _syntax_problem(exc: UnexpectedInput, text: str, path: str) -> Problem:
    line, col = getattr(exc, "line", None), getattr(exc, "column", None)
    if isinstance(exc, UnexpectedCharacters):
        at = exc.pos_in_stream or 0
        char = text[at] if at < len(text) else "end of file"
        return Problem(
            path,
            line,
            col,
            f"unexpected character {char!r}",
            "names are lower-case, variables start upper-case, comments start with %",
        )
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        lines = text.splitlines() or [""]
        return Problem(
            path, len(lines), len(lines[-1]) + 1, "the file ends in the middle of a rule", "end every rule with '.'"
        )
    if isinstance(exc, UnexpectedToken):
        wanted = sorted({_EXPECTED_NAMES.get(t, t) for t in exc.expected})
        got = exc.token.value if exc.token.type != "$END" else "end of file"
        hint = "a rule is `head(...) :- body, ... .`; a fact is `name(...).`"
        return Problem(path, line, col, f"unexpected {got!r}; expected {', '.join(wanted)}", hint)
    if isinstance(exc, UnexpectedEOF):
        return Problem(path, line, col, "the file ends in the middle of a rule", "end every rule with '.'")
    return Problem(path, line, col, str(exc).splitlines()[0])


class _Builder(Transformer[Token, Program]):
    def __init__(self, path: str, text: str) -> None:
        super().__init__()
        self.path = path
        self.text = text

    def _pos(self, item: Tree[Token] | Token | object) -> Pos:
        line = getattr(item, "line", None)
        col = getattr(item, "column", None)
        if line is None and hasattr(item, "meta"):
            meta = item.meta
            line, col = getattr(meta, "line", None), getattr(meta, "column", None)
        return Pos(self.path, line or 0, col or 0)

    @v_args(meta=True)
    def start(self, meta: object, statements: list[object]) -> Program:
        program = Program()
        for statement in statements:
            if isinstance(statement, Declaration):
                if statement.name in program.declarations:
                    program.duplicate_declarations.append(statement)
                else:
                    program.declarations[statement.name] = statement
            elif isinstance(statement, Rule):
                program.rules.append(statement)
        return program

    @v_args(meta=True)
    def declaration(self, meta: object, children: list[object]) -> Declaration:
        name = children[0]
        assert isinstance(name, Token)
        params = tuple(p for p in children[1:-1] if p is not None)
        role = children[-1]
        return Declaration(
            name=str(name),
            params=params,  # type: ignore[arg-type]
            role=str(role) if role is not None else "rule",
            pos=self._pos(name),
        )

    def param(self, children: list[Token]) -> tuple[str, str]:
        return (str(children[0]), str(children[1]))

    @v_args(meta=True)
    def rule(self, meta: object, children: list[object]) -> Rule:
        head, _if, body = children
        assert isinstance(head, Atom)
        literals: tuple[Literal, ...] = tuple(body) if body is not None else ()  # type: ignore[arg-type]
        start = getattr(meta, "start_pos", 0)
        end = getattr(meta, "end_pos", start)
        return Rule(head, literals, head.pos, " ".join(self.text[start:end].split()))

    def body(self, children: list[Literal]) -> list[Literal]:
        return children

    def negation(self, children: list[object]) -> Negation:
        atom = children[1]
        assert isinstance(atom, Atom)
        return Negation(atom, self._pos(children[0]))

    def comparison(self, children: list[object]) -> Comparison:
        left, op, right = children
        assert isinstance(op, Token)
        return Comparison(str(op), left, right, self._pos(op))  # type: ignore[arg-type]

    def atom(self, children: list[object]) -> Atom:
        name = children[0]
        assert isinstance(name, Token)
        args = tuple(a for a in children[1:] if a is not None)
        return Atom(str(name), args, self._pos(name))  # type: ignore[arg-type]

    def var(self, children: list[Token]) -> Var:
        return Var(str(children[0]), self._pos(children[0]))

    def symbol(self, children: list[Token]) -> Const:
        return Const(str(children[0]), self._pos(children[0]))

    def string(self, children: list[Token]) -> Const:
        return Const(str(children[0])[1:-1], self._pos(children[0]))

    def signed_number(self, children: list[Token | None]) -> Const:
        sign, number = children
        assert number is not None
        value = Decimal(str(number))
        return Const(-value if sign is not None else value, self._pos(number))

    def binop(self, children: list[object]) -> BinOp:
        left, op, right = children
        assert isinstance(op, Token)
        return BinOp(str(op), left, right, self._pos(op))  # type: ignore[arg-type]
