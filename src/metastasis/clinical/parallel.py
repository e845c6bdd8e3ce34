"""Clinical cohorts on several worker processes, identical to the serial run.

A clinical course costs tens to hundreds of milliseconds per patient, all of it Python, so
threads do not help (the GIL) and processes do.  Patient ``i`` depends only on (root seed,
``i``) (:mod:`metastasis.engine.seeds`), so the patient range is cut into contiguous chunks,
each chunk is run by :func:`~metastasis.clinical.cohort.run_clinical_cohort` with its own
``start``, and :meth:`~metastasis.clinical.cohort.ClinicalCohort.concat` joins the parts into
exactly the table that one serial run gives, whatever the number of workers or the order in
which the chunks finish.

Start method: ``forkserver`` (``spawn`` where there is none, as on Windows).  ``fork``
copies the parent as it is, the locks of its threads included, and the parent is rarely
single-threaded here: the command line's progress bar refreshes from a thread while the
cohort runs, the web server has its own, and numerical libraries keep thread pools; a lock
held by one of them at the moment of the fork stays held forever in the child (Python 3.12
warns about fork in a threaded process; 3.14 no longer uses it by default on Linux).
``spawn`` is safe but starts every worker as a fresh interpreter that imports numpy, pandas
and the model again, for every cohort.  ``forkserver`` starts one clean, single-threaded
server process per session that imports this module once (the preload below), and forks each
worker from it: as safe as ``spawn``, but the second and later pools start in a fraction of
a second (measured on a busy 2-core machine, 12 colorectal patients over 10 years on 2
workers: about 4 s with ``spawn``, every time; with ``forkserver`` 1.8 s for the first
cohort and 0.4 s for the next; ``compare`` runs two cohorts, the web server many).  As with
any pool that is not forked, a script that runs a parallel cohort must guard its entry point
with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext

from metastasis.api import check_seed, check_years
from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort
from metastasis.clinical.course import Arm
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import TreatmentKnowledge
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel

START_METHOD = "forkserver"
"""How worker processes start (see the module's docstring for why not ``fork``)."""

PRELOAD = ["__main__", "metastasis.clinical.parallel"]
"""What the fork server imports once, so that the workers forked from it start ready:
this module and everything it imports (numpy, pandas, the model, the clinical layer), and
the parent's main module, as the fork server does by default."""

CHUNKS_PER_WORKER = 4
"""Chunks per worker: patients differ several-fold in cost (a patient who dies early is cheap,
one followed for years after treatment is not), so a few chunks per worker let a worker that
drew cheap patients take more, while keeping the per-chunk overhead (pickling the knowledge,
building a table) small."""


def _context() -> BaseContext:
    """The multiprocessing context of the pools (``spawn`` where there is no fork server).

    The preload is a setting of the one fork server of this process; it takes effect when
    that server starts, so a server started earlier by other code stays as it was (its
    workers then import this module themselves: slower, same results)."""
    if START_METHOD not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context(START_METHOD)
    context.set_forkserver_preload(PRELOAD)
    return context


def chunk_bounds(start: int, n_patients: int, n_chunks: int) -> list[tuple[int, int]]:
    """``(first index, patients)`` of ``n_chunks`` contiguous chunks covering
    ``start ... start + n_patients - 1``, sizes differing by at most one, none empty."""
    n_chunks = max(1, min(n_chunks, n_patients))
    size, extra = divmod(n_patients, n_chunks)
    bounds = []
    first = start
    for k in range(n_chunks):
        count = size + (1 if k < extra else 0)
        bounds.append((first, count))
        first += count
    return bounds


class _ChunkError(Exception):
    """A :class:`ModelError` raised in a worker, in a form that survives pickling.

    ``ModelError`` takes three arguments but passes one message to ``Exception``, so it does
    not unpickle; the parent would see a broken pool instead of the message.  The worker
    sends the three parts and the parent raises the ``ModelError`` again."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        super().__init__(field, value, allowed)


def _run_chunk(
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    treatments: TreatmentKnowledge,
    seed: int,
    years: float,
    arm: Arm,
    first: int,
    count: int,
) -> ClinicalCohort:
    """One chunk, in a worker: the serial function over ``first ... first + count - 1``."""
    try:
        return run_clinical_cohort(model, clinical, treatments, count, seed, years, arm,
                                   start=first)
    except ModelError as error:
        raise _ChunkError(error.field, error.value, error.allowed) from None


def run_clinical_cohort_parallel(
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    treatments: TreatmentKnowledge,
    n_patients: int,
    seed: int | None,
    years: float,
    arm: Arm,
    *,
    workers: int,
    start: int = 0,
    progress: Callable[[int], object] | None = None,
) -> ClinicalCohort:
    """Patients ``start ... start + n_patients - 1`` on ``workers`` processes, exactly as
    :func:`~metastasis.clinical.cohort.run_clinical_cohort` would give them in one.

    Meant to be reached through ``run_clinical_cohort(..., workers=N)``, which checks the
    arguments.  The root seed is resolved here, once, before the split: a seed drawn in
    each chunk would make each chunk a different cohort.  ``progress`` is called in this
    process with the number of patients of each chunk as it finishes.  With one worker, or
    one chunk, no pool is started.
    """
    seed = check_seed(seed)
    years = check_years(years)
    bounds = chunk_bounds(start, n_patients, workers * CHUNKS_PER_WORKER)
    processes = min(workers, len(bounds))
    if processes <= 1:
        return run_clinical_cohort(model, clinical, treatments, n_patients, seed, years, arm,
                                   start=start, progress=progress)
    context = _context()
    parts: list[ClinicalCohort] = []
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        pending: dict[Future[ClinicalCohort], int] = {
            pool.submit(_run_chunk, model, clinical, treatments, seed, years, arm, first,
                        count): count
            for first, count in bounds
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    count = pending.pop(future)
                    parts.append(future.result())
                    if progress is not None:
                        progress(count)
        except _ChunkError as error:
            raise ModelError(*error.args) from None
        finally:
            for future in pending:  # a failure or an interrupt: run no more chunks
                future.cancel()
    return ClinicalCohort.concat(parts)
