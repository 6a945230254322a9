"""What every page shares: the knowledge base, the data set, and the sidebar's choices."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import streamlit as st

from kb.assumptions import AssumptionSet, resolve_assumptions
from kb.errors import KbError
from kb.importers import load_files
from kb.knowledge import KnowledgeBase, load_knowledge
from kb.patients import DEMO_DATASET, Dataset, load_dataset

__all__ = ["ENCODINGS", "Context", "context", "demo_dataset", "knowledge", "sidebar"]

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
        return resolve_assumptions(list(self.overrides))


def _uploaded(dataset: Dataset) -> tuple[Dataset, str]:
    """The uploaded data set if there is one (kept in this session's memory only)."""
    files = st.sidebar.file_uploader(
        "Or upload a data set: the CSV files (patients.csv, observations.csv, events.csv, attestations.csv), "
        "an Excel workbook with those sheets, a wide table (one row per patient, CSV or Excel) or FHIR R4 "
        "bundles (.json); kept in this session's memory only",
        type=["csv", "xlsx", "json", "ndjson"],
        accept_multiple_files=True,
        key="upload",
    )
    label = st.sidebar.selectbox(
        "Encoding of uploaded CSV files",
        list(ENCODINGS),
        key="upload_encoding",
        help="CSV files that are not UTF-8 (e.g. exported by a Chinese Excel as GB18030) must say so: a file "
        "that does not decode is set aside as a whole, and its records count as unread for every patient.",
    )
    if not files:
        return dataset, "demo"
    encoding = ENCODINGS.get(str(label))
    contents = {f.name: f.getvalue() for f in files}
    key = hashlib.sha256(
        str(encoding).encode() + b"".join(n.encode() + c for n, c in sorted(contents.items()))
    ).hexdigest()[:16]
    try:
        loaded = load_files(contents, encoding=encoding)
    except KbError as exc:
        st.sidebar.error(str(exc))
        return dataset, "demo"
    whole = loaded.file_problems
    if whole:  # first, and apart: these may change every patient's answer
        shown = "; ".join(str(p) for p in whole[:5])
        st.sidebar.error(
            f"{len(whole)} problem(s) that may concern every patient (records that could not be read count as "
            f"unread, never as absent: at best needs_data): {shown}"
        )
    rows = [p for p in loaded.problems if p.patient_id is not None]
    if rows:
        shown = "; ".join(str(p) for p in rows[:5])
        st.sidebar.warning(f"{len(rows)} problem(s) reading the upload (the rest was read): {shown}")
    if not loaded.patients:
        st.sidebar.error("no patient could be read from the upload")
        return dataset, "demo"
    return loaded, key


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
    if st.sidebar.button("Reset what-ifs", key="reset"):
        st.session_state["chat"] = []
    st.sidebar.header("Assumptions")
    overrides = []
    for assumption in kb.assumptions.values():
        if assumption.kind == "choice":
            value = st.sidebar.selectbox(
                assumption.id,
                assumption.allowed,
                index=assumption.allowed.index(str(assumption.default)),
                help=f"{assumption.resolves}\n\n{assumption.reason}",
                key=f"a_{assumption.id}",
            )
        else:
            value = st.sidebar.number_input(
                assumption.id,
                min_value=assumption.minimum,
                max_value=assumption.maximum,
                value=int(assumption.default),
                step=1,
                key=f"a_{assumption.id}",
                help=f"{assumption.resolves}\n\n{assumption.reason}",
            )
        if str(value) != str(assumption.default):
            overrides.append(f"{assumption.id}={value}")
    chosen = as_of if isinstance(as_of, date) else None
    return Context(kb, dataset, str(patient_id), chosen, tuple(overrides), dataset_key)


def context() -> Context:
    """The context the entry script stored for this run."""
    found = st.session_state.get("context")
    assert isinstance(found, Context)
    return found
