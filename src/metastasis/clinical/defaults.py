"""A clinical cohort in one call, with the packaged knowledge: the public API's short way.

:func:`~metastasis.clinical.cohort.run_clinical_cohort` takes every piece the clinical course
needs (the resolved model, the clinical and treatment knowledge bases, an :class:`Arm`) so
that tools can pass modified ones; most users want the defaults and should not have to find
three loaders first.  :func:`clinical_cohort` loads them, checks a chosen protocol against
the cancer type before any patient is simulated, names the arm by what it does, and runs
the cohort.  The same patients as ``metastasis cohort --cancer C --patients N --seed S
--years Y`` (with ``--screening`` / ``--protocol``), since both call the same runner.
"""

from __future__ import annotations

from metastasis.api import load_model
from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort
from metastasis.clinical.course import Arm
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import Protocol, check_protocol, load_treatments
from metastasis.limits import FOLLOW_UP_YEARS


def arm_for(*, screening: bool = False, protocol: Protocol | None = None,
            years_after_diagnosis: float | None = None) -> Arm:
    """The arm that screens (or not) and follows ``protocol`` (or the default plan by stage),
    named by what it does, so that reports and comparisons say which care they show."""
    care = "screening" if screening else "no screening"
    plan = "default plan by stage" if protocol is None else f"protocol: {protocol.label}"
    return Arm(name=f"{care}, {plan}", screening=screening, protocol=protocol,
               years_after_diagnosis=years_after_diagnosis)


def clinical_cohort(
    cancer: str,
    n_patients: int,
    seed: int | None = None,
    years: float = 20.0,
    *,
    screening: bool = False,
    protocol: Protocol | None = None,
    years_after_diagnosis: float | None = FOLLOW_UP_YEARS,
    workers: int = 1,
) -> ClinicalCohort:
    """Simulate ``n_patients`` whole clinical stories of ``cancer`` with the default knowledge.

    ``seed`` None draws one (read it back from the result's ``seed``); ``years`` counts from
    each patient's first cancer cell, as everywhere in the model: a diagnosis must come
    within it.  Each diagnosed patient is then followed ``years_after_diagnosis`` (5 by
    default, as on the command line, so 5-year survival is known for everyone; None follows
    to ``years`` from the first cell instead).  ``screening`` adds the
    cancer type's screening programme; ``protocol`` (one of :func:`load_protocols`'s values)
    replaces the default plan by stage for every patient diagnosed.  Bad input raises
    :class:`~metastasis.errors.ModelError` naming the field, before any patient is run.
    """
    model = load_model(cancer)
    treatments = load_treatments()
    if protocol is not None:
        check_protocol(treatments, protocol, cancer=model.cancer)
    return run_clinical_cohort(model, load_clinical(), treatments, n_patients, seed, years,
                               arm_for(screening=screening, protocol=protocol,
                                       years_after_diagnosis=years_after_diagnosis),
                               workers=workers)
