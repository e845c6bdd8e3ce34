"""One piece of a patient's future, sampled in one compiled call.

:meth:`metastasis.engine.process.DiseaseProcess._sample_future_reference` is the readable
algorithm: lesions that start shedding in the piece are expanded in time order, each
founder's shedding day by time-rescaling of the closed-form emission, its journey and fate
from the resolved probabilities, while a grid-resolved total burden moves the piece's end
earlier as lesions start to grow.  In Python it costs a few numpy calls and heap operations
per founder, which was most of an untreated history's time (issue 8).

:func:`sample_pieces` runs the same algorithm in numba, with the same generator: it draws the
same numbers in the same order (numba's ``Generator`` methods reproduce numpy's streams), does
the same arithmetic through the same compiled emission kernels, and appends the founders in
the same order, so that a patient's history is the reference's, row for row
(``tests/test_compiled_engine.py`` checks it on hundreds of patients of every cancer type,
untreated and under treatment).  To keep the draws in the same order the kernel keeps the
reference's two ways of expanding a batch of sources (one at a time below
:data:`~metastasis.engine.process.VECTOR_MIN_SOURCES`, together from there on), although in
compiled code both cost the same.

Only the exact end at the lethal burden (a bisection over the whole history, once per
history) is left to the reference's :meth:`~metastasis.engine.burden.BurdenTracker.resolve_end`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.engine.burden import GRID_INTERVALS, fill_piece_grid
from metastasis.model.growth import _cumulative_at, _curve_shape, _curve_start_e1, _inverse_at
from metastasis.model.resolve import ResolvedModel
from metastasis.model.routing import MUTATION_ROUTE, PRIMARY_ROUTE

if TYPE_CHECKING:  # the rows' module imports this one
    from metastasis.engine.process import LesionRows

FLOAT_COLUMNS = ("arrival", "awakening", "colony_scale", "micrometastasis", "outgrowth", "x0",
                 "rate", "capacity", "growth_start", "valid_from", "valid_to", "curve_start",
                 "curve_x0", "emit_from")
"""The float columns of a lesion row: the rows of :class:`~metastasis.engine.process.
LesionRows`' float buffer, in this order."""
INTEGER_COLUMNS = ("lesion", "site", "parent", "route", "resistance")
"""The integer columns of a lesion row, the rows of the integer buffer."""


# where the kernels find each column (module constants: numba compiles them in)
F_ARRIVAL, F_AWAKENING, F_COLONY_SCALE, F_MICROMETASTASIS, F_OUTGROWTH, F_X0, F_RATE, \
    F_CAPACITY, F_GROWTH_START, F_VALID_FROM, F_VALID_TO, F_CURVE_START, F_CURVE_X0, \
    F_EMIT_FROM = range(len(FLOAT_COLUMNS))
I_LESION, I_SITE, I_PARENT, I_ROUTE, I_RESISTANCE = range(len(INTEGER_COLUMNS))


@numba.njit(cache=True)
def _heap_less(keys: NDArray[np.float64], ids: NDArray[np.int64], a: int, b: int) -> bool:
    """Order of two heap entries: by day, then by row (Python's heapq on (day, row))."""
    return keys[a] < keys[b] or (keys[a] == keys[b] and ids[a] < ids[b])


@numba.njit(cache=True)
def _heap_push(keys: NDArray[np.float64], ids: NDArray[np.int64], size: int, key: float,
               row: int) -> tuple[NDArray[np.float64], NDArray[np.int64], int]:
    if size == keys.size:
        grown_keys = np.empty(2 * keys.size, dtype=np.float64)
        grown_ids = np.empty(2 * keys.size, dtype=np.int64)
        grown_keys[:size] = keys[:size]
        grown_ids[:size] = ids[:size]
        keys, ids = grown_keys, grown_ids
    keys[size] = key
    ids[size] = row
    child = size
    while child > 0:
        parent = (child - 1) // 2
        if not _heap_less(keys, ids, child, parent):
            break
        keys[child], keys[parent] = keys[parent], keys[child]
        ids[child], ids[parent] = ids[parent], ids[child]
        child = parent
    return keys, ids, size + 1


@numba.njit(cache=True)
def _heap_pop(keys: NDArray[np.float64], ids: NDArray[np.int64], size: int) -> int:
    """Remove the smallest entry (read it at index 0 first); returns the new size."""
    size -= 1
    keys[0] = keys[size]
    ids[0] = ids[size]
    parent = 0
    while True:
        smallest = parent
        for child in (2 * parent + 1, 2 * parent + 2):
            if child < size and _heap_less(keys, ids, child, smallest):
                smallest = child
        if smallest == parent:
            return size
        keys[smallest], keys[parent] = keys[parent], keys[smallest]
        ids[smallest], ids[parent] = ids[parent], ids[smallest]
        parent = smallest


@numba.njit(cache=True)
def _grow(floats: NDArray[np.float64], ints: NDArray[np.int64], needed: int
          ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The row buffers with room for ``needed`` rows (doubling)."""
    if needed <= floats.shape[1]:
        return floats, ints
    capacity = max(2 * floats.shape[1], needed)
    grown_floats = np.empty((floats.shape[0], capacity), dtype=np.float64)
    grown_ints = np.empty((ints.shape[0], capacity), dtype=np.int64)
    grown_floats[:, : floats.shape[1]] = floats
    grown_ints[:, : ints.shape[1]] = ints
    return grown_floats, grown_ints


@numba.njit(cache=True)
def _add_curve(grid: NDArray[np.float64], total: NDArray[np.float64], active_from: float,
               start: float, x0: float, rate: float, capacity: float, first: int = 0,
               stop: int = -1) -> None:
    """Add one Gompertz curve to the grid's totals at the points after ``active_from`` (the
    arithmetic of :func:`metastasis.engine.burden._add_curve`), among points ``first`` to
    ``stop - 1`` (all by default)."""
    log_ratio = math.log(x0 / capacity)
    end = grid.size if stop < 0 else stop
    for k in range(max(int(np.searchsorted(grid, active_from, side="right")), first), end):
        age = max(grid[k] - start, 0.0)
        total[k] += capacity * math.exp(log_ratio * math.exp(-rate * age))


@numba.njit(cache=True)
def _growing_at(floats: NDArray[np.float64], counted: NDArray[np.bool_], day: float) -> float:
    """Cells on ``day`` in the counted rows (those growing at the piece's start), summed in
    row order as the reference sums them."""
    at_point = 0.0
    seen = False
    for row in range(counted.size):
        if counted[row]:
            age = max(day - floats[F_GROWTH_START, row], 0.0)
            capacity = floats[F_CAPACITY, row]
            size_now = capacity * math.exp(math.log(floats[F_X0, row] / capacity)
                                           * math.exp(-floats[F_RATE, row] * age))
            at_point = size_now if not seen else at_point + size_now
            seen = True
    return at_point


@numba.njit(cache=True)
def _curve_at(point: float, start: float, x0: float, rate: float, capacity: float) -> float:
    """One Gompertz curve's cells on one grid day: :func:`_add_curve`'s arithmetic."""
    age = max(point - start, 0.0)
    return capacity * math.exp(math.log(x0 / capacity) * math.exp(-rate * age))


@numba.njit(cache=True)
def _point_total(grid: NDArray[np.float64], point: int, floats: NDArray[np.float64],
                 counted: NDArray[np.bool_], first_point: int, added: NDArray[np.int64],
                 n_added: int) -> float:
    """The burden at one grid point as a grid kept at every point all along would hold it:
    the lesions growing at the piece's start (from its first point on), then each curve
    added since, in the order they were added; the same sums, bit for bit."""
    value = 0.0
    if point >= first_point:
        value += _growing_at(floats, counted, grid[point])
    for j in range(n_added):
        row = added[j]
        start = floats[F_GROWTH_START, row]
        if point >= np.searchsorted(grid, max(start, 0.0), side="right"):
            value += _curve_at(grid[point], start, floats[F_X0, row], floats[F_RATE, row],
                               floats[F_CAPACITY, row])
    return value


@numba.njit(cache=True)
def _known_total(grid: NDArray[np.float64], total: NDArray[np.float64],
                 known: NDArray[np.bool_], point: int, floats: NDArray[np.float64],
                 counted: NDArray[np.bool_], first_point: int, added: NDArray[np.int64],
                 n_added: int) -> float:
    """The burden at ``point``, summed (:func:`_point_total`) the first time it is asked for
    and kept up to date from then on (:func:`_add_to_known`)."""
    if not known[point]:
        total[point] = _point_total(grid, point, floats, counted, first_point, added,
                                    n_added)
        known[point] = True
    return total[point]


@numba.njit(cache=True)
def _add_to_known(grid: NDArray[np.float64], total: NDArray[np.float64],
                  known: NDArray[np.bool_], start: float, x0: float, rate: float,
                  capacity: float) -> None:
    """Add one curve to the points already summed (:func:`_add_curve` on those only)."""
    for k in range(int(np.searchsorted(grid, max(start, 0.0), side="right")), grid.size):
        if known[k]:
            total[k] += _curve_at(grid[k], start, x0, rate, capacity)


@numba.njit(cache=True)
def _never_shrinks(floats: NDArray[np.float64], row: int) -> bool:
    """Whether a row's Gompertz curve never falls (at or below its capacity, rate >= 0):
    the condition under which the grid's burden only grows from point to point."""
    return floats[F_X0, row] <= floats[F_CAPACITY, row] and floats[F_RATE, row] >= 0.0


@numba.njit(cache=True)
def _all_never_shrink(floats: NDArray[np.float64], counted: NDArray[np.bool_],
                      added: NDArray[np.int64], n_added: int) -> bool:
    shrinking = 0
    for row in range(counted.size):
        if counted[row] and not _never_shrinks(floats, row):
            shrinking += 1
    for j in range(n_added):
        if not _never_shrinks(floats, added[j]):
            shrinking += 1
    return shrinking == 0


@numba.njit(cache=True)
def _first_lethal_point(grid: NDArray[np.float64], total: NDArray[np.float64],
                        known: NDArray[np.bool_], lethal: float, low: int, high: int,
                        floats: NDArray[np.float64], counted: NDArray[np.bool_],
                        first_point: int, added: NDArray[np.int64], n_added: int) -> int:
    """The first point in [low, high] at the lethal burden, by bisection over the points
    (the burden at ``high`` reaches it; the burden grows from point to point): the point a
    scan of the whole grid finds, after summing about seven points instead of 65."""
    while low < high:
        middle = (low + high) // 2
        if _known_total(grid, total, known, middle, floats, counted, first_point, added,
                        n_added) >= lethal:
            high = middle
        else:
            low = middle + 1
    return high


@numba.njit(cache=True)
def _sum_every_point(grid: NDArray[np.float64], total: NDArray[np.float64],
                     known: NDArray[np.bool_], floats: NDArray[np.float64],
                     counted: NDArray[np.bool_], first_point: int, added: NDArray[np.int64],
                     n_added: int) -> None:
    """Sum the points not yet summed: the whole grid, as if kept at every point all along."""
    for k in range(grid.size):
        _known_total(grid, total, known, k, floats, counted, first_point, added, n_added)


@numba.njit(cache=True)
def _first_reaching(grid: NDArray[np.float64], total: NDArray[np.float64], lethal: float,
                    stop: float) -> float:
    """The piece's stop after the totals changed: the first grid day at the lethal burden."""
    if total[grid.size - 1] < lethal:
        return stop
    for k in range(grid.size):
        if total[k] >= lethal:
            return min(stop, grid[k])
    return stop


@numba.njit(cache=True)
def _at_lethal(grid: NDArray[np.float64], total: NDArray[np.float64],
               known: NDArray[np.bool_], lethal: float, stop: float,
               floats: NDArray[np.float64], counted: NDArray[np.bool_], first_point: int,
               added: NDArray[np.int64], n_added: int) -> tuple[bool, int, float]:
    """The last point has just reached the lethal burden: the first point that does, found
    by bisection (whether the points are summed lazily, that point, and the new stop), or,
    should any curve shrink, every point summed and the grid scanned."""
    if _all_never_shrink(floats, counted, added, n_added):
        first = _first_lethal_point(grid, total, known, lethal, 0, grid.size - 1, floats,
                                    counted, first_point, added, n_added)
        return True, first, min(stop, grid[first])
    _sum_every_point(grid, total, known, floats, counted, first_point, added, n_added)
    return False, grid.size - 1, _first_reaching(grid, total, lethal, stop)


@numba.njit(cache=True)
def _later_lesion(grid: NDArray[np.float64], total: NDArray[np.float64],
                  known: NDArray[np.bool_], lethal: float, stop: float, first_lethal: int,
                  row: int, floats: NDArray[np.float64], counted: NDArray[np.bool_],
                  first_point: int, added: NDArray[np.int64],
                  n_added: int) -> tuple[bool, int, float]:
    """A lesion (the last of ``added``) started growing after the lethal burden was reached
    at the last point, with the points summed lazily: it joins the points summed, and the
    first point at the lethal burden can only move earlier, among the points it reaches
    (those before them did not change, and stay below it)."""
    start = floats[F_GROWTH_START, row]
    _add_to_known(grid, total, known, start, floats[F_X0, row], floats[F_RATE, row],
                  floats[F_CAPACITY, row])
    if not _never_shrinks(floats, row):
        _sum_every_point(grid, total, known, floats, counted, first_point, added, n_added)
        return False, first_lethal, _first_reaching(grid, total, lethal, stop)
    begin = int(np.searchsorted(grid, max(start, 0.0), side="right"))
    if begin < first_lethal and _known_total(grid, total, known, first_lethal - 1, floats,
                                             counted, first_point, added,
                                             n_added) >= lethal:
        first_lethal = _first_lethal_point(grid, total, known, lethal, begin,
                                           first_lethal - 1, floats, counted, first_point,
                                           added, n_added)
        stop = min(stop, grid[first_lethal])
    return True, first_lethal, stop


@numba.njit(cache=True)
def _starts_growing(grid: NDArray[np.float64], total: NDArray[np.float64],
                    known: NDArray[np.bool_], lethal: float, stop: float, full: bool,
                    lazy: bool, first_lethal: int, row: int, floats: NDArray[np.float64],
                    counted: NDArray[np.bool_], first_point: int, added: NDArray[np.int64],
                    n_added: int) -> tuple[float, bool, bool, int, NDArray[np.int64], int]:
    """A lesion starts growing in the piece before its stop: its curve joins the burden (at
    the last point only while that is below the lethal burden; lazily once it is reached;
    at every point once a shrinking curve made the grid keep them all).  Returns the stop,
    whether the last point reached the lethal burden, whether the points are summed lazily,
    the first point at the lethal burden, and the rows added with their count."""
    start = floats[F_GROWTH_START, row]
    if full and not lazy:
        _add_curve(grid, total, max(start, 0.0), start, floats[F_X0, row],
                   floats[F_RATE, row], floats[F_CAPACITY, row])
        return (_first_reaching(grid, total, lethal, stop), full, lazy, first_lethal, added,
                n_added)
    last = grid.size - 1
    if not full:
        _add_curve(grid, total, max(start, 0.0), start, floats[F_X0, row],
                   floats[F_RATE, row], floats[F_CAPACITY, row], last)
    if n_added == added.size:
        added = np.concatenate((added, np.empty(max(n_added, 1), dtype=np.int64)))
    added[n_added] = row
    n_added += 1
    if full:
        lazy, first_lethal, stop = _later_lesion(grid, total, known, lethal, stop,
                                                 first_lethal, row, floats, counted,
                                                 first_point, added, n_added)
    elif total[last] >= lethal:
        full = True
        lazy, first_lethal, stop = _at_lethal(grid, total, known, lethal, stop, floats,
                                              counted, first_point, added, n_added)
    return stop, full, lazy, first_lethal, added, n_added


@numba.njit(cache=True)
def _partial(total: NDArray[np.float64], known: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The piece's burden as :func:`_sample` hands it back: the points summed, and NaN at
    the others, so that nothing reads them as sums (below the lethal burden only the last
    point is kept; at it, the points up to and including the first point that reaches it,
    enough to bracket the end, or every point)."""
    for k in range(total.size):
        if not known[k]:
            total[k] = np.nan
    return total


@numba.njit(cache=True)
def _row_scale(row: int, scale: float, shares: NDArray[np.float64],
               metastasis_share: float) -> float:
    """The shedding rate of one row: the patient's rate times the row's share (``shares``
    covers the rows that existed before this call; every row added since is a metastasis's
    founder)."""
    return scale * (shares[row] if row < shares.size else metastasis_share)


MEMO_E1, MEMO_DAY, MEMO_EMITTED = range(3)
"""Rows of a sampling call's memo (:func:`_new_memo`), one column per lesion row: the
exponential integral at the start of the row's shedding curve, and the last day its
cumulative emission was asked for with the value (NaN: not asked yet).  Within one call a
row's curve does not change, and every piece asks for the emission on the day the last one
ended, so each row's exponential integrals are taken about once a piece instead of three
times; the values are the same numbers, computed once."""


@numba.njit(cache=True)
def _new_memo(capacity: int) -> NDArray[np.float64]:
    return np.full((3, capacity), np.nan)


@numba.njit(cache=True)
def _grown_memo(memo: NDArray[np.float64], needed: int) -> NDArray[np.float64]:
    """The memo with room for ``needed`` rows (doubling; new columns unknown)."""
    if needed <= memo.shape[1]:
        return memo
    grown = _new_memo(max(2 * memo.shape[1], needed))
    grown[:, : memo.shape[1]] = memo
    return grown


@numba.njit(cache=True)
def _curve_of(floats: NDArray[np.float64], memo: NDArray[np.float64], row: int, scale: float,
              exponent: float) -> tuple[float, float, float, float]:
    """:func:`metastasis.model.growth._curve` of a row's shedding curve, its exponential
    integral kept in the memo."""
    c, level, amplitude = _curve_shape(floats[F_CURVE_X0, row], floats[F_RATE, row],
                                       floats[F_CAPACITY, row], scale, exponent)
    at_start = memo[MEMO_E1, row]
    if math.isnan(at_start):
        at_start = _curve_start_e1(c)
        memo[MEMO_E1, row] = at_start
    return c, level, amplitude, at_start


@numba.njit(cache=True)
def _emitted_between(floats: NDArray[np.float64], memo: NDArray[np.float64], row: int,
                     start: float, stop: float, scale: float,
                     exponent: float) -> tuple[float, float]:
    """Cells a row has emitted by day ``start`` along its shedding curve, and from then to
    ``stop`` (closed form; the value at ``start`` from the memo when the last piece ended
    there)."""
    rate = floats[F_RATE, row]
    c, level, amplitude, at_start = _curve_of(floats, memo, row, scale, exponent)
    origin = floats[F_CURVE_START, row]
    if memo[MEMO_DAY, row] == start:
        begin = memo[MEMO_EMITTED, row]
    else:
        begin = _cumulative_at(start - origin, rate, c, level, amplitude, at_start)
    end = _cumulative_at(stop - origin, rate, c, level, amplitude, at_start)
    memo[MEMO_DAY, row] = stop
    memo[MEMO_EMITTED, row] = end
    return begin, end - begin


@numba.njit(cache=True)
def _found(
    rng: np.random.Generator, floats: NDArray[np.float64], ints: NDArray[np.int64],
    memo: NDArray[np.float64], size: int,
    next_lesion: int, sources: NDArray[np.int64], counts: NDArray[np.int64],
    at_start: NDArray[np.float64], expected: NDArray[np.float64], stop: float,
    scale: float, shares: NDArray[np.float64], metastasis_share: float, exponent: float,
    target_cdf: NDArray[np.float64], route_cdf: NDArray[np.float64],
    site_capacity: NDArray[np.float64], dormant_share: float, mean_dormancy: float,
    micro: float, birth: float, death: float, mean_outgrowth: float, metastasis_rate: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64], int, int]:
    """Append the founders of growing metastases shed by ``sources`` (the reference's
    ``_found``, draw for draw); returns the buffers, the new size and the next lesion id."""
    n = 0
    for k in range(sources.size):
        n += counts[k]
    floats, ints = _grow(floats, ints, size + n)
    first = size
    # shedding days: uniform points of each source's cumulative emission, sorted per source
    uniform = np.empty(n)
    for j in range(n):
        uniform[j] = rng.random()
    j = 0
    for k in range(sources.size):
        uniform[j : j + counts[k]] = np.sort(uniform[j : j + counts[k]])
        i = sources[k]
        rate = floats[F_RATE, i]
        c, level, amplitude, start_value = _curve_of(
            floats, memo, i, _row_scale(i, scale, shares, metastasis_share), exponent)
        for m in range(j, j + counts[k]):
            target = at_start[k] + uniform[m] * expected[k]
            row = first + m
            floats[F_ARRIVAL, row] = floats[F_CURVE_START, i] + _inverse_at(
                target, rate, c, level, amplitude, start_value)
            ints[I_PARENT, row] = ints[I_LESION, i]
            ints[I_RESISTANCE, row] = ints[I_RESISTANCE, i]
            ints[I_SITE, row] = ints[I_SITE, i]  # the source's site until the target is drawn
        j += counts[k]
    for m in range(n):  # target site: how many cdf values are <= u
        row = first + m
        u = rng.random()
        cdf = target_cdf[ints[I_SITE, row]]
        target_site = 0
        for value in cdf:
            if value <= u:
                target_site += 1
        ints[I_ROUTE, row] = target_site  # kept here until the route is drawn
    for m in range(n):  # route given source and target: how many cumulative shares are < u
        row = first + m
        u = rng.random()
        cumulative = route_cdf[ints[I_SITE, row], ints[I_ROUTE, row]]
        route = 0
        for r in range(cumulative.size - 1):
            if u > cumulative[r]:
                route += 1
        ints[I_SITE, row] = ints[I_ROUTE, row]
        ints[I_ROUTE, row] = route
    slept = np.empty(n, dtype=np.bool_)
    for m in range(n):
        slept[m] = rng.random() < dormant_share
    for m in range(n):
        row = first + m
        dormancy = rng.exponential(mean_dormancy)
        floats[F_AWAKENING, row] = floats[F_ARRIVAL, row] + (dormancy if slept[m] else 0.0)
    net = birth - death
    for m in range(n):
        row = first + m
        if micro > 1.0:
            colony_scale = rng.exponential(birth / net)
            to_micro = max(math.log(micro / colony_scale), 0.0) / net
        else:
            colony_scale = 1.0
            to_micro = 0.0
        floats[F_COLONY_SCALE, row] = colony_scale
        floats[F_MICROMETASTASIS, row] = floats[F_AWAKENING, row] + to_micro
    x0 = max(micro, 1.0)
    for m in range(n):
        row = first + m
        outgrowth = floats[F_MICROMETASTASIS, row] + rng.exponential(mean_outgrowth)
        floats[F_OUTGROWTH, row] = outgrowth
        floats[F_GROWTH_START, row] = outgrowth
        floats[F_CURVE_START, row] = outgrowth
        floats[F_EMIT_FROM, row] = outgrowth
        floats[F_X0, row] = x0
        floats[F_CURVE_X0, row] = x0
        floats[F_RATE, row] = metastasis_rate
        floats[F_CAPACITY, row] = site_capacity[ints[I_SITE, row]]
        floats[F_VALID_FROM, row] = floats[F_ARRIVAL, row]
        floats[F_VALID_TO, row] = math.inf
        ints[I_LESION, row] = next_lesion + m
    return floats, ints, size + n, next_lesion + n


@numba.njit(cache=True)
def _sample(
    rng: np.random.Generator, floats: NDArray[np.float64], ints: NDArray[np.int64],
    memo: NDArray[np.float64], existing: int, next_lesion: int, max_rows: int, cut: float,
    until: float,
    grid: NDArray[np.float64], lethal: float, scale: float, shares: NDArray[np.float64],
    metastasis_share: float, exponent: float,
    founder_total: NDArray[np.float64], target_cdf: NDArray[np.float64],
    route_cdf: NDArray[np.float64], site_capacity: NDArray[np.float64],
    dormant_share: float, mean_dormancy: float, micro: float, birth: float, death: float,
    mean_outgrowth: float, metastasis_rate: float, vector_min_sources: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], int, int,
           NDArray[np.float64], bool]:
    """The reference's ``_sample_future`` on the row buffers: returns the buffers and the
    memo (:data:`MEMO_E1`), their size, the next lesion id, the burden on the grid (every
    point once its last point reaches the lethal burden, otherwise the last point only:
    :func:`_partial`) and whether the row budget was exceeded."""
    size = existing
    total = np.zeros(grid.size)
    stop = until
    # The queue of lesions by the day they start shedding in the piece, taken in (day, row)
    # order: the lesions of the cut, sorted once, merged with a heap of the founders that
    # start growing in the piece (heap pops were most of a heavy history's time, and the
    # lesions of the cut, mostly all on the cut's day, need no heap).
    heap_keys = np.empty(64)
    heap_ids = np.empty(64, dtype=np.int64)
    heap_size = 0
    counted = np.zeros(existing, dtype=np.bool_)
    queued_keys = np.empty(existing)
    queued_ids = np.empty(existing, dtype=np.int64)
    n_queued = 0
    for row in range(existing):
        valid = floats[F_VALID_TO, row] > cut
        if valid and floats[F_GROWTH_START, row] <= cut:
            counted[row] = True
        start = max(floats[F_EMIT_FROM, row], cut)
        if valid and start < until:
            queued_keys[n_queued] = start
            queued_ids[n_queued] = row
            n_queued += 1
    any_source = n_queued > 0
    order = np.argsort(queued_keys[:n_queued], kind="mergesort")  # stable: rows ascend
    queued_keys = queued_keys[order]
    queued_ids = queued_ids[order]
    next_queued = 0
    # The burden is kept at the grid's last point only while it stays below the lethal
    # burden there: since it only grows within a piece, the earlier points cannot reach it
    # either, and the stop stays the piece's end; a piece that never reaches it (most of
    # them) evaluates each growing lesion once instead of at every grid point.  Once the last
    # point reaches it, the first point that does is found by bisection over the points,
    # each summed when first asked for (_known_total) with the same sums, bit for bit, as a
    # grid kept at every point; each lesion that starts growing later joins the points
    # summed and can only move that point earlier (_later_lesion).  A heavy history's last
    # piece adds hundreds of thousands of lesions after that, and keeping all 65 points
    # cost three times what founding them did.  Should a curve ever shrink (above its
    # capacity), the burden need not grow from point to point, and every point is summed
    # and kept as before.
    last = grid.size - 1
    first_point = int(np.searchsorted(grid, cut, side="right"))
    added = np.empty(64, dtype=np.int64)  # rows whose curves joined the sums, in order
    n_added = 0
    known = np.zeros(grid.size, dtype=np.bool_)  # the points summed
    known[last] = True
    full = False  # the last point reached the lethal burden
    lazy = False  # ... and the points are summed only as the search asks
    first_lethal = last
    if first_point <= last:  # the lesions growing at the cut (row order, as the reference)
        total[last] += _growing_at(floats, counted, grid[last])
    if total[last] >= lethal:
        full = True
        lazy, first_lethal, stop = _at_lethal(grid, total, known, lethal, stop, floats,
                                              counted, first_point, added, n_added)
    if not any_source:
        return floats, ints, memo, size, next_lesion, _partial(total, known), False

    batch_keys = np.empty(64)
    batch_rows = np.empty(64, dtype=np.int64)
    while heap_size > 0 or next_queued < n_queued:
        batch = 0
        while True:  # every queued lesion that starts before the stop, in (day, row) order
            from_queue = next_queued < n_queued and (
                heap_size == 0 or queued_keys[next_queued] < heap_keys[0]
                or (queued_keys[next_queued] == heap_keys[0]
                    and queued_ids[next_queued] < heap_ids[0]))
            if from_queue:
                key, row = queued_keys[next_queued], queued_ids[next_queued]
            elif heap_size > 0:
                key, row = heap_keys[0], heap_ids[0]
            else:
                break
            if not key < stop:
                break
            if batch == batch_keys.size:
                batch_keys = np.concatenate((batch_keys, np.empty(batch)))
                batch_rows = np.concatenate((batch_rows, np.empty(batch, dtype=np.int64)))
            batch_keys[batch] = key
            batch_rows[batch] = row
            batch += 1
            if from_queue:
                next_queued += 1
            else:
                heap_size = _heap_pop(heap_keys, heap_ids, heap_size)
        if batch == 0:
            break
        for b in range(batch):
            row = batch_rows[b]
            if row >= existing or not counted[row]:
                start = floats[F_GROWTH_START, row]
                if start < stop:
                    stop, full, lazy, first_lethal, added, n_added = _starts_growing(
                        grid, total, known, lethal, stop, full, lazy, first_lethal, row,
                        floats, counted, first_point, added, n_added)
        if scale <= 0.0:
            continue
        sources = np.empty(batch, dtype=np.int64)
        counts = np.empty(batch, dtype=np.int64)
        at_start = np.empty(batch)
        expected = np.empty(batch)
        # below the threshold one source at a time (each expanded before the next draws its
        # count), from it one group (every count drawn before any founder)
        groups = batch if batch < vector_min_sources else 1
        for g in range(groups):
            shedding = 0
            members = range(g, g + 1) if groups == batch else range(batch)
            for b in members:
                row = batch_rows[b]
                start = batch_keys[b]
                q = founder_total[ints[I_SITE, row]]
                if start >= stop or q <= 0.0:
                    continue
                row_scale = _row_scale(row, scale, shares, metastasis_share)
                begin, amount = _emitted_between(floats, memo, row, start, stop,
                                                 row_scale, exponent)
                count = rng.poisson(amount * q)
                if count > 0:
                    sources[shedding] = row
                    counts[shedding] = count
                    at_start[shedding] = begin
                    expected[shedding] = amount
                    shedding += 1
            if shedding == 0:
                continue
            founded = 0
            for k in range(shedding):
                founded += counts[k]
            if size + founded > max_rows:
                return (floats, ints, memo, size + founded, next_lesion,
                        _partial(total, known), True)
            first = size
            floats, ints, size, next_lesion = _found(
                rng, floats, ints, memo, size, next_lesion, sources[:shedding], counts[:shedding],
                at_start[:shedding], expected[:shedding], stop, scale, shares,
                metastasis_share, exponent, target_cdf, route_cdf, site_capacity,
                dormant_share, mean_dormancy, micro, birth, death, mean_outgrowth,
                metastasis_rate)
            memo = _grown_memo(memo, size)
            for row in range(first, size):
                if floats[F_OUTGROWTH, row] < stop:
                    heap_keys, heap_ids, heap_size = _heap_push(
                        heap_keys, heap_ids, heap_size, floats[F_OUTGROWTH, row], row)
    return floats, ints, memo, size, next_lesion, _partial(total, known), False


@numba.njit(cache=True, nogil=True)
def _sample_pieces(
    rng: np.random.Generator, floats: NDArray[np.float64], ints: NDArray[np.int64],
    size: int, next_lesion: int, max_rows: int, starts: NDArray[np.float64],
    ends: NDArray[np.float64], lethal: float, scale: float,
    metastasis_share: float,
    exponent: float, founder_total: NDArray[np.float64], target_cdf: NDArray[np.float64],
    route_cdf: NDArray[np.float64], site_capacity: NDArray[np.float64],
    dormant_share: float, mean_dormancy: float, micro: float, birth: float, death: float,
    mean_outgrowth: float, metastasis_rate: float, vector_min_sources: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], int, int, int, NDArray[np.float64],
           NDArray[np.float64], bool]:
    """:func:`_sample` piece after piece, each on its burden grid
    (:func:`~metastasis.engine.burden.fill_piece_grid`), stopping after a piece that reaches
    the lethal burden; returns the buffers, their size, the next lesion id, the pieces
    sampled, the last piece's grid and burden and whether the row budget was exceeded.
    The rows' shedding shares are taken here too (:func:`_kernel_shares`): the grids and
    the shares, built in Python, cost more per call than sampling a short piece."""
    shares = _kernel_shares(ints, size, next_lesion, metastasis_share)
    grid = np.zeros(GRID_INTERVALS + 1)  # each piece's in turn; the last one is returned
    total = np.zeros(GRID_INTERVALS + 1)
    memo = _new_memo(size)  # grown with the rows
    for piece in range(starts.size):
        fill_piece_grid(starts[piece], ends[piece], grid)
        floats, ints, memo, size, next_lesion, total, over = _sample(
            rng, floats, ints, memo, size, next_lesion, max_rows, starts[piece], ends[piece],
            grid, lethal, scale, shares, metastasis_share, exponent, founder_total,
            target_cdf, route_cdf,
            site_capacity, dormant_share, mean_dormancy, micro, birth, death, mean_outgrowth,
            metastasis_rate, vector_min_sources)
        if over or total[total.size - 1] >= lethal:
            return floats, ints, size, next_lesion, piece + 1, grid, total, over
    return floats, ints, size, next_lesion, starts.size, grid, total, False


@numba.njit(cache=True, nogil=True)
def _kernel_shares(ints: NDArray[np.int64], size: int, next_lesion: int,
                   factor: float) -> NDArray[np.float64]:
    """:func:`shedding_shares` of the first ``size`` rows, in the kernel: none when every
    lesion sheds alike (a factor of 1: every row then takes the factor, which is 1 like the
    primary's), the primary's 1 or the factor by route when no row is a clone, else the walk
    up each clone's lineage (:func:`_lineage_shares`)."""
    if factor == 1.0:
        return np.zeros(0)
    clones = False
    for row in range(size):
        if ints[I_ROUTE, row] == MUTATION_ROUTE:
            clones = True
            break
    if clones:
        return _lineage_shares(ints[I_LESION, :size], ints[I_PARENT, :size],
                               ints[I_ROUTE, :size], next_lesion, factor)
    shares = np.empty(size)
    for row in range(size):
        shares[row] = 1.0 if ints[I_ROUTE, row] == PRIMARY_ROUTE else factor
    return shares


@dataclass(frozen=True)
class Sampled:
    """What :func:`sample_pieces` hands back to the process."""

    floats: NDArray[np.float64]
    """The float buffer: the rows it was given, then the new ones (maybe a new, larger
    buffer)."""
    ints: NDArray[np.int64]
    """The integer buffer, likewise."""
    size: int
    """Rows filled (more than the buffers hold when the budget was exceeded)."""
    next_lesion: int
    """The next free lesion id."""
    pieces: int
    """How many of the pieces were sampled: all, unless one reached the lethal burden or
    the row budget."""
    grid: NDArray[np.float64]
    """The last sampled piece's burden grid (its :func:`~metastasis.engine.burden.
    burden_grid`)."""
    total: NDArray[np.float64]
    """The burden on the last sampled piece's grid: at every point when it reaches the lethal
    burden at the last one; otherwise only the last point holds the burden (the others are
    NaN), which is all a reader needs, since the burden only grows within a piece."""
    over_budget: bool
    """Whether the rows would exceed the budget (the caller refuses the history)."""


def shedding_shares(rows: LesionRows, model: ResolvedModel) -> NDArray[np.float64]:
    """Each row's shedding rate as a share of the primary's: 1 for the primary and the clones
    that grew in it, the model's ``metastasis_shedding_factor`` for every metastasis and the
    clones that grew in one (a clone's lineage is followed up to the lesion it arose in).

    Compiled (:func:`_kernel_shares`, which the sampler calls itself);
    :func:`shedding_shares_reference` is the readable definition, which the tests hold it
    to."""
    factor = float(model.metastasis_shedding_factor)
    if factor == 1.0:  # every row sheds like the primary (the kernel then keeps no array)
        return np.ones(rows.size)
    return _kernel_shares(rows.ints, rows.size, rows.next_lesion, factor)


ABSENT_ROUTE = MUTATION_ROUTE - 1
"""Route code of a lesion id with no row (below every real code), in :func:`by_lesion`."""


@numba.njit(cache=True)
def by_lesion(lesion: NDArray[np.int64], parent: NDArray[np.int64], route: NDArray[np.int64],
              next_lesion: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each lesion id's route and parent (ids are below ``next_lesion``; an id with no row
    has :data:`ABSENT_ROUTE` and parent -1): the tables a walk up a clone's lineage reads.
    Every segment of a lesion carries the same route and parent; the last row wins."""
    route_of = np.full(next_lesion, ABSENT_ROUTE, dtype=np.int64)
    parent_of = np.full(next_lesion, -1, dtype=np.int64)
    for row in range(lesion.size):
        route_of[lesion[row]] = route[row]
        parent_of[lesion[row]] = parent[row]
    return route_of, parent_of


@numba.njit(cache=True, nogil=True)
def _lineage_shares(lesion: NDArray[np.int64], parent: NDArray[np.int64],
                    route: NDArray[np.int64], next_lesion: int,
                    factor: float) -> NDArray[np.float64]:
    """:func:`shedding_shares_reference`'s walk up each clone's lineage, over the tables of
    :func:`by_lesion`."""
    route_of, parent_of = by_lesion(lesion, parent, route, next_lesion)
    size = lesion.size
    shares = np.empty(size)
    for row in range(size):
        if route[row] == PRIMARY_ROUTE:
            shares[row] = 1.0
            continue
        shares[row] = factor
        if route[row] != MUTATION_ROUTE:
            continue
        ancestor, steps = lesion[row], 0
        while 0 <= ancestor < next_lesion and route_of[ancestor] == MUTATION_ROUTE \
                and steps <= size:
            ancestor, steps = parent_of[ancestor], steps + 1
        if 0 <= ancestor < next_lesion and route_of[ancestor] == PRIMARY_ROUTE:
            shares[row] = 1.0
    return shares


def shedding_shares_reference(rows: LesionRows, model: ResolvedModel) -> NDArray[np.float64]:
    """:func:`shedding_shares` in plain Python: the readable definition."""
    size = rows.size
    factor = model.metastasis_shedding_factor
    route = rows.route[:size]
    shares = np.where(route == PRIMARY_ROUTE, 1.0, factor)
    clones = np.flatnonzero(route == MUTATION_ROUTE)
    if clones.size == 0 or factor == 1.0:
        return shares
    lesion, parent = rows.lesion[:size].tolist(), rows.parent[:size].tolist()
    route_of = dict(zip(lesion, route.tolist(), strict=True))
    parent_of = dict(zip(lesion, parent, strict=True))
    for row in clones.tolist():
        ancestor, steps = lesion[row], 0
        while route_of.get(ancestor) == MUTATION_ROUTE and steps <= size:
            ancestor, steps = parent_of[ancestor], steps + 1
        shares[row] = 1.0 if route_of.get(ancestor) == PRIMARY_ROUTE else factor
    return shares


def sample_pieces(rows: LesionRows, model: ResolvedModel, rng: np.random.Generator,
                  shedding_rate: float, metastasis_rate: float,
                  pieces: list[tuple[float, float]], max_rows: int, vector_min_sources: int
                  ) -> Sampled:
    """Sample every founder of the ``pieces`` (start, end) in turn, each on its burden grid
    (:func:`~metastasis.engine.burden.burden_grid`), until one reaches the lethal burden.
    The new founders are appended to ``rows``' buffers
    (:class:`~metastasis.engine.process.LesionRows`), which are extended in place while they
    have room.  ``shedding_rate`` and ``metastasis_rate`` are the patient's own (the median
    patient's times the patient's factors)."""
    starts = np.array([start for start, _ in pieces], dtype=np.float64)
    ends = np.array([end for _, end in pieces], dtype=np.float64)
    floats, ints, size, next_lesion, done, grid, total, over = _sample_pieces(
        rng, rows.floats, rows.ints, rows.size, rows.next_lesion, max_rows, starts, ends,
        model.lethal_burden_cells, float(shedding_rate),
        float(model.metastasis_shedding_factor), model.shedding_exponent,
        model.founder_total, model.founder_target_cdf, model.founder_route,
        model.site_capacity, model.dormant_share_of_outgrowth, model.mean_dormancy_days,
        model.micrometastasis_cells, model.colony_birth_rate, model.colony_death_rate,
        model.mean_outgrowth_delay_days, float(metastasis_rate), vector_min_sources)
    return Sampled(floats, ints, size, next_lesion, done, grid, total, over)
