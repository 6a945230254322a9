"""Compile the rule AST into SQL: every rule evaluated for all patients at once.

The same checked program that `compile.py` hands to pyDatalog one patient at a time is
turned here into one `CREATE TABLE … AS SELECT DISTINCT …` per derived relation (the union
of its rules), in dependency order, so that a set-at-a-time engine (DuckDB) derives the
relation for a whole cohort in one join. Nothing about a criterion is written here: a new
rule file changes the SQL with no edit to this module.

Arithmetic stays exact: `day` columns are integers (day numbers) and `number` columns
`DECIMAL(38, 28)`; a value that does not fit exactly is the caller's to route elsewhere
(`fits_exactly`). Only rule text becomes SQL text, and only after the parser has reduced
it to names of the form `[a-z][a-z0-9_]*`, numbers and quoted strings (escaped); patient
values never enter the SQL, they are loaded as table data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from kb.language.compile import ordered_body  # the same binding order as the engine
from kb.language.syntax import Atom, Comparison, Const, Declaration, Negation, Program, Rule, Term, Var

__all__ = [
    "DECIMAL_TYPES",
    "DUCKDB",
    "NUMBER_SCALE",
    "SPARK",
    "Dialect",
    "SqlPlan",
    "SqlUnsupported",
    "Step",
    "column_type",
    "compile_sql",
    "fits_exactly",
    "table_name",
]

#: Decimal places of a `number` column; with 38 digits in all, 10 are left before the point.
NUMBER_SCALE = 28
_NUMBER_SQL = f"DECIMAL(38, {NUMBER_SCALE})"
_LIMIT = Decimal(10) ** (38 - NUMBER_SCALE)
_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class SqlUnsupported(ValueError):
    """A rule uses something the SQL path cannot evaluate exactly (the reference engine can)."""


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines for the statements written here: how a name is
    quoted and what a text column is called. Everything else (joins, UNION, NOT EXISTS,
    exact DECIMAL(38, 28) and BIGINT arithmetic) is the standard both engines read alike."""

    name: str
    quote: str
    text_type: str


DUCKDB = Dialect("duckdb", '"', "VARCHAR")
#: Spark SQL (ANSI mode, `spark.sql.decimalOperations.allowPrecisionLoss` off: see kb.screening.spark)
SPARK = Dialect("spark", "`", "STRING")


def table_name(relation: str, dialect: Dialect = DUCKDB) -> str:
    return f"{dialect.quote}r_{relation}{dialect.quote}"


#: Declared types held as exact decimals (a `day` is an integer day number).
DECIMAL_TYPES = frozenset({"number", "days"})


def column_type(type_name: str, dialect: Dialect = DUCKDB) -> str:
    if type_name == "day":
        return "BIGINT"
    if type_name in DECIMAL_TYPES:
        return _NUMBER_SQL
    return dialect.text_type


def fits_exactly(value: Decimal | int) -> bool:
    """Whether a number is held exactly by a `number` column (else compare it elsewhere)."""
    if isinstance(value, int):
        return abs(value) < _LIMIT
    if not value.is_finite():
        return False
    exponent = value.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -NUMBER_SCALE and abs(value) < _LIMIT


@dataclass(frozen=True)
class Step:
    """Derive the relations of one dependency component: create them, then, for a recursive
    component, repeat its inserts until none adds a row (a naive fixpoint)."""

    relations: tuple[str, ...]
    create: tuple[str, ...]
    repeat: tuple[str, ...] = ()
    #: each relation's rules as SELECTs (the union is the relation), for an engine that
    #: materialises results its own way (Spark) rather than running `create` and `repeat`
    selects: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def recursive(self) -> bool:
        return bool(self.repeat)


@dataclass(frozen=True)
class SqlPlan:
    """The statements that derive every rule relation, given tables for the input ones."""

    inputs: dict[str, Declaration]  # input and computed relations: loaded as data
    steps: tuple[Step, ...]  # in the order they must run
    #: input relations whose second argument every rule names by a constant: only facts with
    #: one of these values can match (a patient's 30 score items when the rules read 9 items)
    selective: dict[str, frozenset[str]]
    dialect: Dialect = DUCKDB

    def empty_table(self, relation: str) -> str:
        return _create_empty(relation, self.inputs[relation], self.dialect)


def _create_empty(relation: str, decl: Declaration, dialect: Dialect) -> str:
    cols = ", ".join(f"c{i} {column_type(t, dialect)}" for i, (_, t) in enumerate(decl.params))
    return f"CREATE OR REPLACE TABLE {table_name(relation, dialect)} ({cols})"


def _literal(value: Decimal | str, type_name: str | None = None) -> str:
    if isinstance(value, Decimal):
        if type_name == "day" and value == value.to_integral_value():
            return str(int(value))
        return f"CAST('{value:f}' AS {_NUMBER_SQL})"
    return "'" + value.replace("'", "''") + "'"


class _RuleSql:
    """One rule body as FROM/WHERE over aliased tables, binding each variable once."""

    def __init__(self, rule: Rule, decls: Mapping[str, Declaration], dialect: Dialect) -> None:
        self.decls = decls
        self.dialect = dialect
        self.bound: dict[str, str] = {}  # variable → SQL expression
        self.tables: list[str] = []
        self.where: list[str] = []
        for n, lit in enumerate(ordered_body(rule.body)):
            if isinstance(lit, Atom):
                self._atom(lit, f"t{n}")
            elif isinstance(lit, Comparison):
                self._comparison(lit)
            else:
                self.where.append(self._negation(lit, n))
        self.rule = rule

    def _atom(self, atom: Atom, alias: str) -> None:
        self.tables.append(f"{table_name(atom.predicate, self.dialect)} AS {alias}")
        params = self.decls[atom.predicate].params
        for i, arg in enumerate(atom.args):
            column = f"{alias}.c{i}"
            type_name = params[i][1]
            if isinstance(arg, Var):
                if arg.anonymous:
                    continue
                if arg.name in self.bound:
                    self.where.append(f"{column} = {self.bound[arg.name]}")
                else:
                    self.bound[arg.name] = column
            elif isinstance(arg, Const):
                self.where.append(f"{column} = {_literal(arg.value, type_name)}")
            else:
                raise SqlUnsupported(f"{atom.pos}: arithmetic inside an atom")

    def term(self, term: Term) -> str:
        if isinstance(term, Const):
            return _literal(term.value)
        if isinstance(term, Var):
            if term.name not in self.bound:
                raise SqlUnsupported(f"{term.pos}: variable {term.name} is not bound")
            return self.bound[term.name]
        if term.op not in "+-":
            # DECIMAL products and quotients widen or turn to floating point: not exact
            raise SqlUnsupported(f"{term.pos}: '{term.op}' is not evaluated exactly in SQL")
        return f"({self.term(term.left)} {term.op} {self.term(term.right)})"

    def _comparison(self, lit: Comparison) -> None:
        if lit.op == "=" and isinstance(lit.left, Var) and lit.left.name not in self.bound:
            self.bound[lit.left.name] = self.term(lit.right)  # an assignment (ordered_body put it here)
            return
        self.where.append(f"{self.term(lit.left)} {_OPS[lit.op]} {self.term(lit.right)}")

    def _negation(self, lit: Negation, n: int) -> str:
        alias = f"n{n}"
        conditions = []
        params = self.decls[lit.atom.predicate].params
        for i, arg in enumerate(lit.atom.args):
            if isinstance(arg, Var) and arg.anonymous:
                continue
            value = _literal(arg.value, params[i][1]) if isinstance(arg, Const) else self.term(arg)
            conditions.append(f"{alias}.c{i} = {value}")
        where = " AND ".join(conditions) or "TRUE"
        return f"NOT EXISTS (SELECT 1 FROM {table_name(lit.atom.predicate, self.dialect)} AS {alias} WHERE {where})"

    def select(self) -> str:
        params = self.decls[self.rule.head.predicate].params
        columns = []
        for i, arg in enumerate(self.rule.head.args):
            wanted = column_type(params[i][1], self.dialect)
            value = _literal(arg.value, params[i][1]) if isinstance(arg, Const) else self.term(arg)
            columns.append(f"CAST({value} AS {wanted}) AS c{i}")
        sql = "SELECT " + ", ".join(columns)
        if self.tables:
            sql += " FROM " + ", ".join(self.tables)
        if self.where:
            sql += " WHERE " + " AND ".join(self.where)
        return sql


def _components(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components, dependencies first (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def compile_sql(program: Program, roots: Iterable[str] | None = None, dialect: Dialect = DUCKDB) -> SqlPlan:
    """The SQL that derives `roots` (every rule relation when None) from the input tables."""
    decls = program.declarations
    needed = set(program.depends_on(roots)) if roots is not None else set(decls)
    inputs = {n: d for n, d in decls.items() if d.role != "rule" and n in needed}
    derived = sorted(n for n in needed if decls[n].role == "rule")

    def uses(rule: Rule) -> Iterable[str]:
        for lit in rule.body:
            if isinstance(lit, Atom | Negation):
                atom = lit.atom if isinstance(lit, Negation) else lit
                if decls[atom.predicate].role == "rule":
                    yield atom.predicate

    graph = {name: {p for rule in program.rules_for(name) for p in uses(rule)} for name in derived}
    steps = []
    for component in _components(graph):
        recursive = len(component) > 1 or component[0] in graph[component[0]]
        create, repeat, by_relation = [], [], []
        for name in component:
            selects = [_RuleSql(rule, decls, dialect).select() for rule in program.rules_for(name)]
            by_relation.append((name, tuple(selects)))
            table = table_name(name, dialect)
            if recursive or not selects:
                create.append(_create_empty(name, decls[name], dialect))
                repeat += [f"INSERT INTO {table} ({s}) EXCEPT SELECT * FROM {table}" for s in selects]
            else:  # UNION: set semantics, as in Datalog
                create.append(f"CREATE OR REPLACE TABLE {table} AS {' UNION '.join(selects)}")
        steps.append(Step(tuple(component), tuple(create), tuple(repeat) if recursive else (), tuple(by_relation)))
    return SqlPlan(inputs, tuple(steps), _selective(program, derived, inputs), dialect)


def _selective(program: Program, derived: list[str], inputs: Mapping[str, Declaration]) -> dict[str, frozenset[str]]:
    constants: dict[str, set[str]] = {name: set() for name, d in inputs.items() if d.arity >= 2}
    for name in derived:
        for rule in program.rules_for(name):
            for lit in rule.body:
                if not isinstance(lit, Atom | Negation):
                    continue
                atom = lit.atom if isinstance(lit, Negation) else lit
                if atom.predicate not in constants:
                    continue
                key = atom.args[1]
                if isinstance(key, Const) and isinstance(key.value, str):
                    constants[atom.predicate].add(key.value)
                else:
                    del constants[atom.predicate]  # read whatever the value: every fact counts
    return {name: frozenset(values) for name, values in constants.items()}
