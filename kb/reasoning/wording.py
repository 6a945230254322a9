"""Status messages in plain clinical language, from the same proof the formal trace shows.

A criterion's message is what a clinician would write beside its status: "Rituximab
(recorded as 利妥昔单抗) on 3 Nov 2026, within the window from 27 Oct 2026 (28 days before
enrolment) to enrolment (24 Nov 2026)". The proof tree (`kb.reasoning.trace`) is walked as for the
formal one-line proof (`message_from`, kept on the result as `proof`), but the rules'
algebra becomes words: assignments (`From = Enrolment − 28`) name the dates they compute,
comparisons of dates become windows, comparisons with constants become bounds ("below 50"),
a `not` becomes the finding it rules out ("no live vaccine within 4 weeks before
enrolment"), and the vocabulary's labels replace its identifiers (items, attestations,
histories, agents). The status is never repeated (the caller shows it), no predicate of the
rules is named, and no message opens with a formula.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from kb.catalogue.vocabulary import Vocabulary
from kb.reasoning.trace import Node
from kb.status import COHORTS, Cohort

__all__ = ["Words", "plain_gaps", "plain_message", "sentence", "words_for"]

_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
#: a record's description (`kb.factbase.build._event_label`): kind, what, its days
_EVENT = re.compile(
    r"^(medication|vaccination|cell_therapy|procedure|transfusion|malignancy|cardiac_event|thrombosis|infection|"
    r"investigational_product|diagnosis) (?!history\b)(.+?) (\d{4}-\d{2}-\d{2})"
    r"(?:( to )(\d{4}-\d{2}-\d{2})|(, ongoing))?(?=$|:)"
)
_ISO_WORDS = re.compile(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}\b")
_SNAKE = re.compile(r"(?<![\w./-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w.-])")
#: assumption ids are the user's own switches (`--assume crcl_method=...`): shown as written
_KEPT_AFTER = re.compile(r"(assumption|assume|set|column)\s+$")
_HISTORIES = {
    "medications": "medication history",
    "vaccinations": "vaccination history",
    "cell_gene_therapy": "cell and gene therapy history",
    "diagnoses": "diagnosis history",
    "thrombosis": "thrombosis history",
    "cardiac_events": "cardiac event history",
    "malignancy": "malignancy history",
    "investigational_products": "investigational product history",
    "transfusions": "transfusion history",
    "procedures": "procedure history",
    "infections": "infection history",
}
_REFERENCE = {"Enrolment": "enrolment", "Apheresis": "apheresis", "Screening": "screening", "Sample": "the sample"}
_RECORD_VARS = {"Last": "the last dose", "Start": "the start", "Day": "that day"}
_DATE_OPS = {">=": "on or after", ">": "after", "<=": "on or before", "<": "before", "=": "on", "!=": "not on"}
_NUM_OPS = {">=": "at least", ">": "above", "<=": "at most", "<": "below", "=": "equal to", "!=": "other than"}
_SYMBOL_OPS = {"≥": ">=", "≤": "<=", ">": ">", "<": "<", "=": "=", "≠": "!="}

_UNKNOWN_NAME = "under a name the vocabulary does not know"
#: What each `not` of the rules rules out, as the protocol would say it.
_ABSENT = {
    "any_cd19_agent": "no CD19-directed therapy ever",
    "unrecognised_therapy": f"no therapy recorded {_UNKNOWN_NAME}",
    "unrecognised_cell_therapy": f"no cell therapy recorded {_UNKNOWN_NAME}",
    "any_live_vaccine_in_window": "no live vaccine within 4 weeks before enrolment",
    "unrecognised_vaccine_in_window": f"no vaccination {_UNKNOWN_NAME} within 4 weeks before enrolment",
    "any_antibody_in_window": "no immunosuppressive antibody within 4 weeks before enrolment",
    "unrecognised_medication_in_window": f"no medication {_UNKNOWN_NAME} within 4 weeks before enrolment",
    "any_ge4_4_exposure": "no immunostimulatory drug within 5 half-lives before apheresis",
    "unrecognised_medication_before_apheresis": f"no medication {_UNKNOWN_NAME} within 35 days before apheresis",
    "ge4_4_washout_unknown": "no immunostimulatory drug of unknown half-life before apheresis",
    "any_cytotoxic_in_window": "no systemic cytotoxic drug within 2 weeks before enrolment",
    "unrecognised_medication_in_2_weeks": f"no medication {_UNKNOWN_NAME} within 2 weeks before enrolment",
    "any_growth_factor_before_apheresis": "no growth factor within 2 weeks before apheresis",
    "unrecognised_medication_2_weeks_before_apheresis": (
        f"no medication {_UNKNOWN_NAME} within 2 weeks before apheresis"
    ),
    "any_high_dose_steroid_in_window": "no glucocorticoid above 10 mg/day prednisone-equivalent in the window",
    "any_immunosuppressant_in_window": "no other immunosuppressant in the window",
    "steroid_dose_unknown_in_window": "no glucocorticoid of unknown dose in the window",
    "unrecognised_medication_in_ge4_7_window": f"no medication {_UNKNOWN_NAME} in the window",
    "any_car_t": "no CAR-T therapy ever",
    "any_cardiac_event_in_window": "no cardiac event in the window",
    "unrecognised_cardiac_event_in_window": f"no cardiac event {_UNKNOWN_NAME} in the window",
    "any_dvt_pe_in_window": "no deep vein thrombosis or pulmonary embolism in the window",
    "unrecognised_thrombosis_in_window": f"no thrombosis {_UNKNOWN_NAME} in the window",
    "any_unrecognised_thrombosis": f"no thrombosis {_UNKNOWN_NAME}",
    "any_investigational_product_in_window": "no investigational product in the window",
    "any_bm_failure_diagnosis": "no bone-marrow failure diagnosis",
    "any_malignancy_within_5_years": "no malignancy within 5 years",
    "ge8_excepted_type": "not of an excepted type",
    "any_rbc_transfusion_before_hb": "no red-cell transfusion within 14 days before the haemoglobin sample",
    "unrecognised_transfusion_before_hb": f"no transfusion {_UNKNOWN_NAME} before the haemoglobin sample",
    "unreviewed_haematology_sample": "the medication history covers the haematology sample",
    "any_growth_factor_before_sample": "no growth factor before the haematology sample",
    "unrecognised_medication_before_sample": f"no medication {_UNKNOWN_NAME} before the haematology sample",
    "medications_reviewed_after": "no medication review after the sample",
    "unrecognised_diagnosis": f"no diagnosis {_UNKNOWN_NAME}",
    "unrecognised_procedure": f"no procedure {_UNKNOWN_NAME}",
    "any_unrecognised_condition_record": f"no condition {_UNKNOWN_NAME}",
    "any_unrecognised_medication": f"no medication {_UNKNOWN_NAME}",
    "not_of_childbearing_potential": "not recorded as without childbearing potential",
    "pregnancy_tested": "no pregnancy test result",
    "positive_pregnancy_test": "no positive pregnancy test",
    "rr_cyclophosphamide": "no cyclophosphamide course counting towards refractoriness",
    "rr_gc_dose": "no glucocorticoid course at the refractoriness dose",
    "rr_gc_dose_unknown": "no glucocorticoid course of unknown dose",
    "any_rr_long_course": "no conventional course long enough to count",
    "any_refractory_recurrence": "no thrombosis recurring on anticoagulation",
    "anticoagulated_thrombosis": "no thrombosis on anticoagulation",
    "other_ctd": "no other connective tissue disease",
    "sjogren_with_other_ctd": "no Sjögren's syndrome secondary to another connective tissue disease",
    "any_myositis_after_tumour": "no myositis within 2 years after a tumour",
    "any_nervous_system_event": "no nervous-system involvement",
    "kidney_transplant": "no kidney transplant",
    "autologous_sct": "no autologous stem-cell transplant",
    "caps_by_items": "the catastrophic APS criteria not met by their items",
    "glucocorticoid_received": "no glucocorticoid received",
    "gc_dose_per_kg_known": "no known per-kg glucocorticoid dose",
    "agent_has_washout": "no known half-life",
    "any_cohort": "no qualifying diagnosis",
}
_CLASSES = {"ttp_tma": "TTP/TMA", "ibm": "inclusion-body myositis", "marrow_disorder": "bone-marrow disorder"}
_BY_ITEMS = re.compile(r"^(\w+?)_(\d{4})_by_items$|^(\w+?)_(definite|probable)_by_items$")


@dataclass(frozen=True)
class Words:
    """The vocabulary's labels for the identifiers a proof or a gap quotes."""

    items: dict[str, str]
    attestations: dict[str, str]

    def item(self, name: str) -> str:
        label = self.items.get(name)
        return label if label else name.replace("_", " ")

    def text(self, phrase: str) -> str:
        """A phrase from a fact's description or a gap, in the vocabulary's words."""
        phrase = _attestation(phrase, self)
        phrase = re.sub(
            r"^([a-z][a-z0-9_]*) (?=\S+.* on \d{4}-\d{2}-\d{2}(?: \(.*\))?$)",
            lambda m: (self.items[m.group(1)] + " ") if m.group(1) in self.items else m.group(0),
            phrase,
        )
        phrase = re.sub(
            r"\b(no (?:current |measured )?|latest )([a-z][a-z0-9_]*)(?= result)",
            lambda m: m.group(1) + _lower(self.items[m.group(2)]) if m.group(2) in self.items else m.group(0),
            phrase,
        )
        phrase = re.sub(
            r"^([a-z][a-z0-9_]*) not attested$",
            lambda m: (
                f"{self.attestations[m.group(1)]}: not attested" if m.group(1) in self.attestations else m.group(0)
            ),
            phrase,
        )
        phrase = _EVENT.sub(_event, phrase)
        phrase = re.sub(r"\b([a-z_]+) history\b", lambda m: _HISTORIES.get(m.group(1), m.group(0)), phrase)
        phrase = re.sub(r"→ cohort (\w+)", lambda m: f"→ {_cohort(m.group(1))} cohort", phrase)
        phrase = phrase.replace("(icd10)", "(ICD-10)").replace("(icd11)", "(ICD-11)")
        return _dates(_unsnake(phrase))


_WORDS: dict[int, tuple[Vocabulary, Words]] = {}


def words_for(vocabulary: Vocabulary) -> Words:
    """The labels of one vocabulary (built once per vocabulary object)."""
    cached = _WORDS.get(id(vocabulary))
    if cached is None or cached[0] is not vocabulary:
        words = Words(
            {name: item.label for name, item in vocabulary.items.items()},
            {name: item.label for name, item in vocabulary.attestation_items.items()},
        )
        cached = _WORDS[id(vocabulary)] = (vocabulary, words)
    return cached[1]


def _cohort(name: str) -> str:
    """A cohort's short name ("→ SLE cohort"); any other word as it is."""
    return Cohort(name).label if name in COHORTS else name


def sentence(text: str) -> str:
    """First letter up, as a sentence starts; a file name or code that opens it stays as written."""
    first = text.split(" ", 1)[0]
    if not text or re.search(r"[._\d/]", first):
        return text
    return text[:1].upper() + text[1:]


def plain_gaps(details: list[str], words: Words) -> str:
    """What is missing to decide, each gap in the vocabulary's words."""
    return sentence("; ".join(dict.fromkeys(words.text(d) for d in details)))


def plain_message(node: Node, words: Words) -> str:
    """The clinician's sentence for a proof: facts, their bounds and windows, what was ruled out."""
    assigned: dict[str, tuple[str, str]] = {}
    _assignments(node, assigned)
    phrases: list[str] = []
    _phrases(node, words, assigned, phrases)
    return sentence("; ".join(dict.fromkeys(p for p in phrases if p)))


def _add(phrases: list[str], phrase: str) -> int:
    """Where `phrase` stands in the message: a record a sub-rule names again is the same record."""
    for index, said in enumerate(phrases):
        if said == phrase or said.startswith(phrase + ", "):
            return index
    phrases.append(phrase)
    return len(phrases) - 1


def _assignments(node: Node, assigned: dict[str, tuple[str, str]]) -> None:
    """The dates the rules compute, by name, wherever in the tree: each with its reckoning,
    the amounts read from the bindings of the rule that computed it ("Enrolment − 28 days")."""
    env = _bindings(node.detail.get("bindings", "")) if node.kind == "rule" else {}
    for child in node.children:
        if child.kind == "assignment":
            var, _, expr = child.detail.get("expression", "").partition(" = ")
            parts = re.fullmatch(r"(\w+) ([−+-]) (\w+)", expr)
            if parts:
                amount = env.get(parts.group(3), parts.group(3))
                expr = f"{parts.group(1)} {parts.group(2)} {amount if 'day' in amount else f'{amount} days'}"
            assigned.setdefault(var, (child.detail.get("actual", ""), expr))
        elif child.kind == "rule":
            _assignments(child, assigned)


def _phrases(node: Node, words: Words, assigned: dict[str, tuple[str, str]], phrases: list[str]) -> None:
    if node.kind in ("fact", "derived"):
        if not _quiet(node):
            _add(phrases, words.text(node.label))
        return
    if node.kind != "rule":
        return
    env = _bindings(node.detail.get("bindings", ""))
    last: int | None = None
    bounds: list[str] = []
    lower: list[str] = []
    upper: list[str] = []

    def close() -> None:
        if last is not None:
            extra = list(bounds)
            if lower and upper:
                extra.append(f"within the window from {lower[0]} to {upper[0]}")
            else:
                extra += [f"{_DATE_OPS['>=']} {x}" for x in lower] + [f"{_DATE_OPS['<=']} {x}" for x in upper]
            extra = [e for e in dict.fromkeys(extra) if e not in phrases[last]]  # a record named again
            if extra:
                phrases[last] += ", " + " and ".join(extra)
        for gathered in (bounds, lower, upper):
            gathered.clear()

    for child in node.children:
        if child.kind in ("fact", "derived"):
            if _quiet(child):
                continue
            close()
            last = _add(phrases, words.text(child.label))
        elif child.kind == "comparison":
            _comparison(child, env, assigned, bounds, lower, upper, phrases, last is not None)
        elif child.kind == "absence":
            phrases.append(_absence(child, words))
        elif child.kind == "rule":
            # its phrases follow; the bounds after it hold the first dated record it brought in
            # (a `malignancy_record`), else still this rule's own (an agent's class adds none)
            before = len(phrases)
            _phrases(child, words, assigned, phrases)
            dated = [i for i in range(before, len(phrases)) if _ISO_WORDS.search(phrases[i])]
            if dated:
                close()
                last = dated[0]
    close()


def _comparison(
    node: Node,
    env: dict[str, str],
    assigned: dict[str, tuple[str, str]],
    bounds: list[str],
    lower: list[str],
    upper: list[str],
    phrases: list[str],
    after_fact: bool,
) -> None:
    left_expr, symbol, right_expr = _split(node.detail.get("expression", ""))
    op = _SYMBOL_OPS.get(symbol, "=")
    actual = node.detail.get("actual", "")
    right_value = node.detail.get("required", "").partition(" ")[2]
    if _is_date(actual) and _is_date(right_value):
        right = _date_term(right_expr, right_value, env, assigned)
        if left_expr in assigned:  # a computed date held to a bound: say which date it is
            phrases.append(f"{_date_term(left_expr, actual, env, assigned)} is {_DATE_OPS[op]} {right}")
        elif not after_fact:
            phrases.append(f"{_date(actual)} is {_DATE_OPS[op]} {right}")
        elif op in (">=", ">"):
            lower.append(right) if op == ">=" else bounds.append(f"after {right}")
        elif op in ("<=", "<"):
            upper.append(right) if op == "<=" else bounds.append(f"before {right}")
        else:
            bounds.append(f"{_DATE_OPS[op]} {right}")
        return
    bound = f"{_NUM_OPS[op]} {right_value}"
    if after_fact:
        bounds.append(bound)
    else:
        phrases.append(f"{actual} {bound}")


def _date_term(expr: str, value: str, env: dict[str, str], assigned: dict[str, tuple[str, str]]) -> str:
    """A date of the rule in words: a reference date by name, a computed one with its reckoning."""
    expr = expr.strip()
    if expr in _REFERENCE:
        return f"{_REFERENCE[expr]} ({_date(value)})"
    if expr in assigned:
        value, expr = assigned[expr][0] or value, assigned[expr][1]
    parts = re.fullmatch(r"(\w+) ([−+-]) (\w+(?: days?(?: \(about \d+ months\))?)?)", expr)
    if parts is None:
        return _date(value)
    base, sign, amount = parts.groups()
    days = env.get(amount, amount)
    days = days if "day" in days else f"{days} days"
    anchor = _REFERENCE.get(base) or _RECORD_VARS.get(base) or base.lower()
    return f"{_date(value)} ({days} {'after' if sign == '+' else 'before'} {anchor})"


def _absence(node: Node, words: Words) -> str:
    checked = node.detail.get("checked", "")
    predicate, _, rest = checked.partition("(")
    args = [a.strip() for a in rest.rstrip(")").split(",")][1:] if rest else []
    phrase = _ABSENT.get(predicate)
    if phrase is None:
        by_items = _BY_ITEMS.match(predicate)
        if predicate == "diagnosis_of_class" and args:
            phrase = f"no diagnosis of {_CLASSES.get(args[0], _unsnake(args[0]))}"
        elif by_items:
            phrase = "the classification criteria not met by their items"
        else:
            phrase = "nothing in the records that meets it"
    # a record that missed only by its dates is worth a clinician's eye ("26 Oct 2026 is before
    # 27 Oct 2026"); one of another class or kind is not, and stays in the formal proof
    records = [_record(c.label) for c in node.children if c.detail.get("patient_record") == "yes"]
    records = [words.text(r) for r in records if " the window" in r][:3]
    return phrase + (f" ({'; '.join(records)})" if records else "")


def _record(label: str) -> str:
    """An examined record in words: why it does not count, without the rule's algebra."""
    label = re.sub(r" \([A-Z]\w*(?: [≥≤<>=≠−+] [\w.]+)+\)$", "", label)
    label = re.sub(r"\b\d{4}-\d{2}-\d{2} is not ≥ (\d{4}-\d{2}-\d{2})", r"before the window from \1", label)
    label = re.sub(r"\b\d{4}-\d{2}-\d{2} is not ≤ (\d{4}-\d{2}-\d{2})", r"after the window, which ends \1", label)
    label = re.sub(r": [a-z_ 0-9]+\(.*\) does not hold$|: [a-z_0-9 ]+ holds$", "", label)
    return label


def _attestation(phrase: str, words: Words) -> str:
    found = re.match(r"^([a-z][a-z0-9_]*) = (\S+), attested(.*)$", phrase)
    if not found or found.group(1) not in words.attestations:
        return phrase
    item, value, rest = found.groups()
    return f"{words.attestations[item]}: {value.replace('_', ' ')}, attested{rest}"


def _event(match: re.Match[str]) -> str:
    """A record as a clinician notes it: "rituximab (recorded as 利妥昔单抗) on 3 Nov 2026"."""
    kind, what, start, to, end, ongoing = match.groups()
    head = "" if kind == "medication" else f"{kind.replace('_', ' ')}: "
    if to:
        return f"{head}{what} from {start} to {end}"
    if ongoing:
        return f"{head}{what} since {start}, ongoing"
    return f"{head}{what} on {start}"


def _quiet(node: Node) -> bool:
    return node.detail.get("relation") in {"ref_day", "agent_class", "condition_class", "patient", "assumption",
                                           "assumption_days"}  # fmt: skip


def _bindings(text: str) -> dict[str, str]:
    pairs = re.findall(r"(?:^|, )([A-Z_]\w*) = (.*?)(?=, [A-Z_]\w* = |$)", text)
    return dict(pairs)


def _split(expression: str) -> tuple[str, str, str]:
    found = re.match(r"^(.*?) ([≥≤<>=≠]) (.*)$", expression)
    return (found.group(1), found.group(2), found.group(3)) if found else (expression, "=", "")


def _is_date(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()))


def _date(text: str) -> str:
    return _dates(text.strip())


def _dates(text: str) -> str:
    def show(m: re.Match[str]) -> str:
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return m.group(0)
        return f"{day.day} {day:%b %Y}"

    return _ISO.sub(show, text)


def _unsnake(text: str) -> str:
    """Identifiers (agents, conditions, values) with spaces; an assumption id stays as typed."""

    def space(m: re.Match[str]) -> str:
        return m.group(0) if _KEPT_AFTER.search(text[: m.start()]) else m.group(0).replace("_", " ")

    return _SNAKE.sub(space, text)


def _lower(label: str) -> str:
    """A label inside a sentence: lowercased unless it starts with an abbreviation (ECOG, DLCO)."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label
