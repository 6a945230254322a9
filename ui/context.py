"""What every page shares: the knowledge base, the data set, and the sidebar's choices."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import streamlit as st

from kb import DEMO_DATASET, Assumption, AssumptionSet, Dataset, KbError, KnowledgeBase, assume, load_knowledge
from kb.catalogue.assumptions import GROUPS
from kb.presentation.render import escape_markdown
from kb.records.importers import load_files
from kb.records.patients import load_dataset

__all__ = ["ENCODINGS", "Context", "context", "demo_dataset", "knowledge", "session_cached", "sidebar", "upload_key"]

T = TypeVar("T")

#: The encodings a user may declare for uploaded CSV files (label -> codec; None: UTF-8, with
#: or without BOM). A file that does not decode in it is set aside whole, never half read.
ENCODINGS: dict[str, str | None] = {
    "UTF-8 (default)": None,
    "GB18030 (Chinese)": "gb18030",
    "Windows-1252 (Western European)": "cp1252",
    "Latin-1 (ISO-8859-1)": "latin-1",
    "Shift JIS (Japanese)": "shift_jis",
}


@st.cache_resource
def knowledge() -> KnowledgeBase:
    return load_knowledge()


@st.cache_resource
def demo_dataset() -> Dataset:
    return load_dataset(DEMO_DATASET)


@dataclass(frozen=True)
class Context:
    kb: KnowledgeBase
    dataset: Dataset
    patient_id: str
    as_of: date | None
    overrides: tuple[str, ...]
    dataset_key: str = "demo"  # which data set (a cache key): "demo" or a digest of the upload

    @property
    def assumptions(self) -> AssumptionSet:
        return assume(list(self.overrides))


def upload_key(files: Mapping[str, bytes]) -> str:
    """A digest of an upload that two different uploads never share: each file's name and
    content enter with their lengths, so no split of the same bytes into other names or
    contents gives the same key (name + content concatenated did)."""
    digest = hashlib.sha256()
    for name, content in sorted(files.items()):
        raw = name.encode("utf-8")
        for part in (raw, content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return "upload:" + digest.hexdigest()


def session_cached(name: str, key: object, compute: Callable[[], T], keep: int = 4) -> T:
    """`compute()` once per `key` in this session (the last `keep` keys), never shared with
    another session: an upload's data and what is derived from it stay in the session that
    uploaded it."""
    store: dict[object, object] = st.session_state.setdefault(f"cache:{name}", {})
    if key not in store:
        while len(store) >= keep:
            store.pop(next(iter(store)))
        store[key] = compute()
    return store[key]  # type: ignore[return-value]


def _parse(contents: dict[str, bytes], encoding: str | None) -> Dataset | str:
    """The upload read once: its data set, or the error to show."""
    try:
        return load_files(contents, encoding=encoding)
    except KbError as exc:
        return str(exc)


def _uploaded(dataset: Dataset) -> tuple[Dataset, str]:
    """The uploaded data set if there is one (kept in this session's memory only), parsed
    once per upload: a rerun (every click) finds it by the upload's digest."""
    files = st.sidebar.file_uploader(
        "Or upload a data set: the CSV files (patients.csv, observations.csv, events.csv, attestations.csv), "
        "an Excel workbook with those sheets, a wide table (one row per patient, CSV or Excel) or FHIR R4 "
        "bundles (.json); kept in this session's memory only",
        type=["csv", "xlsx", "json", "ndjson"],
        accept_multiple_files=True,
        key="upload",
    )
    if not files:
        return dataset, "demo"
    # asked once there is something to decode (the demo's sidebar starts with the patient)
    label = st.sidebar.selectbox(
        "Encoding of uploaded CSV files",
        list(ENCODINGS),
        key="upload_encoding",
        help="CSV files that are not UTF-8 (e.g. exported by a Chinese Excel as GB18030) must say so: a file "
        "that does not decode is set aside as a whole, and its records count as unread for every patient.",
    )
    encoding = ENCODINGS.get(str(label))
    contents = {f.name: f.getvalue() for f in files}
    key = upload_key(contents) + f":{encoding or 'utf-8'}"
    loaded = session_cached("upload", key, lambda: _parse(contents, encoding), keep=1)
    if isinstance(loaded, str):
        st.sidebar.error(escape_markdown(loaded))
        return dataset, "demo"
    whole = loaded.file_problems
    if whole:  # first, and apart: these may change every patient's answer
        shown = escape_markdown("; ".join(str(p) for p in whole[:5]))  # file text, shown as text
        st.sidebar.error(
            f"{len(whole)} problem(s) that may concern every patient (records that could not be read count as "
            f"unread, never as absent: at best needs_data): {shown}"
        )
    rows = [p for p in loaded.problems if p.patient_id is not None]
    if rows:
        shown = escape_markdown("; ".join(str(p) for p in rows[:5]))  # file text, shown as text
        st.sidebar.warning(f"{len(rows)} problem(s) reading the upload (the rest was read): {shown}")
    if not loaded.patients:
        st.sidebar.error("no patient could be read from the upload")
        return dataset, "demo"
    return loaded, key


def _reset_what_ifs() -> None:
    """A what-if lives only in its own chat turn (never in the stored facts), so resetting
    the what-ifs drops those turns and keeps every other one (it emptied the whole chat)."""
    turns = st.session_state.get("chat", [])
    st.session_state["chat"] = [t for t in turns if getattr(t, "kind", "") != "whatif"]


def _assumptions(kb: KnowledgeBase) -> list[str]:
    """The assumptions, grouped by topic under plain labels (the id, for `--assume`, in the
    help text), each group collapsed while all its readings are at their defaults: 31 raw
    ids filled the sidebar. Returns the `ID=VALUE` overrides in force."""
    registry = list(kb.assumptions.values())

    def current(assumption: Assumption) -> str:  # the widget's value before it is drawn
        return str(st.session_state.get(f"a_{assumption.id}", assumption.default))

    changed = [a for a in registry if current(a) != str(a.default)]
    st.sidebar.header("Assumptions")
    st.sidebar.caption(
        f"Assumptions: {len(changed)} of {len(registry)} changed: "
        + ", ".join(f"{a.id} = {current(a)}" for a in changed)
        if changed
        else f"Assumptions: all {len(registry)} at their defaults"
    )
    order = {g: n for n, g in enumerate(GROUPS)}
    groups: dict[str, list[Assumption]] = {}
    for assumption in sorted(registry, key=lambda a: order.get(a.group, len(order))):
        groups.setdefault(assumption.group, []).append(assumption)
    overrides = []
    for group, members in groups.items():
        moved = sum(1 for a in members if a in changed)
        label = f"{group} ({len(members)})" + (f" · {moved} changed" if moved else "")
        with st.sidebar.expander(label, expanded=bool(moved)):
            for assumption in members:
                value = _assumption_input(assumption)
                if str(value) != str(assumption.default):
                    overrides.append(f"{assumption.id}={value}")
    return overrides


def _assumption_input(assumption: Assumption) -> object:
    """One assumption's widget, under its plain label; the help says its id and why."""
    help_text = f"`{assumption.id}` (default {assumption.default})\n\n{assumption.resolves}\n\n{assumption.reason}"
    label = assumption.label or assumption.id
    if assumption.kind == "choice":
        return st.selectbox(
            label,
            assumption.allowed,
            index=assumption.allowed.index(str(assumption.default)),
            help=help_text,
            key=f"a_{assumption.id}",
        )
    return st.number_input(
        label,
        min_value=assumption.minimum,
        max_value=assumption.maximum,
        value=int(assumption.default),
        step=1,
        key=f"a_{assumption.id}",
        help=help_text,
    )


def sidebar(kb: KnowledgeBase, dataset: Dataset) -> Context:
    st.sidebar.header("Patient")
    dataset, dataset_key = _uploaded(dataset)
    ids = list(dataset.patients)
    patient_id = st.sidebar.selectbox(
        "Patient" if dataset_key != "demo" else "Demo patient",
        ids,
        key="patient",
        format_func=lambda pid: f"{pid} — {dataset.stories[pid][:60]}" if pid in dataset.stories else pid,
    )
    use_date = st.sidebar.checkbox("Evaluate as of another enrolment date", key="use_as_of")
    as_of = st.sidebar.date_input("Enrolment date", value=date(2026, 11, 24), key="as_of") if use_date else None
    if st.sidebar.button("Reset what-ifs", key="reset", help="Removes the what-if turns from the chat; the rest stays"):
        _reset_what_ifs()
    overrides = _assumptions(kb)
    chosen = as_of if isinstance(as_of, date) else None
    return Context(kb, dataset, str(patient_id), chosen, tuple(overrides), dataset_key)


def context() -> Context:
    """The context the entry script stored for this run."""
    found = st.session_state.get("context")
    assert isinstance(found, Context)
    return found
