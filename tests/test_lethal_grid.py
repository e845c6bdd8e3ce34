"""The sampler's lazily summed burden grid against a grid kept at every point.

Within a piece the compiled sampler keeps the whole-body burden at the grid's last point;
once that reaches the lethal burden it finds the first point that does by bisection over the
points, summing each only when asked (``_at_lethal``), and each lesion that starts growing
later joins the points summed (``_later_lesion``).  A grid kept at every point all along
(the sampler's law before, and :class:`~metastasis.engine.burden.BurdenTracker`'s) is the
definition: every point the lazy grid sums must hold the same number, bit for bit, and the
piece must stop at the same grid day, including when a curve shrinks (a lesion above its
capacity), where the grid falls back to summing every point.
"""

from __future__ import annotations

import numpy as np
import pytest

from metastasis.engine.burden import GRID_INTERVALS, fill_piece_grid
from metastasis.engine.sampling import (
    F_CAPACITY,
    F_GROWTH_START,
    F_RATE,
    F_X0,
    FLOAT_COLUMNS,
    _add_curve,
    _at_lethal,
    _first_reaching,
    _growing_at,
    _partial,
    _starts_growing,
)

CUT, UNTIL = 1000.0, 1365.25


def _rows(rng: np.random.Generator, n_counted: int, n_new: int, shrinking: int = -1
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A float buffer: ``n_counted`` lesions growing at the cut, then ``n_new`` that start
    growing inside the piece in day order (the order the sampler adds them); the new row
    ``shrinking`` (if any) starts above its capacity."""
    n = n_counted + n_new
    floats = np.zeros((len(FLOAT_COLUMNS), n))
    floats[F_GROWTH_START, :n_counted] = rng.uniform(0.0, CUT, n_counted)
    floats[F_GROWTH_START, n_counted:] = np.sort(rng.uniform(CUT, UNTIL, n_new))
    floats[F_X0] = 10.0 ** rng.uniform(6.0, 9.0, n)
    floats[F_RATE] = rng.uniform(0.002, 0.02, n)
    floats[F_CAPACITY] = 1e13
    if shrinking >= 0:
        row = n_counted + shrinking
        floats[F_X0, row] = 3.0 * floats[F_CAPACITY, row]
    counted = np.zeros(n, dtype=np.bool_)
    counted[:n_counted] = True
    return floats, counted, np.arange(n_counted, n)


def _eager(grid: np.ndarray, floats: np.ndarray, counted: np.ndarray, new: np.ndarray,
           lethal: float, skip: bool) -> tuple[np.ndarray, float]:
    """Every point summed all along: the lesions growing at the cut, then each new curve in
    the order added; with ``skip``, as the sampler does, a lesion that starts growing after
    the stop is not added."""
    total = np.zeros(grid.size)
    first_point = int(np.searchsorted(grid, CUT, side="right"))
    for k in range(first_point, grid.size):
        total[k] += _growing_at(floats, counted, grid[k])
    stop = _first_reaching(grid, total, lethal, UNTIL)
    for row in new:
        start = floats[F_GROWTH_START, row]
        if skip and start >= stop:
            continue
        _add_curve(grid, total, max(start, 0.0), start, floats[F_X0, row],
                   floats[F_RATE, row], floats[F_CAPACITY, row])
        stop = _first_reaching(grid, total, lethal, stop)
    return total, stop


def _lazy(grid: np.ndarray, floats: np.ndarray, counted: np.ndarray, new: np.ndarray,
          lethal: float, skip: bool) -> tuple[np.ndarray, float]:
    """The sampler's steps: the last point only, then lazily once it reaches ``lethal``."""
    last = grid.size - 1
    first_point = int(np.searchsorted(grid, CUT, side="right"))
    total = np.zeros(grid.size)
    known = np.zeros(grid.size, dtype=np.bool_)
    known[last] = True
    added = np.empty(4, dtype=np.int64)  # grown as the sampler grows it
    n_added = 0
    stop, full, lazy, first_lethal = UNTIL, False, False, last
    total[last] += _growing_at(floats, counted, grid[last])
    if total[last] >= lethal:
        full = True
        lazy, first_lethal, stop = _at_lethal(grid, total, known, lethal, stop, floats,
                                              counted, first_point, added, n_added)
    for row in new:
        if skip and floats[F_GROWTH_START, row] >= stop:
            continue
        stop, full, lazy, first_lethal, added, n_added = _starts_growing(
            grid, total, known, lethal, stop, full, lazy, first_lethal, int(row), floats,
            counted, first_point, added, n_added)
    return _partial(total, known), stop


def _grid() -> np.ndarray:
    grid = np.empty(GRID_INTERVALS + 1)
    fill_piece_grid(CUT, UNTIL, grid)
    return grid


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("shrinking", [-1, 0, 17])
@pytest.mark.parametrize("skip", [True, False])
def test_lazy_grid_sums_and_stops_as_a_grid_kept_at_every_point(seed: int, shrinking: int,
                                                                skip: bool) -> None:
    rng = np.random.default_rng(seed)
    floats, counted, new = _rows(rng, int(rng.integers(0, 300)), int(rng.integers(20, 400)),
                                 shrinking)
    grid = _grid()
    everything, _ = _eager(grid, floats, counted, new, np.inf, skip=False)
    # lethal anywhere from below the burden at the cut to just below the piece's end, so
    # that the last point reaches it before, during and late in the adding
    lethal = float(rng.uniform(0.05, 0.999)) * float(everything[-1])
    eager, eager_stop = _eager(grid, floats, counted, new, lethal, skip)
    lazy, stop = _lazy(grid, floats, counted, new, lethal, skip)
    summed = ~np.isnan(lazy)
    assert summed[-1]
    np.testing.assert_array_equal(lazy[summed], eager[summed])  # bit for bit
    assert stop == eager_stop
    # what the process reads from the grid: the first point at the lethal burden, and that
    # every point before it is summed below it or not summed
    reached = np.flatnonzero(eager >= lethal)
    assert np.flatnonzero(lazy >= lethal)[0] == reached[0]
    assert stop == grid[reached[0]]


def test_a_shrinking_curve_sums_every_point() -> None:
    rng = np.random.default_rng(3)
    floats, counted, new = _rows(rng, 100, 300, shrinking=250)
    grid = _grid()
    everything, _ = _eager(grid, floats, counted, new, np.inf, skip=False)
    lazy, _ = _lazy(grid, floats, counted, new, 0.2 * float(everything[-1]), skip=False)
    assert not np.isnan(lazy).any()


@pytest.mark.parametrize(("fraction", "most"), [(0.95, 12), (0.3, 48)])
def test_lazy_grid_sums_fewer_points(fraction: float, most: int) -> None:
    """The point of the change: a heavy piece sums some of its 65 points, few when the
    lethal burden comes late in the piece (the first point that reaches it moves earlier as
    lesions are added, and each move sums a few more)."""
    rng = np.random.default_rng(5)
    floats, counted, new = _rows(rng, 200, 2000)
    grid = _grid()
    everything, _ = _eager(grid, floats, counted, new, np.inf, skip=False)
    lazy, _ = _lazy(grid, floats, counted, new, fraction * float(everything[-1]), skip=True)
    assert int((~np.isnan(lazy)).sum()) <= most
