"""The Streamlit page, driven headless with AppTest: pick a patient, see verdict and proofs."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.support import ESCAPED_HOSTILE_TEXT as ESCAPED
from tests.support import ROOT, assert_shown_as_text, rendered

APP = str(ROOT / "app.py")


@pytest.fixture
def app() -> AppTest:
    """The patient page (the app opens on the chat)."""
    return AppTest.from_file(APP, default_timeout=60).run().switch_page("ui/patient.py").run()


def test_the_page_shows_the_first_demo_patient(app: AppTest) -> None:
    assert not app.exception
    assert app.title[0].value == "NCT06420154 eligibility"
    assert app.success[0].value.startswith("**P001: Eligible via sle**")
    table = app.dataframe[0].value
    assert list(table["criterion"])[:3] == ["GI1", "CONSENT", "COHORT"]
    assert table.set_index("criterion").loc["GI6.3", "status"] == "pass"


def test_picking_a_patient_shows_blockers_with_their_proof(app: AppTest) -> None:
    app.sidebar.selectbox(key="patient").set_value("P002").run()
    assert not app.exception
    assert app.error[0].value.startswith("**P002: Ineligible**")
    labels = [e.label for e in app.expander]
    assert labels[0].startswith("✗ GI6.3 — fail: Platelet count 49 ×10^9/L on 17 Nov 2026, below 50")
    charts = app.get("graphviz_chart")
    assert charts and "platelets 49" in charts[0].proto.spec


def test_switching_an_assumption_changes_the_answer(app: AppTest) -> None:
    app.sidebar.selectbox(key="patient").set_value("P007").run()
    assert app.warning[0].value.startswith("**P007: Needs data**")
    app.sidebar.number_input(key="a_lab_lookback_days").set_value(60).run()
    table = app.dataframe[0].value.set_index("criterion")
    assert table.loc["GI6.3", "status"] == "pass"  # the October count is inside a 60-day look-back
    assert app.session_state["assessment"]["assumptions"]["lab_lookback_days"] == 60


def test_a_myositis_patient_is_capped_until_iim_entry_is_set(app: AppTest) -> None:
    app.sidebar.selectbox(key="patient").set_value("P036").run()
    assert not app.exception
    assert app.warning[0].value.startswith("**P036: Needs data**")
    assert any("IIM-I1, this cohort's entry criterion, was lost from the record" in c.value for c in app.caption)
    table = app.dataframe[0].value.set_index("criterion")
    assert "SLE-I1" not in table.index and "DEF-APS-RR" not in table.index
    assert table.loc["IIM-I1", "status"] == "manual" and table.loc["DEF-RR", "status"] == "fail"
    app.sidebar.selectbox(key="a_iim_entry").set_value("probable").run()
    assert app.success[0].value.startswith("**P036: Eligible via iim**")
    assert app.dataframe[0].value.set_index("criterion").loc["IIM-I1", "status"] == "pass"


def test_the_grid_filters_and_the_report_downloads(app: AppTest) -> None:
    app.sidebar.selectbox(key="patient").set_value("P062").run()
    app.multiselect(key="status_filter").set_value(["fail"]).run()
    table = app.dataframe[0].value
    assert list(table["criterion"]) == ["GI6.3", "GE4", "GE4.2"] and set(table["status"]) == {"fail"}
    downloads = [d.proto.label for d in app.get("download_button")]
    assert downloads == ["Eligibility report (Markdown)", "Eligibility report (HTML)"]
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")  # the timeline


def test_an_uploaded_data_set_replaces_the_demo_for_this_session(app: AppTest, tmp_path: object) -> None:
    from kb.records.patients import DEMO_DATASET

    wanted = ("patients.csv", "observations.csv", "events.csv", "attestations.csv")
    files = []
    for name in wanted:
        lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines()
        keep = [lines[0]] + [line for line in lines[1:] if line.startswith(("P061,", "P062,"))]
        files.append((name, ("\n".join(keep) + "\n").encode(), "text/csv"))
    app.sidebar.file_uploader(key="upload").set_value(files).run()
    assert not app.exception
    assert app.sidebar.selectbox(key="patient").options == ["P061", "P062"]
    assert app.error[0].value.startswith("**P061: Ineligible**")


def test_a_fhir_bundle_or_a_wide_table_can_be_uploaded(app: AppTest) -> None:
    from kb.catalogue.vocabulary import load_vocabulary
    from kb.records.patients import DEMO_DATASET, load_dataset
    from tests.fhir_bundles import bundle_bytes

    demo = load_dataset(DEMO_DATASET)
    bundle = bundle_bytes([demo.patients["P061"], demo.patients["P023"]], load_vocabulary())
    app.sidebar.file_uploader(key="upload").set_value([("site.json", bundle, "application/json")]).run()
    assert not app.exception
    assert app.sidebar.selectbox(key="patient").options == ["P061", "P023"]
    assert app.error[0].value.startswith("**P061: Ineligible**")
    wide = b"patient_id,sex,platelets [10^9/L],result_date\nW1,female,120,2026-11-17\n"
    app.sidebar.file_uploader(key="upload").set_value([("export.csv", wide, "text/csv")]).run()
    assert not app.exception
    assert app.sidebar.selectbox(key="patient").options == ["W1"]


def test_an_uploaded_patient_id_and_drug_name_are_shown_as_text(app: AppTest) -> None:
    """Issue 16: an image beacon in an id or drug name fired in the verdict box, labels and sidebar."""
    from tests.support import HOSTILE_TEXT, hostile_upload

    app.sidebar.file_uploader(key="upload").set_value(hostile_upload()).run()
    assert not app.exception
    assert app.sidebar.selectbox(key="patient").options == [HOSTILE_TEXT]  # a selectbox option is plain text
    texts = rendered(app)
    assert_shown_as_text(texts)
    warning = app.sidebar.warning[0].value  # the rejected row, quoted
    # the value is quoted shortened (a long cell would flood the sidebar), escaped from its first character
    assert warning.startswith("1 problem(s) reading the upload") and f"'{ESCAPED[:22]}" in warning
    assert any(t.startswith(f"**{ESCAPED}: Needs data**") for t in texts)  # the verdict box
    assert any(t.startswith(f"? GE4.7 — unknown: '{ESCAPED}' (events.csv row") for t in texts)  # a label


def _demo_files(ids: tuple[str, ...]) -> dict[str, bytes]:
    from kb.records.patients import DEMO_DATASET

    files = {}
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines()
        keep = [lines[0]] + [line for line in lines[1:] if line.startswith(tuple(f"{i}," for i in ids))]
        files[name] = ("\n".join(keep) + "\n").encode()
    return files


def _colliding() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Two different uploads whose names and contents concatenate to the same bytes: the
    second has no events.csv, its text appended to attestations.csv instead."""
    first = _demo_files(("P004", "P061"))
    second = {n: c for n, c in first.items() if n != "events.csv"}
    second["attestations.csv"] = first["attestations.csv"] + b"events.csv" + first["events.csv"]
    return first, second


def test_two_uploads_that_concatenate_alike_get_different_keys() -> None:
    from ui.context import upload_key

    first, second = _colliding()

    def concatenated(files: dict[str, bytes]) -> bytes:  # the key before: no lengths, no separators
        return b"".join(n.encode() + c for n, c in sorted(files.items()))

    assert concatenated(first) == concatenated(second)
    assert upload_key(first) != upload_key(second)
    assert upload_key(first) == upload_key(dict(reversed(first.items())))  # the order of upload does not matter


def _upload(app: AppTest, files: dict[str, bytes]) -> AppTest:
    return app.sidebar.file_uploader(key="upload").set_value([(n, c, "text/csv") for n, c in files.items()]).run()


def test_the_cohort_page_screens_each_upload_not_a_cached_other() -> None:
    """Screening results are cached per upload: a second upload that the old key confused with
    the first shows its own verdicts (no diagnosis left, so nobody is eligible)."""
    first, second = _colliding()
    app = AppTest.from_file(APP, default_timeout=60).run().switch_page("ui/cohort.py").run()
    metrics = {m.label: m.value for m in _upload(app, first).metric}
    assert not app.exception and metrics["eligible"] == "1"
    metrics = {m.label: m.value for m in _upload(app, second).metric}
    assert not app.exception and metrics["eligible"] == "0"


def test_an_upload_is_parsed_once_not_on_every_rerun(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.context

    calls = []
    parse = ui.context.load_files

    def counting(files: dict[str, bytes], encoding: str | None = None) -> object:
        calls.append(sorted(files))
        return parse(files, encoding=encoding)

    monkeypatch.setattr(ui.context, "load_files", counting)
    _upload(app, _demo_files(("P061", "P062")))
    for pid in ("P062", "P061", "P062"):
        app.sidebar.selectbox(key="patient").set_value(pid).run()
    assert not app.exception and app.error[0].value.startswith("**P062: Ineligible**")
    assert len(calls) == 1


def test_an_upload_in_another_encoding_is_set_aside_until_declared(app: AppTest) -> None:
    """A GB18030 events.csv read as UTF-8 is set aside whole (the sidebar says where, the
    patient is at best needs_data); declared in the sidebar, it is read."""
    from kb.records.patients import DEMO_DATASET

    files = []
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines(keepends=True)
        text = "".join([lines[0], *(line for line in lines[1:] if line.startswith("P001,"))])
        if name == "events.csv":
            text += "P001,vaccination,麻腮风疫苗,,2026-11-20,,,,,\n"
        files.append((name, text.encode("gb18030"), "text/csv"))
    app.sidebar.file_uploader(key="upload").set_value(files).run()
    assert not app.exception
    assert "events.csv:7:18: the file is not UTF-8 text" in app.sidebar.error[0].value
    assert not app.success and app.warning[0].value.startswith("**P001: Needs data**")
    app.sidebar.selectbox(key="upload_encoding").set_value("GB18030 (Chinese)").run()
    assert not app.exception and not app.sidebar.error
    assert app.error[0].value.startswith("**P001: Ineligible**")


def _timeline(app: AppTest) -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    """The timeline chart's Vega-Lite spec and its bars' rows by label (the data sent to the browser)."""
    import json
    from datetime import date

    import pyarrow as pa

    chart = (app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart"))[0]
    spec = json.loads(chart.proto.spec)
    frames = {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets}
    bars = frames[spec["layer"][0]["data"]["name"]]
    rows = {
        str(r["what"]): {k: date.fromisoformat(str(v)[:10]) if k in ("from", "to") else v for k, v in r.items()}
        for r in bars.to_dict("records")
    }
    return spec, rows


def test_the_timeline_shows_single_day_events_and_draws_ongoing_ones_to_the_end(app: AppTest) -> None:
    """Issue 17: P011's rituximab dose and every lab result were bars of zero width (invisible);
    an exposure with no end date (P017's methylprednisolone) stopped at enrolment."""
    from datetime import date, timedelta

    app.sidebar.selectbox(key="patient").set_value("P011").run()
    assert not app.exception
    spec, rows = _timeline(app)
    dose = rows["medication: rituximab"]
    assert dose["from"] == date(2026, 11, 3) and dose["to"] == date(2026, 11, 4)  # one day wide
    assert rows["result: platelets"]["to"] - rows["result: platelets"]["from"] == timedelta(days=1)
    assert rows["transfusion: rbc_transfusion"]["to"] == date(2026, 11, 9)  # one transfusion, on one day
    assert rows["medication: filgrastim"]["to"] == date(2026, 11, 15)  # 12 to 14 November, the 14th included
    assert any(layer["mark"]["type"] in ("tick", "point") for layer in spec["layer"])  # a mark, however zoomed
    app.sidebar.selectbox(key="patient").set_value("P017").run()
    _, rows = _timeline(app)
    steroid = rows["medication: methylprednisolone (ongoing)"]
    assert steroid["to"] == date(2026, 11, 24) + timedelta(days=30)  # the end of the plotted range, not enrolment
    assert steroid["until"] == "ongoing"


def test_reset_what_ifs_keeps_the_other_turns_of_the_chat() -> None:
    """Issue 17: "Reset what-ifs" emptied the whole chat; the check asked before it stays."""
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.chat_input[0].set_value("is P002 eligible?").run()
    app.chat_input[0].set_value("what if P002's platelets were 80?").run()
    app.chat_input[0].set_value("which criteria block P061?").run()
    assert [t.kind for t in app.session_state["chat"]] == ["check", "whatif", "blockers"]
    app.sidebar.button(key="reset").click().run()
    assert not app.exception
    assert [t.kind for t in app.session_state["chat"]] == ["check", "blockers"]
    said = [m.markdown[0].value for m in app.chat_message if m.name == "user"]
    assert said == ["is P002 eligible?", "which criteria block P061?"]


def test_stories_uploaded_alone_are_an_error_not_empty_patients(app: AppTest) -> None:
    """Issue 17: a stories.csv uploaded alone became 78 patients without any data."""
    from kb.records.patients import DEMO_DATASET

    stories = (DEMO_DATASET / "stories.csv").read_bytes()
    app.sidebar.file_uploader(key="upload").set_value([("stories.csv", stories, "text/csv")]).run()
    assert not app.exception
    assert "stories.csv needs patients.csv beside it" in app.sidebar.error[0].value
    assert app.sidebar.selectbox(key="patient").label == "Demo patient"  # the demo stays
    assert app.success[0].value.startswith("**P001: Eligible via sle**")


def test_the_assumptions_are_grouped_under_plain_labels_and_collapsed_at_their_defaults(app: AppTest) -> None:
    """Issue 17: 31 raw ids (lab_lookback_days …) filled the sidebar; now they sit in groups,
    collapsed while at their defaults, under plain labels, the id in the help text."""
    from kb.catalogue.assumptions import GROUPS, load_assumptions

    registry = load_assumptions()
    assert {a.group for a in registry.values()} <= set(GROUPS)  # a typo would put one apart
    groups = {e.label: e for e in app.sidebar.expander}
    assert list(groups)[:3] == ["Dates and windows (2)", "Laboratory results (5)", "Medications and washouts (7)"]
    assert "Antiphospholipid syndrome (6)" in groups and "Systemic sclerosis (3)" in groups
    assert sum(int(label.rsplit("(", 1)[1].rstrip(")")) for label in groups) == len(registry)
    assert not any(e.proto.expanded for e in groups.values())  # all at their defaults: collapsed
    assert any(c.value == f"Assumptions: all {len(registry)} at their defaults" for c in app.sidebar.caption)
    widgets = [*app.sidebar.number_input, *app.sidebar.selectbox]
    labels = {w.key: w.label for w in widgets if w.key and w.key.startswith("a_")}
    assert len(labels) == len(registry) and not set(labels.values()) & set(registry)  # no raw id as a label
    lookback = app.sidebar.number_input(key="a_lab_lookback_days")
    assert lookback.label == "Lab results valid for (days before enrolment)" and "lab_lookback_days" in lookback.help
    lookback.set_value(60).run()
    said = f"Assumptions: 1 of {len(registry)} changed: lab_lookback_days = 60"
    assert any(c.value == said for c in app.sidebar.caption)
    changed = [e for e in app.sidebar.expander if e.proto.expanded]
    assert [e.label for e in changed] == ["Laboratory results (5) · 1 changed"]
