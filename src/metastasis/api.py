"""The public Python API: load a model, run one patient.

Interfaces (CLI, web) call only these functions and the result types; they never reach
into the engine.
"""

from __future__ import annotations

from pathlib import Path

from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.limits import MAX_YEARS, check_count, check_seed, check_years
from metastasis.model.resolve import ResolvedModel, resolve
from metastasis.results.patient import PatientResult
from metastasis.units import DAYS_PER_YEAR

__all__ = [
    "DAYS_PER_YEAR", "MAX_YEARS", "check_count", "check_seed", "check_years", "load_model",
    "run_patient",
]


def load_model(cancer: str, model_path: str | Path | None = None) -> ResolvedModel:
    """Resolve ``cancer`` from the default knowledge base or a user's file (an error about
    what the file lacks, such as the cancer type asked for, names the file)."""
    knowledge = load_knowledge(model_path)
    try:
        return resolve(knowledge, cancer)
    except ModelError as error:
        raise (error if model_path is None else error.in_file(str(model_path))) from None


def run_patient(
    model: ResolvedModel, seed: int | None, index: int = 0, years: float = 10.0
) -> PatientResult:
    """Simulate patient ``index`` of the cohort with root ``seed`` over ``years``."""
    years = check_years(years)
    seed = check_seed(seed)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ModelError("patient index", index, "a non-negative integer")
    return simulate_patient(
        model,
        patient_generator(seed, index),
        years * DAYS_PER_YEAR,
        patient_index=index,
        root_seed=seed,
    )
