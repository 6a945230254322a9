"""Time the facts of a screening built per patient against built set-at-a-time (issue 20).

Per patient: `chunk_facts` (build_facts for each patient, FactTables), then the tables
loaded into DuckDB. Set-at-a-time: `build_facts_sql` over the record tables, which leaves the
same tables in DuckDB (tests/test_set_facts.py proves them equal). `load_records` (the
records into their long tables) is timed apart: a CSV reader in SQL fills them instead.
One process, the synthetic cohort of seed 3, patients made before any clock starts; the
formulas' caches (CKD-EPI, instrument ranges) emptied before the set-at-a-time build, so
that it does not reuse what the per-patient build remembered.

    python -m benchmarks.set_facts --sizes 2000 10000 [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import duckdb

from kb.catalogue.assumptions import resolve_assumptions
from kb.catalogue.derived import _ckd_epi_written
from kb.catalogue.knowledge import load_knowledge
from kb.factbase.measures import _ranges
from kb.factbase.set_facts import build_facts_sql
from kb.quality.synthetic import SyntheticCohort
from kb.records.patients import load_dataset
from kb.records.tables import load_records
from kb.screening.batch import chunk_facts, sql_plan

__all__ = ["main"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--threads", type=int, default=1, help="DuckDB threads of the set-at-a-time build")
    args = parser.parse_args()
    kb = load_knowledge()
    plan = sql_plan(kb)
    assert plan is not None
    assumptions = resolve_assumptions()
    cohort = SyntheticCohort.from_vignettes(load_dataset(), kb, assumptions, seed=3)
    for size in args.sizes:
        patients = list(cohort.sequence(size))
        chunk_facts(patients[:50], kb, assumptions, None, None)  # caches and imports warm
        start = time.perf_counter()
        facts = chunk_facts(patients, kb, assumptions, None, None)
        built = time.perf_counter()
        assert facts.tables is not None
        con_a = duckdb.connect(config={"threads": 1})
        facts.tables.load(con_a)
        per_patient, loaded = built - start, time.perf_counter() - built
        con_b = duckdb.connect(config={"threads": args.threads})
        start = time.perf_counter()
        load_records(con_b, patients)
        records = time.perf_counter() - start
        _ranges.cache_clear()  # what the per-patient path remembered is not the set path's
        _ckd_epi_written.cache_clear()
        start = time.perf_counter()
        result = build_facts_sql(con_b, kb, assumptions, plan)
        set_time = time.perf_counter() - start
        print(
            f"{size} patients: per patient {per_patient:.2f} s (+ {loaded:.2f} s into DuckDB); "
            f"set-at-a-time {set_time:.2f} s (+ load_records {records:.2f} s); "
            f"ratio {per_patient / set_time:.1f}× ({(per_patient + loaded) / set_time:.1f}× with the load); "
            f"declined {len(result.declined)}"
        )


if __name__ == "__main__":
    main()
