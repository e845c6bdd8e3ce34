"""Simulations for the web, off the event loop, bounded in number and in time.

A web server must never hang on one request.  Simulations therefore run in a small pool of
worker threads; a request that finds every worker and every waiting place taken is refused
at once (503), and a request that runs past its time limit is answered with a 503 while its
worker stops at the next chunk boundary: a cohort is run in chunks of patients through the
public :func:`metastasis.cohort.run_cohort` (a cohort is identical however it is chunked, so
chunking costs nothing in reproducibility) and every chunk first checks the deadline.  A
single patient is not interruptible, but the years limit bounds it to about a second.

Patients are cached by (cancer, seed, index, years) and, for a clinical course, by whether
the arm screens: they are deterministic, and the patient page asks for the same patient once
per slider move.  A clinical cohort checks the deadline after every patient (a whole course
costs tens of milliseconds, so that is fine-grained enough without chunking).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from metastasis.api import check_seed, load_model, run_patient
from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import TreatmentKnowledge, load_treatments
from metastasis.cohort import CohortResult, run_cohort
from metastasis.limits import FOLLOW_UP_YEARS
from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import PatientResult
from metastasis.web.limits import Limits

T = TypeVar("T")

CHUNK_SECONDS = 0.25
"""Target duration of one cohort chunk: short enough that a request stops soon after its
deadline, long enough that the per-chunk bookkeeping (a few ms) stays negligible."""

PATIENT_CACHE_SIZE = 64


class Busy(RuntimeError):
    """Every worker and waiting place is taken: try again shortly."""


class TooSlow(RuntimeError):
    """The request ran past its time limit and was stopped."""


class Deadline:
    """A point in time after which work must stop, and a flag to stop it earlier."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def expired(self) -> bool:
        return self._cancelled.is_set() or time.monotonic() > self.at

    def check(self) -> None:
        """Raise :class:`TooSlow` if the work should stop now."""
        if self.expired():
            raise TooSlow(self.seconds)


class Runner:
    """The web's one way to run simulations: a bounded pool, a deadline, a patient cache."""

    def __init__(self, limits: Limits, model_path: str | Path | None = None) -> None:
        self.limits = limits
        self.model_path = model_path
        self._pool = self._new_pool()
        self._places = threading.BoundedSemaphore(limits.max_running + limits.max_waiting)
        self._lock = threading.Lock()
        self._active = 0
        self._patients: OrderedDict[tuple[str, int, int, float], PatientResult] = OrderedDict()
        self._courses: OrderedDict[tuple[str, int, int, float, bool], ClinicalResult] = (
            OrderedDict()
        )
        self.model = lru_cache(maxsize=64)(self._load)
        self._clinical: tuple[ClinicalKnowledge, TreatmentKnowledge] | None = None

    # ------------------------------------------------------------------ models and patients

    def _load(self, cancer: str) -> ResolvedModel:
        """Resolve a cancer type once (resolving solves the journey chain)."""
        return load_model(cancer, self.model_path)

    def patient(self, cancer: str, seed: int, index: int, years: float) -> PatientResult:
        """One patient, from the cache or simulated now (call from a worker thread)."""
        key = (cancer, seed, index, float(years))
        with self._lock:
            if key in self._patients:
                self._patients.move_to_end(key)
                return self._patients[key]
        result = run_patient(self.model(cancer), seed, index, years)
        with self._lock:
            self._patients[key] = result
            while len(self._patients) > PATIENT_CACHE_SIZE:
                self._patients.popitem(last=False)
        return result

    def clinical_knowledge(self) -> tuple[ClinicalKnowledge, TreatmentKnowledge]:
        """The packaged clinical and treatment knowledge, read on first use.

        Read lazily so that an explorer that never shows a clinical course does not pay for
        parsing (and validating) two more knowledge files at start-up.
        """
        with self._lock:
            if self._clinical is None:
                self._clinical = (load_clinical(), load_treatments())
            return self._clinical

    @staticmethod
    def arm(screening: bool) -> Arm:
        """Standard care, with or without the cancer type's screening programmes; each
        diagnosed patient followed :data:`~metastasis.limits.FOLLOW_UP_YEARS` years."""
        return Arm("screening" if screening else "standard care", screening=screening,
                   years_after_diagnosis=FOLLOW_UP_YEARS)

    def course(self, cancer: str, seed: int, index: int, years: float, screening: bool
               ) -> ClinicalResult:
        """One patient's whole clinical course, cached (call from a worker thread)."""
        key = (cancer, seed, index, float(years), bool(screening))
        with self._lock:
            if key in self._courses:
                self._courses.move_to_end(key)
                return self._courses[key]
        clinical, treatments = self.clinical_knowledge()
        result = simulate_course(self.model(cancer), clinical, treatments, seed, index, years,
                                 self.arm(screening))
        with self._lock:
            self._courses[key] = result
            while len(self._courses) > PATIENT_CACHE_SIZE:
                self._courses.popitem(last=False)
        return result

    def clinical_cohort(
        self, cancer: str, patients: int, seed: int, years: float, screening: bool,
        deadline: Deadline,
    ) -> ClinicalCohort:
        """A clinical cohort that checks ``deadline`` after every patient."""
        clinical, treatments = self.clinical_knowledge()
        deadline.check()
        return run_clinical_cohort(
            self.model(cancer), clinical, treatments, patients, seed, years,
            self.arm(screening), progress=lambda _done: deadline.check(),
        )

    def cohort(
        self, cancer: str, patients: int, seed: int | None, years: float, deadline: Deadline
    ) -> CohortResult:
        """A cohort run in chunks that each check ``deadline`` first.

        Chunks grow so that each takes about :data:`CHUNK_SECONDS`; the joined result is
        identical to one :func:`run_cohort` call over the whole range.
        """
        model = self.model(cancer)
        seed = check_seed(seed)  # drawn once, so that every chunk belongs to one cohort
        parts: list[CohortResult] = []
        start, chunk = 0, 4
        while start < patients:
            deadline.check()
            size = min(chunk, patients - start)
            began = time.monotonic()
            parts.append(run_cohort(model, size, seed, years, start=start, keep_lesions=False))
            per_patient = max(time.monotonic() - began, 1e-6) / size
            start += size
            chunk = max(1, min(1000, int(CHUNK_SECONDS / per_patient)))
        return parts[0] if len(parts) == 1 else CohortResult.concat(parts)

    # ------------------------------------------------------------------ bounded execution

    @property
    def active(self) -> int:
        """Simulations submitted and not yet finished (running or waiting)."""
        with self._lock:
            return self._active

    def _finished(self, _future: Future[Any]) -> None:
        with self._lock:
            self._active -= 1
        self._places.release()

    async def call(self, work: Callable[[Deadline], T]) -> T:
        """Run ``work(deadline)`` in a worker thread, within the request time limit.

        Raises :class:`Busy` when no place is free and :class:`TooSlow` when the limit
        passes; in that case the deadline is cancelled so the worker stops at its next
        check, and its place is given back when it does.
        """
        if not self._places.acquire(blocking=False):
            raise Busy()
        deadline = Deadline(self.limits.request_seconds)
        with self._lock:
            self._active += 1
        try:
            future = self._pool.submit(work, deadline)
        except RuntimeError:  # the pool is shut down
            with self._lock:
                self._active -= 1
            self._places.release()
            raise Busy() from None
        future.add_done_callback(self._finished)
        wrapped = asyncio.wrap_future(future)
        # an abandoned run still ends (with TooSlow); read its outcome so that asyncio does
        # not log "exception was never retrieved"
        wrapped.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            # shield: the timeout must not cancel the future under a running thread;
            # the deadline tells the work to stop instead
            return await asyncio.wait_for(asyncio.shield(wrapped), self.limits.request_seconds)
        except TimeoutError:
            deadline.cancel()
            future.cancel()  # if it never started, it never will
            raise TooSlow(self.limits.request_seconds) from None

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.limits.max_running,
                                  thread_name_prefix="metastasis-sim")

    def start(self) -> None:
        """Take work again after :meth:`shutdown`: an app served again (a test client opened
        a second time, a server restarted in the same process) gets a fresh pool instead of
        answering every simulation with 503."""
        with self._lock:
            if getattr(self._pool, "_shutdown", False):
                self._pool = self._new_pool()

    def shutdown(self) -> None:
        """Stop taking work; running simulations finish or stop at their deadline."""
        self._pool.shutdown(wait=False, cancel_futures=True)
