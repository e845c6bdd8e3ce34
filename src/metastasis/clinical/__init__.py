"""The clinical layer: what a doctor would see and do. It observes the disease process and
acts on it only through treatment (see docs/clinical.md).

The names a user reaches for first (a cohort in one call, the cohort runner, its loaders and
arm) are importable from here as from :mod:`metastasis` itself, and imported on first use
(PEP 562): importing the package stays free of the engine, pandas and SciPy.
"""

from typing import TYPE_CHECKING

from metastasis.lazy import lazy_attributes

if TYPE_CHECKING:
    from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort
    from metastasis.clinical.course import Arm
    from metastasis.clinical.defaults import clinical_cohort
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import Protocol, load_protocols, load_treatments

_HOMES = {
    "metastasis.clinical.cohort": ("ClinicalCohort", "run_clinical_cohort"),
    "metastasis.clinical.course": ("Arm",),
    "metastasis.clinical.defaults": ("clinical_cohort",),
    "metastasis.clinical.loader": ("load_clinical",),
    "metastasis.clinical.treatment_schema": ("Protocol", "load_protocols", "load_treatments"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "Arm",
    "ClinicalCohort",
    "Protocol",
    "clinical_cohort",
    "load_clinical",
    "load_protocols",
    "load_treatments",
    "run_clinical_cohort",
]


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
