"""Compiled burdens and crossing days: the clinic's hot paths without per-lesion Python.

The clinical course asks, thousands of times per patient, on which day the cells of some
sites first reach a threshold (symptoms, organ failure, fractures).  The readable reference
(:func:`metastasis.clinical.observe.first_crossing_reference`) builds a sub-table and
evaluates :meth:`~metastasis.results.patient.LesionTable.size_at` in numpy a dozen times per
query; here the same search runs in one compiled call over the table's column arrays, read
through an index array of the selected rows.

Same answers, not just close ones.  Every step repeats the reference's arithmetic in the
same order, so on a machine whose numpy and libm agree on ``exp`` and ``log`` the days are
bit for bit the reference's:

* a row's size follows ``LesionTable.size_at`` mask by mask (later states overwrite earlier
  ones, so a row that is both an establishing colony and growing is growing);
* the rows' sizes are summed in numpy's pairwise order (:func:`_pairwise_sum`), not left to
  right, because ``ndarray.sum`` is what the reference uses;
* the root inside a non-decreasing piece is found by Brent's method taking exactly the steps
  of SciPy's ``optimize.brentq`` (:func:`_brent`), so the refinement sees the same points.

Where numpy's vectorised ``exp``/``log`` and the C library differ in the last bit (some CPUs),
the burden agrees to rounding and the crossing day to the crossing tolerance, which is what
the tests demand.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

_PAIRWISE_BLOCK = 128
"""numpy's ``PW_BLOCKSIZE``: below this many terms a pairwise sum is one 8-way unrolled pass."""

_UNROLL = 8
"""numpy's pairwise sum keeps eight partial sums (and sums fewer than eight terms in a row)."""

_MIN_COLONY_DAYS = 1e-300
"""``size_at``'s floor on a colony's establishment time, so its growth rate stays finite."""

_BRENT_RTOL = 4.0 * np.finfo(np.float64).eps
"""SciPy's default (and smallest allowed) relative tolerance for ``brentq``."""

_BRENT_MAXITER = 100
"""SciPy's default cap on ``brentq`` iterations; exceeding it raises there, and here."""

_BRENT_XTOL_SHARE = 0.25
"""``_refine`` asks ``brentq`` for a quarter of the half tolerance: the check around the root
then rarely fails and bisection rarely runs."""

# Rows of the prepared block: one row per column the law reads, and two per-row constants
# computed once per query instead of at every evaluation (same operations, same values).
_ARRIVAL, _AWAKENING, _COLONY_SCALE, _MICRO, _OUTGROWTH, _X0 = 0, 1, 2, 3, 4, 5
_RATE, _CAPACITY, _GROWTH_START, _VALID_FROM, _VALID_TO = 6, 7, 8, 9, 10
_COLONY_GROWTH, _LOG_RATIO = 11, 12
_PREPARED_ROWS = 13


@numba.njit(cache=True, error_model="numpy")
def _nan_max(a: float, b: float) -> float:
    """``np.maximum`` of two scalars: NaN if either is NaN (Python's ``max`` is not)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a >= b else b


@numba.njit(cache=True, error_model="numpy")
def _nan_min(a: float, b: float) -> float:
    """``np.minimum`` of two scalars: NaN if either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a <= b else b


@numba.njit(cache=True, error_model="numpy")
def _block_sum(values: NDArray[np.float64], start: int, count: int) -> float:
    """numpy's sum of at most :data:`_PAIRWISE_BLOCK` terms: left to right below eight terms,
    else eight running partial sums combined pairwise, then the remainder left to right."""
    if count < _UNROLL:
        total = 0.0
        for i in range(count):
            total += values[start + i]
        return total
    r0, r1 = values[start], values[start + 1]
    r2, r3 = values[start + 2], values[start + 3]
    r4, r5 = values[start + 4], values[start + 5]
    r6, r7 = values[start + 6], values[start + 7]
    i = _UNROLL
    whole = count - count % _UNROLL
    while i < whole:
        r0 += values[start + i]
        r1 += values[start + i + 1]
        r2 += values[start + i + 2]
        r3 += values[start + i + 3]
        r4 += values[start + i + 4]
        r5 += values[start + i + 5]
        r6 += values[start + i + 6]
        r7 += values[start + i + 7]
        i += _UNROLL
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < count:
        total += values[start + i]
        i += 1
    return total


_STACK = 256
"""Room for the pairwise sum's explicit stack: a split pushes three frames and the halves
shrink at least twofold, so even 2**63 terms need under 200."""


@numba.njit(cache=True, error_model="numpy")
def _pairwise_sum(values: NDArray[np.float64], start: int, count: int) -> float:
    """Sum ``values[start:start + count]`` in the order numpy's ``add.reduce`` does.

    numpy splits a long sum in halves (the first a multiple of eight long) down to blocks of
    at most :data:`_PAIRWISE_BLOCK` terms (:func:`_block_sum`) and adds the halves' sums.
    Rounding depends on that tree, so following it gives the reference's sum to the last bit.
    The tree is walked with an explicit stack, not by recursion: numba's cache cannot reload
    a recursive function (numba issue 6061, a segmentation fault on the second run).
    """
    if count <= _PAIRWISE_BLOCK:
        return _block_sum(values, start, count)
    starts = np.empty(_STACK, dtype=np.int64)
    counts = np.empty(_STACK, dtype=np.int64)
    split = np.empty(_STACK, dtype=np.bool_)  # True: both halves summed, add them
    sums = np.empty(_STACK)
    starts[0], counts[0], split[0] = start, count, False
    frames, done = 1, 0
    while frames > 0:
        frames -= 1
        first, many = starts[frames], counts[frames]
        if split[frames]:
            done -= 1
            sums[done - 1] = sums[done - 1] + sums[done]  # left half + right half
        elif many <= _PAIRWISE_BLOCK:
            sums[done] = _block_sum(values, first, many)
            done += 1
        else:
            half = many // 2
            half -= half % _UNROLL
            # popped in reverse: left half, then right half, then their addition
            starts[frames], counts[frames], split[frames] = first, many, True
            starts[frames + 1], counts[frames + 1] = first + half, many - half
            split[frames + 1] = False
            starts[frames + 2], counts[frames + 2], split[frames + 2] = first, half, False
            frames += 3
    return sums[0]


@numba.njit(cache=True, error_model="numpy")
def _prepare(
    rows: NDArray[np.int64],
    arrival: NDArray[np.float64],
    awakening: NDArray[np.float64],
    colony_scale: NDArray[np.float64],
    micrometastasis: NDArray[np.float64],
    outgrowth: NDArray[np.float64],
    x0: NDArray[np.float64],
    rate: NDArray[np.float64],
    capacity: NDArray[np.float64],
    growth_start: NDArray[np.float64],
    valid_from: NDArray[np.float64],
    valid_to: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The selected rows' columns gathered into one block, with each row's colony growth
    rate and Gompertz log-ratio computed once (the reference recomputes them per day)."""
    n = rows.size
    block = np.empty((_PREPARED_ROWS, n))
    for k in range(n):
        r = rows[k]
        block[_ARRIVAL, k] = arrival[r]
        block[_AWAKENING, k] = awakening[r]
        block[_COLONY_SCALE, k] = colony_scale[r]
        block[_MICRO, k] = micrometastasis[r]
        block[_OUTGROWTH, k] = outgrowth[r]
        block[_X0, k] = x0[r]
        block[_RATE, k] = rate[r]
        block[_CAPACITY, k] = capacity[r]
        block[_GROWTH_START, k] = growth_start[r]
        block[_VALID_FROM, k] = valid_from[r]
        block[_VALID_TO, k] = valid_to[r]
        # as size_at: log(max(x0, 1) / W) / max(micrometastasis - awakening, 1e-300)
        block[_COLONY_GROWTH, k] = math.log(_nan_max(x0[r], 1.0) / colony_scale[r]) / _nan_max(
            micrometastasis[r] - awakening[r], _MIN_COLONY_DAYS
        )
        # as gompertz_size: log(x0 / K)
        block[_LOG_RATIO, k] = math.log(x0[r] / capacity[r])
    return block


@numba.njit(cache=True, error_model="numpy")
def _row_size(block: NDArray[np.float64], k: int, t: float) -> float:
    """Cells in prepared row ``k`` on day ``t``: ``LesionTable.size_at``'s masks in its order."""
    if not (
        block[_ARRIVAL, k] <= t and block[_VALID_FROM, k] <= t and t < block[_VALID_TO, k]
    ):
        return 0.0  # not founded yet, or this segment does not describe its lesion on day t
    size = 1.0  # a dormant founder
    awakening = block[_AWAKENING, k]
    micro = block[_MICRO, k]
    if awakening <= t and t < micro:  # establishing colony, clipped to [1, x0]
        grown = block[_COLONY_SCALE, k] * math.exp(block[_COLONY_GROWTH, k] * (t - awakening))
        size = _nan_min(_nan_max(grown, 1.0), block[_X0, k])
    if micro <= t and t < block[_OUTGROWTH, k]:  # micrometastasis plateau
        size = block[_X0, k]
    start = block[_GROWTH_START, k]
    if start <= t:  # Gompertz growth from x0 at growth_start
        age = _nan_max(t - start, 0.0)
        capacity = block[_CAPACITY, k]
        size = capacity * math.exp(block[_LOG_RATIO, k] * math.exp(-block[_RATE, k] * age))
    return size


@numba.njit(cache=True, error_model="numpy")
def _burden(block: NDArray[np.float64], t: float, scratch: NDArray[np.float64]) -> float:
    """Total cells of the prepared rows on day ``t`` (``scratch``: one slot per row)."""
    n = block.shape[1]
    for k in range(n):
        scratch[k] = _row_size(block, k, t)
    return _pairwise_sum(scratch, 0, n)


@numba.njit(cache=True, error_model="numpy")
def _excess(block: NDArray[np.float64], t: float, threshold: float,
            scratch: NDArray[np.float64]) -> float:
    """Burden minus threshold, refusing NaN as SciPy's ``brentq`` does."""
    value = _burden(block, t, scratch) - threshold
    if math.isnan(value):
        raise ValueError("The burden is NaN; solver cannot continue.")
    return value


@numba.njit(cache=True, error_model="numpy")
def _brent(
    block: NDArray[np.float64], threshold: float, a: float, b: float, xtol: float,
    scratch: NDArray[np.float64],
) -> float:
    """A root of burden - threshold in [a, b], by the steps of SciPy's ``brentq``.

    Brent's method (van Wijngaarden-Dekker-Brent) as SciPy implements it, inverse quadratic
    extrapolation or secant steps guarded by bisection, with SciPy's default relative
    tolerance and iteration cap.  Taking the same steps means evaluating the burden at the
    same days, so :func:`first_crossing_rows` returns what the reference returns.
    """
    previous, current = a, b
    f_previous = _excess(block, previous, threshold, scratch)
    f_current = _excess(block, current, threshold, scratch)
    if f_previous * f_current > 0.0:
        raise ValueError("f(a) and f(b) must have different signs")
    if f_previous == 0.0:
        return previous
    if f_current == 0.0:
        return current
    blk, f_blk, step_before, step = 0.0, 0.0, 0.0, 0.0
    for _ in range(_BRENT_MAXITER):
        if f_previous * f_current < 0.0:  # the root lies between previous and current
            blk, f_blk = previous, f_previous
            step_before = current - previous
            step = step_before
        if abs(f_blk) < abs(f_current):  # keep the best estimate in current
            previous, current, blk = current, blk, current
            f_previous, f_current, f_blk = f_current, f_blk, f_current
        delta = (xtol + _BRENT_RTOL * abs(current)) / 2
        bisection = (blk - current) / 2
        if f_current == 0.0 or abs(bisection) < delta:
            return current
        if abs(step_before) > delta and abs(f_current) < abs(f_previous):
            if previous == blk:  # secant
                trial = -f_current * (current - previous) / (f_current - f_previous)
            else:  # inverse quadratic extrapolation
                d_previous = (f_previous - f_current) / (previous - current)
                d_blk = (f_blk - f_current) / (blk - current)
                trial = (
                    -f_current
                    * (f_blk * d_blk - f_previous * d_previous)
                    / (d_blk * d_previous * (f_blk - f_previous))
                )
            bound = 3 * abs(bisection) - delta
            if 2 * abs(trial) < (abs(step_before) if abs(step_before) < bound else bound):
                step_before, step = step, trial  # a short enough interpolation step
            else:
                step_before, step = bisection, bisection
        else:
            step_before, step = bisection, bisection
        previous, f_previous = current, f_current
        if abs(step) > delta:
            current += step
        else:
            current += delta if bisection > 0 else -delta
        f_current = _excess(block, current, threshold, scratch)
    raise RuntimeError("Failed to converge after 100 iterations")


@numba.njit(cache=True, error_model="numpy")
def _bisect(
    block: NDArray[np.float64], threshold: float, low: float, top: float, tolerance: float,
    max_bisections: int, scratch: NDArray[np.float64],
) -> float:
    """``observe._bisect``: shrink [low, top] (below at low, reached at top) to the
    tolerance, keeping that invariant; returns top."""
    for _ in range(max_bisections):
        if top - low <= tolerance:
            break
        middle = 0.5 * (low + top)
        if _burden(block, middle, scratch) >= threshold:
            top = middle
        else:
            low = middle
    return top


@numba.njit(cache=True, error_model="numpy")
def _refine(
    block: NDArray[np.float64], threshold: float, low: float, top: float, tolerance: float,
    max_bisections: int, scratch: NDArray[np.float64],
) -> float:
    """``observe._refine``: Brent's root, then the bracket check around it (bisection if it
    fails), so the day returned reaches the threshold and the day before it does not."""
    half = 0.5 * tolerance
    root = _brent(block, threshold, low, top, _BRENT_XTOL_SHARE * half, scratch)
    left = max(low, root - half)
    right = min(top, root + half)
    if _burden(block, right, scratch) < threshold:
        return _bisect(block, threshold, right, top, tolerance, max_bisections, scratch)
    if left > low and _burden(block, left, scratch) >= threshold:
        return _bisect(block, threshold, low, left, tolerance, max_bisections, scratch)
    return right


@numba.njit(cache=True, error_model="numpy")
def _sift_down(values: NDArray[np.float64], root: int, end: int) -> None:
    """Restore the max-heap below ``root`` in ``values[:end]``."""
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and values[child + 1] > values[child]:
            child += 1
        if values[root] >= values[child]:
            return
        values[root], values[child] = values[child], values[root]
        root = child


@numba.njit(cache=True, error_model="numpy")
def _heapsort(values: NDArray[np.float64]) -> None:
    """Sort ``values`` (no NaN) in place, in O(n log n) whatever their order.

    Written out because compiling ``np.sort`` costs seconds on first use; a cut closes
    many rows on one day, so the days to sort run to thousands on a treated patient.
    """
    n = values.size
    for root in range(n // 2 - 1, -1, -1):
        _sift_down(values, root, n)
    for end in range(n - 1, 0, -1):
        values[0], values[end] = values[end], values[0]
        _sift_down(values, 0, end)


@numba.njit(cache=True, error_model="numpy")
def _edges(block: NDArray[np.float64], start: float, stop: float) -> NDArray[np.float64]:
    """start, stop and the closing days strictly after start and up to stop, sorted, once."""
    n = block.shape[1]
    days = np.empty(n + 2)
    days[0], days[1] = start, stop
    count = 2
    for k in range(n):
        day = block[_VALID_TO, k]
        if day > start and day <= stop:
            days[count] = day
            count += 1
    days = days[:count]
    _heapsort(days)
    kept = 1
    for i in range(1, count):
        if days[i] != days[kept - 1]:
            days[kept] = days[i]
            kept += 1
    return days[:kept]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def burden_at(
    rows: NDArray[np.int64],
    arrival: NDArray[np.float64],
    awakening: NDArray[np.float64],
    colony_scale: NDArray[np.float64],
    micrometastasis: NDArray[np.float64],
    outgrowth: NDArray[np.float64],
    x0: NDArray[np.float64],
    rate: NDArray[np.float64],
    capacity: NDArray[np.float64],
    growth_start: NDArray[np.float64],
    valid_from: NDArray[np.float64],
    valid_to: NDArray[np.float64],
    t: float,
) -> float:
    """Total cells of the table rows ``rows`` on day ``t``: ``take(rows).size_at(t).sum()``."""
    block = _prepare(rows, arrival, awakening, colony_scale, micrometastasis, outgrowth, x0,
                     rate, capacity, growth_start, valid_from, valid_to)
    return _burden(block, t, np.empty(rows.size))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def ceiling_rows(
    rows: NDArray[np.int64],
    arrival: NDArray[np.float64],
    awakening: NDArray[np.float64],
    colony_scale: NDArray[np.float64],
    micrometastasis: NDArray[np.float64],
    outgrowth: NDArray[np.float64],
    x0: NDArray[np.float64],
    rate: NDArray[np.float64],
    capacity: NDArray[np.float64],
    growth_start: NDArray[np.float64],
    valid_from: NDArray[np.float64],
    valid_to: NDArray[np.float64],
    start: float,
    stop: float,
) -> float:
    """The largest burden of the rows on [start, stop], as :func:`first_crossing_rows` would
    see it: the window splits at the rows' closing days into pieces on which the burden
    cannot fall, so the largest of the burdens at each piece's low end, at its supremum (just
    before it closes) and at ``stop`` bounds the burden everywhere in the window.  A subset
    of the rows closes on a subset of these days, so the bound holds for it too.  The caller
    has checked that ``start`` is finite, ``stop >= start`` and ``rows`` is not empty."""
    block = _prepare(rows, arrival, awakening, colony_scale, micrometastasis, outgrowth, x0,
                     rate, capacity, growth_start, valid_from, valid_to)
    scratch = np.empty(rows.size)
    edges = _edges(block, start, stop)
    highest = _burden(block, stop, scratch)
    for i in range(edges.size - 1):
        low, high = edges[i], edges[i + 1]
        highest = max(highest, _burden(block, low, scratch))
        top = np.nextafter(high, -np.inf)
        if top > low:
            highest = max(highest, _burden(block, top, scratch))
    return highest


@numba.njit(cache=True, nogil=True, error_model="numpy")
def first_crossing_rows(
    rows: NDArray[np.int64],
    arrival: NDArray[np.float64],
    awakening: NDArray[np.float64],
    colony_scale: NDArray[np.float64],
    micrometastasis: NDArray[np.float64],
    outgrowth: NDArray[np.float64],
    x0: NDArray[np.float64],
    rate: NDArray[np.float64],
    capacity: NDArray[np.float64],
    growth_start: NDArray[np.float64],
    valid_from: NDArray[np.float64],
    valid_to: NDArray[np.float64],
    threshold: float,
    start: float,
    stop: float,
    tolerance: float,
    max_bisections: int,
) -> float:
    """First day in [start, stop] on which the rows' burden reaches ``threshold``; NaN if none.

    The reference's search: the window splits at the rows' closing days into pieces on which
    the burden cannot fall; a piece already at the threshold at its low end answers with that
    end; otherwise the first piece whose supremum (the day just before it closes) reaches the
    threshold is refined to ``tolerance``.  The caller has checked that ``start`` is finite,
    ``stop >= start`` and ``rows`` is not empty.
    """
    block = _prepare(rows, arrival, awakening, colony_scale, micrometastasis, outgrowth, x0,
                     rate, capacity, growth_start, valid_from, valid_to)
    scratch = np.empty(rows.size)
    edges = _edges(block, start, stop)
    for i in range(edges.size - 1):
        low, high = edges[i], edges[i + 1]
        if _burden(block, low, scratch) >= threshold:
            return low
        top = np.nextafter(high, -np.inf)  # the piece's supremum: just before it closes
        if top <= low or _burden(block, top, scratch) < threshold:
            continue
        return _refine(block, threshold, low, top, tolerance, max_bisections, scratch)
    if _burden(block, stop, scratch) >= threshold:
        return stop
    return math.nan


@numba.njit(cache=True, error_model="numpy")
def physical_roots(
    lesion: NDArray[np.int64], parent: NDArray[np.int64], clone: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """For every row, the lesion it physically belongs to (``observe.physical_lesions``).

    Lesions are given by position: ``lesion[r]`` is row r's lesion, ``parent[r]`` its
    parent's (-1: not a lesion of the table), ``clone[r]`` whether the row came by mutation
    inside that parent.  The chain of clone parents is followed while the parent is in the
    table; as the reference's dictionaries do, the last clone row of a lesion speaks for it.
    A chain longer than the number of rows can only be a loop (corrupt input): it raises
    instead of spinning forever.  Positions, not ids, so no sorting is compiled here (that
    took seconds of compile time for a walk of microseconds).
    """
    n = lesion.size
    up = np.full(n, -2, dtype=np.int64)  # -2: not a clone; -1: a clone of an absent parent
    for r in range(n):
        if clone[r]:
            up[lesion[r]] = parent[r]
    root = np.empty(n, dtype=np.int64)
    for r in range(n):
        j = lesion[r]
        steps = 0
        while up[j] >= 0:
            j = up[j]
            steps += 1
            if steps > n:
                raise ValueError("a loop of clones, each inside the next")
        root[r] = j
    return root


@numba.njit(cache=True, nogil=True, error_model="numpy")
def select_rows(
    site: NDArray[np.int64], sites: NDArray[np.int64], by_site: bool,
    root: NDArray[np.int64], lesions: NDArray[np.int64], by_lesion: bool,
) -> NDArray[np.int64]:
    """Rows (increasing) whose site is in ``sites`` (if ``by_site``) and whose physical
    lesion is in ``lesions`` (if ``by_lesion``): ``observe._rows`` without ``np.isin``'s
    set-up cost, which dominated a query on the small tables the clinic mostly asks about."""
    keep = np.empty(site.size, dtype=np.int64)
    count = 0
    for r in range(site.size):
        if by_site:
            found = False
            for s in sites:
                if site[r] == s:
                    found = True
                    break
            if not found:
                continue
        if by_lesion:
            found = False
            for lesion in lesions:
                if root[r] == lesion:
                    found = True
                    break
            if not found:
                continue
        keep[count] = r
        count += 1
    return keep[:count].copy()
