"""The `kb` command: documented output shapes and exit codes, and no stack traces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kb.cli import main
from kb.errors import KbError
from kb.language.engine import EngineError
from kb.records.patients import Dataset
from tests.support import ROOT, demo_files, set_value


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_json_follows_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "P002", "--json")
    answer = json.loads(out)
    assert code == 0
    assert answer["patient"] == "P002" and answer["verdict"] == "ineligible"
    assert answer["cohorts"] == [
        {
            "cohort": "pss",
            "verdict": "ineligible",
            "blocking": ["GI6.3", "GI8", "PSS-I1", "X-E1", "X-E2", "X-E3"],
            "unknown": [],
            "note": "",
        }
    ]
    gi63 = next(c for c in answer["criteria"] if c["id"] == "GI6.3")
    assert gi63 == {
        "id": "GI6.3",
        "kind": "inclusion",
        "cohort": "general",
        "status": "fail",
        "reason": None,
        "message": "Platelet count 49 ×10^9/L on 17 Nov 2026, below 50",  # the plain sentence (issue 17)
        "missing": [],
    }
    assert answer["reference_dates"] == {
        "screening": "2026-11-17",
        "enrolment": "2026-11-24",
        "apheresis": "2026-11-24",
    }


def test_global_options_move_dates_and_switch_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--as-of", "2026-12-20", "--assume", "lab_lookback_days=14", "check", "P001", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["reference_dates"]["enrolment"] == "2026-12-20"
    assert answer["assumptions"]["lab_lookback_days"] == 14
    gi63 = next(c for c in answer["criteria"] if c["id"] == "GI6.3")
    assert (gi63["status"], gi63["reason"]) == ("unknown", "stale")


def test_check_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "P001")
    assert code == 0 and out.startswith("P001: ELIGIBLE (via sle)")


def test_why_shows_the_trees_of_blockers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "why", "P011")
    assert code == 0
    assert [line.split(" ")[0] for line in out.splitlines() if line and not line.startswith(" ")] == [
        "GI6",
        "GI6.2",
        "GE4.3",
    ]
    code, out, _ = run(capsys, "why", "P001", "GE4.2", "--format", "dot")
    assert code == 0 and out.startswith('digraph "P001 GE4.2"')
    code, out, _ = run(capsys, "why", "P001", "GE4.2", "--json")
    assert json.loads(out)["trees"][0]["tree"]["kind"] == "criterion"


def test_patients_and_criteria(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "patients", "--json")
    rows = json.loads(out)["patients"]
    assert code == 0 and rows[0] == {
        "patient": "P001",
        "sex": "female",
        "age": 50,
        "cohorts": ["sle"],
        "dataset": "demo",
        "story": rows[0]["story"],
    }
    code, out, _ = run(capsys, "criteria", "GE4.2")
    assert code == 0 and "record text: 2. Inject live vaccines within 4 weeks before enrollment;" in out
    assert "live_vaccine_in_window(P, Agent, Day) :- window_start(P, ge4_2, From)" in out
    assert "window_start(P, ge4_2, From) :- ref_day(P, enrolment, Enrolment), From = Enrolment - 28." in out
    code, out, _ = run(capsys, "criteria", "--json")
    assert [c["id"] for c in json.loads(out)][:3] == ["GI1", "CONSENT", "COHORT"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "P3"], "kb: no patient P3; did you mean P003?"),
        (["--assume", "lab_lookback=3", "check", "P001"], "kb: unknown assumption 'lab_lookback'"),
        (["--as-of", "tomorrow", "check", "P001"], "'tomorrow' is not a date"),
        (["why", "P001", "GE99"], "kb: no criterion GE99"),
        (["--input-format", "fhir", "patients"], "this looks like the CSV file set"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _out, err = run(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_rejected_rows_are_reported_with_the_answer(
    capsys: pytest.CaptureFixture[str], write_dataset: Callable[..., Path]
) -> None:
    files = demo_files("P001")
    set_value(files["observations"], "platelets", "-5")
    folder = write_dataset(**files)
    code, out, err = run(capsys, "--facts", str(folder), "check", "P001", "--json")
    assert code == 0
    assert "1 problem(s) reading this patient's files" in err
    answer = json.loads(out)
    assert (
        answer["rejected_rows"] and "platelets -5 ×10^9/L is outside the plausible range" in answer["rejected_rows"][0]
    )
    gi63 = next(c for c in answer["criteria"] if c["id"] == "GI6.3")
    assert gi63["status"] == "unknown" and gi63["missing"] == ["platelets"]


def test_lint_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "lint")
    assert code == 0 and out.strip().endswith("no problems")
    bad = tmp_path / "bad.dl"
    bad.write_text(".decl x(P: patient, T: truth)\nx(P, yes) :- obs_num(P, platelet, V, _), V >= 50.\n")
    code, out, _ = run(capsys, "lint", str(bad))
    assert code == 1 and f"{bad}:2:25: unknown item 'platelet' in obs_num (did you mean 'platelets'?)" in out


@pytest.mark.parametrize("command", ["patients", "check", "why", "criteria", "lint"])
def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert main([command, "--help"]) == 0
    assert "example:" in capsys.readouterr().out


def test_python_dash_m_kb_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kb", "check", "P005"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith("P005: ELIGIBLE")


@pytest.mark.parametrize(
    ("question", "shown"),
    [
        ("why is P11 not eligible?", ["understood: blockers · P011", "GI6 fail", "GE4.3 fail"]),
        ("what if p2's platelets were 80", ["understood: what-if · P002 · platelets=80", "GI6.3    fail → pass"]),
        ("what would make P-62 eligble", ["understood: repair · P062", "on or after 2026-12-19"]),
        ("until when is patient 4 eligible", ["understood: until · P004", "from 2026-11-25: GI2 pass → fail"]),
        ("what data are missing for P010", ["understood: missing · P010", "hbv_dna: no hbv_dna result"]),
        ("explain the steroid rule", ["understood: criterion · GE4.7", "deciding predicate: recent_steroid"]),
        ("who is eligible?", ["understood: screen", "17 of 78 eligible", "P061   ineligible  GI6.3"]),
        ("what if platelets were 80", ["Which patient do you mean?", "- what if platelets were 80 (P001)"]),
        ("tell me a joke", ["I did not understand “tell me a joke”", "- Is P001 eligible?"]),
    ],
)
def test_kb_ask_answers_in_free_wording(question: str, shown: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", question]) == 0
    out = capsys.readouterr().out
    for text in shown:
        assert text in out, (text, out[:400])


def test_kb_screen_agrees_with_kb_check_for_every_patient(
    capsys: pytest.CaptureFixture[str], demo_assessments: dict[str, object]
) -> None:
    assert main(["screen", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    rows = {r["patient"]: r for r in shown["patients"]}
    assert len(rows) == len(demo_assessments)  # one row per input patient
    for pid, assessment in demo_assessments.items():
        assert rows[pid]["verdict"] == assessment.verdict  # type: ignore[attr-defined]
        assert rows[pid]["blocking"] == " ".join(r.id for r in assessment.blocking)  # type: ignore[attr-defined]
    assert shown["funnel"][0] == {"stage": "all patients", "patients": 78}


def test_kb_screen_says_its_last_stage_holds_eligible_and_needs_data_patients(
    capsys: pytest.CaptureFixture[str], demo_assessments: dict[str, object]
) -> None:
    verdicts = [a.verdict for a in demo_assessments.values()]  # type: ignore[attr-defined]
    assert main(["screen"]) == 0
    attrition = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("attrition: "))
    held = verdicts.count("eligible") + verdicts.count("needs_data")
    assert attrition.endswith(
        f"meeting their cohort's criteria {held} "
        f"({verdicts.count('eligible')} eligible, {verdicts.count('needs_data')} need data)"
    )


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json"])
def test_kb_screen_writes_its_report(suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"report{suffix}"
    assert main(["screen", "--out", str(out)]) == 0
    assert "kb: report written to" in capsys.readouterr().err
    if suffix == ".csv":
        lines = out.read_text(encoding="utf-8").splitlines()
        # the screening's columns, then one per counted criterion (kb/presentation/export.py, as the Cohort page)
        assert lines[0].startswith("patient,verdict,cohorts,blocking,unknown,earliest_date,left_at,reason,GI1,")
        assert len(lines) == 79
    elif suffix == ".xlsx":
        import pandas as pd

        assert len(pd.read_excel(out, sheet_name="patients")) == 78
    else:
        assert len(json.loads(out.read_text(encoding="utf-8"))["patients"]) == 78


def test_kb_screen_dates_when_waiting_is_all_it_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", "--dates"]) == 0
    out = capsys.readouterr().out
    assert "P059   ineligible  GE4.2  (eligible from 2026-12-19)" in out
    assert "P063   ineligible  GI2  (eligible from 2027-01-15)" in out
    assert main(["screen", "--out", "report.txt"]) == 2
    assert "written as .csv, .xlsx, .json or .parquet" in capsys.readouterr().err


def test_kb_screen_reads_a_fhir_bundle_like_kb_check(
    tmp_path: Path, demo: Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    from kb.catalogue.vocabulary import load_vocabulary
    from tests.fhir_bundles import bundle_bytes

    patients = [demo.patients[pid] for pid in ("P001", "P013", "P061", "P064")]
    bundle = tmp_path / "site.json"
    bundle.write_bytes(bundle_bytes(patients, load_vocabulary()))
    assert main(["--facts", str(bundle), "--input-format", "fhir", "screen", "--json"]) == 0
    rows = {r["patient"]: r for r in json.loads(capsys.readouterr().out)["patients"]}
    assert list(rows) == ["P001", "P013", "P061", "P064"]
    for pid, row in rows.items():
        assert main(["--facts", str(bundle), "check", pid, "--json"]) == 0
        checked = json.loads(capsys.readouterr().out)
        assert row["verdict"] == checked["verdict"], pid
        blocking = {i for c in checked["cohorts"] for i in c["blocking"]}
        if not checked["cohorts"]:
            blocking = {c["id"] for c in checked["criteria"] if c["status"] == "fail" and c["kind"] != "definition"}
        assert set(row["blocking"].split()) == blocking, pid


def test_kb_screen_refuses_a_file_of_another_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wide = tmp_path / "export.csv"
    wide.write_text("patient_id,platelets\nA,120\n", encoding="utf-8")
    assert main(["--facts", str(wide), "--input-format", "fhir", "screen"]) == 2
    err = capsys.readouterr().err
    assert "this looks like a wide table" in err and "expected a FHIR R4 bundle" in err
    assert "Traceback" not in err


def test_kb_screen_with_the_reference_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main(["screen", "--json", "--engine", "pydatalog"]) == 0
    assert json.loads(capsys.readouterr().out) == fast


def _engine_fails(*args: object, **kwargs: object) -> object:
    raise EngineError("pyDatalog failed: a test double")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "0001-01-01", "check", "P001"], "enrolment date 0001-01-01 is outside the dates accepted"),
        (["--as-of", "9999-12-31", "why", "P001", "GE4.2"], "outside the dates accepted (1900-01-01 to 2200-12-31)"),
        (["whatif", "P001", "platelets=NaN"], "'NaN' is not a number"),
        (["whatif", "P001", "weight_kg=sNaN"], "'sNaN' is not a weight in kg"),
        (["whatif", "P001", "creatinine=0"], "creatinine 0 µmol/L is outside the plausible range 10-3000 µmol/L"),
        (["whatif", "P001", "enrolment=9999-12-31"], "outside the dates accepted"),
        (["--facts", "{tmp}/set", "screen", "--out", "{tmp}/no/such/folder/x.csv"], "No such file or directory"),
        (["check", "P001"], "kb: the rule engine failed: pyDatalog failed: a test double"),
    ],
)
def test_every_error_exits_2_never_a_traceback(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    write_dataset: Callable[..., Path],
    args: list[str],
    message: str,
) -> None:
    """Issue 16.2: an --as-of or what-if date near year 1 or 9999 (OverflowError), a NaN in a
    what-if (InvalidOperation), an unwritable --out (FileNotFoundError) raised with exit 1;
    an engine failure is a KbError now and keeps its own message. Exit 1 is left for lint,
    coverage and mutation failures (test_lint_exit_codes)."""
    folder = write_dataset(**demo_files("P001"))
    if "rule engine" in message:
        monkeypatch.setattr("kb.cli.assess", _engine_fails)
    code, _out, err = run(capsys, *(a.replace("{tmp}/set", str(folder)).replace("{tmp}", str(folder)) for a in args))
    assert code == 2
    assert message in err and "Traceback" not in err


def test_an_engine_error_is_a_kb_error() -> None:
    assert issubclass(EngineError, KbError)


def test_kb_ask_refuses_a_question_longer_than_the_chat_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """The chat's length limit holds in `kb ask` too: exit 2 and the limit named, not a slow answer."""
    from kb.presentation.questions import MAX_QUESTION_CHARS

    code, out, err = run(capsys, "ask", "why " * (MAX_QUESTION_CHARS // 4) + "is P001 not eligible")
    assert (code, out) == (2, "")
    assert err.startswith(f"kb: the question is {MAX_QUESTION_CHARS + 20:,} characters long; at most 2,000")


HOSTILE_IDS = ('=HYPERLINK("http://x","y")', "@SUM(1)", "-2+3", "+1")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_kb_screen_writes_ids_that_look_like_formulas_as_text(
    suffix: str, tmp_path: Path, write_dataset: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """OWASP CSV injection: a cell starting with = + - @ gets a quote, and no workbook cell is a formula."""
    folder = write_dataset(patients=[{"patient_id": pid, "sex": "F"} for pid in HOSTILE_IDS])
    out = tmp_path / f"report{suffix}"
    assert main(["--facts", str(folder), "screen", "--out", str(out)]) == 0
    if suffix == ".csv":
        import csv

        with out.open(encoding="utf-8", newline="") as fh:
            shown = {row["patient"] for row in csv.DictReader(fh)}
        assert shown == {"'" + pid for pid in HOSTILE_IDS}
    else:
        import openpyxl

        sheet = openpyxl.load_workbook(out)["patients"]
        cells = [row[0] for row in sheet.iter_rows(min_row=2)]
        assert {c.value for c in cells} == {"'" + pid for pid in HOSTILE_IDS}
        assert {c.data_type for c in cells} == {"s"}  # text, never "f" (a formula)
        funnel = openpyxl.load_workbook(out)["funnel"]
        assert [c.data_type for c in funnel["B"][1:]] == ["n"] * (funnel.max_row - 1)  # counts stay numbers


def _p001_files(folder: Path, events_tail: bytes = b"", encoding: str = "utf-8") -> Path:
    """P001 (eligible) as a file set, with rows added to events.csv (already encoded)."""
    from kb.records.patients import DEMO_DATASET

    folder.mkdir()
    for name in ("patients.csv", "observations.csv", "events.csv", "attestations.csv"):
        lines = (DEMO_DATASET / name).read_text(encoding="utf-8").splitlines(keepends=True)
        text = "".join([lines[0], *(line for line in lines[1:] if line.startswith("P001,"))])
        (folder / name).write_bytes(text.encode(encoding) + (events_tail if name == "events.csv" else b""))
    return folder


#: After 8 KB (past the first chunk a text file is decoded in): a Latin-1 note, then a live
#: vaccine a week before enrolment. Read up to the bad chunk, P001 looked eligible.
LATIN1_TAIL = (
    ("P001,medication,hydroxychloroquine,,2020-01-01,,,,," + "x" * 9000 + "\n").encode()
    + "P001,medication,hydroxychloroquine,,2020-01-01,,,,,café\n".encode("latin-1")
    + b"P001,vaccination,MMR,,2026-11-20,,,,,\n"
)


def test_a_partly_unreadable_file_is_never_eligible_and_every_answer_says_why(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = str(_p001_files(tmp_path / "set", LATIN1_TAIL))
    where = "events.csv:8:55: the file is not UTF-8 text: byte 0xe9 cannot be read"
    code, out, err = run(capsys, "--facts", folder, "check", "P001", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["verdict"] == "needs_data"
    assert answer["rejected_rows"] == [] and answer["file_problems"][0].startswith(where)
    statuses = {c["id"]: (c["status"], c["reason"]) for c in answer["criteria"]}
    assert statuses["COHORT"] == statuses["GE4.2"] == ("unknown", "unreadable_source")
    assert "may concern every patient" in err and where in err
    code, out, err = run(capsys, "--facts", folder, "check", "P001")
    assert code == 0 and out.startswith("P001: NEEDS_DATA") and where in err
    code, out, err = run(capsys, "--facts", folder, "why", "P001", "--json")
    assert code == 0 and json.loads(out)["file_problems"][0].startswith(where) and where in err
    code, out, err = run(capsys, "--facts", folder, "patients", "--json")
    assert code == 0 and json.loads(out)["file_problems"][0].startswith(where) and where in err
    code, out, err = run(capsys, "--facts", folder, "screen", "--json")
    answer = json.loads(out)
    assert code == 0 and [r["verdict"] for r in answer["patients"]] == ["needs_data"]
    assert answer["file_problems"][0].startswith(where) and where in err


def test_encoding_declares_a_gb18030_file_set(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tail = "P001,vaccination,麻腮风疫苗,,2026-11-20,,,,,\n".encode("gb18030")
    folder = str(_p001_files(tmp_path / "set", tail, encoding="gb18030"))
    code, out, err = run(capsys, "--facts", folder, "--encoding", "gb18030", "check", "P001", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["verdict"] == "ineligible" and err == ""  # the live vaccine, read
    assert answer["cohorts"][0]["blocking"] == ["GE4.2"]
    code, out, err = run(capsys, "--facts", folder, "check", "P001", "--json")  # undeclared: set aside
    assert code == 0 and json.loads(out)["verdict"] == "needs_data" and "events.csv:7:18:" in err
    code, _out, err = run(capsys, "--facts", folder, "--encoding", "klingon", "check", "P001")
    assert code == 2 and "kb: unknown encoding 'klingon'" in err and "Traceback" not in err


def test_a_json_of_an_unknown_resource_type_exits_2_located(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundle = tmp_path / "x.json"
    bundle.write_text('{"resourceType": "Foo", "id": "a"}', encoding="utf-8")
    code, out, err = run(capsys, "--facts", str(bundle), "patients")
    assert code == 2 and out == ""
    assert "x.json (Foo/a):1: unknown resourceType 'Foo'" in err and "Traceback" not in err
