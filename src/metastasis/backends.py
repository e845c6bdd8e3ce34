"""Where chunks of a cohort run: this process, local worker processes, or a Dask cluster.

A cohort is cut into contiguous chunks of patient indices.  Patient ``i`` depends only on
(root seed, ``i``) (:mod:`metastasis.engine.seeds`), so a chunk gives the same rows wherever
it runs, and chunks joined in index order give exactly the table of one serial run: the
backends differ in speed only, never in results.  Each backend takes a job (a picklable
callable of a :class:`Chunk`) and yields ``(chunk, part)`` as chunks finish, keeping only a
few chunks in flight, so that a caller that writes each part as it comes (an out-of-core
dataset) holds a bounded amount of memory whatever the cohort's size.

Local processes start by ``forkserver`` (``spawn`` where there is none).  ``fork`` copies
the parent as it is, the locks of its threads included, and the parent is rarely
single-threaded here (the progress bar refreshes from a thread, the web server has its own,
numerical libraries keep thread pools): a lock held at the moment of the fork stays held
forever in the child.  ``forkserver`` starts one clean server per session that imports this
package once (the preload) and forks every worker from it: as safe as ``spawn``, but the
second and later pools start in a fraction of a second.

Dask (``pip install 'metastasis[distributed]'``): ``scheduler="local"`` starts a
``LocalCluster`` of ``workers`` single-threaded worker processes for the run and closes it
after; ``scheduler="tcp://HOST:PORT"`` submits to a running cluster, whose workers must have
this package installed (the same version: a job carries its resolved model, not code).

Both start fresh interpreters that import the caller's main module.  A script that runs a
parallel cohort at import time, without ``if __name__ == "__main__":``, would run it again
in every worker; this is detected and refused with a message saying what to add.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any, Protocol, TypeVar

from metastasis.errors import ModelError
from metastasis.limits import DEFAULT_CHUNK_PATIENTS

__all__ = [
    "DEFAULT_CHUNK_PATIENTS",
    "Backend",
    "Chunk",
    "DaskBackend",
    "ProcessBackend",
    "SerialBackend",
    "check_scheduler",
    "check_workers",
    "make_backend",
    "opened",
    "plan_chunks",
    "shared_chunk_size",
]

Part = TypeVar("Part")

START_METHOD = "forkserver"
"""How local worker processes start (see the module's docstring for why not ``fork``)."""

PRELOAD = ["metastasis.backends", "metastasis.runs"]
"""What the fork server imports once, so that the workers forked from it start ready (the
model, the engine, the clinical layer and pandas come with :mod:`metastasis.runs`)."""

CHUNKS_PER_WORKER = 4
"""Chunks per worker when an in-memory cohort is shared out: patients differ several-fold
in cost (a heavy spreader, a long treated course), so a few chunks per worker let one that
drew cheap patients take more, while the per-chunk overhead (sending the model, building a
table) stays small."""

MAX_SHARED_CHUNK_PATIENTS = 2000
"""Largest chunk of an in-memory cohort shared out: bounds the memory of a part in flight
(tens of MB of lesion rows at 10 years) for any cohort size."""

IN_FLIGHT_PER_WORKER = 2
"""Chunks submitted ahead per worker: one running and one queued keeps every worker busy
while a finished part is being written, and bounds the parts held in memory at once."""

LOCAL_SCHEDULER = "local"
SCHEDULER_PATTERN = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d{1,5})?/?$")
"""Addresses Dask's client accepts: a protocol, a host and an optional port."""

CONNECT_TIMEOUT_SECONDS = 10
"""How long to wait for a remote scheduler before saying it cannot be reached: long enough
for a scheduler on a busy network, short enough that a typo is reported at once."""

MAIN_GUARD = (
    'a script whose parallel run is under `if __name__ == "__main__":` (worker processes '
    "import the script again; without the guard each would start the run again)"
)


@dataclass(frozen=True)
class Chunk:
    """Patients ``start ... start + count - 1``, the ``number``-th chunk of a cohort."""

    number: int
    start: int
    count: int

    @property
    def stop(self) -> int:
        return self.start + self.count


def plan_chunks(start: int, n_patients: int, chunk_size: int) -> list[Chunk]:
    """Contiguous chunks of at most ``chunk_size`` patients covering the range, in order.

    The plan depends only on the range and the size, never on the number of workers: a run
    resumed with other workers, or on another backend, writes the same parts."""
    bounds = range(start, start + n_patients, chunk_size)
    return [Chunk(k, first, min(chunk_size, start + n_patients - first))
            for k, first in enumerate(bounds)]


def shared_chunk_size(n_patients: int, workers: int) -> int:
    """Chunk size that gives each worker a few chunks, within
    :data:`MAX_SHARED_CHUNK_PATIENTS` (results never depend on it)."""
    return max(1, min(MAX_SHARED_CHUNK_PATIENTS,
                      math.ceil(n_patients / (workers * CHUNKS_PER_WORKER))))


def check_workers(workers: object, field: str = "workers") -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ModelError(field, workers, "an integer >= 1")
    return workers


def check_scheduler(scheduler: object, field: str = "scheduler") -> str | None:
    """``None`` (no Dask), ``"local"`` or a scheduler address such as ``tcp://host:8786``."""
    if scheduler is None:
        return None
    if isinstance(scheduler, str) and (
        scheduler == LOCAL_SCHEDULER or SCHEDULER_PATTERN.match(scheduler)
    ):
        return scheduler
    raise ModelError(field, scheduler,
                     f"'{LOCAL_SCHEDULER}' or a Dask scheduler address such as tcp://HOST:PORT")


def _refuse_inside_bootstrap(workers: int) -> None:
    """Refuse to start workers from a worker that is still importing the caller's script.

    ``_inheriting`` is multiprocessing's own flag for a child that is being prepared (it
    imports the parent's main module then); a parallel run started at that moment is the
    unguarded script running itself again."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ModelError("workers", workers, MAIN_GUARD)


class Backend(Protocol):
    """Runs a job over chunks and yields each part as its chunk finishes."""

    workers: int
    """How many chunks it runs at once (to size the chunks)."""

    def run(self, job: Callable[[Chunk], Part], chunks: Sequence[Chunk]
            ) -> Iterator[tuple[Chunk, Part]]: ...

    def close(self) -> None: ...


class SerialBackend:
    """Every chunk in this process, in order."""

    workers = 1

    def run(self, job: Callable[[Chunk], Part], chunks: Sequence[Chunk]
            ) -> Iterator[tuple[Chunk, Part]]:
        for chunk in chunks:
            yield chunk, job(chunk)

    def close(self) -> None:
        pass


def _context() -> BaseContext:
    """The multiprocessing context of the pools (``spawn`` where there is no fork server).

    The preload is a setting of the one fork server of this process; it takes effect when
    that server starts, so a server started earlier by other code stays as it was (its
    workers then import the package themselves: slower, same results)."""
    if START_METHOD not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context(START_METHOD)
    context.set_forkserver_preload(PRELOAD)
    return context


class ProcessBackend:
    """Chunks on ``workers`` local processes (a pool started on first use)."""

    def __init__(self, workers: int) -> None:
        self.workers = check_workers(workers)
        _refuse_inside_bootstrap(self.workers)
        self._pool: ProcessPoolExecutor | None = None

    def run(self, job: Callable[[Chunk], Part], chunks: Sequence[Chunk]
            ) -> Iterator[tuple[Chunk, Part]]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_context())
        pool = self._pool
        waiting = list(reversed(chunks))
        pending: dict[Future[Any], Chunk] = {}
        limit = self.workers * IN_FLIGHT_PER_WORKER
        try:
            while waiting or pending:
                while waiting and len(pending) < limit:
                    chunk = waiting.pop()
                    pending[pool.submit(job, chunk)] = chunk
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: pending[f].number):
                    chunk = pending.pop(future)
                    yield chunk, future.result()
        except BrokenProcessPool:
            raise ModelError("workers", self.workers, "worker processes that start and run; "
                             "one stopped abruptly (out of memory, or killed), or " + MAIN_GUARD
                             ) from None
        finally:
            for future in pending:  # a failure or an interrupt: run no more chunks
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskBackend:
    """Chunks on a Dask cluster: a ``LocalCluster`` of ``workers`` processes, or a running
    scheduler at an address."""

    def __init__(self, scheduler: str, workers: int = 1) -> None:
        self.scheduler = check_scheduler(scheduler, "scheduler") or LOCAL_SCHEDULER
        self.workers = check_workers(workers)
        _refuse_inside_bootstrap(self.workers)
        try:
            import distributed
        except ImportError:
            raise ModelError("scheduler", scheduler, "a scheduler with Dask installed: "
                             "pip install 'metastasis[distributed]'") from None
        self._cluster = None
        if self.scheduler == LOCAL_SCHEDULER:
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR)
            address: Any = self._cluster
        else:
            address = self.scheduler
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT_SECONDS,
                                             set_as_default=False)
        except (OSError, TimeoutError) as error:
            self.close()
            raise ModelError("scheduler", scheduler, "a reachable Dask scheduler "
                             f"(tcp://HOST:PORT): {type(error).__name__}") from None

        if self._cluster is None:  # a running cluster: as many workers as it has now
            self.workers = max(1, len(self.client.scheduler_info(n_workers=-1)
                                      .get("workers", {})))

    def _in_flight(self) -> int:
        return self.workers * IN_FLIGHT_PER_WORKER

    def run(self, job: Callable[[Chunk], Part], chunks: Sequence[Chunk]
            ) -> Iterator[tuple[Chunk, Part]]:
        from distributed import as_completed

        waiting = list(reversed(chunks))
        limit = self._in_flight()
        pending: dict[Any, Chunk] = {}

        def submit() -> Any:
            chunk = waiting.pop()
            # pure=False: the same job submitted again (a resumed run) is computed again
            future = self.client.submit(job, chunk, pure=False)
            pending[future] = chunk
            return future

        first = [submit() for _ in range(min(limit, len(waiting)))]
        stream = as_completed(first, loop=self.client.loop)
        try:
            for future in stream:
                chunk = pending.pop(future)
                part = future.result()
                future.release()
                if waiting:
                    stream.add(submit())
                yield chunk, part
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


@contextlib.contextmanager
def opened(workers: int = 1, scheduler: str | None = None, backend: Backend | None = None
           ) -> Iterator[Backend]:
    """``backend`` as it is (the caller closes it), else a new one for ``workers`` and
    ``scheduler``, closed on leaving."""
    if backend is not None:
        yield backend
        return
    made = make_backend(workers, scheduler)
    try:
        yield made
    finally:
        made.close()


def make_backend(workers: int = 1, scheduler: str | None = None) -> Backend:
    """The backend for ``workers`` and ``scheduler`` (both checked): serial for one worker
    and no scheduler, local processes for more, Dask whenever a scheduler is named."""
    workers = check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if scheduler is not None:
        return DaskBackend(scheduler, workers)
    if workers == 1:
        return SerialBackend()
    return ProcessBackend(workers)
