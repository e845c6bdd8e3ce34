"""Population scale: cohorts written to a dataset on worker processes, every cancer type,
cost against the horizon, and the engine's time against the time of its random draws alone.

Run ``python benchmarks/bench_scale.py`` (``--quick`` for a smoke run).  It prints Markdown
tables; ``--json`` also writes the figures to ``benchmarks/results/`` (git-ignored).

Measured:

1. the headline: colorectal patients over 10 years on ``--workers`` processes, written to a
   Parquet dataset a part at a time (no lesion rows), untreated and with the whole clinical
   course (default plan, no screening); seconds, patients per second and the peak memory of
   the whole process tree (this process, the fork server and the workers, sampled);
2. every cancer type, untreated and with the clinical course;
3. cost per patient against the horizon (5, 10, 20, 40 years), untreated;
4. the ratio of the engine's time to the time of drawing the same random numbers alone: the
   patients are run with a generator that records every draw (method and arguments), and
   the draws are then replayed on a fresh generator and timed, call by call from Python
   (as the reference engine draws) and variate by variate in one compiled loop (the floor
   of any engine that draws the same numbers).

Nothing here is asserted: a test runs ``--quick`` only to check that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
import psutil
from numpy.typing import NDArray

import metastasis
from metastasis.api import DAYS_PER_YEAR, load_model
from metastasis.backends import DEFAULT_CHUNK_PATIENTS
from metastasis.clinical.course import Arm
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.runs import ClinicalSetting, run_dataset

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEED = 1
TARGET_SECONDS = 60.0
"""The issue's target for 1,000,000 colorectal patients x 10 years with the clinical course
on 2 workers (a 2-core machine)."""
TARGET_PATIENTS = 1_000_000
SAMPLE_SECONDS = 0.2
"""How often the memory of the process tree is sampled: often enough to catch a part in
flight (parts take seconds), rarely enough to cost nothing."""


class PeakMemory:
    """Peak resident memory of this process and all its descendants, sampled in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


CHUNKS_PER_WORKER = 4
"""A small run is cut into at least this many chunks per worker: one 500-patient chunk of a
500-patient run kept one of two workers idle, and its CPU per patient (wall time times
workers) read double."""


def _dataset_run(cancer: str, patients: int, years: float, workers: int, clinical: bool,
                 chunk: int) -> dict[str, Any]:
    chunk = max(1, min(chunk, -(-patients // (CHUNKS_PER_WORKER * workers))))
    model = load_model(cancer)
    setting = ClinicalSetting(load_clinical(), load_treatments(), Arm()) if clinical else None
    with tempfile.TemporaryDirectory() as folder, PeakMemory() as memory:
        start = time.perf_counter()
        run_dataset(Path(folder) / "d", model, patients, SEED, years, clinical=setting,
                    chunk_size=chunk, workers=workers)
        seconds = time.perf_counter() - start
    return {"cancer": cancer, "patients": patients, "years": years, "workers": workers,
            "clinical": clinical, "seconds": seconds, "patients_per_second": patients / seconds,
            "ms_per_patient_cpu": 1e3 * seconds * workers / patients,
            "peak_memory_mb": memory.peak / 2**20}


class RecordingGenerator:
    """A generator that records every draw, so the same draws can be replayed alone."""

    def __init__(self, inner: np.random.Generator, log: list[tuple[str, tuple, dict]]) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._inner, name)

        def record(*args: Any, **kwargs: Any) -> Any:
            self._log.append((name, args, kwargs))
            return method(*args, **kwargs)

        return record


@numba.njit(cache=True)
def _compiled_draws(rng: np.random.Generator, uniforms: int, exponential: NDArray[np.float64],
                    normals: NDArray[np.float64], poisson: NDArray[np.float64]) -> float:
    """Draw ``uniforms`` uniforms, one exponential per scale, one normal per (loc, scale)
    row and one Poisson per mean, in compiled code: what the draws alone would cost an
    engine with no overhead at all."""
    total = 0.0
    for _ in range(uniforms):
        total += rng.random()
    for scale in exponential:
        total += rng.exponential(scale)
    for k in range(normals.shape[0]):
        total += rng.normal(normals[k, 0], normals[k, 1])
    for mean in poisson:
        total += rng.poisson(mean)
    return total


def _variates(log: list[tuple[str, tuple, dict]]) -> tuple[int, NDArray[np.float64],
                                                           NDArray[np.float64],
                                                           NDArray[np.float64]]:
    """The variates one patient's recorded calls drew, one parameter set per variate."""
    uniforms, exponential, normals, poisson = 0, [], [], []
    for name, args, kwargs in log:
        params = dict(kwargs)
        size = params.pop("size", None)
        if name == "random":
            uniforms += int(np.prod(args[0] if args else (size or 1)))
        elif name in ("exponential", "standard_normal", "normal", "poisson"):
            names = {"exponential": ["scale"], "standard_normal": [], "normal": ["loc", "scale"],
                     "poisson": ["lam"]}[name]
            defaults = {"scale": 1.0, "loc": 0.0, "lam": 1.0}
            values = [args[i] if i < len(args) else params.get(key, defaults[key])
                      for i, key in enumerate(names)]
            if name == "standard_normal":
                size = args[0] if args else size
                values = [0.0, 1.0]
            shape = np.broadcast_shapes(*(np.shape(v) for v in values),
                                        () if size is None else np.atleast_1d(size))
            flat = [np.broadcast_to(v, shape).ravel().astype(float) for v in values]
            if name == "exponential":
                exponential.append(flat[0])
            elif name == "poisson":
                poisson.append(flat[0])
            else:
                normals.append(np.stack(flat, axis=1))
        else:
            raise ValueError(f"no compiled replay for Generator.{name}")
    return (uniforms, np.concatenate(exponential) if exponential else np.zeros(0),
            np.concatenate(normals) if normals else np.zeros((0, 2)),
            np.concatenate(poisson) if poisson else np.zeros(0))


def _draw_ratio(cancer: str, patients: int, years: float) -> dict[str, Any]:
    """The engine's time against the time of its random draws alone.

    The compiled engine draws inside numba, where a Python wrapper cannot see the draws; it
    draws exactly what the reference sampler draws (tests/test_compiled_engine.py), so the
    draws are recorded from the reference, and the compiled engine is timed on its own."""
    model = load_model(cancer)
    horizon = years * DAYS_PER_YEAR
    simulate_patient(model, patient_generator(SEED, 0), horizon)  # compiled and loaded
    logs: list[list[tuple[str, tuple, dict]]] = []
    for i in range(patients):
        log: list[tuple[str, tuple, dict]] = []
        rng: Any = RecordingGenerator(patient_generator(SEED, i), log)
        simulate_patient(model, rng, horizon, patient_index=i, root_seed=SEED, reference=True)
        logs.append(log)
    start = time.perf_counter()
    for i in range(patients):
        simulate_patient(model, patient_generator(SEED, i), horizon, patient_index=i,
                         root_seed=SEED)
    engine = time.perf_counter() - start
    start = time.perf_counter()
    for i, log in enumerate(logs):
        fresh = patient_generator(SEED, i)
        for name, args, kwargs in log:
            getattr(fresh, name)(*args, **kwargs)
    draws = time.perf_counter() - start
    calls = sum(len(log) for log in logs)
    variates = [_variates(log) for log in logs]
    _compiled_draws(patient_generator(SEED, 0), *variates[0])  # compiled first
    start = time.perf_counter()
    for i, drawn in enumerate(variates):
        _compiled_draws(patient_generator(SEED, i), *drawn)
    compiled = time.perf_counter() - start
    count = sum(u + e.size + n.shape[0] + p.size for u, e, n, p in variates)
    return {"patients": patients, "years": years, "engine_seconds": engine,
            "draw_seconds": draws, "ratio": engine / draws, "draw_calls": calls,
            "variates": count, "compiled_draw_seconds": compiled,
            "compiled_ratio": engine / compiled}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000,
                        help="untreated headline cohort (colorectal, 10 years)")
    parser.add_argument("--clinical-patients", type=int, default=10_000,
                        help="headline cohort with the clinical course")
    parser.add_argument("--type-patients", type=int, default=2_000,
                        help="untreated patients per cancer type")
    parser.add_argument("--type-clinical-patients", type=int, default=500)
    parser.add_argument("--years-patients", type=int, default=500)
    parser.add_argument("--ratio-patients", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_PATIENTS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.patients, args.clinical_patients, args.type_patients = 40, 8, 6
        args.type_clinical_patients, args.years_patients, args.ratio_patients = 4, 6, 5
        args.chunk = 10
    print(f"# Scale benchmark: metastasis {metastasis.__version__}, {os.cpu_count()} CPU(s), "
          f"Python {platform.python_version()}, {args.workers} worker processes\n")

    heads = [_dataset_run("colorectal", args.patients, 10.0, args.workers, False, args.chunk),
             _dataset_run("colorectal", args.clinical_patients, 10.0, args.workers, True,
                          args.chunk)]
    print("## Colorectal, 10 years, to a Parquet dataset\n")
    print(_table(
        ["course", "patients", "seconds", "patients/s", "CPU ms/patient", "peak memory (MB)",
         f"{TARGET_PATIENTS:,} patients at this rate"],
        [["disease and clinic" if r["clinical"] else "untreated", f"{r['patients']:,}",
          f"{r['seconds']:.1f}", f"{r['patients_per_second']:,.0f}",
          f"{r['ms_per_patient_cpu']:.2f}", f"{r['peak_memory_mb']:,.0f}",
          f"{TARGET_PATIENTS / r['patients_per_second'] / 60:,.1f} min"] for r in heads]))
    clinical = heads[1]
    need = TARGET_PATIENTS / TARGET_SECONDS
    print(f"\nTarget: {TARGET_PATIENTS:,} patients with the clinical course in "
          f"{TARGET_SECONDS:g} s ({need:,.0f} patients/s); measured "
          f"{clinical['patients_per_second']:,.0f} patients/s, "
          f"{need / clinical['patients_per_second']:,.0f} times short.\n")

    cancers = sorted(load_knowledge(None).cancers)
    by_type = []
    for cancer in cancers:
        untreated = _dataset_run(cancer, args.type_patients, 10.0, args.workers, False,
                                 args.chunk)
        treated = _dataset_run(cancer, args.type_clinical_patients, 10.0, args.workers, True,
                               args.chunk)
        by_type.append((untreated, treated))
    print("## Every cancer type, 10 years\n")
    print(_table(
        ["cancer", "untreated patients/s", "CPU ms/patient", "clinical patients/s",
         "CPU ms/patient"],
        [[u["cancer"], f"{u['patients_per_second']:,.0f}", f"{u['ms_per_patient_cpu']:.2f}",
          f"{t['patients_per_second']:,.0f}", f"{t['ms_per_patient_cpu']:.1f}"]
         for u, t in by_type]))

    by_years = [_dataset_run("colorectal", args.years_patients, float(y), args.workers, False,
                             args.chunk) for y in (5, 10, 20, 40)]
    print(f"\n## Cost against the horizon (colorectal, untreated, {args.years_patients:,} "
          "patients)\n")
    print(_table(["years", "seconds", "CPU ms/patient"],
                 [[f"{r['years']:g}", f"{r['seconds']:.2f}", f"{r['ms_per_patient_cpu']:.2f}"]
                  for r in by_years]))

    ratio = _draw_ratio("colorectal", args.ratio_patients, 10.0)
    print(f"\n## Engine against its random draws (colorectal, {ratio['patients']:,} patients, "
          "10 years, one process)\n")
    print(_table(["engine s", "draws alone s", "draw calls", "ratio", "variates",
                  "compiled draws alone s", "ratio to compiled draws"],
                 [[f"{ratio['engine_seconds']:.2f}", f"{ratio['draw_seconds']:.3f}",
                   f"{ratio['draw_calls']:,}", f"{ratio['ratio']:.0f}",
                   f"{ratio['variates']:,}", f"{ratio['compiled_draw_seconds']:.3f}",
                   f"{ratio['compiled_ratio']:.0f}"]]))
    floor = ratio["compiled_draw_seconds"] / ratio["patients"] * TARGET_PATIENTS / args.workers
    print(f"\nDrawing the untreated history's random numbers alone, in compiled code, would "
          f"take {floor:,.0f} s for {TARGET_PATIENTS:,} patients on {args.workers} workers.")

    if args.json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"bench_scale-{stamp}.json"
        path.write_text(json.dumps({
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "numpy": np.__version__, "metastasis": metastasis.__version__},
            "headline": heads, "by_type": by_type, "by_years": by_years, "ratio": ratio,
        }, indent=1))
        print(f"\nWrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
