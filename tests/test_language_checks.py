"""Static checks: every error is located (file:line:col) and says what to do."""

from __future__ import annotations

import pytest

from kb.language.checks import check_program
from kb.language.parser import parse_text

DECLS = """\
.decl obs_num(P: patient, Item: item, Value: number, Day: day) input
.decl attested(P: patient, Item: attestation, Value: symbol) input
.decl ok(P: patient, T: truth)
.decl helper(P: patient)
"""
KNOWN = {"item": {"platelets", "anc"}, "attestation": {"consent"}}


def problems_of(rules: str) -> list[str]:
    program = parse_text(DECLS + rules, "kb/rules/test.dl")
    return [str(p) for p in check_program(program, KNOWN)]


def test_a_clean_program_has_no_problems() -> None:
    assert (
        problems_of(
            "ok(P, yes) :- obs_num(P, platelets, V, D), V >= 50, W = D - 7, W > 0, not helper(P).\n"
            "ok(P, no) :- obs_num(P, platelets, V, _), V < 50.\n"
            "helper(P) :- attested(P, consent, no).\n"
        )
        == []
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # unsafe: head variable bound by nothing
        (
            "ok(Q, yes) :- obs_num(P, platelets, V, _).\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:4: unsafe variable Q: it is in the head but no positive body atom binds it",
        ),
        # unsafe: a variable only under `not`
        (
            "ok(P, yes) :- obs_num(P, platelets, _, _), not helper(Q).\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:55: unsafe variable Q: it appears only under `not`",
        ),
        # unsafe: a compared variable never bound
        (
            "ok(P, yes) :- obs_num(P, platelets, V, _), Z > 3.\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:44: unsafe variable Z: it is compared but never bound",
        ),
        # arity mismatch
        (
            "ok(P, yes) :- obs_num(P, platelets, V).\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:15: 'obs_num' takes 4 arguments, here it has 3",
        ),
        # undefined (misspelt) predicate, with a suggestion
        (
            "ok(P, yes) :- obs_nun(P, platelets, V, _).\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:15: undefined predicate 'obs_nun/4' (did you mean 'obs_num'?)",
        ),
        # unstratified negation (pyDatalog would loop forever)
        (
            "ok(P, yes) :- obs_num(P, anc, _, _), not helper(P).\nhelper(P) :- obs_num(P, anc, _, _), not ok(P, yes).",
            "kb/rules/test.dl:5:38: unstratified negation: 'ok' depends negatively on 'helper'",
        ),
        # a misspelt vocabulary constant
        (
            "ok(P, yes) :- obs_num(P, platelet, V, _), V >= 50.\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:26: unknown item 'platelet' in obs_num (did you mean 'platelets'?)",
        ),
        # a truth argument that is not yes/no/na
        (
            "ok(P, maybe) :- obs_num(P, anc, _, _).\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:7: 'maybe' is not a truth value (use yes, no or na)",
        ),
        # a symbol compared with <
        (
            "ok(P, yes) :- attested(P, consent, V), V > 3.\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:40: V is a symbol; only numbers and days can be compared with >",
        ),
        # a rule for an input relation
        (
            "obs_num(P, anc, 1, 2) :- helper(P).\nhelper(P) :- obs_num(P, anc, _, _).\nok(P, yes) :- helper(P).",
            "kb/rules/test.dl:5:1: 'obs_num' is an input relation; rules cannot define it",
        ),
        # anonymous variable under negation
        (
            "ok(P, yes) :- obs_num(P, anc, _, _), not attested(P, consent, _).\nhelper(P) :- obs_num(P, anc, _, _).",
            "kb/rules/test.dl:5:63: '_' inside `not` is not allowed",
        ),
    ],
)
def test_each_static_error_is_located(rule: str, expected: str) -> None:
    found = problems_of(rule)
    assert any(p.startswith(expected) for p in found), found


def test_python_builtin_names_are_rejected_as_predicates() -> None:
    program = parse_text(".decl len(P: patient)\n.decl type(P: patient) input\nlen(P) :- type(P).", "b.dl")
    found = [str(p) for p in check_program(program)]
    assert "b.dl:1:7: 'len' is a Python builtin name and cannot be a predicate" in " ".join(found)
    assert "b.dl:2:7: 'type' is a Python builtin name" in " ".join(found)


def test_declared_but_undefined_and_duplicate_declarations() -> None:
    program = parse_text(".decl lonely(P: patient)\n.decl lonely(P: patient)\n", "d.dl")
    found = [str(p) for p in check_program(program)]
    assert any(p.startswith("d.dl:2:7: relation 'lonely' is declared twice") for p in found)
    assert any(p.startswith("d.dl:1:7: relation 'lonely' is declared but no rule defines it") for p in found)


def test_undeclared_head_is_reported() -> None:
    program = parse_text("stray(P) :- stray(P).", "s.dl")
    found = [str(p) for p in check_program(program)]
    assert any(p.startswith("s.dl:1:1: relation 'stray' is not declared") for p in found)
