"""Reading a file set set-at-a-time (kb/records/csv_sql.py) against the Python loader.

Writes the demo's vignettes copied under new ids (as benchmarks/screen.py does) for COUNT
patients, then, in one process and after a warm-up on the demo (the unit registry, DuckDB and
Arrow loaded once), times `read_records_sql` and `load_dataset` + `load_records` (best of
--runs each, wall and CPU seconds) and prints how many patients were declined, and that the
tables are the same.

    python benchmarks/csv_sql.py [--count 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.screen import _write_files
from kb.catalogue.vocabulary import load_vocabulary
from kb.records.csv_sql import read_records_sql
from kb.records.patients import DEMO_DATASET, load_dataset
from kb.records.tables import RECORD_TABLES, load_records

TODAY = date(2026, 12, 1)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr) for name in RECORD_TABLES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    vocab = load_vocabulary()
    for folder in (DEMO_DATASET,):  # warm-up, and the demo's own figures
        read = read_records_sql(duckdb.connect(), folder, vocab, TODAY)
        load_records(duckdb.connect(), load_dataset(folder, vocab, TODAY).patients.values())
        print(f"demo: {len(read.accepted)} accepted, {len(read.declined)} declined, whole={read.whole}")
    with tempfile.TemporaryDirectory(prefix="kb-csvsql-") as tmp:
        size = _write_files(Path(tmp), args.count)
        timings: dict[str, list[tuple[float, float]]] = {"sql": [], "python": []}
        sql_con = py_con = duckdb.connect()
        for _ in range(args.runs):
            sql_con = duckdb.connect()
            wall, cpu = time.perf_counter(), time.process_time()
            read = read_records_sql(sql_con, tmp, vocab, TODAY)
            timings["sql"].append((time.perf_counter() - wall, time.process_time() - cpu))
            py_con = duckdb.connect()
            wall, cpu = time.perf_counter(), time.process_time()
            load_records(py_con, load_dataset(tmp, vocab, TODAY).patients.values())
            timings["python"].append((time.perf_counter() - wall, time.process_time() - cpu))
        same = _tables(sql_con) == _tables(py_con)
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in timings.items()}
    print(
        f"{args.count:,} patients ({size / 2**20:.0f} MB): {len(read.accepted):,} accepted, "
        f"{len(read.declined)} declined, whole={read.whole}; tables identical: {same}"
    )
    for label, (wall, cpu) in best.items():
        print(f"  {label:7} {wall:6.2f} s wall {cpu:6.2f} s CPU (best of {args.runs})")
    print(f"  speed-up {best['python'][0] / best['sql'][0]:.1f}x wall, {best['python'][1] / best['sql'][1]:.1f}x CPU")


if __name__ == "__main__":
    main()
