"""Run a cohort of virtual patients, in one go or in chunks that join bit-identically.

Patient ``i`` of the cohort with root seed ``s`` is simulated with
``patient_generator(s, i)`` and nothing else, so a range of indices can be run anywhere, in
any order, and :meth:`CohortResult.concat` joins the pieces into exactly the cohort that one
run over the whole range gives.  Every result carries its provenance, from which
:func:`rerun` reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

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
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import ResolvedModel, resolve
from metastasis.results.patient import PatientResult
from metastasis.results.provenance import PROVENANCE_FORMAT, make_provenance
from metastasis.results.tables import CohortResult, build_tables, site_state_counts
from metastasis.units import DAYS_PER_YEAR

__all__ = ["PROVENANCE_FORMAT", "CohortJob", "CohortResult", "make_provenance", "rerun",
           "run_cohort"]

BLOCK_PATIENTS = 4096
"""Patients simulated before their results are folded into tables.  Bounds the memory held
in per-patient result objects (a few kB each plus lesions) to tens of MB for any cohort size,
while the per-block table-building cost stays negligible beside the simulations."""

PROGRESS_EVERY = 50
"""Patients between progress callbacks: often enough for a smooth bar (a patient takes
milliseconds), rarely enough that redrawing a bar costs nothing measurable."""

ProgressCallback = Callable[[int], object]


@dataclass(frozen=True)
class RangeTables:
    """The tables of a range of patients (see :func:`simulate_tables`)."""

    patients: pd.DataFrame
    lesions: pd.DataFrame
    """Empty (its columns kept) unless the lesions were kept."""
    site_counts: pd.DataFrame | None
    """Lesions per (patient, site, state at the end), when asked for
    (:func:`~metastasis.results.tables.site_state_counts`)."""


def simulate_tables(
    model: ResolvedModel, seed: int, horizon_days: float, first: int, count: int, *,
    keep_lesions: bool = True, site_counts: bool = False,
    progress: ProgressCallback | None = None,
) -> RangeTables:
    """The tables of patients ``first ... first + count - 1``: patients, lesions (empty
    unless ``keep_lesions``) and, with ``site_counts``, the lesions counted by site and
    state, which a dataset writes in place of the rows and which are read from the
    patients' lesion columns without building the lesions table.

    Results are folded into tables a block at a time, so the memory held in per-patient
    objects stays bounded however long the range is."""
    site_names = model.site_names
    patient_frames: list[pd.DataFrame] = []
    lesion_frames: list[pd.DataFrame] = []
    count_frames: list[pd.DataFrame] = []
    block: list[PatientResult] = []
    pending = 0

    def fold() -> None:
        patients, lesions = build_tables(block, site_names, keep_lesions=keep_lesions)
        patient_frames.append(patients)
        lesion_frames.append(lesions)
        if site_counts:
            count_frames.append(site_state_counts(block, site_names))
        block.clear()

    for index in range(first, first + count):
        block.append(simulate_patient(
            model, patient_generator(seed, index), horizon_days, patient_index=index,
            root_seed=seed,
        ))
        pending += 1
        if progress is not None and pending == PROGRESS_EVERY:
            progress(pending)
            pending = 0
        if len(block) == BLOCK_PATIENTS:
            fold()
    if block:
        fold()
    if progress is not None and pending:
        progress(pending)
    return RangeTables(_joined(patient_frames), _joined(lesion_frames),
                       _joined(count_frames) if site_counts else None)


def simulate_range(
    model: ResolvedModel, seed: int, horizon_days: float, first: int, count: int, *,
    keep_lesions: bool = True, progress: ProgressCallback | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients and lesions tables of patients ``first ... first + count - 1``
    (:func:`simulate_tables` without the counts)."""
    tables = simulate_tables(model, seed, horizon_days, first, count,
                             keep_lesions=keep_lesions, progress=progress)
    return tables.patients, tables.lesions


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class CohortJob:
    """One cohort's untreated natural histories, a chunk at a time (picklable: it is what a
    worker process or a Dask worker receives)."""

    model: ResolvedModel
    seed: int
    horizon_days: float
    keep_lesions: bool = True

    def __call__(self, chunk: Chunk) -> tuple[pd.DataFrame, pd.DataFrame]:
        return simulate_range(self.model, self.seed, self.horizon_days, chunk.start,
                              chunk.count, keep_lesions=self.keep_lesions)

    def with_site_counts(self, chunk: Chunk) -> RangeTables:
        """The chunk's tables with its lesions counted by site and state."""
        return simulate_tables(self.model, self.seed, self.horizon_days, chunk.start,
                               chunk.count, keep_lesions=self.keep_lesions, site_counts=True)


def run_cohort(
    model: ResolvedModel,
    n_patients: int,
    seed: int | None,
    years: float,
    *,
    start: int = 0,
    progress: ProgressCallback | None = None,
    keep_lesions: bool = True,
    workers: int = 1,
    scheduler: str | None = None,
    backend: Backend | None = None,
) -> CohortResult:
    """Simulate patients ``start .. start + n_patients - 1`` of the cohort with root ``seed``.

    ``seed=None`` draws a fresh root seed and records it in the provenance (with
    ``seed_drawn``), so even an unseeded run can be repeated.  ``progress(k)`` is called
    with the number of patients finished since its last call.  ``keep_lesions=False``
    leaves the lesions table empty (the patients table is unchanged), for long horizons
    where only the per-patient columns or the summary are wanted.

    ``workers`` > 1 shares the range out to that many local processes; ``scheduler``
    (``"local"`` or ``"tcp://HOST:PORT"``) to a Dask cluster (:mod:`metastasis.backends`).
    The tables are identical to one process's in every case.  ``backend``, an open one
    from :func:`metastasis.backends.make_backend`, is used instead and left open, so that
    several cohorts share one pool or cluster.
    """
    n_patients = check_count("patients", n_patients, 1)
    start = check_count("start", start, 0)
    years = check_years(years)
    workers = check_workers(workers)
    scheduler = check_scheduler(scheduler)
    seeded = seed is not None
    seed = check_seed(seed)  # resolved once, before any split: one cohort, one seed
    horizon = years * DAYS_PER_YEAR
    provenance = make_provenance(
        model.cancer, model.knowledge, seed, start, n_patients, years, seed_drawn=not seeded,
        lesions_kept=keep_lesions,
    )
    if (backend is None or backend.workers == 1) and workers == 1 and scheduler is None:
        patients, lesions = simulate_range(model, seed, horizon, start, n_patients,
                                           keep_lesions=keep_lesions, progress=progress)
        return CohortResult(patients=patients, lesions=lesions, provenance=provenance)
    job = CohortJob(model, seed, horizon, keep_lesions)
    parts: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}
    with opened(workers, scheduler, backend) as running:
        chunks = plan_chunks(start, n_patients, shared_chunk_size(n_patients, running.workers))
        for chunk, part in running.run(job, chunks):
            parts[chunk.number] = part
            if progress is not None:
                progress(chunk.count)
    ordered = [parts[k] for k in sorted(parts)]
    return CohortResult(
        patients=_joined([p for p, _ in ordered]),
        lesions=_joined([lesion for _, lesion in ordered]),
        provenance=provenance,
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
