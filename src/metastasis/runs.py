"""A cohort run straight to disk: the disease and the clinical course, a chunk at a time.

Each chunk of patients yields the tables of a dataset (:mod:`metastasis.results.dataset`):
the patients' natural histories, their lesions counted per site and state, the lesions
themselves when asked for, and the clinical course when one is run.  Chunks run on any
backend (:mod:`metastasis.backends`) and each part is written as its chunk finishes, so the
memory held is that of the chunks in flight, whatever the cohort's size; a run killed at any
moment is resumed by running only the chunks whose parts are missing, and gives exactly the
dataset an uninterrupted run gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metastasis.api import check_count, check_seed, check_years
from metastasis.backends import (
    DEFAULT_CHUNK_PATIENTS,
    Backend,
    Chunk,
    check_scheduler,
    check_workers,
    opened,
    plan_chunks,
)
from metastasis.clinical.cohort import ClinicalJob
from metastasis.clinical.course import Arm
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import TreatmentKnowledge
from metastasis.cohort import CohortJob
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel
from metastasis.results.dataset import DatasetWriter
from metastasis.results.provenance import make_provenance
from metastasis.results.tables import LESION_STATES
from metastasis.units import DAYS_PER_YEAR

__all__ = ["DEFAULT_CHUNK_PATIENTS", "ClinicalSetting", "DatasetJob", "run_dataset",
           "site_counts"]

MAX_CHUNK_PATIENTS = 100_000
"""Largest chunk accepted: the memory of a part in flight grows with it."""

STATES = LESION_STATES
"""A lesion's state at the end of its history, the last of these steps it reached."""


def site_counts(lesions: pd.DataFrame) -> pd.DataFrame:
    """Lesions per (patient, site, state at the end): the counts that stand for the lesions
    when the lesion rows themselves are not written.  The readable definition, from a
    lesions table; datasets count without building one
    (:func:`~metastasis.results.tables.site_state_counts`, held equal to this by the tests).

    A step's day is missing (NaN) in the lesions table when the lesion had not reached it by
    the end, so the state is the last step with a day."""
    state = np.select(
        [lesions["outgrowth"].notna().to_numpy(), lesions["micrometastasis"].notna().to_numpy(),
         lesions["awakening"].notna().to_numpy()],
        [3, 2, 1], default=0)
    frame = pd.DataFrame({"patient_index": lesions["patient_index"].to_numpy(),
                          "site": lesions["site"].to_numpy(dtype=object),
                          "state": np.asarray(STATES, dtype=object)[state]})
    counted = frame.groupby(["patient_index", "site", "state"], sort=True).size()
    out = counted.reset_index(name="lesions")
    out["patient_index"] = out["patient_index"].astype(np.int64)
    out["lesions"] = out["lesions"].astype(np.int64)
    return out


@dataclass(frozen=True)
class ClinicalSetting:
    """The clinic of a run: its knowledge and the arm every patient follows."""

    clinical: ClinicalKnowledge
    treatments: TreatmentKnowledge
    arm: Arm

    def describe(self) -> dict[str, Any]:
        protocol = self.arm.protocol
        return {"arm": self.arm.name, "screening": self.arm.screening,
                "follow_up": self.arm.follow_up,
                "years_after_diagnosis": self.arm.years_after_diagnosis,
                "protocol": None if protocol is None else protocol.model_dump(mode="json"),
                "clinical": self.clinical.model_dump(mode="json"),
                "treatments": self.treatments.model_dump(mode="json")}


@dataclass(frozen=True)
class DatasetJob:
    """All tables of one chunk (picklable: what a worker receives)."""

    disease: CohortJob
    lesions: bool
    clinical: ClinicalJob | None

    @property
    def tables(self) -> tuple[str, ...]:
        return ("patients", "site_counts", *(("lesions",) if self.lesions else ()),
                *(("clinical",) if self.clinical is not None else ()))

    def __call__(self, chunk: Chunk) -> dict[str, pd.DataFrame]:
        tables = self.disease.with_site_counts(chunk)
        assert tables.site_counts is not None
        frames = {"patients": tables.patients, "site_counts": tables.site_counts}
        if self.lesions:
            frames["lesions"] = tables.lesions
        if self.clinical is not None:
            frames["clinical"] = self.clinical(chunk)
        return frames


def check_chunk_size(value: object, field: str = "chunk_size") -> int:
    if (isinstance(value, bool) or not isinstance(value, int)
            or not 1 <= value <= MAX_CHUNK_PATIENTS):
        raise ModelError(field, value, f"an integer from 1 to {MAX_CHUNK_PATIENTS:,}")
    return value


def run_dataset(
    directory: str | Path,
    model: ResolvedModel,
    n_patients: int,
    seed: int | None,
    years: float,
    *,
    start: int = 0,
    lesions: bool = False,
    clinical: ClinicalSetting | None = None,
    chunk_size: int = DEFAULT_CHUNK_PATIENTS,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Callable[[int], object] | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Simulate patients ``start ... start + n_patients - 1`` into a dataset directory.

    Writes one part per chunk of ``chunk_size`` patients as each finishes; with ``resume``,
    continues a run written there before (the same run, or it refuses), running only the
    chunks whose parts are missing.  ``progress(k)`` counts patients, those of parts already
    on disk included; ``backend``, an open one, is used instead of ``workers`` and
    ``scheduler`` and left open.  Returns the run's provenance (as in the manifest)."""
    n_patients = check_count("patients", n_patients, 1)
    start = check_count("start", start, 0)
    years = check_years(years)
    chunk_size = check_chunk_size(chunk_size)
    workers = check_workers(workers)
    scheduler = check_scheduler(scheduler)
    seeded = seed is not None
    seed = check_seed(seed)
    horizon = years * DAYS_PER_YEAR
    provenance = make_provenance(model.cancer, model.knowledge, seed, start, n_patients,
                                 years, seed_drawn=not seeded, lesions_kept=lesions)
    clinical_job = None if clinical is None else ClinicalJob(
        model, clinical.clinical, clinical.treatments, seed, years, clinical.arm)
    job = DatasetJob(CohortJob(model, seed, horizon, keep_lesions=lesions), lesions,
                     clinical_job)
    run = {"cancer": model.cancer, "root_seed": seed, "patient_index_start": start,
           "n_patients": n_patients, "years": years, "chunk_size": chunk_size,
           "tables": list(job.tables),
           "clinical": None if clinical is None else clinical.describe()}
    if resume and not seeded:
        raise ModelError("--resume", "no seed", "a run with its seed given (--seed): a drawn "
                         "seed would make the resumed part another cohort")
    writer = DatasetWriter(directory, run, provenance, job.tables, resume=resume)
    chunks = plan_chunks(start, n_patients, chunk_size)
    done = writer.complete_parts({c.number: range(c.start, c.stop) for c in chunks})
    if progress is not None and done:
        progress(sum(c.count for c in chunks if c.number in done))
    with opened(workers, scheduler, backend) as running:
        for chunk, frames in running.run(job, [c for c in chunks if c.number not in done]):
            writer.write_part(chunk.number, frames)
            if progress is not None:
                progress(chunk.count)
    writer.finish(len(chunks))
    return writer.provenance
