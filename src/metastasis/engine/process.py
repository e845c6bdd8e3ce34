"""A patient's disease process that treatment can pause, change and continue, exactly.

The natural history is sampled forward to the horizon in one go (see
:mod:`metastasis.engine.patient` for the algorithm).  Treatment is the only way back in:
:meth:`DiseaseProcess.intervene` cuts the sampled future at the day of the intervention,
changes the lesions (kill a fraction of cells, remove a lesion, add a resistant clone) and
samples a new future from that day.  This is exact because the founders of a Poisson
process on disjoint intervals are independent: the discarded future was never used, and
lesions founded before the cut keep everything they had drawn (a dormant cell's waking
day, a micrometastasis's outgrowth day), which is their state at the cut.

A lesion is stored as one or more *segments* (rows): a change at day T closes the lesion's
current row at T and opens a new row from T with the new growth curve, so sizes before T
stay as they were.  Rows carry a stable ``lesion`` id; ``parent`` refers to lesion ids.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.engine.accounting import draw_accounting
from metastasis.engine.burden import BurdenTracker, total_burden
from metastasis.engine.intervention import apply_changes, dividing_rows
from metastasis.engine.sampling import (
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    MUTATION_ROUTE,
    PRIMARY_ROUTE,
    sample_pieces,
    shedding_shares_reference,
)
from metastasis.engine.tables import table_of_rows
from metastasis.errors import ModelError
from metastasis.model.growth import (
    cumulative_emission_rows,
    cumulative_emission_scalar,
    gompertz_age_at_scalar,
    gompertz_size,
    inverse_cumulative_emission,
    inverse_cumulative_emission_rows,
    inverse_cumulative_emission_scalar,
)
from metastasis.model.resolve import FATES, OUTGROWTH, ResolvedModel
from metastasis.results.patient import Accounting, LesionTable, PatientResult

_TABLE_COLUMNS = tuple(f.name for f in dataclasses.fields(LesionTable)
                       if f.name not in ("id", "lesion"))
"""Columns a lesion row shares with the result table (the rest are engine bookkeeping; the
row's ``lesion`` id is the table's ``lesion``, and the table's ``id`` is its own count)."""

SAMPLING_STEP_DAYS = 365.25
"""Length of the pieces the future is sampled in (a cost setting: pieces are exact). A year
is short beside the years a cancer takes to be found, and long enough that a piece's fixed
cost is small."""

FIRST_PIECE_AFTER_CUT_DAYS = 14.0
"""After a treatment cuts the future at day T, the pieces end at T + 14, T + 14 + 28, ...
(each twice the last, up to :data:`SAMPLING_STEP_DAYS`): a cost setting, as exact as any.
Treatment reads the process every few weeks and cuts it again, so a year-long piece after a
cut was mostly sampled to be thrown away; two weeks is the commonest interval between
cycles.  The days depend only on T, never on who reads, so reading still changes nothing."""

VECTOR_MIN_SOURCES = 8
"""Lesions expanded together in one round are handled as arrays from this many on; below it,
numpy's fixed cost per call exceeds a loop over scalars (a cost setting: both are exact)."""

PRIMARY = 0

MAX_LESION_ROWS = 2_000_000
"""Most lesion segments one patient's history may hold: about 300 MB of columns (19 of 8
bytes each), twenty times the most lesions any of 10,000 default colorectal patients held
after 10 untreated years when issue 8 measured them (86,151).  Accepted knowledge files can
still combine values (a lethal burden never reached, heavy shedding, long horizons) into
millions of metastases; such a history is refused with one clear error rather than
exhausting memory."""


def _over_budget(rows: int) -> ModelError:
    return ModelError(
        "lesions", rows,
        f"at most {MAX_LESION_ROWS:,} lesion segments per patient: these parameters "
        "seed more metastases than one history can hold (lower the shedding rate, the "
        "survival of shed cells, the lethal burden or the years)")


class LesionRows:
    """Growable columns of lesion segments while a patient is simulated.

    The columns are the rows of two 2-D buffers, one of floats and one of integers
    (:data:`~metastasis.engine.sampling.FLOAT_COLUMNS`, :data:`~metastasis.engine.sampling.
    INTEGER_COLUMNS`), grown by doubling: founders arrive in batches, and the compiled sampler
    reads and extends the buffers in place, with no copy per piece of the future.  Each column
    is an attribute (a view of its buffer row), read and written like an array.
    """

    COLUMNS = ("lesion", *_TABLE_COLUMNS, "curve_start", "curve_x0", "emit_from")
    """The result table's columns (derived, so the two cannot drift apart) and the engine's
    own bookkeeping: the curve a lesion sheds from, and the day it starts shedding."""
    INTEGER_COLUMNS = frozenset(INTEGER_COLUMNS)
    INITIAL_CAPACITY = 32

    # the columns, views of the buffers' rows (declared for readers and type checkers;
    # tests/test_changes.py checks that the declarations, COLUMNS and the buffers agree)
    lesion: NDArray[np.int64]
    site: NDArray[np.int64]
    parent: NDArray[np.int64]
    route: NDArray[np.int64]
    arrival: NDArray[np.float64]
    awakening: NDArray[np.float64]
    colony_scale: NDArray[np.float64]
    micrometastasis: NDArray[np.float64]
    outgrowth: NDArray[np.float64]
    x0: NDArray[np.float64]
    rate: NDArray[np.float64]
    capacity: NDArray[np.float64]
    growth_start: NDArray[np.float64]
    valid_from: NDArray[np.float64]
    valid_to: NDArray[np.float64]
    resistance: NDArray[np.int64]
    curve_start: NDArray[np.float64]
    curve_x0: NDArray[np.float64]
    emit_from: NDArray[np.float64]

    def __init__(self) -> None:
        self.size = 0
        self.next_lesion = 0
        self.version = 0
        """Counts changes to the rows, so that what is derived from them can be kept."""
        self.floats = np.empty((len(FLOAT_COLUMNS), self.INITIAL_CAPACITY))
        self.ints = np.empty((len(INTEGER_COLUMNS), self.INITIAL_CAPACITY), dtype=np.int64)

    def __len__(self) -> int:
        return self.size

    def add(self, n: int, **columns: object) -> int:
        """Append ``n`` rows (scalars broadcast); returns the index of the first.

        Rows without a ``lesion`` column are new lesions and get fresh ids.
        """
        first = self.size
        if first + n > MAX_LESION_ROWS:
            raise _over_budget(first + n)
        if first + n > self.floats.shape[1]:
            capacity = max(2 * self.floats.shape[1], first + n)
            self.floats = _grown(self.floats, first, capacity)
            self.ints = _grown(self.ints, first, capacity)
        self.version += 1
        if "lesion" not in columns:
            columns["lesion"] = np.arange(self.next_lesion, self.next_lesion + n)
            self.next_lesion += n
        for name in self.COLUMNS:
            getattr(self, name)[first : first + n] = columns[name]
        self.size = first + n
        return first

    def adopt(self, floats: NDArray[np.float64], ints: NDArray[np.int64], size: int,
              next_lesion: int) -> None:
        """Take over buffers the compiled sampler extended (the same rows, then its own)."""
        if size != self.size or floats is not self.floats:
            self.version += 1
        self.floats, self.ints, self.size, self.next_lesion = floats, ints, size, next_lesion

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False (the discarded future), moving the kept
        ones up in place, in order."""
        self.version += 1
        self.size = _compact(self.floats, self.ints, self.size,
                             np.ascontiguousarray(mask, dtype=np.bool_))

    def view(self) -> LesionRows:
        """A view holding exactly the filled rows."""
        view = LesionRows.__new__(LesionRows)
        view.size = self.size
        view.next_lesion = self.next_lesion
        view.version = self.version
        view.floats = self.floats[:, : self.size]
        view.ints = self.ints[:, : self.size]
        return view


def _column(buffer: str, index: int) -> property:
    return property(lambda rows: getattr(rows, buffer)[index],
                    doc=f"Row {index} of the {buffer} buffer.")


for _index, _name in enumerate(FLOAT_COLUMNS):
    setattr(LesionRows, _name, _column("floats", _index))
for _index, _name in enumerate(INTEGER_COLUMNS):
    setattr(LesionRows, _name, _column("ints", _index))


@numba.njit(cache=True, nogil=True)
def _compact(floats: NDArray[np.float64], ints: NDArray[np.int64], size: int,
             mask: NDArray[np.bool_]) -> int:
    """Move the first ``size`` rows where ``mask`` holds to the front, in order; returns how
    many there are.  In place: a kept row only ever moves towards the front."""
    kept = 0
    for row in range(size):
        if mask[row]:
            if kept != row:
                floats[:, kept] = floats[:, row]
                ints[:, kept] = ints[:, row]
            kept += 1
    return kept


def _grown(buffer: NDArray, filled: int, capacity: int) -> NDArray:
    """``buffer``'s first ``filled`` columns in a new buffer of ``capacity`` columns."""
    grown = np.empty((buffer.shape[0], capacity), dtype=buffer.dtype)
    grown[:, :filled] = buffer[:, :filled]
    return grown


def _primary_invasion(model: ResolvedModel, rng: np.random.Generator) -> tuple[float, float]:
    """Times at which the primary first holds a motile cell (step 1) and breaches (step 2).

    Motility arises in each new cell with probability u, so with n(t) = x(t) - 1 new cells
    the first motile cell appears when n(t) exceeds an Exp(1)/u draw.  The breach hazard is
    kappa * m(t)**alpha with m the motile clone (a Gompertz lesion from one cell), sampled by
    time-rescaling of its closed-form cumulative hazard.
    """
    if not model.invasion_enabled:
        return 0.0, 0.0
    u = model.motility_per_new_cell
    if u <= 0.0 or model.breach_rate <= 0.0:
        return math.inf, math.inf
    size_at_motility = 1.0 + rng.exponential() / u
    motility = gompertz_age_at_scalar(
        size_at_motility, 1.0, model.primary_rate, model.primary_capacity
    )
    if not math.isfinite(motility):
        return math.inf, math.inf
    delay = inverse_cumulative_emission_scalar(
        rng.exponential(),
        1.0,
        model.primary_rate,
        model.primary_capacity,
        model.breach_rate,
        model.shedding_exponent,
    )
    return motility, motility + delay


def log10_normal_factor(rng: np.random.Generator, sd: float, lowest: float,
                        highest: float) -> float:
    """``10**(sd * Z)``, Z standard normal, truncated to ``-lowest <= sd * Z <= highest`` by
    drawing again: one patient's factor on a cancer type's median value.  Nothing is drawn
    when ``sd`` is 0, so a model without the spread samples exactly the stream it did before
    the spread existed."""
    if sd <= 0.0:
        return 1.0
    while True:
        exponent = sd * rng.standard_normal()
        if -lowest <= exponent <= highest:
            return 10.0**exponent


def patient_shedding_rate(model: ResolvedModel, rng: np.random.Generator) -> float:
    """This patient's shedding rate: the cancer type's median rate times a log-normal factor,
    truncated to 10**(+-limit); drawn first from the patient's generator."""
    limit = model.shedding_rate_log10_limit
    return model.shedding_rate * log10_normal_factor(rng, model.shedding_rate_log10_sd,
                                                     limit, limit)


def patient_metastasis_growth_factor(model: ResolvedModel, rng: np.random.Generator) -> float:
    """How many times faster than the median patient's this patient's metastases grow: a
    log-normal factor on their Gompertz rate, truncated to 10**(-limit) .. 10**highest
    (``highest`` is the limit unless the engine's largest rate cuts it: see
    :attr:`~metastasis.knowledge.schema.Growth.metastasis_rate_spread`); drawn right after the
    shedding rate."""
    return log10_normal_factor(rng, model.metastasis_rate_log10_sd,
                               model.metastasis_rate_log10_limit,
                               model.metastasis_rate_log10_highest)


def patient_metastasis_rate(model: ResolvedModel, rng: np.random.Generator) -> float:
    """The Gompertz rate of this patient's metastases (the median patient's times
    :func:`patient_metastasis_growth_factor`)."""
    return model.metastasis_rate * patient_metastasis_growth_factor(model, rng)


@dataclass(frozen=True)
class Change:
    """One change to one lesion at the day of an intervention.

    ``surviving_fraction``: share of the lesion's cells that survive (1 leaves it as it is,
    0 removes it, as surgery does).  ``spare_resistance``: cells of a row whose resistance
    bitmask shares a bit with this mask are spared.  ``clone_cells`` > 0 adds a clone of that
    many cells, carrying ``clone_resistance`` on top of the parent's bits, growing in the
    same site from the day of the change.  ``avascular_fraction``: the share that survives
    in a lesion that is awake but not yet growing (an establishing colony or a
    micrometastasis, too small to have vessels of its own); NaN, the default, means
    ``surviving_fraction`` there too.
    """

    lesion: int
    surviving_fraction: float = 1.0
    spare_resistance: int = 0
    clone_cells: float = 0.0
    clone_resistance: int = 0
    avascular_fraction: float = math.nan


@dataclass(frozen=True)
class Changes:
    """Many :class:`Change` as columns, in order: what a day of treatment hands the process.

    A course of chemotherapy changes every lesion on every cycle, so the clinic builds its
    changes as arrays; one :class:`Change` object per lesion per cycle was most of a cycle's
    cost.  The law is the same: row k is ``Change(lesion[k], surviving_fraction[k], ...)``.
    """

    lesion: np.ndarray
    surviving_fraction: np.ndarray
    spare_resistance: np.ndarray
    clone_cells: np.ndarray
    clone_resistance: np.ndarray
    avascular_fraction: np.ndarray

    @classmethod
    def of(cls, changes: Iterable[Change]) -> Changes:
        items = list(changes)
        return cls(
            lesion=np.array([c.lesion for c in items], dtype=np.int64),
            surviving_fraction=np.array([c.surviving_fraction for c in items], dtype=float),
            spare_resistance=np.array([c.spare_resistance for c in items], dtype=np.int64),
            clone_cells=np.array([c.clone_cells for c in items], dtype=float),
            clone_resistance=np.array([c.clone_resistance for c in items], dtype=np.int64),
            avascular_fraction=np.array([c.avascular_fraction for c in items], dtype=float),
        )

    @classmethod
    def build(cls, lesion: np.ndarray, surviving_fraction: np.ndarray | float = 1.0,
              spare_resistance: np.ndarray | int = 0, clone_cells: np.ndarray | float = 0.0,
              clone_resistance: np.ndarray | int = 0,
              avascular_fraction: np.ndarray | float = math.nan) -> Changes:
        """Columns from arrays or scalars (a scalar applies to every lesion)."""
        lesion = np.asarray(lesion, dtype=np.int64)
        n = lesion.size

        def column(value: np.ndarray | float, dtype: type) -> np.ndarray:
            if np.ndim(value) == 0:  # a scalar, the common case: spared broadcasting
                return np.full(n, value, dtype=dtype)
            return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

        return cls(lesion, column(surviving_fraction, float), column(spare_resistance, np.int64),
                   column(clone_cells, float), column(clone_resistance, np.int64),
                   column(avascular_fraction, float))

    @classmethod
    def concat(cls, parts: Iterable[Changes]) -> Changes:
        parts = list(parts)
        if not parts:
            return cls.of(())
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in dataclasses.fields(cls)))

    def __len__(self) -> int:
        return int(self.lesion.size)

    def take(self, index: np.ndarray | slice) -> Changes:
        return Changes(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


@dataclass(frozen=True)
class DrugKill:
    """What one cycle of :meth:`DiseaseProcess.kill_dividing` reached, for the story: the
    tumour (process lesion id) of each treated row and of each spared row, in row order, and
    how many dormant cells it missed."""

    treated_tumours: NDArray[np.int64]
    spared_tumours: NDArray[np.int64]
    dormant: int


class DiseaseProcess:
    """The disease process of one patient, as a sequence of exactly sampled futures."""

    def __init__(self, model: ResolvedModel, rng: np.random.Generator, horizon_days: float,
                 *, reference: bool = False, piece_break: float | None = None):
        self.model = model
        self.piece_break = piece_break
        """A day on which a piece of the untreated future also ends: where a process with a
        later horizon must agree draw for draw with one whose horizon is that day (the clinic
        searches for a diagnosis up to a day, then follows the patient past it)."""
        self.reference = reference
        """Sample with the readable Python algorithm instead of its compiled copy (the same
        draws and rows: kept as the obviously correct engine the compiled one is tested
        against)."""
        self.rng = rng
        self.horizon = float(horizon_days)
        self.shedding_rate = patient_shedding_rate(model, rng)
        self.metastasis_growth_factor = patient_metastasis_growth_factor(model, rng)
        self.metastasis_rate = model.metastasis_rate * self.metastasis_growth_factor
        self.motility, self.breach = _primary_invasion(model, rng)
        self.rows = LesionRows()
        self.rows.add(
            1,
            site=model.primary_site,
            parent=-1,
            route=PRIMARY_ROUTE,
            arrival=0.0,
            awakening=0.0,
            colony_scale=1.0,
            micrometastasis=0.0,
            outgrowth=0.0,
            growth_start=0.0,
            x0=1.0,
            rate=model.primary_rate,
            capacity=model.primary_capacity,
            curve_start=self.motility,
            curve_x0=1.0,
            emit_from=self.breach,
            valid_from=0.0,
            valid_to=math.inf,
            resistance=0,
        )
        self.cut = 0.0
        self.interventions: list[float] = []
        self._sampled_to = 0.0
        self._end: float | None = None
        self._end_reason = "horizon"
        self._cached_table: tuple[tuple[int, float], LesionTable] | None = None

    # ------------------------------------------------------------------ lazy sampling
    @property
    def complete(self) -> bool:
        """Whether the future has been sampled all the way to its end."""
        return self._end is not None

    @property
    def end(self) -> float:
        """Day the history ends (horizon, lethal burden or a death the clinic recorded).

        Reading it samples the whole remaining future; :attr:`known_end` does not."""
        self._sample_through(self.horizon)
        assert self._end is not None
        return self._end

    @property
    def end_reason(self) -> str:
        self._sample_through(self.horizon)
        return self._end_reason

    @property
    def known_end(self) -> float:
        """The end if already known, else the horizon: a cheap upper bound on :attr:`end`."""
        return self._end if self._end is not None else self.horizon

    def _sample_through(self, day: float) -> None:
        """Sample the future at least up to ``day``, a year-long piece at a time.

        Sampling a future in pieces is exact for the same reason cutting it is: the founders
        of a Poisson process on disjoint intervals are independent.  The pieces end on fixed
        days (multiples of :data:`SAMPLING_STEP_DAYS`) whoever asks, so a patient's untreated
        history is drawn identically whether it is simulated alone, read a year at a time
        by the clinic, or cut by a treatment that comes later.
        """
        if not self.reference:
            self._sample_compiled_through(day)
            return
        while self._end is None and self._sampled_to < min(day, self.horizon):
            until = min(self._piece_end(self._sampled_to), self.horizon)
            end, reason = self._sample_future_reference(self._sampled_to, until)
            self._piece_sampled(until, end, reason)

    def _piece_sampled(self, until: float, end: float, reason: str) -> None:
        """Record a piece sampled up to ``until`` that ended at ``end`` for ``reason``."""
        if reason == "lethal_burden" or until >= self.horizon:
            self._end, self._end_reason = end, reason
            self._sampled_to = end
        else:
            self._sampled_to = until

    def _sample_compiled_through(self, day: float) -> None:
        """:meth:`_sample_through` in one compiled call (:mod:`metastasis.engine.sampling`):
        the pieces it needs are listed here, sampled there in turn, the same as the
        reference piece by piece."""
        pieces: list[tuple[float, float]] = []
        start = self._sampled_to
        while self._end is None and start < min(day, self.horizon):
            until = min(self._piece_end(start), self.horizon)
            pieces.append((start, until))
            start = until
        if not pieces:
            return
        rows = self.rows
        sampled = sample_pieces(rows, self.model, self.rng, self.shedding_rate,
                                self.metastasis_rate, pieces, MAX_LESION_ROWS,
                                VECTOR_MIN_SOURCES)
        if sampled.over_budget:
            raise _over_budget(sampled.size)
        rows.adopt(sampled.floats, sampled.ints, sampled.size, sampled.next_lesion)
        for _, until in pieces[: sampled.pieces - 1]:
            self._piece_sampled(until, until, "horizon")
        cut, until = pieces[sampled.pieces - 1]
        if sampled.total[-1] < self.model.lethal_burden_cells:  # it only grows in a piece
            self._piece_sampled(until, until, "horizon")
            return
        tracker = BurdenTracker.of_totals(until, self.model.lethal_burden_cells,
                                          sampled.grid, sampled.total)
        view = rows.view()
        end, reason = tracker.resolve_end(view.growth_start, view.x0, view.rate,
                                          view.capacity, valid_from=view.valid_from,
                                          valid_to=view.valid_to, after=cut, compiled=True)
        self._piece_sampled(until, end, reason)

    def _piece_end(self, sampled_to: float) -> float:
        """The end of the piece that starts at ``sampled_to``: the next multiple of
        :data:`SAMPLING_STEP_DAYS` before any treatment; after one, the next of the days
        :data:`FIRST_PIECE_AFTER_CUT_DAYS` describes, counted from the last cut."""
        if not self.interventions:
            end = (math.floor(sampled_to / SAMPLING_STEP_DAYS) + 1) * SAMPLING_STEP_DAYS
            if self.piece_break is not None and sampled_to < self.piece_break < end:
                return self.piece_break
            return end
        boundary, length = self.cut, FIRST_PIECE_AFTER_CUT_DAYS
        while boundary <= sampled_to:
            boundary += length
            length = min(2.0 * length, SAMPLING_STEP_DAYS)
        return boundary

    # ------------------------------------------------------------------ sampling
    def _row_rates(self, index: np.ndarray) -> np.ndarray:
        """The shedding rate of each row: the patient's rate times the row's share (a
        metastasis sheds ``metastasis_shedding_factor`` times what the primary does)."""
        return self.shedding_rate * shedding_shares_reference(self.rows, self.model)[index]

    def _cumulative(self, i: int, t: float) -> float:
        rows = self.rows
        return cumulative_emission_scalar(
            t - float(rows.curve_start[i]),
            float(rows.curve_x0[i]),
            float(rows.rate[i]),
            float(rows.capacity[i]),
            float(self._row_rates(np.array([i]))[0]),
            self.model.shedding_exponent,
        )

    def _cumulative_rows(self, index: np.ndarray, t: float | np.ndarray) -> np.ndarray:
        rows = self.rows
        ages = np.broadcast_to(t - rows.curve_start[index], index.shape)
        rates = self._row_rates(index)
        emitted = np.empty(index.shape)
        for rate in np.unique(rates):  # one rate per lineage (the primary's, metastases')
            same = rates == rate
            emitted[same] = cumulative_emission_rows(
                ages[same], rows.curve_x0[index[same]], rows.rate[index[same]],
                rows.capacity[index[same]], float(rate), self.model.shedding_exponent,
            )
        return emitted

    def _found(
        self, sources: np.ndarray, counts: np.ndarray, at_start: np.ndarray,
        expected: np.ndarray, stop: float,
    ) -> list[tuple[float, int]]:
        """Add the founders of growing metastases shed by ``sources`` (``counts[k]`` of them
        from source k, shed between cumulative emissions ``at_start[k]`` and ``at_start[k]
        + expected[k]``) and return ``(outgrowth day, row)`` of those that start growing
        before ``stop``.

        Given their number, a Poisson process's points are uniform in its cumulative
        intensity, so each founder's shedding day is the inverse of the emission at a
        uniform point; the rest of its path is drawn from the resolved fate probabilities.
        """
        model, rng, rows = self.model, self.rng, self.rows
        n = int(counts.sum())
        if sources.size == 1:  # the common case, a lesion that began shedding in the piece
            i = int(sources[0])
            source: np.ndarray | int = i  # scalars broadcast: no per-founder arrays to build
            targets = at_start[0] + np.sort(rng.random(n)) * expected[0]
            arrival = rows.curve_start[i] + inverse_cumulative_emission(
                targets, rows.curve_x0[i], rows.rate[i], rows.capacity[i],
                float(self._row_rates(np.array([i]))[0]), model.shedding_exponent,
            )
            site: np.ndarray | int = int(rows.site[i])
            target_site = np.searchsorted(model.founder_target_cdf[site], rng.random(n),
                                          side="right")
        else:
            source = np.repeat(sources, counts)
            group = np.repeat(np.arange(sources.size), counts)
            uniform = rng.random(n)
            uniform = uniform[np.lexsort((uniform, group))]  # sorted within each source
            targets = np.repeat(at_start, counts) + uniform * np.repeat(expected, counts)
            rates = self._row_rates(source)
            arrival = np.empty(n)
            for rate in np.unique(rates):  # one rate per lineage
                same = rates == rate
                arrival[same] = rows.curve_start[source[same]] + inverse_cumulative_emission_rows(
                    targets[same], rows.curve_x0[source[same]], rows.rate[source[same]],
                    rows.capacity[source[same]], float(rate), model.shedding_exponent,
                )
            site = rows.site[source]
            # searchsorted(cdf, u, side="right") row by row: how many cdf values are <= u
            target_site = (model.founder_target_cdf[site] <= rng.random(n)[:, None]).sum(axis=1)
        cumulative_routes = model.founder_route[site, target_site]  # [founder, route]
        route = (rng.random(n)[:, None] > cumulative_routes[:, :-1]).sum(axis=1)
        slept = rng.random(n) < model.dormant_share_of_outgrowth
        awakening = arrival + np.where(
            slept, rng.exponential(model.mean_dormancy_days, size=n), 0.0
        )
        micro = model.micrometastasis_cells
        net_colony_rate = model.colony_birth_rate - model.colony_death_rate
        if micro > 1.0:
            scale = rng.exponential(model.colony_birth_rate / net_colony_rate, size=n)
            to_micro = np.maximum(np.log(micro / scale), 0.0) / net_colony_rate
        else:
            scale = np.ones(n)
            to_micro = np.zeros(n)
        micrometastasis = awakening + to_micro
        outgrowth = micrometastasis + rng.exponential(model.mean_outgrowth_delay_days, size=n)
        x0 = max(micro, 1.0)
        first = rows.add(
            n,
            site=target_site,
            parent=rows.lesion[source],
            route=route,
            arrival=arrival,
            awakening=awakening,
            colony_scale=scale,
            micrometastasis=micrometastasis,
            outgrowth=outgrowth,
            growth_start=outgrowth,
            x0=x0,
            rate=self.metastasis_rate,
            capacity=model.site_capacity[target_site],
            curve_start=outgrowth,
            curve_x0=x0,
            emit_from=outgrowth,
            valid_from=arrival,
            valid_to=math.inf,
            resistance=rows.resistance[source],
        )
        soon = np.flatnonzero(outgrowth < stop)
        return list(zip(outgrowth[soon].tolist(), (first + soon).tolist(), strict=True))

    def _shed_one(self, row: int, start: float, stop: float,
                  heap: list[tuple[float, int]]) -> None:
        """Expand one lesion's founders on [start, stop] (scalars: cheaper than arrays for a
        few lesions) and queue those that start growing before ``stop``."""
        if start >= stop:
            return
        q = self.model.founder_total[self.rows.site[row]]
        if q <= 0.0:
            return
        at_start = self._cumulative(row, start)
        expected = self._cumulative(row, stop) - at_start
        count = self.rng.poisson(expected * q)
        if count == 0:
            return
        for outgrowth, new_row in self._found(np.array([row]), np.array([count]),
                                              np.array([at_start]), np.array([expected]), stop):
            heapq.heappush(heap, (outgrowth, new_row))

    def _sample_future_reference(self, cut: float, until: float) -> tuple[float, str]:
        """Sample every founder after ``cut`` up to ``until`` or the lethal burden (the
        readable algorithm; :mod:`metastasis.engine.sampling` is its compiled copy)."""
        model, rng, rows = self.model, self.rng, self.rows
        n = rows.size
        valid = rows.valid_to[:n] > cut
        growing = np.flatnonzero(valid & (rows.growth_start[:n] <= cut))
        starts = np.maximum(rows.emit_from[:n], cut)
        sources = np.flatnonzero(valid & (starts < until))
        if sources.size == 0:
            # nothing sheds in this piece: only the lethal burden could end it, and the
            # burden only grows within a piece, so its value on the last day decides
            at_end = total_burden(
                until,
                rows.growth_start[growing],
                rows.x0[growing],
                rows.rate[growing],
                rows.capacity[growing],
            )
            if at_end < model.lethal_burden_cells:
                return until, "horizon"
        burden = BurdenTracker(until, model.lethal_burden_cells, start=cut)
        burden.add_many(
            rows.growth_start[growing],
            rows.x0[growing],
            rows.rate[growing],
            rows.capacity[growing],
            active_from=cut,
        )
        counted = np.zeros(n, dtype=bool)
        counted[growing] = True
        heap = list(zip(starts[sources].tolist(), sources.tolist(), strict=True))
        heapq.heapify(heap)
        founder_total = model.founder_total
        while heap:
            # every lesion that starts shedding before the current end is expanded at once:
            # each sheds independently on [start, stop], the stop only moves earlier as
            # lesions are counted, and founders after the final end are dropped, so taking
            # the round's stop for all of them is as exact as taking it one at a time
            batch = []
            while heap and heap[0][0] < burden.stop:
                batch.append(heapq.heappop(heap))
            if not batch:
                break
            for _, row in batch:
                if row >= counted.size or not counted[row]:
                    burden.add(
                        float(rows.growth_start[row]),
                        float(rows.x0[row]),
                        float(rows.rate[row]),
                        float(rows.capacity[row]),
                    )
            stop = burden.stop
            if self.shedding_rate <= 0.0:
                continue
            if len(batch) < VECTOR_MIN_SOURCES:
                for start, row in batch:
                    self._shed_one(row, start, stop, heap)
                continue
            begin = np.array([start for start, _ in batch])
            source = np.array([row for _, row in batch], dtype=np.int64)
            q = founder_total[rows.site[source]]
            live = (begin < stop) & (q > 0.0)
            begin, source, q = begin[live], source[live], q[live]
            if source.size == 0:
                continue
            at_start = self._cumulative_rows(source, begin)
            expected = self._cumulative_rows(source, stop) - at_start
            counts = rng.poisson(expected * q)
            shedding = counts > 0
            if not shedding.any():
                continue
            for outgrowth, new_row in self._found(source[shedding], counts[shedding],
                                                  at_start[shedding], expected[shedding], stop):
                heapq.heappush(heap, (outgrowth, new_row))

        if burden.total[-1] < burden.lethal:  # the burden only grows within a piece
            return until, "horizon"
        view = rows.view()
        return burden.resolve_end(
            view.growth_start,
            view.x0,
            view.rate,
            view.capacity,
            valid_from=view.valid_from,
            valid_to=view.valid_to,
            after=cut,
        )

    # ------------------------------------------------------------------ treatment
    def intervene(self, day: float, changes: Iterable[Change] | Changes) -> None:
        """Cut the future at ``day``, apply ``changes`` and sample a new future from there.

        Interventions come in time order, before the end of the natural history.
        """
        day = float(day)
        if day < self.cut or (self.interventions and day < self.interventions[-1]):
            raise ValueError(f"interventions must come in time order; day {day} is too early")
        self._sample_through(day)
        if self._end is not None and day >= self._end:
            return
        rows = self.rows
        # rows founded on the day itself are this day's own changes (a clone added by an
        # earlier call); sampled founders arrive on a given day with probability zero
        keep = rows.arrival[: rows.size] <= day
        keep[0] = True
        rows.keep(keep)
        columns = changes if isinstance(changes, Changes) else Changes.of(changes)
        if self.reference:
            self._apply_all_reference(day, columns)
        else:
            apply_changes(rows, day, columns,
                          self.model.colony_birth_rate - self.model.colony_death_rate,
                          MUTATION_ROUTE)
            if rows.size > MAX_LESION_ROWS:
                raise _over_budget(rows.size)
        self.cut = day
        self.interventions.append(day)
        self._sampled_to, self._end, self._end_reason = day, None, "horizon"

    def kill_dividing(self, day: float, surviving_fraction: float, spare_resistance: int,
                      avascular_fraction: float = math.nan) -> DrugKill | None:
        """One cycle of a drug that reaches every lesion: every lesion present on ``day``
        that divides keeps ``surviving_fraction`` of its cells (``avascular_fraction`` in an
        establishing colony or a micrometastasis, where it is a number), except those whose
        resistance bits share one with ``spare_resistance``; dormant cells are missed.  None,
        with nothing changed, when the history ends on or before the day.

        The same intervention as the clinic building these changes from a lesion table
        (its readable path, which a reference process keeps), without the table: a course of
        chemotherapy is a dozen such days per patient, and building a table on each was most
        of their cost (issue 8)."""
        day = float(day)
        self._sample_through(day)
        if day >= self.known_end:
            return None
        treated, treated_tumours, spared_tumours, dormant = dividing_rows(
            self.rows, day, spare_resistance)
        if treated.size:
            self.intervene(day, Changes.build(self.rows.lesion[treated],
                                              surviving_fraction=surviving_fraction,
                                              spare_resistance=spare_resistance,
                                              avascular_fraction=avascular_fraction))
        return DrugKill(treated_tumours, spared_tumours, dormant)

    def stop_at(self, day: float, reason: str) -> None:
        """End the history early (the patient died of something the clinic observed, such as
        organ failure): nothing after ``day`` is kept, nothing needs resampling."""
        self._sample_through(day)
        if day < self.known_end:
            self._end, self._end_reason = float(day), reason
            self._sampled_to = float(day)

    def shorten_horizon(self, day: float) -> None:
        """Bring the horizon forward to ``day`` (the clinic follows a patient a set time after
        the diagnosis, a day it learns only by reading the history).

        Exact, like sampling in pieces: the pieces end on fixed days whoever asks, only the
        last one is truncated at the horizon, and a Poisson process restricted to a shorter
        interval is still one.  What was already sampled beyond ``day`` is not kept."""
        day = float(day)
        if day >= self.horizon:
            return
        if day < self.cut:
            raise ValueError(f"the horizon cannot move before the last intervention ({day})")
        self.horizon = day
        if self._end is not None and self._end <= day:
            return  # the history already ends earlier (lethal burden or a recorded death)
        if self._end is not None or self._sampled_to >= day:
            self._end, self._end_reason, self._sampled_to = day, "horizon", day

    def _apply_all_reference(self, day: float, changes: Changes) -> None:
        """Apply the day's changes in order (the readable form of
        :func:`metastasis.engine.intervention.apply_changes`, which the engine runs).

        A course of chemotherapy changes every lesion on every cycle, so the changes are
        applied a run at a time with array operations; a run ends where a lesion is changed a
        second time, whose change must see the row the first one made.  New rows are added in
        the order the changes come (a change's clone, then the lesion's new segment), the
        order one change at a time would give."""
        begin = 0
        seen: set[int] = set()
        for k, lesion in enumerate(changes.lesion.tolist()):
            if lesion in seen:
                self._apply_run(day, changes.take(slice(begin, k)))
                begin, seen = k, set()
            seen.add(lesion)
        if len(changes) > begin:
            self._apply_run(day, changes.take(slice(begin, len(changes))))

    def _apply_run(self, day: float, run: Changes) -> None:
        rows = self.rows
        n = rows.size
        live = np.flatnonzero((rows.valid_from[:n] <= day) & (rows.valid_to[:n] > day))
        # each lesion has at most one row valid on a day: find the changed lesions' rows
        if live.size == 0:
            return
        order = np.argsort(rows.lesion[live], kind="stable")
        live_ids = rows.lesion[live][order]
        where = np.minimum(np.searchsorted(live_ids, run.lesion), live_ids.size - 1)
        matched = live_ids[where] == run.lesion
        if not matched.any():
            return
        run = run.take(np.flatnonzero(matched))
        row = live[order][where[matched]]
        spare = run.spare_resistance
        # an establishing colony or a micrometastasis takes the avascular kill where one is given
        avascular = ((rows.awakening[row] <= day) & (day < rows.growth_start[row])
                     & ~np.isnan(run.avascular_fraction))
        fraction = np.where(avascular, run.avascular_fraction, run.surviving_fraction)
        fraction = np.where((rows.resistance[row] & spare) != 0, 1.0, fraction)
        clone = run.clone_cells > 0.0
        dormant = (rows.arrival[row] <= day) & (day < rows.awakening[row])
        # a dormant cell does not cycle, so cytotoxic and targeted kills miss it
        cut = (fraction < 1.0) & ~(dormant & (fraction > 0.0))

        cut_rows = row[cut]
        size = self._sizes_of_rows(cut_rows, day)
        rows.valid_to[cut_rows] = day  # closed; eradicated lesions get no new segment
        rows.version += 1
        survivors = size * fraction[cut]
        alive = survivors >= 1.0
        segment = self._segments(day, cut_rows[alive], fraction[cut][alive], survivors[alive])
        clones = self._clones(day, row[clone], run.take(np.flatnonzero(clone)))
        # interleave in change order: change k's clone, then its segment
        order_clone = np.flatnonzero(clone) * 2
        order_segment = np.flatnonzero(cut)[alive] * 2 + 1
        order = np.argsort(np.concatenate([order_clone, order_segment]), kind="stable")
        count = order.size
        if count == 0:
            return
        columns = {name: np.concatenate([clones[name], segment[name]])[order]
                   for name in LesionRows.COLUMNS}
        rows.add(count, **columns)

    def _sizes_of_rows(self, index: np.ndarray, day: float) -> np.ndarray:
        rows = self.rows
        table = LesionTable(id=rows.lesion[index],
                            **{name: getattr(rows, name)[index] for name in _TABLE_COLUMNS})
        return table.size_at(day)

    def _segments(
        self, day: float, index: np.ndarray, fraction: np.ndarray, survivors: np.ndarray
    ) -> dict[str, np.ndarray]:
        """New segments of the rows ``index``, from ``day``, with a share ``fraction`` of
        their cells left (``survivors`` cells)."""
        rows, model = self.rows, self.model
        new = {name: getattr(rows, name)[index].copy() for name in LesionRows.COLUMNS}
        new["valid_from"][:] = day
        new["valid_to"][:] = math.inf
        growing = day >= new["growth_start"]
        # a growing lesion restarts its curve from the survivors (and its motile clone, which
        # it sheds from, loses the same share)
        new["growth_start"][growing] = day
        new["x0"][growing] = survivors[growing]
        motile_row = growing & (new["curve_start"] <= day)
        if motile_row.any():
            motile = gompertz_size(day - new["curve_start"][motile_row],
                                   new["curve_x0"][motile_row], new["rate"][motile_row],
                                   new["capacity"][motile_row])
            new["curve_start"][motile_row] = day
            new["curve_x0"][motile_row] = np.maximum(motile * fraction[motile_row], 1.0)
        # an establishing colony or a micrometastasis loses time: it must regrow the cells
        awake = ~growing & (day >= new["awakening"])
        if awake.any():
            regrowth = np.log(1.0 / fraction[awake]) / (
                model.colony_birth_rate - model.colony_death_rate
            )
            colony = day < new["micrometastasis"][awake]
            scale = np.where(colony, new["colony_scale"][awake] * fraction[awake],
                             survivors[awake])
            new["colony_scale"][awake] = scale
            new["awakening"][awake] = np.where(colony, new["awakening"][awake], day)
            micro = np.where(colony, new["micrometastasis"][awake], day)
            new["micrometastasis"][awake] = micro + regrowth
            for key in ("outgrowth", "growth_start", "curve_start", "emit_from"):
                new[key][awake] = new[key][awake] + regrowth
        return new

    def _clones(self, day: float, index: np.ndarray, changes: Changes
                ) -> dict[str, np.ndarray]:
        """New lesions: a clone of ``change.clone_cells`` cells inside each row ``index``,
        with fresh lesion ids in change order."""
        rows = self.rows
        count = index.size
        cells = changes.clone_cells.astype(float)
        extra = changes.clone_resistance.astype(np.int64)
        growing = day >= rows.growth_start[index]
        start = np.where(growing, day, rows.growth_start[index])
        ids = np.arange(rows.next_lesion, rows.next_lesion + count, dtype=np.int64)
        rows.next_lesion += count
        return {
            "lesion": ids,
            "site": rows.site[index].copy(),
            "parent": rows.lesion[index].copy(),
            "route": np.full(count, MUTATION_ROUTE, dtype=np.int64),
            "arrival": np.full(count, day),
            "awakening": np.full(count, day),
            "colony_scale": cells,
            "micrometastasis": np.full(count, day),
            "outgrowth": start,
            "growth_start": start.copy(),
            "x0": cells.copy(),
            "rate": rows.rate[index].copy(),
            "capacity": rows.capacity[index].copy(),
            "curve_start": start.copy(),
            "curve_x0": cells.copy(),
            "emit_from": np.maximum(start, rows.emit_from[index]),
            "valid_from": np.full(count, day),
            "valid_to": np.full(count, math.inf),
            "resistance": rows.resistance[index] | extra,
        }

    # ------------------------------------------------------------------ results
    def lesion_table(self, through: float | None = None) -> LesionTable:
        """Every lesion segment founded before the end, without drawing the accounting.

        With ``through``, only the future up to that day is sampled (and returned): enough to
        act on the lesions on that day, and much cheaper while a treatment is under way."""
        if through is None:
            end = self.end  # samples the rest of the future first
        else:
            self._sample_through(through)
            end = min(through, self.known_end)
        return self._table(end)

    def _table(self, end: float) -> LesionTable:
        """The table of the rows founded before ``end``, built once per state of the rows.

        The clinic reads the same rows many times (symptoms, death, a treatment day's
        actions); the table is read-only, so one copy can serve every reader."""
        key = (self.rows.version, end)
        if self._cached_table is None or self._cached_table[0] != key:
            if self.reference:
                table = LesionTable.from_columns(self.rows.view(), end)
                for column in dataclasses.fields(table):
                    getattr(table, column.name).flags.writeable = False
            else:
                table = table_of_rows(self.rows, end)
            self._cached_table = (key, table)
        return self._cached_table[1]

    def finish(self, *, patient_index: int = 0, root_seed: int | None = None) -> PatientResult:
        """Draw the aggregate cell accounting and return the patient's result."""
        table = self.lesion_table()  # samples the rest of the future first
        accounting = self._aggregate_accounting(table)
        return PatientResult(
            patient_index=patient_index,
            root_seed=root_seed,
            cancer=self.model.cancer,
            horizon_days=self.horizon,
            end_time=self.end,
            end_reason=self.end_reason,
            motility_time=self.motility,
            breach_time=self.breach,
            shedding_rate=self.shedding_rate,
            metastasis_growth_factor=self.metastasis_growth_factor,
            lesions=table,
            accounting=accounting,
            site_names=self.model.site_names,
            clinical_size_cells=self.model.clinical_size_cells,
        )

    def _aggregate_accounting(self, table: LesionTable) -> Accounting:
        """Draw the counts of every fate other than outgrowth, exactly in distribution.

        For each source site o the expected number of cells shed over the natural history is
        S_o (closed form, summed over the shedding window of every lesion segment); by
        Poisson splitting, the cells of each (route, target, fate) are independent Poisson
        counts with mean S_o * w[o, r] * arrest[o, r, j] * fate[j, k], and those dying in
        transit have mean S_o * w[o, r] * died[o, r].  The outgrowth counts are the
        founders actually simulated.
        """
        model, n = self.model, self.model.n_sites
        if self.reference:
            shed_by_site, died, fates = self._fate_draws_reference()
        else:
            shed_by_site, died, flat = draw_accounting(self.rows, model, self.rng,
                                                       self.shedding_rate, self.end,
                                                       3 * n * len(FATES))
            fates = flat.reshape(3, n, len(FATES))
        founders = table.first_segments() & (table.route >= 0)
        outgrowth = np.bincount(
            table.route[founders] * n + table.site[founders], minlength=3 * n
        ).reshape(3, n)
        fates[:, :, OUTGROWTH] += outgrowth
        return Accounting(died_in_transit=died, fates=fates, expected_shed_by_site=shed_by_site)

    def _fate_draws_reference(self) -> tuple[NDArray[np.float64], NDArray[np.int64],
                                              NDArray[np.int64]]:
        """Cells shed per site, died in transit per route and the [route, site, fate] counts
        of every fate but outgrowth (the readable form of :mod:`metastasis.engine.accounting`)."""
        model, rng, rows = self.model, self.rng, self.rows
        n = model.n_sites
        shed_by_site = np.zeros(n)
        size = rows.size
        starts = np.maximum(rows.emit_from[:size], rows.valid_from[:size])
        stops = np.minimum(rows.valid_to[:size], self.end)
        sheds = model.has_route_out[rows.site[:size]]
        emitting = np.flatnonzero((starts < stops) & sheds)
        if emitting.size:
            emitted = (self._cumulative_rows(emitting, stops[emitting])
                       - self._cumulative_rows(emitting, starts[emitting]))
            np.add.at(shed_by_site, rows.site[emitting], emitted)  # in row order, as a loop
        died = np.zeros(3, dtype=np.int64)
        fates = np.zeros((3, n, len(FATES)), dtype=np.int64)  # [route, site, fate]
        flat_fates = fates.reshape(-1)
        cells, paths = model.aggregate_paths
        for o in np.flatnonzero(shed_by_site > 0.0):
            died += rng.poisson(shed_by_site[o] * model.transit_death_probability[o])
            flat_fates[paths[o]] += rng.poisson(shed_by_site[o] * cells[o])
        return shed_by_site, died, fates
