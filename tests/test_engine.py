"""The engine wrapper: one private pyDatalog state per request, exact numbers, recovery."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from kb.language.engine import Engine, EngineError
from kb.language.parser import parse_text

PROGRAM = parse_text(
    ".decl lab(P: patient, V: number) input\n"
    ".decl ok(P: patient, T: truth)\n"
    "ok(P, yes) :- lab(P, V), V >= 7.\n"
    "ok(P, no) :- lab(P, V), V < 7.\n",
    "e.dl",
)


def test_values_are_compared_exactly_at_the_boundary() -> None:
    # pyDatalog's default float rounding would turn 6.99999999 into 7.0 and let it pass
    facts = [("lab", ("A", Decimal("6.99999999"))), ("lab", ("B", Decimal("7"))), ("lab", ("C", Decimal("7.000")))]
    with Engine(PROGRAM).session(facts) as session:
        assert session.ask("ok", [None, None]) == [("A", "no"), ("B", "yes"), ("C", "yes")]


def test_facts_of_one_session_never_reach_the_next() -> None:
    engine = Engine(PROGRAM)
    with engine.session([("lab", ("A", Decimal(9)))]) as session:
        assert session.ask("ok", ["A", None]) == [("A", "yes")]
    with engine.session([("lab", ("B", Decimal(1)))]) as session:
        assert session.ask("ok", [None, None]) == [("B", "no")]


def test_threads_have_separate_states() -> None:
    engine = Engine(PROGRAM)
    barrier = threading.Barrier(2)
    seen: dict[str, object] = {}

    def worker(name: str, value: int) -> None:
        try:
            with engine.session([("lab", (name, Decimal(value)))]) as session:
                barrier.wait(timeout=10)  # both sessions open at once
                seen[name] = session.ask("ok", [None, None])
        except Exception as exc:  # surfaced by the assertion below
            seen[name] = exc

    threads = [threading.Thread(target=worker, args=("T1", 9)), threading.Thread(target=worker, args=("T2", 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"T1": [("T1", "yes")], "T2": [("T2", "no")]}


def test_a_failed_query_breaks_only_its_session() -> None:
    bad = parse_text(
        ".decl lab(P: patient, V: number) input\n.decl cmp(P: patient)\ncmp(P) :- lab(P, V), V > W, lab(P, W).", "b.dl"
    )
    engine = Engine(bad)
    # a string and a number cannot be compared: pyDatalog raises inside the query
    with engine.session([("lab", ("A", "text")), ("lab", ("A", Decimal(1)))]) as session:
        with pytest.raises(EngineError):
            session.ask("cmp", [None])
        with pytest.raises(EngineError, match="failed earlier"):
            session.ask("lab", [None, None])
    with Engine(PROGRAM).session([("lab", ("A", Decimal(8)))]) as session:
        assert session.ask("ok", [None, None]) == [("A", "yes")]


def test_sessions_do_not_nest_in_one_thread() -> None:
    engine = Engine(PROGRAM)
    with engine.session([]), pytest.raises(EngineError, match="already open"), engine.session([]):
        pass


def test_solve_gives_bindings_for_a_rule_body() -> None:
    rule = PROGRAM.rules[0]
    with Engine(PROGRAM).session([("lab", ("A", Decimal(8))), ("lab", ("B", Decimal(2)))]) as session:
        assert session.solve(rule.body, {"P": "A"}) == [{"P": "A", "V": Decimal(8)}]
        assert session.solve(rule.body, {"P": "B"}) == []
