"""When the untreated natural history ends: the total burden of growing lesions.

The engine needs an upper bound on the end time while lesions are still being added (the
bound only moves earlier), and the exact end once all lesions are known.  A coarse grid
gives the bound cheaply; bisection on the exact sum of Gompertz curves gives the end.
Microscopic phases (dormant cells, colonies below the micrometastasis size) are not counted:
they hold at most a micrometastasis worth of cells each, negligible against a lethal burden.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis.model.gompertz import gompertz_size

GRID_INTERVALS = 64
"""Points of the grid over one piece of the future (a year): the resolution of the bound
only, since the end itself is found exactly by bisection."""

BISECTION_STEPS = 60
"""Halvings of a grid interval: 60 reach below 1e-15 of it, the limit of double precision."""


def total_burden(t: float, start, x0, rate, capacity, valid_from=None, valid_to=None) -> float:
    """Cells in all lesion segments that have started growing and are valid on day ``t``."""
    start = np.asarray(start, dtype=float)
    growing = start < t
    if valid_from is not None:
        growing &= (np.asarray(valid_from) <= t) & (t < np.asarray(valid_to))
    if not growing.any():
        return 0.0
    sizes = gompertz_size(
        t - start[growing],
        np.asarray(x0)[growing],
        np.asarray(rate)[growing],
        np.asarray(capacity)[growing],
    )
    return float(sizes.sum())


@numba.njit(cache=True)
def _add_curve(grid: NDArray[np.float64], total: NDArray[np.float64], active_from: float,
               start: float, x0: float, rate: float, capacity: float, lethal: float) -> int:
    """Add one Gompertz curve to the grid's totals at the points after ``active_from``, and
    return the first point where the total reaches ``lethal`` (-1 if none).

    Compiled because the engine adds lesions one at a time, tens of thousands per cohort of
    hundreds, and numpy's fixed cost per call was most of the cost of each.  The same law as
    :func:`metastasis.model.growth.gompertz_size`, point by point; the total only grows with
    time, so the end is checked first."""
    first = np.searchsorted(grid, active_from, side="right")
    if first >= grid.size:
        return -1
    log_ratio = math.log(x0 / capacity)
    for k in range(first, grid.size):
        age = max(grid[k] - start, 0.0)
        total[k] += capacity * math.exp(log_ratio * math.exp(-rate * age))
    if total[grid.size - 1] < lethal:
        return -1
    for k in range(first, grid.size):
        if total[k] >= lethal:
            return k
    return -1


@numba.njit(cache=True, nogil=True)
def _first_lethal_day(low: float, high: float, start: NDArray[np.float64],
                      x0: NDArray[np.float64], rate: NDArray[np.float64],
                      capacity: NDArray[np.float64], valid_from: NDArray[np.float64],
                      valid_to: NDArray[np.float64], lethal: float, steps: int) -> float:
    """The bisection of :meth:`BurdenTracker.resolve_end` in one compiled call.

    The same halvings of the same bracket and the same Gompertz arithmetic per row as
    :func:`total_burden`; only the order of the sum differs (row order, stopping once the
    lethal burden is reached, where numpy sums pairwise), so the day found can differ from
    the readable path's in its last bits.  Rows that cannot grow inside the bracket are
    left out once, before the halvings: each halving read every row, in 60 numpy passes
    that were a fifth of an untreated patient's time (issue 8)."""
    keep = np.empty(start.size, dtype=np.int64)
    log_ratio = np.empty(start.size)  # each kept row's ln(x0 / K), taken once
    kept = 0
    for i in range(start.size):
        if start[i] < high and valid_from[i] <= high and valid_to[i] > low:
            keep[kept] = i
            log_ratio[kept] = math.log(x0[i] / capacity[i])
            kept += 1
    for _ in range(steps):
        middle = 0.5 * (low + high)
        total = 0.0
        for j in range(kept):
            i = keep[j]
            if start[i] < middle and valid_from[i] <= middle and middle < valid_to[i]:
                age = middle - start[i]
                total += capacity[i] * math.exp(log_ratio[j] * math.exp(-rate[i] * age))
                if total >= lethal:
                    break
        if total >= lethal:
            high = middle
        else:
            low = middle
    return high


@lru_cache(maxsize=64)
def burden_grid(start: float, horizon: float) -> NDArray[np.float64]:
    """The read-only grid over one piece of the future, from ``start`` to ``horizon``."""
    grid = np.linspace(start, horizon, GRID_INTERVALS + 1)
    grid.flags.writeable = False
    return grid


@numba.njit(cache=True, nogil=True)
def fill_piece_grid(start: float, end: float, grid: NDArray[np.float64]) -> None:
    """:func:`burden_grid` of one piece written into ``grid`` (its ``GRID_INTERVALS + 1``
    points), in compiled code: numpy linspace's arithmetic (k times the step, plus the start;
    the end itself last), bit for bit, so that the compiled sampler builds each piece's grid
    itself (the clinic asks for a piece or two at a time, thousands of times, and numpy's
    per-call cost of building them in Python was more than sampling a short piece)."""
    step = (end - start) / GRID_INTERVALS
    for k in range(GRID_INTERVALS):
        point = k * step
        point += start
        grid[k] = point
    grid[GRID_INTERVALS] = end


class BurdenTracker:
    """Grid-resolved total burden, kept as lesions start to grow."""

    def __init__(self, horizon_days: float, lethal_cells: float, start: float = 0.0) -> None:
        self.horizon = float(horizon_days)
        self.lethal = float(lethal_cells)
        self.grid = burden_grid(float(start), self.horizon)
        self.total = np.zeros_like(self.grid)
        self.stop = self.horizon

    @classmethod
    def of_totals(cls, horizon_days: float, lethal_cells: float, grid: NDArray[np.float64],
                  total: NDArray[np.float64]) -> BurdenTracker:
        """A tracker whose totals on ``grid`` were kept elsewhere (the compiled sampler)."""
        tracker = cls.__new__(cls)
        tracker.horizon, tracker.lethal = float(horizon_days), float(lethal_cells)
        tracker.grid, tracker.total = grid, total
        reached = np.flatnonzero(total >= tracker.lethal)
        tracker.stop = float(grid[reached[0]]) if reached.size else tracker.horizon
        return tracker

    def add(
        self, start: float, x0: float, rate: float, capacity: float, active_from: float = 0.0
    ) -> None:
        """Count a lesion that grows from ``x0`` cells from day ``start``, from ``active_from``
        on (a lesion already growing when treatment restarts the simulation)."""
        if start >= self.stop:
            return
        crossed = _add_curve(self.grid, self.total, max(start, active_from), start, x0, rate,
                             capacity, self.lethal)
        if crossed >= 0:
            self.stop = min(self.stop, float(self.grid[crossed]))

    def add_many(
        self,
        start: NDArray[np.float64],
        x0: NDArray[np.float64],
        rate: NDArray[np.float64],
        capacity: NDArray[np.float64],
        active_from: float,
    ) -> None:
        """Count several lesions already growing on ``active_from`` (all at once: a new piece
        of the future starts with every lesion that grows through it)."""
        if start.size == 0:
            return
        first = int(np.searchsorted(self.grid, active_from, side="right"))
        later = self.total[first:]
        if later.size == 0:
            return
        ages = self.grid[first:][None, :] - start[:, None]
        later += gompertz_size(ages, x0[:, None], rate[:, None], capacity[:, None]).sum(axis=0)
        if later[-1] >= self.lethal:
            crossed = first + int(np.argmax(later >= self.lethal))
            self.stop = min(self.stop, float(self.grid[crossed]))

    def resolve_end(
        self,
        start: ArrayLike,
        x0: ArrayLike,
        rate: ArrayLike,
        capacity: ArrayLike,
        *,
        valid_from: ArrayLike | None = None,
        valid_to: ArrayLike | None = None,
        after: float = 0.0,
        compiled: bool = False,
    ) -> tuple[float, str]:
        """The exact end: first day the burden reaches the lethal burden, else the horizon.

        Only days after ``after`` (the last intervention) are searched: before it the earlier
        segments, not these, held the truth.  ``compiled`` bisects in one compiled call
        (:func:`_first_lethal_day`; the engine's path), otherwise in numpy (the reference).
        """
        crossed = np.flatnonzero(self.total >= self.lethal)
        if not crossed.size:
            return self.horizon, "horizon"
        k = int(crossed[0])
        low, high = max(float(self.grid[max(k - 1, 0)]), after), float(self.grid[k])
        if compiled:
            def floats(column: ArrayLike) -> NDArray[np.float64]:
                return np.ascontiguousarray(column, dtype=np.float64)

            n = np.asarray(start).size
            first = np.full(n, -np.inf) if valid_from is None else floats(valid_from)
            last = np.full(n, np.inf) if valid_to is None else floats(valid_to)
            day = _first_lethal_day(low, high, floats(start), floats(x0), floats(rate),
                                    floats(capacity), first, last, self.lethal,
                                    BISECTION_STEPS)
            return float(day), "lethal_burden"
        columns = [np.asarray(c, dtype=float) for c in (start, x0, rate, capacity)]
        if valid_from is not None:
            columns += [np.asarray(valid_from, dtype=float), np.asarray(valid_to, dtype=float)]
        for _ in range(BISECTION_STEPS):
            middle = 0.5 * (low + high)
            if total_burden(middle, *columns) >= self.lethal:
                high = middle
            else:
                low = middle
        return high, "lethal_burden"
