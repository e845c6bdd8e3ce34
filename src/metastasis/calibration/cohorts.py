"""Run the cohorts calibration measures: stories that end at diagnosis, on common patients.

Every statistic a target names is a property of the diagnosis, so the cohorts stop there
(:attr:`~metastasis.clinical.course.Arm.follow_up` False): treatment and follow-up would cost
most of the time and change nothing measured.  The same root seed for every evaluation gives
every value the same patients (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from metastasis.calibration.parameters import Parameter, with_value
from metastasis.calibration.search import Evaluate
from metastasis.calibration.statistics import Estimate, measure
from metastasis.calibration.targets import Target
from metastasis.clinical.cohort import run_clinical_cohort
from metastasis.clinical.course import Arm
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import TreatmentKnowledge
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import resolve

AT_DIAGNOSIS = Arm(name="calibration (stories end at diagnosis)", follow_up=False)
"""Standard care without screening, followed only to the diagnosis."""

PROBE_SOURCE = "calibration probe: a value tried by metastasis calibrate"


@dataclass(frozen=True)
class CohortSettings:
    """What every evaluation of one calibration shares."""

    cancer: str
    clinical: ClinicalKnowledge
    treatments: TreatmentKnowledge
    patients: int
    seed: int
    years: float
    workers: int = 1


def diagnoses(raw: dict[str, Any], settings: CohortSettings) -> pd.DataFrame:
    """The patients table of a cohort of the knowledge base ``raw``, stopped at diagnosis."""
    model = resolve(from_dict(raw), settings.cancer)
    cohort = run_clinical_cohort(model, settings.clinical, settings.treatments,
                                 settings.patients, settings.seed, settings.years, AT_DIAGNOSIS,
                                 workers=settings.workers)
    return cohort.patients


def check(
    raw: dict[str, Any], settings: CohortSettings, targets: list[Target]
) -> list[tuple[Target, Estimate]]:
    """Every target measured on one cohort of the knowledge base as it is."""
    frame = diagnoses(raw, settings)
    return [(target, measure(frame, target)) for target in targets]


def evaluator(
    raw: dict[str, Any], settings: CohortSettings, parameter: Parameter, target: Target
) -> Evaluate:
    """The function the search calls: the target's statistic with the parameter at a value."""

    def evaluate(value: float) -> Estimate:
        probe = with_value(raw, settings.cancer, parameter.name, value, PROBE_SOURCE)
        return measure(diagnoses(probe, settings), target)

    return evaluate
