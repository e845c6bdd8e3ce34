"""How much worker processes speed up a clinical cohort, and that they change no result.

Run ``python benchmarks/bench_clinical_parallel.py`` (``--quick`` for a smoke run).  It times
one colorectal clinical cohort (default 200 patients over 10 years, the whole clinical
course) with ``workers=1`` and then with each larger number of workers, checks that every
table equals the serial one, and prints a Markdown table; ``--json`` also writes the figures
to ``benchmarks/results/`` (git-ignored) with the machine they were measured on.

The first parallel run pays for starting the fork server (one interpreter that imports
numpy, pandas and the model, see :mod:`metastasis.backends`); the runs after it
only fork workers from that server.  Both are reported, because a command-line run pays the
first cost once per command and a long-lived process (the web server) pays it once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import metastasis
from metastasis.api import load_model
from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments

RESULTS_DIR = Path(__file__).resolve().parent / "results"

SEED = 1
"""Any fixed seed: figures are comparable between runs and machines."""


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "numpy": np.__version__,
        "metastasis": metastasis.__version__,
    }


def _timed(cancer: str, patients: int, years: float, workers: int) -> tuple[float, ClinicalCohort]:
    """Wall-clock seconds of one cohort (CPU time would miss the workers' share)."""
    model, clinical, treatments = load_model(cancer), load_clinical(), load_treatments()
    start = time.perf_counter()
    cohort = run_clinical_cohort(model, clinical, treatments, patients, SEED, years,
                                 workers=workers)
    return time.perf_counter() - start, cohort


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cancer", default="colorectal")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--workers", default="2", help="worker counts to time besides 1")
    parser.add_argument("--json", action="store_true",
                        help="also write the figures to benchmarks/results/")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.years = 12, 8.0

    _timed(args.cancer, 2, args.years, 1)  # imports and caches outside the timings
    serial_s, serial = _timed(args.cancer, args.patients, args.years, 1)
    rows: list[dict[str, Any]] = [{"workers": 1, "run": "in-process", "seconds": serial_s}]
    for workers in sorted({int(w) for w in args.workers.split(",")} - {1}):
        for run in ("first (starts the fork server)", "again"):
            seconds, cohort = _timed(args.cancer, args.patients, args.years, workers)
            pd.testing.assert_frame_equal(serial.patients, cohort.patients)
            rows.append({"workers": workers, "run": run, "seconds": seconds})
    machine = _machine()
    print(f"# Clinical cohort on worker processes: {args.patients:,} {args.cancer} patients "
          f"over {args.years:g} years, seed {SEED}\n")
    print(f"{machine['cpu_count']} CPU(s), Python {machine['python']}, metastasis "
          f"{machine['metastasis']}, 1-minute load average {machine['load_average_1min']}\n")
    print("| workers | run | seconds | speed-up | same table |")
    print("|---:|---|---:|---:|---|")
    for row in rows:
        print(f"| {row['workers']} | {row['run']} | {row['seconds']:.2f} | "
              f"{serial_s / row['seconds']:.2f}x | yes |")
    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"bench_clinical_parallel-{stamp}.json"
        path.write_text(json.dumps({
            "machine": machine, "cancer": args.cancer, "patients": args.patients,
            "years": args.years, "seed": SEED, "runs": rows,
        }, indent=1))
        print(f"\nWrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
