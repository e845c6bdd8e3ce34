"""metastasis: a stochastic model of the metastatic cascade, from one virtual patient to a cohort.

Educational and research software: it gives no medical advice and makes no prediction for
any real person.

The public names below are imported on first use (PEP 562), so that ``import metastasis``
and the command line's ``--help`` do not pay for the engine's compiled kernels, pandas or
SciPy before they are needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from metastasis.about import DISCLAIMER, __version__
from metastasis.errors import ModelError

if TYPE_CHECKING:
    from metastasis.api import check_seed, check_years, load_model, run_patient
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
}

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


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'metastasis' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
