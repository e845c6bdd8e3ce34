"""metastasis: a stochastic model of the metastatic cascade, from one virtual patient to a cohort.

Educational and research software: it gives no medical advice and makes no prediction for
any real person.
"""

from metastasis.about import DISCLAIMER, __version__
from metastasis.api import check_seed, check_years, load_model, run_patient
from metastasis.errors import ModelError
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.model.resolve import ResolvedModel, resolve
from metastasis.results.patient import PatientResult

__all__ = [
    "DISCLAIMER",
    "ModelError",
    "PatientResult",
    "ResolvedModel",
    "__version__",
    "check_seed",
    "check_years",
    "load_knowledge",
    "load_model",
    "resolve",
    "run_patient",
]
