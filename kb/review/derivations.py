"""What a criterion's rules derive, unfolded down to the patient's data, as z3 formulas.

`kb.reasoning.requirements` unfolds only truth-valued sub-conditions and keeps the bounds of results,
which is what a repair needs. Comparing two criteria needs the whole derivation: the helper
predicates (`positive_pregnancy_test(P)`, `diagnosis_of_class(P, ttp_tma)`), the records and
vocabulary classes they name, the negations. So a truth of a deciding predicate is unfolded
by resolution on the rule AST (variables renamed at each use of a rule; the assumptions in
force decided on the spot) into derivations: conjunctions of input literals. Each
derivation is cut into parts, the literals linked by a variable other than the patient, and
each part becomes a formula: a datum read (a result against its bounds, a category, an
attestation, the sex) as its own z3 value; anything else (a record in a window, a review
date) as one proposition named by its canonical text. Two criteria whose rules derive the
same part meet in the same proposition, so the solver can prove them equal; and since the
abstraction only forgets links between parts, every unsatisfiability it finds holds of real
patients.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import z3

from kb.catalogue.assumptions import AssumptionSet
from kb.language.syntax import Atom, BinOp, Comparison, Const, Literal, Negation, Pos, Program, Term, Var, evaluate
from kb.status import Truth

__all__ = [
    "NOWHERE",
    "PATIENT",
    "READS",
    "Derivation",
    "Derivations",
    "Unfolded",
    "canonical",
    "datum",
    "datum_names",
    "datum_read",
    "names_in",
    "occurrences",
    "parts",
    "present",
    "variables",
]

#: The patient variable every derivation is about (no renamed variable can take this name).
PATIENT = "P"
_MAX_DERIVATIONS = 256
_MAX_DEPTH = 12
#: Relations read as one value per patient: (positions naming the datum, positions of values).
READS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "obs_num": ((1,), (2,)),
    "xuln": ((1,), (2,)),
    "crcl": ((), (1,)),
    "egfr": ((), (1,)),
    "age_at": ((1,), (2,)),
    "worsening": ((1,), (2,)),
    "apl_positive_tests": ((), (1,)),
    "score": ((1, 2), (3, 4)),
    "obs_cat": ((1,), (2,)),
    "attested": ((1,), (2,)),
    "sex": ((), (1,)),
}
_TEXT = frozenset({"obs_cat", "attested", "sex"})


@dataclass(frozen=True)
class Derivation:
    """One way of deriving a truth: input literals (positive atoms, negations, comparisons)
    over the patient variable and renamed rule variables, and the rules used (file:line:col)."""

    literals: tuple[Literal, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Unfolded:
    derivations: tuple[Derivation, ...]
    complete: bool  # every derivation was enumerated (none cut at the depth or count limit)


def _walk(term: Term, subst: dict[str, Term]) -> Term:
    while isinstance(term, Var) and term.name in subst:
        term = subst[term.name]
    return term


def _apply(term: Term, subst: dict[str, Term]) -> Term:
    term = _walk(term, subst)
    if isinstance(term, BinOp):
        return BinOp(term.op, _apply(term.left, subst), _apply(term.right, subst), term.pos)
    return term


def _apply_literal(lit: Literal, subst: dict[str, Term]) -> Literal:
    if isinstance(lit, Atom):
        return Atom(lit.predicate, tuple(_apply(a, subst) for a in lit.args), lit.pos)
    if isinstance(lit, Negation):
        inner = _apply_literal(lit.atom, subst)
        assert isinstance(inner, Atom)
        return Negation(inner, lit.pos)
    return Comparison(lit.op, _apply(lit.left, subst), _apply(lit.right, subst), lit.pos)


def _unify(left: Term, right: Term, subst: dict[str, Term]) -> dict[str, Term] | None:
    a, b = _walk(left, subst), _walk(right, subst)
    if isinstance(a, Var) and isinstance(b, Var) and a.name == b.name:
        return subst
    if isinstance(b, Var) and not (isinstance(a, Var) and b.name == PATIENT):
        return {**subst, b.name: a}  # the rule's variable takes the goal's term (the patient stays P)
    if isinstance(a, Var):
        return {**subst, a.name: b}
    if isinstance(a, Const) and isinstance(b, Const):
        return subst if a.value == b.value else None
    return subst if _apply(a, subst) == _apply(b, subst) else None


def _ground_value(term: Term) -> Decimal | str | None:
    if isinstance(term, Const):
        return term.value
    if isinstance(term, BinOp):
        value = evaluate(term, {})
        return Decimal(value) if isinstance(value, int | Decimal) else None
    return None


def _decide(lit: Comparison) -> bool | None:
    """The truth of a comparison of constants (None while a side is not ground)."""
    left, right = _ground_value(lit.left), _ground_value(lit.right)
    if left is None or right is None:
        return None
    if isinstance(left, str) or isinstance(right, str):
        if lit.op not in ("=", "!="):
            return None
        return (left == right) == (lit.op == "=")
    return {"=": left == right, "!=": left != right, "<": left < right, "<=": left <= right}.get(
        lit.op, left > right if lit.op == ">" else left >= right
    )


class _Unfolder:
    def __init__(self, program: Program, assumptions: AssumptionSet) -> None:
        self.program, self.assumptions = program, assumptions
        self.uses = 0
        self.complete = True

    def _renamed(self, lit: Literal, n: int) -> Literal:
        def rename(term: Term) -> Term:
            if isinstance(term, Var):
                self.uses += 1
                name = f"_{n}.{self.uses}" if term.anonymous else f"{term.name}.{n}"
                return Var(name, term.pos)
            if isinstance(term, BinOp):
                return BinOp(term.op, rename(term.left), rename(term.right), term.pos)
            return term

        if isinstance(lit, Atom):
            return Atom(lit.predicate, tuple(rename(a) for a in lit.args), lit.pos)
        if isinstance(lit, Negation):
            inner = self._renamed(lit.atom, n)
            assert isinstance(inner, Atom)
            return Negation(inner, lit.pos)
        return Comparison(lit.op, rename(lit.left), rename(lit.right), lit.pos)

    def solve(
        self,
        goals: tuple[tuple[Literal, int], ...],
        subst: dict[str, Term],
        kept: tuple[Literal, ...],
        rules: tuple[str, ...],
    ) -> Iterator[Derivation]:
        """Resolve the goals left to right: a rule predicate through each of its rules, an
        assumption against the set in force; input literals and negations are kept."""
        if not goals:
            literals = []
            for lit in kept:
                lit = _apply_literal(lit, subst)
                decided = _decide(lit) if isinstance(lit, Comparison) else None
                if decided is False:
                    return
                if decided is None:
                    literals.append(lit)
            yield Derivation(tuple(dict.fromkeys(literals)), rules)
            return
        (lit, depth), rest = goals[0], goals[1:]
        if isinstance(lit, Atom) and lit.predicate in ("assumption", "assumption_days"):
            key = _apply(lit.args[0], subst)
            if not isinstance(key, Const) or str(key.value) not in self.assumptions.registry:
                yield from self.solve(rest, subst, (*kept, lit), rules)
                return
            value = self.assumptions[str(key.value)]
            is_text = lit.predicate == "assumption"
            if isinstance(value, str) != is_text:
                return
            given = _unify(lit.args[1], Const(value if isinstance(value, str) else Decimal(value), lit.pos), subst)
            if given is not None:
                yield from self.solve(rest, given, kept, rules)
            return
        if isinstance(lit, Comparison) and lit.op == "=":
            left, right = _walk(lit.left, subst), _walk(lit.right, subst)
            if (isinstance(left, Var) and not isinstance(right, BinOp)) or (
                isinstance(right, Var) and not isinstance(left, BinOp)
            ):  # `C = aplastic_anaemia` names what C is: bind it, as the engine does
                given = _unify(left, right, subst)
                if given is not None:
                    yield from self.solve(rest, given, kept, rules)
                return
        decl = self.program.declarations.get(lit.predicate) if isinstance(lit, Atom) else None
        if not isinstance(lit, Atom) or decl is None or decl.role != "rule":
            if isinstance(lit, Comparison) and _decide(_apply_literal(lit, subst)) is False:  # type: ignore[arg-type]
                return
            yield from self.solve(rest, subst, (*kept, lit), rules)
            return
        if depth >= _MAX_DEPTH:
            self.complete = False
            return
        for rule in self.program.rules_for(lit.predicate):
            self.uses += 1
            n = self.uses
            head = self._renamed(rule.head, n)
            assert isinstance(head, Atom)
            if len(head.args) != len(lit.args):
                continue
            bound: dict[str, Term] | None = subst
            for mine, theirs in zip(lit.args, head.args, strict=True):
                bound = _unify(mine, theirs, bound) if bound is not None else None
            if bound is None:
                continue
            body = tuple((self._renamed(b, n), depth + 1) for b in rule.body)
            yield from self.solve(body + rest, bound, kept, (*rules, str(rule.pos)))


def variables(lit: Literal) -> set[str]:
    """The variables of a literal, the patient's left out."""

    def of(term: Term) -> set[str]:
        if isinstance(term, Var):
            return set() if term.name == PATIENT else {term.name}
        if isinstance(term, BinOp):
            return of(term.left) | of(term.right)
        return set()

    if isinstance(lit, Atom):
        return set().union(*(of(a) for a in lit.args))
    if isinstance(lit, Negation):
        return variables(lit.atom)
    return of(lit.left) | of(lit.right)


def parts(derivation: Derivation) -> list[tuple[Literal, ...]]:
    """The literals of a derivation grouped by shared variables (the patient's aside): each
    group is a closed statement about the patient, true or false of its own."""
    groups: list[tuple[set[str], list[Literal]]] = []
    for lit in derivation.literals:
        names = variables(lit)
        joined = [g for g in groups if g[0] & names]
        merged: tuple[set[str], list[Literal]] = (set(names), [])
        for g in joined:
            merged[0].update(g[0])
            merged[1].extend(g[1])
            groups.remove(g)
        merged[1].append(lit)
        groups.append(merged)
    return [tuple(g[1]) for g in groups]


def _shape(term: Term, names: dict[str, str] | None) -> str:
    """A term's text; variables by `names` (None: every variable as `?`, for sorting)."""
    if isinstance(term, Var):
        if term.name == PATIENT:
            return PATIENT
        if names is None:
            return "?"
        return names.setdefault(term.name, f"V{len(names)}")
    if isinstance(term, Const):
        return repr(term.value) if isinstance(term.value, str) else format(term.value.normalize(), "f")
    return f"({_shape(term.left, names)} {term.op} {_shape(term.right, names)})"


def _literal_text(lit: Literal, names: dict[str, str] | None) -> str:
    if isinstance(lit, Atom):
        return f"{lit.predicate}({', '.join(_shape(a, names) for a in lit.args)})"
    if isinstance(lit, Negation):
        return "not " + _literal_text(lit.atom, names)
    return f"{_shape(lit.left, names)} {lit.op} {_shape(lit.right, names)}"


def _occurrences(term: Term) -> list[str]:
    if isinstance(term, Var):
        return [term.name]
    if isinstance(term, BinOp):
        return _occurrences(term.left) + _occurrences(term.right)
    return []


def occurrences(part: tuple[Literal, ...]) -> dict[str, int]:
    """How often each variable occurs in a part (once: a don't-care, like `_`)."""
    counts: dict[str, int] = {}
    for lit in part:
        atom = lit.atom if isinstance(lit, Negation) else lit
        terms = atom.args if isinstance(atom, Atom) else (atom.left, atom.right)
        for term in terms:
            for name in _occurrences(term):
                counts[name] = counts.get(name, 0) + 1
    return counts


def canonical(part: tuple[Literal, ...]) -> str:
    """The text of a part with its variables named in order of appearance (a variable met
    once is `_`), the literals in a fixed order: the same statement written by two rules, or
    reached through two paths, reads the same."""
    order = sorted(part, key=lambda lit: _literal_text(lit, None))
    names = {name: "_" for name, count in occurrences(part).items() if count == 1}
    return " & ".join(_literal_text(lit, names) for lit in order)


NOWHERE = Pos("review", 0, 0)


@dataclass
class Derivations:
    """The derivations of every (predicate, truth) asked for, and their formulas, memoised."""

    program: Program
    assumptions: AssumptionSet
    _unfolded: dict[tuple[str, str], Unfolded] = field(default_factory=dict)
    _negated: dict[str, z3.BoolRef] = field(default_factory=dict)
    # keyed by id: every derivation lives in a memoised Unfolded (held in the value as well,
    # so that an id can never be reused); hashing a derivation walks all its terms
    _keys: dict[int, tuple[Derivation, frozenset[str]]] = field(default_factory=dict)
    _formulas: dict[int, tuple[Derivation, z3.BoolRef]] = field(default_factory=dict)
    _parts: dict[int, tuple[Derivation, list[tuple[Literal, ...]]]] = field(default_factory=dict)
    _atoms: dict[str, Unfolded] = field(default_factory=dict)

    def of(self, predicate: str, truth: Truth) -> Unfolded:
        key = (predicate, truth)
        if key not in self._unfolded:  # the goal holds the plain string, as a parsed rule would
            goal = Atom(predicate, (Var(PATIENT, NOWHERE), Const(str(truth), NOWHERE)), NOWHERE)
            self._unfolded[key] = self._unfold(goal)
        return self._unfolded[key]

    def unfold(self, goal: Atom, memo: bool = True) -> Unfolded:
        """The derivations of any atom, memoised by its canonical text (so its variables may
        bear another atom's names: `memo=False` for literals over the goal's own variables)."""
        if not memo:
            return self._unfold(goal)
        text = canonical((goal,))
        if text not in self._atoms:
            self._atoms[text] = self._unfold(goal)
        return self._atoms[text]

    def _unfold(self, goal: Atom) -> Unfolded:
        unfolder = _Unfolder(self.program, self.assumptions)
        found: list[Derivation] = []
        for derivation in unfolder.solve(((goal, 0),), {}, (), ()):
            found.append(derivation)
            if len(found) > _MAX_DERIVATIONS:
                return Unfolded(tuple(found[:_MAX_DERIVATIONS]), False)
        return Unfolded(tuple(found), unfolder.complete)

    def keys_of(self, derivation: Derivation) -> frozenset[str]:
        """The data and propositions a derivation speaks of, negated helpers looked into (the
        sex aside): two derivations sharing none cannot be the same condition."""
        if id(derivation) not in self._keys:
            out: set[str] = set()
            for part in self.parts(derivation):
                names = datum_names(part)
                if names:
                    out |= set(names) - {"sex"}
                elif len(part) == 1 and isinstance(part[0], Negation) and not variables(part[0]):
                    out |= self.keys(self.unfold(part[0].atom))
                elif not _bookkeeping(part):
                    out.add(canonical(part))
            self._keys[id(derivation)] = (derivation, frozenset(out))
        return self._keys[id(derivation)][1]

    def parts(self, derivation: Derivation) -> list[tuple[Literal, ...]]:
        if id(derivation) not in self._parts:
            self._parts[id(derivation)] = (derivation, parts(derivation))
        return self._parts[id(derivation)][1]

    def keys(self, unfolded: Unfolded) -> frozenset[str]:
        return frozenset().union(*(self.keys_of(d) for d in unfolded.derivations))

    def formula(self, derivation: Derivation) -> z3.BoolRef:
        """The derivation as a formula, each part abstracted exactly (see the module's note)."""
        if id(derivation) not in self._formulas:
            made = [self.part_formula(p) for p in self.parts(derivation)]
            formula = made[0] if len(made) == 1 else z3.And(*made) if made else z3.BoolVal(True)
            self._formulas[id(derivation)] = (derivation, formula)
        return self._formulas[id(derivation)][1]

    def any_of(self, unfolded: Unfolded) -> z3.BoolRef:
        """Whether some derivation holds: exact when complete, else only `True` is safe."""
        if not unfolded.complete:
            return z3.BoolVal(True)
        return z3.Or(*(self.formula(d) for d in unfolded.derivations)) if unfolded.derivations else z3.BoolVal(False)

    def some_of(self, unfolded: Unfolded) -> z3.BoolRef:
        """Whether a derivation found holds: sufficient for the truth, complete or not."""
        return z3.Or(*(self.formula(d) for d in unfolded.derivations)) if unfolded.derivations else z3.BoolVal(False)

    def part_formula(self, part: tuple[Literal, ...]) -> z3.BoolRef:
        read = datum_read(part)
        if read is not None:
            return read
        if len(part) == 1 and isinstance(part[0], Negation):
            return self._negation(part[0].atom)
        if len(part) == 1 and isinstance(part[0], Atom) and part[0].predicate == "patient":
            return z3.BoolVal(True)
        return z3.Bool(canonical(part))

    def _negation(self, atom: Atom) -> z3.BoolRef:
        """`not A` (its variables met nowhere else): none of A's derivations holds."""
        text = canonical((atom,))
        if text not in self._negated:
            decl = self.program.declarations.get(atom.predicate)
            read = datum_read((atom,))
            if read is not None:
                self._negated[text] = z3.Not(read)
            elif decl is not None and decl.role == "rule" and (unfolded := self.unfold(atom)).complete:
                self._negated[text] = z3.Not(self.any_of(unfolded))
            else:
                self._negated[text] = z3.Not(z3.Bool(text))
        return self._negated[text]


#: Relations that date a derivation (reference days, reviews) without being a condition.
_DATING = frozenset({"ref_day", "reviewed", "months_before", "patient", "assumption", "assumption_days"})


def _bookkeeping(part: tuple[Literal, ...]) -> bool:
    """A part that only dates things (a review reaching enrolment): no condition of its own."""
    return all(isinstance(lit, Comparison) or (isinstance(lit, Atom) and lit.predicate in _DATING) for lit in part)


def names_in(formulas: list[z3.BoolRef]) -> set[str]:
    """The names of the data and propositions in formulas (z3's own get_vars prints every
    node, a hundred times slower)."""
    out: set[str] = set()
    seen: set[int] = set()
    todo: list[z3.ExprRef] = list(formulas)
    while todo:
        expr = todo.pop()
        if expr.get_id() in seen:
            continue
        seen.add(expr.get_id())
        if z3.is_const(expr) and expr.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.add(expr.decl().name())
        else:
            todo.extend(expr.children())
    return out


def _datum_name(relation: str, key: tuple[str, ...], position: int) -> str:
    item = ".".join(key) if key else relation
    suffix = "" if len(READS[relation][1]) == 1 else (":lo", ":hi")[position]
    return f"{relation}:{item}{suffix}" if relation != "sex" else "sex"


def datum(relation: str, key: tuple[str, ...], position: int = 0) -> z3.ExprRef:
    """The z3 value of one datum, named as kb.review.logic names it (`obs_num:platelets`)."""
    name = _datum_name(relation, key, position)
    return z3.String(name) if relation in _TEXT else z3.Real(name)


def present(relation: str, key: tuple[str, ...]) -> z3.BoolRef:
    """Whether the patient has the datum at all (a value always exists for z3)."""
    return z3.Bool(f"has {relation}:{'.'.join(key) if key else relation}")


def datum_names(part: tuple[Literal, ...]) -> tuple[str, ...]:
    """The data a datum-read part reads, by their solver names (empty for any other part)."""
    uses = occurrences(part)
    out: list[str] = []
    values: set[str] = set()
    for lit in part:
        if isinstance(lit, Comparison):
            continue
        if not isinstance(lit, Atom) or lit.predicate not in READS:
            return ()
        keys, positions = READS[lit.predicate]
        if not all(isinstance(lit.args[k], Const) for k in keys):
            return ()
        for k in set(range(1, len(lit.args))) - set(keys) - set(positions):
            other = lit.args[k]
            if not isinstance(other, Var) or uses.get(other.name) != 1:
                return ()
        key = tuple(str(a.value) for a in (lit.args[k] for k in keys) if isinstance(a, Const))
        out += [_datum_name(lit.predicate, key, n) for n in range(len(positions))]
        values |= {a.name for a in (lit.args[p] for p in positions) if isinstance(a, Var)}
    compared = {v for lit in part if isinstance(lit, Comparison) for v in variables(lit)}
    if not out or not compared <= values:
        return ()
    return tuple(sorted(set(out)))


def datum_read(part: tuple[Literal, ...]) -> z3.BoolRef | None:
    """A part that only reads data (each relation one value per patient) and compares them
    with constants or each other: its exact formula. None for any other part."""
    values: dict[str, z3.ExprRef] = {}
    out: list[z3.BoolRef] = []
    uses = occurrences(part)
    for lit in part:
        if isinstance(lit, Comparison):
            continue
        if not isinstance(lit, Atom) or lit.predicate not in READS:
            return None
        keys, positions = READS[lit.predicate]
        key_args = [lit.args[k] for k in keys]
        if not all(isinstance(a, Const) for a in key_args):
            return None
        key = tuple(str(a.value) for a in key_args if isinstance(a, Const))
        if lit.predicate != "sex":
            out.append(present(lit.predicate, key))
        for n, position in enumerate(positions):
            arg, value = lit.args[position], datum(lit.predicate, key, n)
            if isinstance(arg, Const):
                out.append(value == _z3_const(arg.value, lit.predicate in _TEXT))
            elif isinstance(arg, Var) and arg.name in values:
                out.append(values[arg.name] == value)
            elif isinstance(arg, Var):
                values[arg.name] = value
        for k in set(range(1, len(lit.args))) - set(keys) - set(positions):
            other = lit.args[k]
            if not isinstance(other, Var) or uses.get(other.name) != 1:
                return None  # a day read elsewhere: the part says more than a value
    for lit in part:
        if isinstance(lit, Comparison):
            left, right = _z3_term(lit.left, values), _z3_term(lit.right, values)
            if left is None or right is None:
                return None
            out.append(_compare(lit.op, left, right))
    return z3.And(*out) if out else None


def _z3_const(value: Decimal | str, text: bool) -> z3.ExprRef:
    if text or isinstance(value, str):
        return z3.StringVal(str(value))
    return z3.RealVal(str(value))


def _z3_term(term: Term, values: dict[str, z3.ExprRef]) -> z3.ExprRef | None:
    if isinstance(term, Const):
        return _z3_const(term.value, False)
    if isinstance(term, Var):
        return values.get(term.name)
    left, right = _z3_term(term.left, values), _z3_term(term.right, values)
    if left is None or right is None or term.op not in ("+", "-", "*"):
        return None
    return {"+": left + right, "-": left - right}.get(term.op, left * right)


def _compare(op: str, left: z3.ExprRef, right: z3.ExprRef) -> z3.BoolRef:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    return {"<": left < right, "<=": left <= right, ">": left > right}.get(op, left >= right)
