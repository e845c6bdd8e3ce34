"""The cells of every fate but outgrowth, drawn in one compiled call.

:meth:`metastasis.engine.process.DiseaseProcess._aggregate_accounting_reference` states the
law: the cells each site sheds over the history (closed form, summed over the rows' shedding
windows in row order), split by Poisson thinning into independent counts per (route, target,
fate).  In numpy it cost about as much as sampling the whole untreated history once that was
compiled (a few small-array calls per shedding site), so :func:`draw_accounting` does the
same sums and the same draws, in the same order, from the same generator: the counts are the
reference's exactly (``tests/test_compiled_engine.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.engine.sampling import shedding_shares
from metastasis.model.growth import _cumulative_at, _curve
from metastasis.model.resolve import ResolvedModel

if TYPE_CHECKING:  # the rows' module imports this one
    from metastasis.engine.process import LesionRows


@numba.njit(cache=True, nogil=True)
def _draw(
    rng: np.random.Generator, site: NDArray[np.int64], emit_from: NDArray[np.float64],
    valid_from: NDArray[np.float64], valid_to: NDArray[np.float64],
    curve_start: NDArray[np.float64], curve_x0: NDArray[np.float64],
    rate: NDArray[np.float64], capacity: NDArray[np.float64], end: float,
    scale: NDArray[np.float64], exponent: float, has_route_out: NDArray[np.bool_],
    transit_death: NDArray[np.float64],
    path_cells: NDArray[np.float64], path_index: NDArray[np.int64],
    path_offset: NDArray[np.int64], n_fate_cells: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    shed = np.zeros(has_route_out.size)
    for row in range(site.size):
        start = max(emit_from[row], valid_from[row])
        stop = min(valid_to[row], end)
        if start < stop and has_route_out[site[row]]:
            c, level, amplitude, at_start = _curve(curve_x0[row], rate[row], capacity[row],
                                                   scale[row], exponent)
            emitted = (_cumulative_at(stop - curve_start[row], rate[row], c, level, amplitude,
                                      at_start)
                       - _cumulative_at(start - curve_start[row], rate[row], c, level,
                                        amplitude, at_start))
            shed[site[row]] += emitted
    died = np.zeros(transit_death.shape[1], dtype=np.int64)
    fates = np.zeros(n_fate_cells, dtype=np.int64)
    for source in range(shed.size):
        if shed[source] > 0.0:
            for route in range(died.size):
                died[route] += rng.poisson(shed[source] * transit_death[source, route])
            for k in range(path_offset[source], path_offset[source + 1]):
                fates[path_index[k]] += rng.poisson(shed[source] * path_cells[k])
    return shed, died, fates


def draw_accounting(rows: LesionRows, model: ResolvedModel, rng: np.random.Generator,
                    shedding_rate: float, end: float, n_fate_cells: int
                    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Cells shed per site, died in transit per route, and the flat [route, site, fate]
    counts of every fate but outgrowth (outgrowth is left at zero for the caller)."""
    path_cells, path_index, offsets = model.aggregate_path_columns
    size = rows.size
    return _draw(
        rng, rows.site[:size], rows.emit_from[:size], rows.valid_from[:size],
        rows.valid_to[:size], rows.curve_start[:size], rows.curve_x0[:size], rows.rate[:size],
        rows.capacity[:size], float(end),
        float(shedding_rate) * shedding_shares(rows, model), model.shedding_exponent,
        model.has_route_out, np.ascontiguousarray(model.transit_death_probability),
        path_cells, path_index, offsets, n_fate_cells)
