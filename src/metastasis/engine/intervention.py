"""A day's treatment changes applied to the lesion rows in one compiled call.

:meth:`metastasis.engine.process.DiseaseProcess._apply_all_reference` is the readable
definition: each change closes its lesion's row valid on the day and opens a new segment
from that day with the surviving cells (and a resistant clone as a new lesion), applied in
runs of array operations: a dozen numpy calls on small arrays per run, on every treatment
day of every patient (issue 8: no per-lesion numpy calls on the hot path).

:func:`apply_changes` does the same arithmetic change by change, in the order the changes
come, which is the order the reference's runs give (a run ends where a lesion is changed a
second time, so that its second change sees the segment the first one made: here that is
simply the next change).  It draws nothing.  ``tests/test_compiled_engine.py`` checks whole
clinical courses against the reference, and ``tests/test_changes.py`` checks
single days of changes row for row.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.engine.sampling import (
    ABSENT_ROUTE,
    F_ARRIVAL,
    F_AWAKENING,
    F_CAPACITY,
    F_COLONY_SCALE,
    F_CURVE_START,
    F_CURVE_X0,
    F_EMIT_FROM,
    F_GROWTH_START,
    F_MICROMETASTASIS,
    F_OUTGROWTH,
    F_RATE,
    F_VALID_FROM,
    F_VALID_TO,
    F_X0,
    I_LESION,
    I_PARENT,
    I_RESISTANCE,
    I_ROUTE,
    MUTATION_ROUTE,
    _grow,
    by_lesion,
)

if TYPE_CHECKING:  # the rows' module imports this one
    from metastasis.engine.process import Changes, LesionRows


@numba.njit(cache=True)
def _size_at(floats: NDArray[np.float64], row: int, day: float) -> float:
    """Cells of a live row on ``day``: :meth:`metastasis.results.patient.LesionTable.size_at`
    for one row, its cases in the same order (a later case overrides an earlier one)."""
    size = 1.0
    awakening = floats[F_AWAKENING, row]
    micro = floats[F_MICROMETASTASIS, row]
    x0 = floats[F_X0, row]
    if awakening <= day < micro:
        growth = math.log(max(x0, 1.0) / floats[F_COLONY_SCALE, row]) / max(
            micro - awakening, 1e-300)
        size = min(max(floats[F_COLONY_SCALE, row] * math.exp(growth * (day - awakening)),
                       1.0), x0)
    if micro <= day < floats[F_OUTGROWTH, row]:
        size = x0
    if floats[F_GROWTH_START, row] <= day:
        size = _gompertz(day - floats[F_GROWTH_START, row], x0, floats[F_RATE, row],
                         floats[F_CAPACITY, row])
    return size


@numba.njit(cache=True)
def _gompertz(age: float, x0: float, rate: float, capacity: float) -> float:
    """:func:`metastasis.model.gompertz.gompertz_size` for one lesion."""
    return capacity * math.exp(math.log(x0 / capacity) * math.exp(-rate * max(age, 0.0)))


@numba.njit(cache=True)
def _append(floats: NDArray[np.float64], ints: NDArray[np.int64], size: int, source: int
            ) -> int:
    """Copy row ``source`` to the end (the caller has made room); returns the new row."""
    floats[:, size] = floats[:, source]
    ints[:, size] = ints[:, source]
    return size


@numba.njit(cache=True, nogil=True)
def _apply_changes(
    floats: NDArray[np.float64], ints: NDArray[np.int64], size: int, next_lesion: int,
    day: float, lesion: NDArray[np.int64], surviving_fraction: NDArray[np.float64],
    spare_resistance: NDArray[np.int64], clone_cells: NDArray[np.float64],
    clone_resistance: NDArray[np.int64], avascular_fraction: NDArray[np.float64],
    colony_net_rate: float, mutation_route: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], int, int, bool]:
    floats, ints = _grow(floats, ints, size + 2 * lesion.size)
    # the row of each lesion valid on the day (a lesion has at most one)
    live = np.full(next_lesion + lesion.size + 1, -1, dtype=np.int64)
    for row in range(size):
        if floats[F_VALID_FROM, row] <= day < floats[F_VALID_TO, row]:
            live[ints[I_LESION, row]] = row
    changed = False
    for k in range(lesion.size):
        pid = lesion[k]
        if pid < 0 or pid >= next_lesion or live[pid] < 0:
            continue  # not a lesion alive on the day: nothing to change
        row = live[pid]
        fraction = surviving_fraction[k]
        if (floats[F_AWAKENING, row] <= day < floats[F_GROWTH_START, row]
                and not math.isnan(avascular_fraction[k])):
            fraction = avascular_fraction[k]  # an establishing colony or a micrometastasis
        if (ints[I_RESISTANCE, row] & spare_resistance[k]) != 0:
            fraction = 1.0
        dormant = floats[F_ARRIVAL, row] <= day < floats[F_AWAKENING, row]
        # a dormant cell does not cycle, so cytotoxic and targeted kills miss it
        cut = fraction < 1.0 and not (dormant and fraction > 0.0)
        survivors = 0.0
        if cut:
            survivors = _size_at(floats, row, day) * fraction
        if clone_cells[k] > 0.0:
            # a clone of resistant cells inside the lesion: a new lesion, growing from today
            # if its parent is growing, else from the day its parent will
            clone = _append(floats, ints, size, row)
            size += 1
            cells = clone_cells[k]
            start = day if day >= floats[F_GROWTH_START, row] else floats[F_GROWTH_START, row]
            ints[I_LESION, clone] = next_lesion
            next_lesion += 1
            ints[I_PARENT, clone] = ints[I_LESION, row]
            ints[I_ROUTE, clone] = mutation_route
            ints[I_RESISTANCE, clone] = ints[I_RESISTANCE, row] | clone_resistance[k]
            for column in (F_ARRIVAL, F_AWAKENING, F_MICROMETASTASIS, F_VALID_FROM):
                floats[column, clone] = day
            for column in (F_OUTGROWTH, F_GROWTH_START, F_CURVE_START):
                floats[column, clone] = start
            for column in (F_COLONY_SCALE, F_X0, F_CURVE_X0):
                floats[column, clone] = cells
            floats[F_EMIT_FROM, clone] = max(start, floats[F_EMIT_FROM, row])
            floats[F_VALID_TO, clone] = math.inf
            live[ints[I_LESION, clone]] = clone
            changed = True
        if not cut:
            continue
        floats[F_VALID_TO, row] = day  # closed; an eradicated lesion gets no new segment
        changed = True
        if survivors < 1.0:
            live[pid] = -1
            continue
        new = _append(floats, ints, size, row)
        size += 1
        live[pid] = new
        floats[F_VALID_FROM, new] = day
        floats[F_VALID_TO, new] = math.inf
        if day >= floats[F_GROWTH_START, new]:
            # a growing lesion restarts its curve from the survivors (and its motile clone,
            # which it sheds from, loses the same share)
            floats[F_GROWTH_START, new] = day
            floats[F_X0, new] = survivors
            if floats[F_CURVE_START, new] <= day:
                motile = _gompertz(day - floats[F_CURVE_START, new], floats[F_CURVE_X0, new],
                                   floats[F_RATE, new], floats[F_CAPACITY, new])
                floats[F_CURVE_START, new] = day
                floats[F_CURVE_X0, new] = max(motile * fraction, 1.0)
        elif day >= floats[F_AWAKENING, new]:
            # an establishing colony or a micrometastasis loses time: it regrows the cells
            regrowth = math.log(1.0 / fraction) / colony_net_rate
            if day < floats[F_MICROMETASTASIS, new]:
                floats[F_COLONY_SCALE, new] = floats[F_COLONY_SCALE, new] * fraction
                floats[F_MICROMETASTASIS, new] = floats[F_MICROMETASTASIS, new] + regrowth
            else:
                floats[F_COLONY_SCALE, new] = survivors
                floats[F_AWAKENING, new] = day
                floats[F_MICROMETASTASIS, new] = day + regrowth
            for column in (F_OUTGROWTH, F_GROWTH_START, F_CURVE_START, F_EMIT_FROM):
                floats[column, new] = floats[column, new] + regrowth
    return floats, ints, size, next_lesion, changed


def apply_changes(rows: LesionRows, day: float, changes: Changes, colony_net_rate: float,
                  mutation_route: int) -> None:
    """Apply a day's ``changes`` to ``rows`` in place (the buffers grow when needed).

    ``colony_net_rate``: the colonies' birth minus death rate, the speed at which a colony
    regrows the cells a kill took; ``mutation_route``: the route code of a clone."""
    floats, ints, size, next_lesion, changed = _apply_changes(
        rows.floats, rows.ints, rows.size, rows.next_lesion, float(day),
        np.ascontiguousarray(changes.lesion, dtype=np.int64),
        np.ascontiguousarray(changes.surviving_fraction, dtype=np.float64),
        np.ascontiguousarray(changes.spare_resistance, dtype=np.int64),
        np.ascontiguousarray(changes.clone_cells, dtype=np.float64),
        np.ascontiguousarray(changes.clone_resistance, dtype=np.int64),
        np.ascontiguousarray(changes.avascular_fraction, dtype=np.float64),
        float(colony_net_rate), int(mutation_route))
    if changed:
        rows.version += 1
    rows.floats, rows.ints, rows.size, rows.next_lesion = floats, ints, size, next_lesion


@numba.njit(cache=True, nogil=True)
def _dividing_rows(
    floats: NDArray[np.float64], ints: NDArray[np.int64], size: int, next_lesion: int,
    day: float, spare_resistance: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """The rows a drug reaches on ``day``, in row order: the lesions present (founded before
    the day, valid on it) that divide (not dormant) and carry none of ``spare_resistance``'s
    bits; the spared rows that carry one; and the number of dormant rows.  Also each chosen
    row's tumour (its lesion, or for a clone the lesion it arose in, up through clones of
    clones, as long as the parent has a row): the clinic's ``_Lesions`` computes the same
    from a lesion table, which stays the readable definition.  The lineage tables may read
    rows founded after the day too: their ids are new, never an ancestor of a present row."""
    route_of, parent_of = by_lesion(ints[I_LESION, :size], ints[I_PARENT, :size],
                                    ints[I_ROUTE, :size], next_lesion)
    treated = np.empty(size, dtype=np.int64)
    spared = np.empty(size, dtype=np.int64)
    n_treated, n_spared, dormant = 0, 0, 0
    for row in range(size):
        # present: in a table through the day (founded before it; the primary always) and
        # valid on it
        founded = row == 0 or floats[F_ARRIVAL, row] < day
        if not (founded and floats[F_VALID_FROM, row] <= day < floats[F_VALID_TO, row]):
            continue
        if day < floats[F_AWAKENING, row]:
            dormant += 1
        elif spare_resistance != 0 and (ints[I_RESISTANCE, row] & spare_resistance) != 0:
            spared[n_spared] = row
            n_spared += 1
        else:
            treated[n_treated] = row
            n_treated += 1
    chosen = np.concatenate((treated[:n_treated], spared[:n_spared]))
    roots = np.empty(chosen.size, dtype=np.int64)
    for k in range(chosen.size):
        tumour = ints[I_LESION, chosen[k]]
        while route_of[tumour] == MUTATION_ROUTE and parent_of[tumour] >= 0 \
                and route_of[parent_of[tumour]] != ABSENT_ROUTE:
            tumour = parent_of[tumour]
        roots[k] = tumour
    return treated[:n_treated].copy(), roots[:n_treated].copy(), roots[n_treated:].copy(), \
        dormant


def dividing_rows(rows: LesionRows, day: float, spare_resistance: int
                  ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """:func:`_dividing_rows` on the filled rows: (treated rows, their tumours, the spared
    rows' tumours, dormant rows)."""
    return _dividing_rows(rows.floats, rows.ints, rows.size, rows.next_lesion, float(day),
                          int(spare_resistance))
