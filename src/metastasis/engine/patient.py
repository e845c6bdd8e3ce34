"""The disease process of one virtual patient: an exact event-driven simulation.

The cascade is a branching process of lesions.  Every lesion grows deterministically
(Gompertz) once it is established, and sheds cells as a non-homogeneous Poisson process of
rate ``sigma * x(t) ** alpha``.  Each shed cell independently takes one journey (route,
death in transit, arrest in a site) and one eventual fate at the site (failed extravasation,
death, dormancy, an extinct colony, a micrometastasis that never grows out, or outgrowth).
By Poisson thinning the cells that found growing metastases form their own Poisson process
with rate ``sigma * x(t)**alpha * q`` (q: founder probability), sampled exactly by
time-rescaling with the closed-form cumulative emission; the cells with every other fate are
independent Poisson counts, drawn in aggregate at the end.  The cost is therefore set by the
number of lesions, not by the number of days or cells.

The natural history ends at the horizon or when the total burden of growing lesions reaches
the lethal burden, whichever comes first.  Sources are expanded in order of the time they
start to shed; the lethal time can only move earlier as lesions are added, so offspring are
sampled up to the current upper bound and those beyond the final end are dropped, which is
exact (a Poisson process restricted to a sub-interval).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from metastasis.engine.burden import BurdenTracker
from metastasis.model.growth import (
    cumulative_emission_scalar,
    gompertz_age_at_scalar,
    inverse_cumulative_emission,
    inverse_cumulative_emission_scalar,
)
from metastasis.model.resolve import FATES, OUTGROWTH, ResolvedModel
from metastasis.results.patient import Accounting, LesionTable, PatientResult

PRIMARY = 0


class _Lesions:
    """Growable column arrays of the tracked lesions while a patient is simulated.

    Founders arrive in batches (all offspring of one source at once), so columns are numpy
    arrays grown by doubling and filled by slice assignment, not per-lesion appends.
    """

    COLUMNS = (
        "site",
        "parent",
        "route",
        "arrival",
        "awakening",
        "colony_scale",
        "micrometastasis",
        "outgrowth",
        "x0",
        "rate",
        "capacity",
        "curve_start",
        "curve_x0",
        "emit_from",
    )
    INTEGER_COLUMNS = frozenset({"site", "parent", "route"})
    INITIAL_CAPACITY = 32

    def __init__(self) -> None:
        self.size = 0
        for name in self.COLUMNS:
            dtype = np.int64 if name in self.INTEGER_COLUMNS else np.float64
            setattr(self, name, np.empty(self.INITIAL_CAPACITY, dtype=dtype))

    def __len__(self) -> int:
        return self.size

    def add(self, n: int, **columns: object) -> int:
        """Append ``n`` lesions (scalars broadcast); returns the index of the first."""
        first = self.size
        if first + n > self.site.size:
            capacity = max(2 * self.site.size, first + n)
            for name in self.COLUMNS:
                old = getattr(self, name)
                grown = np.empty(capacity, dtype=old.dtype)
                grown[:first] = old[:first]
                setattr(self, name, grown)
        for name in self.COLUMNS:
            getattr(self, name)[first : first + n] = columns[name]
        self.size = first + n
        return first

    def trimmed(self) -> _Lesions:
        """A view holding exactly the filled rows (what the result table is built from)."""
        view = _Lesions.__new__(_Lesions)
        view.size = self.size
        for name in self.COLUMNS:
            setattr(view, name, getattr(self, name)[: self.size])
        return view


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


def _cumulative(lesions: _Lesions, i: int, t: float, model: ResolvedModel) -> float:
    return cumulative_emission_scalar(
        t - float(lesions.curve_start[i]),
        float(lesions.curve_x0[i]),
        float(lesions.rate[i]),
        float(lesions.capacity[i]),
        model.shedding_rate,
        model.shedding_exponent,
    )


def simulate_patient(
    model: ResolvedModel,
    rng: np.random.Generator,
    horizon_days: float,
    *,
    patient_index: int = 0,
    root_seed: int | None = None,
) -> PatientResult:
    """Simulate the untreated natural history of one patient over ``horizon_days``."""
    motility, breach = _primary_invasion(model, rng)
    lesions = _Lesions()
    lesions.add(
        1,
        site=model.primary_site,
        parent=-1,
        route=-1,
        arrival=0.0,
        awakening=0.0,
        colony_scale=1.0,
        micrometastasis=0.0,
        outgrowth=0.0,
        x0=1.0,
        rate=model.primary_rate,
        capacity=model.primary_capacity,
        curve_start=motility,
        curve_x0=1.0,
        emit_from=breach,
    )
    burden = BurdenTracker(horizon_days, model.lethal_burden_cells)
    burden.add(0.0, 1.0, model.primary_rate, model.primary_capacity)
    target_cdf = model.founder_target_cdf
    founder_total = model.founder_total
    founder_route = model.founder_route

    heap: list[tuple[float, int]] = [(breach, PRIMARY)]
    sources: list[int] = []
    growth_rate_r = model.colony_birth_rate - model.colony_death_rate
    micro = model.micrometastasis_cells

    while heap:
        start, lesion = heapq.heappop(heap)
        if start >= burden.stop:
            break
        if lesion != PRIMARY:
            burden.add(start, lesions.x0[lesion], lesions.rate[lesion], lesions.capacity[lesion])
            if start >= burden.stop:
                break
        sources.append(lesion)
        site = lesions.site[lesion]
        q = founder_total[site]
        if q <= 0.0 or model.shedding_rate <= 0.0:
            continue
        stop = burden.stop
        at_start = _cumulative(lesions, lesion, start, model)
        expected_shed = _cumulative(lesions, lesion, stop, model) - at_start
        n = rng.poisson(expected_shed * q)
        if n == 0:
            continue
        targets = at_start + np.sort(rng.random(n)) * expected_shed
        arrival = lesions.curve_start[lesion] + inverse_cumulative_emission(
            targets,
            lesions.curve_x0[lesion],
            lesions.rate[lesion],
            lesions.capacity[lesion],
            model.shedding_rate,
            model.shedding_exponent,
        )
        target_site = np.searchsorted(target_cdf[site], rng.random(n), side="right")
        cumulative_routes = founder_route[site, target_site]  # [founder, route]
        route = (rng.random(n)[:, None] > cumulative_routes[:, :-1]).sum(axis=1)
        slept = rng.random(n) < model.dormant_share_of_outgrowth
        awakening = arrival + np.where(
            slept, rng.exponential(model.mean_dormancy_days, size=n), 0.0
        )
        if micro > 1.0:
            scale = rng.exponential(model.colony_birth_rate / growth_rate_r, size=n)
            to_micro = np.maximum(np.log(micro / scale), 0.0) / growth_rate_r
        else:
            scale = np.ones(n)
            to_micro = np.zeros(n)
        micrometastasis = awakening + to_micro
        outgrowth = micrometastasis + rng.exponential(model.mean_outgrowth_delay_days, size=n)
        x0 = max(micro, 1.0)
        first = lesions.add(
            n,
            site=target_site,
            parent=lesion,
            route=route,
            arrival=arrival,
            awakening=awakening,
            colony_scale=scale,
            micrometastasis=micrometastasis,
            outgrowth=outgrowth,
            x0=x0,
            rate=model.metastasis_rate,
            capacity=model.site_capacity[target_site],
            curve_start=outgrowth,
            curve_x0=x0,
            emit_from=outgrowth,
        )
        for k in np.flatnonzero(outgrowth < stop):
            heapq.heappush(heap, (float(outgrowth[k]), first + int(k)))

    lesions = lesions.trimmed()
    end_time, end_reason = burden.resolve_end(
        lesions.outgrowth, lesions.x0, lesions.rate, lesions.capacity
    )
    table = LesionTable.from_columns(lesions, end_time)
    accounting = _aggregate_accounting(model, rng, lesions, sources, table, end_time)
    return PatientResult(
        patient_index=patient_index,
        root_seed=root_seed,
        cancer=model.cancer,
        horizon_days=horizon_days,
        end_time=end_time,
        end_reason=end_reason,
        motility_time=motility,
        breach_time=breach,
        lesions=table,
        accounting=accounting,
        site_names=model.site_names,
    )


def _aggregate_accounting(
    model: ResolvedModel,
    rng: np.random.Generator,
    lesions: _Lesions,
    sources: list[int],
    table: LesionTable,
    end_time: float,
) -> Accounting:
    """Draw the counts of every fate other than outgrowth, exactly in distribution.

    For each source site o the expected number of cells shed over the natural history is
    S_o (closed form); by Poisson splitting, the cells of each (route, target, fate) are
    independent Poisson counts with mean S_o * w[o, r] * arrest[o, r, j] * fate[j, k], and
    those dying in transit have mean S_o * w[o, r] * died[o, r].  The outgrowth counts are
    the founders actually simulated.
    """
    n = model.n_sites
    shed_by_site = np.zeros(n)
    for lesion in sources:
        start = lesions.emit_from[lesion]
        if start >= end_time:
            continue
        shed_by_site[lesions.site[lesion]] += _cumulative(
            lesions, lesion, end_time, model
        ) - _cumulative(lesions, lesion, start, model)
    died = np.zeros(3, dtype=np.int64)
    fates = np.zeros((3, n, len(FATES)), dtype=np.int64)  # [route, site, fate]
    flat_fates = fates.reshape(-1)
    cells, paths = model.aggregate_paths
    for o in np.flatnonzero(shed_by_site > 0.0):
        died += rng.poisson(shed_by_site[o] * model.transit_death_probability[o])
        flat_fates[paths[o]] += rng.poisson(shed_by_site[o] * cells[o])
    outgrowth = np.bincount(
        table.route[1:] * n + table.site[1:], minlength=3 * n
    ).reshape(3, n)
    fates[:, :, OUTGROWTH] += outgrowth
    return Accounting(died_in_transit=died, fates=fates, expected_shed_by_site=shed_by_site)
