"""Validation: every published target of a cancer type set beside the model's own figure.

Each target is measured on a clinical cohort of the default plan without screening (and, for
the targets about untreated patients, on the same patients left untreated: common random
numbers), with the model's own 95 % interval, and given a verdict: the model *meets* the
target when its estimate lies in the published band widened by the target's tolerance
(:attr:`~metastasis.calibration.targets.Target.acceptable`), *misses* it otherwise, and has
*no data* when the cohort holds no patient the statistic is about or follows them too
briefly.  The verdict is on the estimate, not the interval: a target is a published figure a
learner will read, so a model that is merely "not shown to differ" on a small cohort does not
meet it.

The model has no deaths from other causes, so its survival compares with net survival.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from metastasis.backends import Backend
from metastasis.calibration.statistics import Estimate, stage_column
from metastasis.calibration.statistics import measure as measure_share
from metastasis.calibration.targets import DAYS_PER_MONTH, Target
from metastasis.clinical.cohort import run_clinical_cohort
from metastasis.clinical.course import SUPPORTIVE_CARE, Arm
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import TreatmentKnowledge
from metastasis.model.resolve import ResolvedModel
from metastasis.results.statistics import CONFIDENCE, kaplan_meier, wilson_interval
from metastasis.units import DAYS_PER_YEAR

Verdict = Literal["meets", "misses", "no data"]

FOLLOW_UP_YEARS = 6.0
"""Follow-up after each diagnosis: no target reads survival later than five years after
diagnosis (the medians of metastatic patients are months), so six years suffice, and a
patient diagnosed early is no longer simulated for decades past them (a colorectal
validation took a third of the CPU time, with the same figures)."""
STANDARD_CARE = Arm(name="standard care", years_after_diagnosis=FOLLOW_UP_YEARS)
"""The default plan for the stage found, no screening: the registries' usual patients."""
UNTREATED = Arm(name="untreated", treat=False, years_after_diagnosis=FOLLOW_UP_YEARS)
"""Diagnosed as in standard care, then never treated."""
ARMS: dict[str, Arm] = {"standard care": STANDARD_CARE, "untreated": UNTREATED}
TREATED = "treated"
"""The patients of standard care given anti-tumour treatment: read from its table, not run."""

DEFAULT_YEARS = 30.0
"""Years from the first cancer cell within which a diagnosis can come (it comes 3 to 15
years after the first cell); each diagnosed patient is then followed
:data:`FOLLOW_UP_YEARS`."""

@dataclass(frozen=True)
class Check:
    """One target beside the model's figure."""

    target: Target
    estimate: float
    lower: float
    upper: float
    patients: int
    """How many patients the figure rests on (the denominator, or the stage's patients)."""
    verdict: Verdict
    note: str = ""


@dataclass(frozen=True)
class Validation:
    """Every target of one cancer type checked, with the cohorts that measured them."""

    cancer: str
    seed: int
    patients: int
    years: float
    checks: tuple[Check, ...]
    cohorts: dict[str, pd.DataFrame] = field(repr=False)
    """Patients table of each arm run (``standard care``, and ``untreated`` when a target
    needs it)."""

    @property
    def met(self) -> int:
        return sum(c.verdict == "meets" for c in self.checks)


def _verdict(target: Target, estimate: float) -> Verdict:
    low, high = target.acceptable
    return "meets" if low <= estimate <= high else "misses"


def _share(target: Target, estimate: Estimate, confidence: float) -> Check:
    if estimate.trials == 0:
        return Check(target, math.nan, math.nan, math.nan, 0, "no data",
                     "no patient the share is about")
    low, high = wilson_interval(estimate.successes, estimate.trials, confidence)
    return Check(target, estimate.share, low, high, estimate.trials,
                 _verdict(target, estimate.share))


def _survival(staged: pd.DataFrame, target: Target, confidence: float) -> Check:
    days = staged["survival_days"].to_numpy(dtype=float)
    km = kaplan_meier(days, staged["died"].to_numpy(dtype=bool), confidence)
    if target.statistic == "survival":
        assert target.years is not None
        at = target.years * DAYS_PER_YEAR
        band = km.survival_at(at)
        if km.follow_up < at and band.estimate > 0.0:
            return Check(target, math.nan, math.nan, math.nan, len(staged), "no data",
                         f"followed {km.follow_up / DAYS_PER_YEAR:.1f} years at most")
        return Check(target, band.estimate, band.lower, band.upper, len(staged),
                     _verdict(target, band.estimate))
    median = km.median()
    months = [value / DAYS_PER_MONTH for value in median]
    estimate, lower, upper = months
    if math.isinf(estimate):
        followed = km.follow_up / DAYS_PER_MONTH
        if followed < target.acceptable[1]:
            return Check(target, math.nan, lower, upper, len(staged), "no data",
                         f"median not reached in {followed:.0f} months of follow-up")
        return Check(target, estimate, lower, upper, len(staged), "misses",
                     f"median not reached in {followed:.0f} months of follow-up")
    return Check(target, estimate, lower, upper, len(staged), _verdict(target, estimate))


def patients_of(cohorts: dict[str, pd.DataFrame], arm: str) -> pd.DataFrame:
    """The patients table a target's arm is measured on: ``treated`` is standard care less
    the patients given supportive care only."""
    if arm != TREATED:
        return cohorts[arm]
    standard = cohorts[STANDARD_CARE.name]
    return standard[standard["protocol"] != SUPPORTIVE_CARE]


def measure(cohorts: dict[str, pd.DataFrame], target: Target,
            confidence: float = CONFIDENCE) -> Check:
    """The target's statistic on the patients table of its arm, with its interval at
    ``confidence`` (95 % by default; a test of many targets at once widens it)."""
    patients = patients_of(cohorts, target.arm)
    if target.at_diagnosis:
        return _share(target, measure_share(patients, target), confidence)
    assert target.stage is not None
    diagnosed = patients[patients["diagnosed"]]
    staged = diagnosed[diagnosed[stage_column(target.stage)] == target.stage]
    staged = staged[np.isfinite(staged["survival_days"].to_numpy(dtype=float))]
    if staged.empty:
        return Check(target, math.nan, math.nan, math.nan, 0, "no data",
                     f"no patient diagnosed in stage {target.stage}")
    return _survival(staged, target, confidence)


def validate(
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    treatments: TreatmentKnowledge,
    targets: list[Target],
    *,
    patients: int,
    seed: int,
    years: float = DEFAULT_YEARS,
    workers: int = 1,
    scheduler: str | None = None,
    backend: Backend | None = None,
    progress: Callable[[str, int], object] | None = None,
) -> Validation:
    """Run the arms the targets need on the same patients and check every target.

    ``progress(arm, k)`` is called as each chunk of ``k`` patients of ``arm`` finishes.
    """
    arms = ["standard care"] + (["untreated"] if any(t.arm == "untreated" for t in targets)
                                else [])
    cohorts: dict[str, pd.DataFrame] = {}
    for name in arms:
        report = None if progress is None else (lambda k, name=name: progress(name, k))
        cohorts[name] = run_clinical_cohort(
            model, clinical, treatments, patients, seed, years, ARMS[name],
            progress=report, workers=workers, scheduler=scheduler, backend=backend,
        ).patients
    checks = tuple(measure(cohorts, target) for target in targets)
    return Validation(model.cancer, seed, patients, years, checks, cohorts)
