"""Static checks that run before anything reaches pyDatalog.

pyDatalog silently accepts unsafe variables, arity mismatches, misspelt predicates and
unstratified negation (the last loops forever); each of those would make a criterion quietly
pass or fail for everybody. Every problem found here names `file:line:col` and what to do.
"""

from __future__ import annotations

import builtins
import difflib
import keyword
from collections.abc import Collection, Iterable, Iterator, Mapping

from kb.errors import Problem
from kb.language.syntax import (
    Atom,
    BinOp,
    Comparison,
    Const,
    Declaration,
    Negation,
    Pos,
    Program,
    Rule,
    Term,
    Var,
)
from kb.status import Truth

__all__ = ["NUMERIC_TYPES", "TRUTH_VALUES", "check_program", "variables_of"]

#: Argument types whose values are numbers (and may be compared with < or used in arithmetic).
NUMERIC_TYPES = frozenset({"number", "day", "days"})  # day: a date as a day number; days: a duration
#: The constants of the `truth` type: the three-valued answer of a deciding predicate.
TRUTH_VALUES = frozenset(Truth)
_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"ask", "load"}


def _problem(pos: Pos, message: str, hint: str = "") -> Problem:
    return Problem(pos.path, pos.line, pos.col, message, hint)


def variables_of(term: Term) -> Iterator[Var]:
    if isinstance(term, Var):
        yield term
    elif isinstance(term, BinOp):
        yield from variables_of(term.left)
        yield from variables_of(term.right)


def check_program(program: Program, known_constants: Mapping[str, Collection[str]] | None = None) -> list[Problem]:
    """All static problems of `program`, in file order.

    `known_constants` maps an argument type (e.g. `item`) to its vocabulary, so that a
    misspelt lab name in a rule is caught here and not by a criterion that never fires.
    """
    known = known_constants or {}
    problems: list[Problem] = []
    decls = program.declarations
    for dup in program.duplicate_declarations:
        first = decls[dup.name].pos
        problems.append(
            _problem(
                dup.pos, f"relation '{dup.name}' is declared twice", f"keep one declaration; the other is at {first}"
            )
        )
    for decl in decls.values():
        problems.extend(_check_declaration(decl))
    defined = {r.head.predicate for r in program.rules}
    for decl in decls.values():
        if decl.role == "rule" and decl.name not in defined:
            problems.append(
                _problem(
                    decl.pos,
                    f"relation '{decl.name}' is declared but no rule defines it",
                    "add its rules, or mark it `input`/`computed`",
                )
            )
    for rule in program.rules:
        problems.extend(_check_rule(rule, decls, known))
    problems.extend(_check_stratification(program))
    return sorted(problems, key=lambda p: (p.path, p.row or 0, p.column if isinstance(p.column, int) else 0))


def _check_declaration(decl: Declaration) -> list[Problem]:
    out = []
    if decl.name in _RESERVED:
        out.append(
            _problem(
                decl.pos,
                f"'{decl.name}' is a Python builtin name and cannot be a predicate",
                "pyDatalog would treat it as the builtin; rename it",
            )
        )
    seen: set[str] = set()
    for name, _type in decl.params:
        if name in seen:
            out.append(_problem(decl.pos, f"argument name '{name}' repeats in '{decl.name}'"))
        seen.add(name)
    return out


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"did you mean '{close[0]}'?" if close else ""


def _check_rule(rule: Rule, decls: Mapping[str, Declaration], known: Mapping[str, Collection[str]]) -> list[Problem]:
    out: list[Problem] = []
    head_decl = decls.get(rule.head.predicate)
    if head_decl is None:
        out.append(
            _problem(
                rule.head.pos,
                f"relation '{rule.head.predicate}' is not declared",
                f"add `.decl {rule.head.predicate}(...)` to kb/rules/declarations.dl",
            )
        )
    elif head_decl.role != "rule":
        out.append(
            _problem(
                rule.head.pos,
                f"'{rule.head.predicate}' is an {head_decl.role} relation; rules cannot define it",
                "input relations come from patient files, computed ones from derivations",
            )
        )
    var_types: dict[str, tuple[str, Pos]] = {}
    atoms: list[tuple[Atom, bool]] = [(rule.head, False)]
    for lit in rule.body:
        if isinstance(lit, Atom):
            atoms.append((lit, False))
        elif isinstance(lit, Negation):
            atoms.append((lit.atom, True))
    for atom, _neg in atoms:
        out.extend(_check_atom(atom, decls, known, var_types))
    out.extend(_check_comparisons(rule, var_types))
    out.extend(_check_safety(rule))
    return out


def _check_atom(
    atom: Atom,
    decls: Mapping[str, Declaration],
    known: Mapping[str, Collection[str]],
    var_types: dict[str, tuple[str, Pos]],
) -> list[Problem]:
    out: list[Problem] = []
    decl = decls.get(atom.predicate)
    if decl is None:
        if atom.predicate in _RESERVED:
            out.append(_problem(atom.pos, f"'{atom.predicate}' is a Python builtin name and cannot be a predicate"))
        else:
            out.append(
                _problem(
                    atom.pos,
                    f"undefined predicate '{atom.predicate}/{atom.arity}'",
                    _suggest(atom.predicate, decls) or "declare it with .decl",
                )
            )
        return out
    if decl.arity != atom.arity:
        out.append(
            _problem(
                atom.pos,
                f"'{atom.predicate}' takes {decl.arity} arguments, here it has {atom.arity}",
                f"declared at {decl.pos} as {atom.predicate}({', '.join(n for n, _ in decl.params)})",
            )
        )
        return out
    for arg, (pname, ptype) in zip(atom.args, decl.params, strict=True):
        if isinstance(arg, BinOp):
            out.append(
                _problem(arg.pos, "arithmetic is not allowed inside an atom", "bind it first: `X = A + 1`, then use X")
            )
        elif isinstance(arg, Const):
            out.extend(_check_constant(arg, pname, ptype, atom.predicate, known))
        elif not arg.anonymous:
            seen = var_types.get(arg.name)
            if seen is None:
                var_types[arg.name] = (ptype, arg.pos)
            elif _kind(seen[0]) != _kind(ptype):
                out.append(
                    _problem(
                        arg.pos,
                        f"variable {arg.name} is a {ptype} here but a {seen[0]} at {seen[1]}",
                        "use two variables, or fix the argument order",
                    )
                )
    return out


def _kind(type_name: str) -> str:
    return "number" if type_name in NUMERIC_TYPES else "symbol"


def _check_constant(
    arg: Const, pname: str, ptype: str, predicate: str, known: Mapping[str, Collection[str]]
) -> list[Problem]:
    if ptype in NUMERIC_TYPES:
        if not arg.is_number:
            return [_problem(arg.pos, f"{predicate} argument {pname} is a {ptype}, got the symbol {arg.value!r}")]
        return []
    if arg.is_number:
        return [_problem(arg.pos, f"{predicate} argument {pname} is a {ptype}, got the number {arg.value}")]
    value = str(arg.value)
    if ptype == "truth" and value not in TRUTH_VALUES:
        return [_problem(arg.pos, f"'{value}' is not a truth value", "use yes, no or na")]
    vocabulary = known.get(ptype)
    if vocabulary is not None and value not in vocabulary:
        hint = _suggest(value, vocabulary) or f"add it to the {ptype} vocabulary in kb/facts/vocabulary/"
        return [_problem(arg.pos, f"unknown {ptype} '{value}' in {predicate}", hint)]
    return []


def _check_comparisons(rule: Rule, var_types: Mapping[str, tuple[str, Pos]]) -> list[Problem]:
    out = []
    for lit in rule.body:
        if not isinstance(lit, Comparison):
            continue
        for side in (lit.left, lit.right):
            for var in variables_of(side):
                if var.anonymous:
                    out.append(_problem(var.pos, "'_' cannot be compared", "name the variable"))
                    continue
                typ = var_types.get(var.name, ("", var.pos))[0]
                if (lit.op not in ("=", "!=") or isinstance(side, BinOp)) and typ and typ not in NUMERIC_TYPES:
                    out.append(
                        _problem(
                            var.pos,
                            f"{var.name} is a {typ}; only numbers and days can be "
                            f"compared with {lit.op} or used in arithmetic",
                        )
                    )
    return out


def _check_safety(rule: Rule) -> list[Problem]:
    """Every head, negated and compared variable must be bound by a positive atom.

    A variable may also be bound by `X = expression` when the expression's variables are
    bound; the compiler orders the body so that pyDatalog sees bindings first.
    """
    out: list[Problem] = []
    bound = {v.name for lit in rule.body if isinstance(lit, Atom) for a in lit.args for v in variables_of(a)}
    bound.discard("_")
    pending = [c for c in rule.body if isinstance(c, Comparison) and c.op == "="]
    progress = True
    while progress:
        progress = False
        for comp in list(pending):
            for target, source in ((comp.left, comp.right), (comp.right, comp.left)):
                if (
                    isinstance(target, Var)
                    and target.name not in bound
                    and all(v.name in bound for v in variables_of(source))
                ):
                    bound.add(target.name)
                    pending.remove(comp)
                    progress = True
                    break
    for var in (v for a in rule.head.args for v in variables_of(a)):
        if var.anonymous:
            out.append(_problem(var.pos, "'_' cannot appear in a rule head", "name the variable"))
        elif var.name not in bound:
            out.append(
                _problem(
                    var.pos,
                    f"unsafe variable {var.name}: it is in the head but no positive body atom binds it",
                    f"add an atom that gives {var.name} a value",
                )
            )
    for lit in rule.body:
        if isinstance(lit, Negation):
            for var in (v for a in lit.atom.args for v in variables_of(a)):
                if var.anonymous:
                    out.append(
                        _problem(
                            var.pos,
                            "'_' inside `not` is not allowed",
                            "define a helper relation without that argument and negate it",
                        )
                    )
                elif var.name not in bound:
                    out.append(
                        _problem(
                            var.pos,
                            f"unsafe variable {var.name}: it appears only under `not`",
                            f"bind {var.name} in a positive atom of the same rule",
                        )
                    )
        elif isinstance(lit, Comparison):
            for var in (v for side in (lit.left, lit.right) for v in variables_of(side)):
                if not var.anonymous and var.name not in bound:
                    out.append(
                        _problem(
                            var.pos,
                            f"unsafe variable {var.name}: it is compared but never bound",
                            f"bind {var.name} in a positive atom of the same rule",
                        )
                    )
    return out


def _check_stratification(program: Program) -> list[Problem]:
    """Negation through recursion has no meaning here (and makes pyDatalog loop forever)."""
    edges: dict[str, set[str]] = {}
    negative: list[tuple[str, str, Pos]] = []
    for rule in program.rules:
        head = rule.head.predicate
        for lit in rule.body:
            if isinstance(lit, Atom):
                edges.setdefault(head, set()).add(lit.predicate)
            elif isinstance(lit, Negation):
                edges.setdefault(head, set()).add(lit.atom.predicate)
                negative.append((head, lit.atom.predicate, lit.pos))
    out = []
    for head, target, pos in negative:
        if _reaches(edges, target, head):
            out.append(
                _problem(
                    pos,
                    f"unstratified negation: '{head}' depends negatively on '{target}', which depends on it again",
                    "break the cycle; a criterion cannot be defined through its own negation",
                )
            )
    return out


def _reaches(edges: Mapping[str, set[str]], start: str, goal: str) -> bool:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return False
