"""metastasis: a stochastic model of the metastatic cascade, from one virtual patient to a cohort.

Educational and research software: it gives no medical advice and makes no prediction for
any real person.

The public names below are imported on first use (PEP 562), so that ``import metastasis``
and the command line's ``--help`` do not pay for the engine's compiled kernels, pandas or
SciPy before they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metastasis.about import DISCLAIMER, __version__
from metastasis.errors import ModelError
from metastasis.lazy import lazy_attributes

if TYPE_CHECKING:
    from metastasis.api import check_seed, check_years, load_model, run_patient
    from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort
    from metastasis.clinical.course import Arm
    from metastasis.clinical.defaults import clinical_cohort
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import Protocol, load_protocols, load_treatments
    from metastasis.knowledge.loader import load as load_knowledge
    from metastasis.model.resolve import ResolvedModel, resolve
    from metastasis.results.patient import PatientResult

_LAZY = {
    "check_seed": ("metastasis.api", "check_seed"),
    "check_years": ("metastasis.api", "check_years"),
    "load_model": ("metastasis.api", "load_model"),
    "run_patient": ("metastasis.api", "run_patient"),
    "load_knowledge": ("metastasis.knowledge.loader", "load"),
    "ResolvedModel": ("metastasis.model.resolve", "ResolvedModel"),
    "resolve": ("metastasis.model.resolve", "resolve"),
    "PatientResult": ("metastasis.results.patient", "PatientResult"),
    # the clinical course: a cohort in one call with the packaged knowledge, or the runner
    # with the loaders and the arm it takes (to pass modified knowledge bases)
    "clinical_cohort": ("metastasis.clinical.defaults", "clinical_cohort"),
    "run_clinical_cohort": ("metastasis.clinical.cohort", "run_clinical_cohort"),
    "ClinicalCohort": ("metastasis.clinical.cohort", "ClinicalCohort"),
    "Arm": ("metastasis.clinical.course", "Arm"),
    "load_clinical": ("metastasis.clinical.loader", "load_clinical"),
    "load_treatments": ("metastasis.clinical.treatment_schema", "load_treatments"),
    "load_protocols": ("metastasis.clinical.treatment_schema", "load_protocols"),
    "Protocol": ("metastasis.clinical.treatment_schema", "Protocol"),
}

__all__ = [
    "DISCLAIMER",
    "Arm",
    "ClinicalCohort",
    "ModelError",
    "PatientResult",
    "Protocol",
    "ResolvedModel",
    "__version__",
    "check_seed",
    "check_years",
    "clinical_cohort",
    "load_clinical",
    "load_knowledge",
    "load_model",
    "load_protocols",
    "load_treatments",
    "resolve",
    "run_clinical_cohort",
    "run_patient",
]


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
