"""What the clinic can ask of the hidden disease: burdens on a day and when they cross.

Everything here reads a :class:`~metastasis.results.patient.LesionTable` and nothing else, so
the clinical layer sees the disease only through its lesion segments.

Finding the day a burden first reaches a threshold.  Between two days on which rows close
(``valid_to``: treatment cut a lesion), the burden of any set of rows can only grow: open
rows grow (colony, plateau, Gompertz), new rows add cells, and a row opened at a cut starts
from its own survivors.  So the window splits at the closing days into pieces on which the
burden is non-decreasing; the first piece whose supremum (its value just before the next
closing day) reaches the threshold holds the crossing, and bisection inside that piece is
exact.  No grid can miss a brief excursion above the threshold that ends at a cut, and in the
untreated case (one piece) the answer is exact to :data:`CROSSING_TOLERANCE_DAYS`.

The clinical course asks this thousands of times per patient, so :func:`first_crossing` runs
the search compiled (:mod:`metastasis.clinical.burden_kernels`) on the table's columns;
:func:`first_crossing_reference` is the same search in plain numpy and SciPy, kept as the
readable definition the compiled one is tested against.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from metastasis.clinical import burden_kernels
from metastasis.engine.process import MUTATION_ROUTE
from metastasis.results.patient import LesionTable

PRIMARY_LESION = 0
"""The primary's id in a lesion table (tables number lesions in order of appearance)."""

CROSSING_TOLERANCE_DAYS = 1e-7
"""Width of the last bisection bracket: a crossing day is exact to this many days."""

MAX_BISECTIONS = 200
"""Cap on bisection steps (about 60 reach 1e-7 days over a century in float64)."""


def physical_lesions(table: LesionTable) -> NDArray[np.int64]:
    """For every row, the lesion it physically belongs to.

    A clone that arose by mutation inside its parent (route ``MUTATION_ROUTE``) grows in the
    parent's mass, so a scan sees, a biopsy samples and a symptom feels them together.
    Compiled when the columns are int64 (as the engine writes them), else
    :func:`physical_lesions_reference`; the two agree row for row.
    """
    if not np.any(table.route == MUTATION_ROUTE):
        return table.id.copy()  # untreated or without clones: every row is its own lesion
    if not _int64(table.id, table.parent):
        return physical_lesions_reference(table)
    ids, lesion = np.unique(table.id, return_inverse=True)
    where = np.minimum(np.searchsorted(ids, table.parent), ids.size - 1)
    parent = np.where(ids[where] == table.parent, where, -1)
    root = burden_kernels.physical_roots(lesion, parent, table.route == MUTATION_ROUTE)
    return ids[root]


def physical_lesions_reference(table: LesionTable) -> NDArray[np.int64]:
    """:func:`physical_lesions` in plain Python: follow each clone to the lesion it grew in."""
    root = table.id.copy()
    if not np.any(table.route == MUTATION_ROUTE):
        return root  # untreated or without clones: every row is its own lesion
    parent_of = dict(zip(table.id.tolist(), table.parent.tolist(), strict=True))
    clone_of = {
        int(i): int(p)
        for i, p, r in zip(table.id, table.parent, table.route, strict=True)
        if r == MUTATION_ROUTE
    }
    for row, lesion in enumerate(table.id.tolist()):
        current = lesion
        while current in clone_of and clone_of[current] in parent_of:
            current = clone_of[current]
        root[row] = current
    return root


def _int64(*columns: NDArray[np.generic]) -> bool:
    """Whether the kernels can read these columns as they are (the engine's int64 ids)."""
    return all(column.dtype == np.int64 for column in columns)


_NO_FILTER = np.empty(0, dtype=np.int64)
"""Stands for "any" when a filter (sites or lesions) is not asked for."""


def _rows(
    table: LesionTable, sites: Sequence[int] | None, lesions: Sequence[int] | None
) -> NDArray[np.int64]:
    """Rows in the given sites (all if None) and physical lesions (all if None), increasing.

    Compiled: ``np.isin``'s set-up took most of a query on the small tables the clinic
    mostly asks about.  :func:`_rows_reference` is the numpy definition.
    """
    return BurdenQuery(table)._rows(sites, lesions)


def _rows_reference(
    table: LesionTable, sites: Sequence[int] | None, lesions: Sequence[int] | None,
    metastases_only: bool = False,
) -> NDArray[np.int64]:
    """:func:`_rows` in numpy, with :func:`physical_lesions_reference`."""
    keep = np.ones(len(table), dtype=bool)
    if sites is not None:
        keep &= np.isin(table.site, np.asarray(list(sites), dtype=np.int64))
    if lesions is not None:
        keep &= np.isin(
            physical_lesions_reference(table), np.asarray(list(lesions), dtype=np.int64)
        )
    if metastases_only:
        keep &= physical_lesions_reference(table) != PRIMARY_LESION
    return np.flatnonzero(keep)


def site_burden(
    table: LesionTable,
    sites: Sequence[int] | None,
    day: float,
    *,
    lesions: Sequence[int] | None = None,
) -> float:
    """Cells on ``day`` in the given sites (None: the whole body).

    The primary counts for its own site like any lesion there.  ``lesions`` restricts the sum
    to those physical lesions (a primary symptom feels the primary only: ``lesions=(0,)``).
    """
    rows = _rows(table, sites, lesions)
    if not rows.size:
        return 0.0
    return float(table.take(rows).size_at(float(day)).sum())


def lesion_sizes(
    table: LesionTable, day: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Physical lesions present on ``day``: their ids, sites and cells, by id.

    Rows of one lesion (its segments, its mutation clones) are summed; a lesion with no
    cell that day (not yet founded, or eradicated) is left out.
    """
    cells = table.size_at(float(day))
    root = physical_lesions(table)
    present = cells > 0.0
    ids, inverse = np.unique(root[present], return_inverse=True)
    total = np.bincount(inverse, weights=cells[present], minlength=ids.size)
    every, first_row = np.unique(table.id, return_index=True)
    sites = table.site[first_row[np.searchsorted(every, ids)]]
    return ids.astype(np.int64), sites, total.astype(np.float64, copy=False)


def _bisect(burden: Callable[[float], float], threshold: float, low: float, top: float) -> float:
    """Shrink [low, top] (burden below the threshold at low, at or above it at top) to
    :data:`CROSSING_TOLERANCE_DAYS`, keeping that invariant; returns top."""
    for _ in range(MAX_BISECTIONS):
        if top - low <= CROSSING_TOLERANCE_DAYS:
            break
        middle = 0.5 * (low + top)
        if burden(middle) >= threshold:
            top = middle
        else:
            low = middle
    return top


def _refine(burden: Callable[[float], float], threshold: float, low: float, top: float) -> float:
    """First day in (low, top] at which a non-decreasing burden reaches the threshold.

    Brent's method finds the sign change in a handful of evaluations (the burden is smooth
    between the arrivals of new lesions), against some 40 for plain bisection; a check of
    the bracket around its answer keeps the guarantee (below at the left end, at or above at
    the returned day), and bisection takes over if the check fails.
    """
    half = 0.5 * CROSSING_TOLERANCE_DAYS
    root = optimize.brentq(lambda t: burden(t) - threshold, low, top, xtol=0.25 * half)
    left, right = max(low, root - half), min(top, root + half)
    if burden(right) < threshold:
        return _bisect(burden, threshold, right, top)
    if left > low and burden(left) >= threshold:
        return _bisect(burden, threshold, low, left)
    return right


_LAW_COLUMNS = (
    "arrival", "awakening", "colony_scale", "micrometastasis", "outgrowth", "x0", "rate",
    "capacity", "growth_start", "valid_from", "valid_to",
)
"""The columns of :meth:`LesionTable.size_at`'s law, in the order the kernels take them."""


_Column = NDArray[np.float64]
_LawColumns = tuple[_Column, _Column, _Column, _Column, _Column, _Column, _Column, _Column,
                    _Column, _Column, _Column]
"""One array per name of :data:`_LAW_COLUMNS`."""


def _float_columns(table: LesionTable) -> _LawColumns:
    """The columns the size law reads, as the contiguous float64 arrays the kernels take.

    No copy for a table built by the engine (already so); any other table is converted once
    here rather than compiling the kernels again for its dtypes.
    """
    return cast(_LawColumns, tuple(
        np.ascontiguousarray(getattr(table, name), dtype=np.float64) for name in _LAW_COLUMNS
    ))


CEILING_MARGIN = 1e-9
"""Relative margin by which a threshold must exceed a window's ceiling for the search to be
skipped: far above the last-bit differences between sums of the same cells taken in other
orders, far below any threshold's own spread (a cost setting: the answer is unchanged)."""


_LAST_QUERY = threading.local()
"""The query :meth:`BurdenQuery.of` handed out last in each thread (one: the clinic asks
about one table at a time; the web server simulates in several threads)."""


class BurdenQuery:
    """Questions about the burden of one table, sharing what every question needs.

    The clinic asks one table many questions (each symptom, each fatal rule): the kernels'
    contiguous columns and the rows' physical lesions are prepared once here, not once per
    question; so is each window's ceiling.  Where no row closes inside a window, no burden
    of any set of rows can fall there (see the module's docstring), so the whole body's
    burden at the window's end bounds every burden in it: a threshold above that ceiling is
    not crossed, and its search is skipped.  Where rows close, the largest whole-body burden
    at the ends of the pieces between closing days bounds it instead.  Before diagnosis
    nothing closes, most years of a history are far below every symptom, and after surgery
    or chemotherapy what is left is far below every fatal rule: most searches end here."""

    def __init__(self, table: LesionTable) -> None:
        self.table = table
        self._columns: _LawColumns | None = None
        self._physical: NDArray[np.int64] | None = None
        self._ceilings: dict[tuple[float, float], float] = {}

    @classmethod
    def of(cls, table: LesionTable) -> BurdenQuery:
        """The query of ``table``, shared with the last caller that asked about the same
        table object: the clinic asks one year's table about symptoms and then about death,
        and each question would otherwise prepare the columns and ceilings again.  Tables
        are read-only, so sharing changes no answer."""
        query: BurdenQuery | None = getattr(_LAST_QUERY, "query", None)
        if query is None or query.table is not table:
            query = cls(table)
            _LAST_QUERY.query = query
        return query

    def ceiling(self, start: float, stop: float) -> float:
        """An upper bound of the burden of every set of rows on [start, stop]: the whole
        body's burden at ``stop`` when no row closes in (start, stop]; else the largest of
        the whole body's burdens at the ends of the pieces between closing days (after
        treatment, when most thresholds are far above what is left)."""
        key = (start, stop)
        if key not in self._ceilings:
            table = self.table
            if len(table) == 0:
                self._ceilings[key] = 0.0
            else:
                if self._columns is None:
                    self._columns = _float_columns(table)
                every = np.arange(len(table), dtype=np.int64)
                if np.any((table.valid_to > start) & (table.valid_to <= stop)):
                    self._ceilings[key] = burden_kernels.ceiling_rows(
                        every, *self._columns, float(start), float(stop))
                else:
                    self._ceilings[key] = burden_kernels.burden_at(every, *self._columns,
                                                                   float(stop))
        return self._ceilings[key]

    def reach(self, start: float, stop: float) -> float:
        """The highest threshold :meth:`first_crossing` can find crossed in [start, stop]:
        above it every answer is None, so a caller with many thresholds asks this once and
        searches only those below it.  Minus infinity for a window with no days (an
        infinite start, a stop before the start, or a NaN stop, where the reference's answer
        would depend on set order)."""
        if not math.isfinite(start) or stop < start or math.isnan(stop):
            return -math.inf
        return self.ceiling(start, stop) * (1.0 + CEILING_MARGIN)

    def _rows(self, sites: Sequence[int] | None, lesions: Sequence[int] | None,
              metastases_only: bool = False) -> NDArray[np.int64]:
        table = self.table
        if not _int64(table.site, table.id):
            return _rows_reference(table, sites, lesions, metastases_only)
        wanted_sites = _NO_FILTER if sites is None else np.asarray(list(sites), dtype=np.int64)
        if lesions is None:
            root, wanted_lesions = table.id, _NO_FILTER
        else:
            root, wanted_lesions = self._physical_lesions(), np.asarray(list(lesions),
                                                                        dtype=np.int64)
        rows = burden_kernels.select_rows(table.site, wanted_sites, sites is not None, root,
                                          wanted_lesions, lesions is not None)
        if metastases_only:
            rows = rows[self._physical_lesions()[rows] != PRIMARY_LESION]
        return rows

    def _physical_lesions(self) -> NDArray[np.int64]:
        if self._physical is None:
            self._physical = physical_lesions(self.table)
        return self._physical

    def first_crossing(
        self,
        sites: Sequence[int] | None,
        threshold: float,
        start: float,
        stop: float,
        *,
        lesions: Sequence[int] | None = None,
        metastases_only: bool = False,
    ) -> float | None:
        """:func:`first_crossing` on this query's table."""
        if float(threshold) > self.reach(start, stop):
            return None
        rows = self._rows(sites, lesions, metastases_only)
        if not rows.size:
            return None
        if self._columns is None:
            self._columns = _float_columns(self.table)
        day = burden_kernels.first_crossing_rows(
            rows, *self._columns, float(threshold), float(start), float(stop),
            CROSSING_TOLERANCE_DAYS, MAX_BISECTIONS,
        )
        return None if math.isnan(day) else float(day)


def first_crossing(
    table: LesionTable,
    sites: Sequence[int] | None,
    threshold: float,
    start: float,
    stop: float,
    *,
    lesions: Sequence[int] | None = None,
    metastases_only: bool = False,
) -> float | None:
    """First day in [start, stop] on which the burden of ``sites`` reaches ``threshold``.

    ``lesions`` restricts the burden to those physical lesions; ``metastases_only`` leaves
    out the primary (and the clones that grew in it).  None if it never does in the window.
    Exact to :data:`CROSSING_TOLERANCE_DAYS` whether or not treatment has cut the lesions
    (see the module's docstring for why); the day returned always has a burden at or above
    the threshold.  Compiled; the same search as
    :func:`first_crossing_reference`, step for step.  Several questions about one table:
    :class:`BurdenQuery`.
    """
    return BurdenQuery(table).first_crossing(sites, threshold, start, stop, lesions=lesions,
                                             metastases_only=metastases_only)


def first_crossing_reference(
    table: LesionTable,
    sites: Sequence[int] | None,
    threshold: float,
    start: float,
    stop: float,
    *,
    lesions: Sequence[int] | None = None,
    metastases_only: bool = False,
) -> float | None:
    """:func:`first_crossing` in plain numpy and SciPy: the readable definition.

    Builds the sub-table of the rows asked for and evaluates
    :meth:`LesionTable.size_at` on it at every day the search visits.
    """
    if not math.isfinite(start) or stop < start:
        return None
    rows = _rows_reference(table, sites, lesions, metastases_only)
    if not rows.size:
        return None
    sub = table.take(rows)

    def burden(t: float) -> float:
        return float(sub.size_at(t).sum())

    closing = sub.valid_to[(sub.valid_to > start) & (sub.valid_to <= stop)]
    edges = sorted({float(start), float(stop), *closing.tolist()})
    for low, high in itertools.pairwise(edges):
        if burden(low) >= threshold:
            return low
        top = math.nextafter(high, -math.inf)  # the piece's supremum: just before it closes
        if top <= low or burden(top) < threshold:
            continue
        return _refine(burden, threshold, low, top)
    return float(stop) if burden(float(stop)) >= threshold else None
