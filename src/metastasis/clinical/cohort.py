"""Clinical cohorts: stage at diagnosis, metastases found and hidden, survival by stage,
causes of death; and two arms compared on the same patients (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metastasis import atomic
from metastasis.api import check_count, check_seed, check_years
from metastasis.backends import (
    Backend,
    Chunk,
    check_scheduler,
    check_workers,
    opened,
    plan_chunks,
    shared_chunk_size,
)
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import TreatmentKnowledge
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel

Z_95 = 1.959963984540054
"""Two-sided 95 % normal quantile, for the confidence intervals of paired differences."""

STAGE_ORDER = ("localized", "regional", "distant")


def _row(result: ClinicalResult) -> dict[str, Any]:
    dx = result.diagnosis
    return {
        "patient_index": result.patient.patient_index,
        "arm": result.arm,
        "onset_age_years": result.onset_age_years,
        "diagnosed": dx is not None,
        "diagnosis_day": dx.day if dx else math.nan,
        "diagnosis_age_years": dx.age_years if dx else math.nan,
        "pathway": dx.pathway if dx else None,
        "stage_group": dx.stage.group if dx else None,
        "summary_stage": dx.stage.summary if dx else None,
        "t": dx.stage.t if dx else None,
        "n": dx.stage.n if dx else None,
        "m": dx.stage.m if dx else None,
        "diagnosis_name": dx.name if dx else None,
        "distant_sites_found": ";".join(dx.distant_sites_found) if dx else "",
        "metastases_present": dx.metastases_present if dx else 0,
        "metastases_found": dx.metastases_found if dx else 0,
        "metastases_hidden": dx.metastases_hidden if dx else 0,
        "protocol": result.protocol,
        "died": result.died,
        "death_day": result.death_day if result.death_day is not None else math.nan,
        "cause_of_death": result.cause_of_death,
        "survival_days": (
            result.survival_from_diagnosis_days
            if result.survival_from_diagnosis_days is not None else math.nan
        ),
        "lifetime_days": min(result.lifetime_days, result.horizon_days),
    }


@dataclass(frozen=True)
class ClinicalCohort:
    """One arm's patients as a table, with the settings that made it."""

    patients: pd.DataFrame
    cancer: str
    arm: str
    seed: int
    years: float
    years_after_diagnosis: float | None = None
    """The arm's follow-up after diagnosis (None: the horizon counts from the first cell)."""

    @classmethod
    def concat(cls, parts: list[ClinicalCohort]) -> ClinicalCohort:
        """Join chunks of one cohort (same cancer, arm, seed, years) into the whole cohort.

        Patient ``i`` depends only on (seed, i), so chunks run anywhere, in any order, join
        into exactly the cohort that one run over the whole range gives."""
        if not parts:
            raise ModelError("parts", 0, "at least one chunk")
        first = parts[0]
        for part in parts[1:]:
            same = (part.cancer, part.arm, part.seed, part.years, part.years_after_diagnosis)
            if same != (first.cancer, first.arm, first.seed, first.years,
                        first.years_after_diagnosis):
                raise ModelError("parts", same, "chunks of one cohort (cancer, arm, seed, "
                                 "years, follow-up)")
        frame = pd.concat([p.patients for p in parts], ignore_index=True)
        frame = frame.sort_values("patient_index", kind="stable").reset_index(drop=True)
        if frame["patient_index"].duplicated().any():
            raise ModelError("parts", "overlapping chunks", "chunks with disjoint patients")
        return cls(frame, first.cancer, first.arm, first.seed, first.years,
                   first.years_after_diagnosis)

    def summary(self) -> dict[str, Any]:
        """Stage at diagnosis, metastases at diagnosis, survival by stage, causes of death."""
        frame = self.patients
        diagnosed = frame[frame["diagnosed"]]
        stages = diagnosed["summary_stage"].value_counts().reindex(STAGE_ORDER, fill_value=0)
        groups = diagnosed["stage_group"].value_counts().sort_index()
        with_mets = diagnosed["metastases_present"] > 0
        survival = {}
        for name in STAGE_ORDER:
            part = diagnosed[diagnosed["summary_stage"] == name]
            if len(part):
                survival[name] = kaplan_meier(part)
        return {
            "patients": len(frame),
            "diagnosed": len(diagnosed),
            "years_after_diagnosis": self.years_after_diagnosis,
            "summary_stage": {k: int(v) for k, v in stages.items()},
            "stage_group": {k: int(v) for k, v in groups.items()},
            "metastases_at_diagnosis": {
                "patients_with_any": int(with_mets.sum()),
                "patients_with_hidden": int((diagnosed["metastases_hidden"] > 0).sum()),
                "found": int(diagnosed["metastases_found"].sum()),
                "hidden": int(diagnosed["metastases_hidden"].sum()),
            },
            "survival_by_stage": survival,
            "causes_of_death": {
                str(k): int(v) for k, v in frame["cause_of_death"].value_counts().items()
            },
        }


def kaplan_meier(part: pd.DataFrame) -> dict[str, Any]:
    """Kaplan-Meier survival from diagnosis, censored at the horizon, in years
    (:func:`metastasis.results.statistics.kaplan_meier`, the estimator every report uses)."""
    from metastasis.results.statistics import kaplan_meier as product_limit

    curve = product_limit(part["survival_days"].to_numpy(dtype=float) / 365.25,
                          part["died"].to_numpy(dtype=bool))
    median = curve.median().estimate
    known = curve.known_at(5.0)  # none where five years lie beyond every follow-up
    five = None if known is None else known.estimate
    return {
        "patients": len(part),
        "deaths": int(part["died"].sum()),
        "median_years": None if math.isinf(median) else median,
        "five_year_survival": five,
    }


def survival_figure(cohort: ClinicalCohort, path: str | Path) -> Path:
    """Kaplan-Meier curves by summary stage with 95 % confidence bands, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metastasis import DISCLAIMER
    from metastasis.results.statistics import kaplan_meier as product_limit

    colours = {"localized": "#0072B2", "regional": "#E69F00", "distant": "#D55E00"}
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    diagnosed = cohort.patients[cohort.patients["diagnosed"]]
    for name in STAGE_ORDER:
        part = diagnosed[diagnosed["summary_stage"] == name]
        if len(part) < 2:
            continue
        curve = product_limit(part["survival_days"].to_numpy(dtype=float) / 365.25,
                              part["died"].to_numpy(dtype=bool))
        # a right-continuous step function: each value holds from its time to the next
        axes.step(curve.times, curve.survival, where="post", color=colours[name],
                  label=f"{name} (n={len(part)})")
        axes.fill_between(curve.times, curve.lower, curve.upper, step="post",
                          color=colours[name], alpha=0.25, linewidth=0)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    axes.set_xlabel("years from diagnosis")
    axes.set_ylabel("share alive")
    axes.set_ylim(0, 1.02)
    axes.set_title(f"Simulated survival by stage: {cohort.cancer}, {len(cohort.patients):,} "
                   f"patients, seed {cohort.seed}")
    figure.text(0.01, 0.01, DISCLAIMER, fontsize=6, color="#555555")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    path = Path(path)
    try:
        with atomic.staged(path) as (temporary,):
            figure.savefig(temporary, format="png")
    finally:
        plt.close(figure)
    return path


@dataclass(frozen=True)
class ClinicalJob:
    """One arm's clinical stories, a chunk at a time (picklable: it is what a worker
    process or a Dask worker receives)."""

    model: ResolvedModel
    clinical: ClinicalKnowledge
    treatments: TreatmentKnowledge
    seed: int
    years: float
    arm: Arm

    def __call__(self, chunk: Chunk) -> pd.DataFrame:
        return pd.DataFrame([
            _row(simulate_course(self.model, self.clinical, self.treatments, self.seed, i,
                                 self.years, self.arm))
            for i in range(chunk.start, chunk.stop)
        ])


def run_clinical_cohort(
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    treatments: TreatmentKnowledge,
    n_patients: int,
    seed: int | None,
    years: float,
    arm: Arm | None = None,
    *,
    start: int = 0,
    progress: Callable[[int], object] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    backend: Backend | None = None,
) -> ClinicalCohort:
    """Simulate patients ``start`` to ``start + n_patients - 1``: whole clinical stories
    under one arm.

    ``workers`` > 1 shares the range out to that many local processes, ``scheduler``
    (``"local"`` or ``"tcp://HOST:PORT"``) to a Dask cluster (:mod:`metastasis.backends`);
    the table is the same as one process's; ``backend``, an open one, is used instead and
    left open.  The root seed is resolved here first, so even a drawn seed is one seed for
    every chunk."""
    n_patients = check_count("patients", n_patients, 1)
    start = check_count("start", start, 0)
    workers = check_workers(workers)
    scheduler = check_scheduler(scheduler)
    years = check_years(years)
    seed = check_seed(seed)
    arm = arm or Arm()
    job = ClinicalJob(model, clinical, treatments, seed, years, arm)
    if (backend is None or backend.workers == 1) and workers == 1 and scheduler is None:
        rows = []
        for i in range(start, start + n_patients):
            rows.append(_row(simulate_course(model, clinical, treatments, seed, i, years, arm)))
            if progress is not None:
                progress(1)
        return ClinicalCohort(pd.DataFrame(rows), model.cancer, arm.name, seed, years,
                              arm.years_after_diagnosis)
    parts: dict[int, pd.DataFrame] = {}
    with opened(workers, scheduler, backend) as running:
        chunks = plan_chunks(start, n_patients, shared_chunk_size(n_patients, running.workers))
        for chunk, frame in running.run(job, chunks):
            parts[chunk.number] = frame
            if progress is not None:
                progress(chunk.count)
    return ClinicalCohort.concat([
        ClinicalCohort(parts[k], model.cancer, arm.name, seed, years, arm.years_after_diagnosis)
        for k in sorted(parts)])


@dataclass(frozen=True)
class Difference:
    """Mean of the paired per-patient differences (arm B - arm A) with a 95 % interval."""

    measure: str
    arm_a: float
    arm_b: float
    difference: float
    low: float
    high: float


def _paired(measure: str, a: np.ndarray, b: np.ndarray) -> Difference:
    d = b.astype(float) - a.astype(float)
    half = Z_95 * float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.inf
    mean = float(d.mean())
    return Difference(measure, float(a.mean()), float(b.mean()), mean, mean - half, mean + half)


def compare(a: ClinicalCohort, b: ClinicalCohort) -> list[Difference]:
    """Differences between two arms run on the same patients (same seed and indices).

    Every measure is a per-patient quantity, so the pairs share the natural history and the
    patient's traits (common random numbers) and the interval is that of a paired mean.
    Lifetime is counted from the first cancer cell and capped at the horizon (restricted
    mean), which avoids the lead-time bias of survival counted from diagnosis.
    """
    if not a.patients["patient_index"].equals(b.patients["patient_index"]) or a.seed != b.seed:
        raise ModelError("arms", "different patients", "two arms run on the same seed and indices")
    pa, pb = a.patients, b.patients

    def distant(frame: pd.DataFrame) -> np.ndarray:
        return (frame["summary_stage"] == "distant").to_numpy()

    return [
        _paired("diagnosed at a distant stage", distant(pa), distant(pb)),
        _paired(
            "metastases present at diagnosis",
            (pa["metastases_present"] > 0).to_numpy(),
            (pb["metastases_present"] > 0).to_numpy(),
        ),
        _paired("died of cancer within the horizon", pa["died"].to_numpy(), pb["died"].to_numpy()),
        _paired("restricted mean lifetime from onset (years)",
                pa["lifetime_days"].to_numpy() / 365.25, pb["lifetime_days"].to_numpy() / 365.25),
    ]
