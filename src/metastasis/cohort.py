"""Run a cohort of virtual patients, in one go or in chunks that join bit-identically.

Patient ``i`` of the cohort with root seed ``s`` is simulated with
``patient_generator(s, i)`` and nothing else, so a range of indices can be run anywhere, in
any order, and :meth:`CohortResult.concat` joins the pieces into exactly the cohort that one
run over the whole range gives.  Every result carries its provenance, from which
:func:`rerun` reproduces it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from metastasis.api import DAYS_PER_YEAR, check_seed, check_years
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import ResolvedModel, resolve
from metastasis.results.patient import PatientResult
from metastasis.results.tables import CohortResult, build_tables

__all__ = ["CohortResult", "make_provenance", "rerun", "run_cohort"]

PROVENANCE_FORMAT = 1
"""Version of the provenance layout, raised when its keys change meaning."""

BLOCK_PATIENTS = 4096
"""Patients simulated before their results are folded into tables.  Bounds the memory held
in per-patient result objects (a few kB each plus lesions) to tens of MB for any cohort size,
while the per-block table-building cost stays negligible beside the simulations."""

PROGRESS_EVERY = 50
"""Patients between progress callbacks: often enough for a smooth bar (a patient takes
milliseconds), rarely enough that redrawing a bar costs nothing measurable."""

ProgressCallback = Callable[[int], object]


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ModelError(name, value, f"an integer >= {minimum}")
    return int(value)


def make_provenance(
    cancer: str,
    knowledge: Mapping[str, Any] | None,
    root_seed: int,
    start: int,
    n_patients: int,
    years: float,
    *,
    seed_drawn: bool = False,
    lesions_kept: bool = True,
) -> dict[str, Any]:
    """What a result needs to be trusted and re-run: code, model, seed, indices, horizon.

    ``knowledge`` is the resolved model's whole knowledge base (``ResolvedModel.knowledge``):
    recorded in full, not by name, so that a modified model file is re-run as it was.
    """
    import metastasis  # at call time: the package may import this module while initialising

    return {
        "format": PROVENANCE_FORMAT,
        "package": "metastasis",
        "version": metastasis.__version__,
        "disclaimer": metastasis.DISCLAIMER,
        "cancer": cancer,
        "root_seed": int(root_seed),
        "seed_drawn": bool(seed_drawn),
        "patient_index_start": int(start),
        "patient_index_stop": int(start + n_patients),
        "n_patients": int(n_patients),
        "lesions_kept": bool(lesions_kept),
        "years": float(years),
        "horizon_days": float(years) * DAYS_PER_YEAR,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": None if knowledge is None else dict(knowledge),
    }


def run_cohort(
    model: ResolvedModel,
    n_patients: int,
    seed: int | None,
    years: float,
    *,
    start: int = 0,
    progress: ProgressCallback | None = None,
    keep_lesions: bool = True,
) -> CohortResult:
    """Simulate patients ``start .. start + n_patients - 1`` of the cohort with root ``seed``.

    ``seed=None`` draws a fresh root seed and records it in the provenance (with
    ``seed_drawn``), so even an unseeded run can be repeated.  ``progress(k)`` is called
    with the number of patients finished since its last call.  ``keep_lesions=False``
    leaves the lesions table empty (the patients table is unchanged), for long horizons
    where only the per-patient columns or the summary are wanted.
    """
    n_patients = _check_count("patients", n_patients, 1)
    start = _check_count("start", start, 0)
    years = check_years(years)
    seeded = seed is not None
    seed = check_seed(seed)
    horizon = years * DAYS_PER_YEAR
    site_names = model.site_names

    patient_frames: list[pd.DataFrame] = []
    lesion_frames: list[pd.DataFrame] = []
    block: list[PatientResult] = []
    pending = 0
    for index in range(start, start + n_patients):
        block.append(simulate_patient(
            model, patient_generator(seed, index), horizon, patient_index=index, root_seed=seed,
        ))
        pending += 1
        if progress is not None and pending == PROGRESS_EVERY:
            progress(pending)
            pending = 0
        if len(block) == BLOCK_PATIENTS:
            patients, lesions = build_tables(block, site_names, keep_lesions=keep_lesions)
            patient_frames.append(patients)
            lesion_frames.append(lesions)
            block = []
    if block:
        patients, lesions = build_tables(block, site_names, keep_lesions=keep_lesions)
        patient_frames.append(patients)
        lesion_frames.append(lesions)
    if progress is not None and pending:
        progress(pending)

    def joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    return CohortResult(
        patients=joined(patient_frames),
        lesions=joined(lesion_frames),
        provenance=make_provenance(
            model.cancer, model.knowledge, seed, start, n_patients, years, seed_drawn=not seeded,
            lesions_kept=keep_lesions,
        ),
    )


def model_from_provenance(provenance: Mapping[str, Any]) -> ResolvedModel:
    """The resolved model recorded in a provenance (validated again, as any model file is)."""
    knowledge = provenance.get("model")
    if not isinstance(knowledge, dict):
        raise ModelError("provenance.model", type(knowledge).__name__,
                         "the knowledge base recorded as a table")
    return resolve(from_dict(knowledge), str(provenance.get("cancer")))


def rerun(provenance: Mapping[str, Any], *, progress: ProgressCallback | None = None
          ) -> CohortResult:
    """Run again the patients a provenance describes; the tables come out identical."""
    for key in ("root_seed", "patient_index_start", "patient_index_stop", "years", "cancer"):
        if key not in provenance:
            raise ModelError(f"provenance.{key}", None, "present, as written by metastasis")
    start = provenance["patient_index_start"]
    return run_cohort(
        model_from_provenance(provenance),
        provenance["patient_index_stop"] - start,
        provenance["root_seed"],
        provenance["years"],
        start=start,
        progress=progress,
        keep_lesions=bool(provenance.get("lesions_kept", True)),
    )
