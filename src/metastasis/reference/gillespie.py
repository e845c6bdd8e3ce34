"""A slow, obviously correct reference simulation of the metastatic cascade.

The fast engine (:mod:`metastasis.engine.patient`) is fast because it never looks at a
single cell that fails: it samples the founders of growing metastases by time-rescaling of
closed-form cumulative emissions, solves the journey as an absorbing Markov chain, draws
every other fate as an aggregate Poisson count and uses the asymptotic law W * exp((b - d) t)
for the time a colony needs to reach the micrometastasis size.  Each of those shortcuts is a
theorem that can be got wrong in code.  This module takes none of them, so that the two
engines can be compared in distribution (practice 4 of the product brief):

* one global clock and a queue of events, processed in time order;
* primary growth, motility, breach and shedding from the Gompertz size formula written here,
  with every non-homogeneous Poisson process (the first motile cell, the breach, the cells
  shed by each lesion) sampled by Lewis-Shedler **thinning** under a bound on its rate;
* every shed cell walks the anatomy step by step, read straight from the knowledge base's
  sites (vessel -> capillary bed -> drainage -> ...), surviving each leg by a Bernoulli draw;
* every arrested cell meets its fate by explicit Bernoulli draws, and every colony is a
  cell-by-cell Gillespie birth-death process run until it dies out or reaches the
  micrometastasis size;
* dormancy and the angiogenic switch are exponential clocks; grown-out metastases shed cells
  of their own (secondary seeding); the history ends at the horizon or when the total size of
  the growing lesions first reaches the lethal burden.

It reads the validated :class:`~metastasis.knowledge.schema.KnowledgeBase` directly and uses
nothing from :mod:`metastasis.model` or :mod:`metastasis.engine`, so a mistake there cannot
hide here.  Its cost grows with the number of cells and colony events: it is meant for
*small* configurations (capacities of about 1e5-1e6 cells, micrometastases of 1e2-1e3 cells,
a few thousand shed cells per patient), not for the default model.

Semantics shared with the fast engine's accounting: a cell shed before the end of the
natural history is counted under its *eventual* fate, even if that fate would play out after
the end (a founder whose outgrowth falls after the end is counted under ``outgrowth``, but
is not a growing metastasis).  A colony that reaches the micrometastasis size stops being a
birth-death process (it waits, avascular, for its angiogenic switch).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from metastasis.knowledge.schema import THORACIC_DUCT, KnowledgeBase, SiteKind, VenousDrainage

ROUTES = ("blood", "lymph", "cavity")
BLOOD, LYMPH, CAVITY = 0, 1, 2

FATES = (
    "failed_extravasation",
    "died_at_site",
    "dormant",
    "colony_extinct",
    "micrometastasis",
    "outgrowth",
)
"""Eventual fates of an arrested cell, in the same order as the fast engine's accounting."""
FAILED, DIED, DORMANT, EXTINCT, MICRO, OUTGROWTH = range(len(FATES))

PRIMARY = 0
"""Lesion id of the primary tumour; metastases are numbered 1, 2, ... in founding order."""

DEFAULT_WINDOW_DAYS = 5.0
"""Length of the thinning windows.  Any length gives the same law (it only sets how tight the
rate bound is, hence how many candidate points are rejected)."""

MAX_JOURNEY_STEPS = 1_000_000
"""A journey longer than this means an anatomy in which cells circulate for ever."""

_VESSELS = {
    VenousDrainage.PORTAL: "portal",
    VenousDrainage.CAVAL: "caval",
    VenousDrainage.ARTERIAL: "arterial",
}


# ----------------------------------------------------------------------------- growth


def gompertz(age: float, x0: float, rate: float, capacity: float) -> float:
    """Gompertz size ``age`` days after growth began from ``x0`` cells.

    x(tau) = K * exp(ln(x0 / K) * exp(-a * tau)): the solution of dx/dt = a x ln(K / x).
    Written out here (not imported) so that the reference shares no code with the engine.
    """
    if age <= 0.0:
        return x0
    return capacity * math.exp(math.log(x0 / capacity) * math.exp(-rate * age))


def gompertz_rate_from_doubling(doubling_days: float, reference: float, capacity: float) -> float:
    """Gompertz a with volume doubling time ``doubling_days`` at size ``reference``.

    The specific growth rate at size x is a ln(K / x), so a doubling time measured at size
    x_ref gives a = ln 2 / (DT ln(K / x_ref)): the definition the knowledge base uses.
    """
    return math.log(2.0) / (doubling_days * math.log(capacity / reference))


def thinned_times(
    rate: Callable[[float], float],
    bound: Callable[[float, float], float],
    start: float,
    stop: float,
    stream: _Stream,
    window: float = DEFAULT_WINDOW_DAYS,
) -> Iterator[float]:
    """Points of the Poisson process of intensity ``rate`` on [start, stop), in order.

    Lewis-Shedler thinning, window by window: on [t0, t1) candidates arrive as a homogeneous
    Poisson process of rate B = bound(t0, t1) >= rate(t) and each is kept with probability
    rate(t) / B.  By memorylessness the candidate process may restart at every window edge.
    A bound that is ever exceeded would bias the law, so it is checked at every candidate
    (RuntimeError).
    """
    t0 = start
    while t0 < stop:
        t1 = min(t0 + window, stop)
        ceiling = bound(t0, t1)
        t = t0
        while ceiling > 0.0:
            t += stream.exponential() / ceiling
            if t >= t1:
                break
            value = rate(t)
            if value > ceiling * (1.0 + 1e-9):
                raise RuntimeError(f"thinning bound {ceiling!r} below the rate {value!r}")
            if stream.uniform() * ceiling < value:
                yield t
        t0 = t1


def _monotone_bound(rate: Callable[[float], float]) -> Callable[[float, float], float]:
    """Bound of a monotone rate on a window: the larger of its two ends."""
    return lambda t0, t1: max(rate(t0), rate(t1))


# ----------------------------------------------------------------------------- randomness


class _Stream:
    """Uniform and standard exponential variates drawn from one generator in blocks.

    Buffering only saves the per-call overhead of numpy; the variates are still i.i.d. draws
    of the patient's generator, so the law is untouched.
    """

    BLOCK = 4096

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._e: list[float] = []

    def uniform(self) -> float:
        if not self._u:
            self._u = self.rng.random(self.BLOCK).tolist()
        return self._u.pop()

    def exponential(self) -> float:
        if not self._e:
            self._e = self.rng.standard_exponential(self.BLOCK).tolist()
        return self._e.pop()

    def bernoulli(self, p: float) -> bool:
        return self.uniform() < p


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class _Site:
    name: str
    is_lymph_nodes: bool
    vessel: str | None  # 'portal', 'caval', 'arterial' or None: where its blood goes
    lymph_to: str | None  # a site name, THORACIC_DUCT or None
    cavity: str | None
    arterial_share: float
    capillary_arrest: float
    plexus_share: float  # share of its venous blood sent straight to the bone bed (Batson)
    capacity: float  # largest lesion it can hold
    affinity: float


def _value(obj: object, name: str, default: float) -> float:
    """A Sourced field's value, or ``default`` where this knowledge base has no such field."""
    field = getattr(obj, name, None)
    return default if field is None else float(field.value)


@dataclass(frozen=True)
class _Model:
    """The parameters of one cancer type, read straight from the knowledge base."""

    cancer: str
    sites: tuple[_Site, ...]
    index: dict[str, int]
    primary: int
    rate: float
    capacity: float
    metastasis_rate: float
    invasion: bool
    motility: float
    breach: float
    shedding: float
    shedding_log10_sd: float
    shedding_log10_limit: float
    metastasis_shedding: float  # a metastasis's shedding rate / the primary's
    metastasis_log10_sd: float
    metastasis_log10_lowest: float
    metastasis_log10_highest: float
    exponent: float
    route_wanted: tuple[float, float, float]
    blood_entry: float
    lymph_entry: float
    blood_leg: float
    lymph_leg: float
    cavity_survival: float
    extravasation: float
    death_at_site: float
    dormancy: float
    awakening: float
    mean_dormancy: float
    birth: float
    death: float
    micro_cells: float
    outgrowth: float
    mean_outgrowth_delay: float
    lethal: float

    @classmethod
    def read(cls, kb: KnowledgeBase, cancer_name: str) -> _Model:
        cancer = kb.cancer(cancer_name)
        g = cancer.growth
        capacity = g.capacity_cells.value
        met_capacity = (g.metastasis_capacity_cells.value if g.metastasis_capacity_cells
                        else capacity)
        sites = []
        for name, s in kb.sites.items():
            cap = met_capacity
            if s.max_lesion_cells is not None:
                cap = min(cap, s.max_lesion_cells.value)
            sites.append(_Site(
                name=name,
                is_lymph_nodes=s.kind is SiteKind.LYMPH_NODES,
                vessel=_VESSELS.get(s.venous_drainage),
                lymph_to=s.lymph_drainage,
                cavity=s.cavity,
                arterial_share=s.arterial_share.value,
                capillary_arrest=s.capillary_arrest.value,
                plexus_share=_value(s, "vertebral_plexus_share", 0.0),
                capacity=cap,
                affinity=cancer.affinity[name].value if name in cancer.affinity else 0.0,
            ))
        rate = gompertz_rate_from_doubling(
            g.doubling_time_days.value, g.reference_size_cells.value, capacity
        )
        sh, tr, co = cancer.shedding, cancer.travel, cancer.colonisation
        lymph, cavity = sh.lymph_fraction.value, sh.cavity_fraction.value
        return cls(
            cancer=cancer_name,
            sites=tuple(sites),
            index={s.name: i for i, s in enumerate(sites)},
            primary=list(kb.sites).index(cancer.primary_site),
            rate=rate,
            capacity=capacity,
            metastasis_rate=gompertz_rate_from_doubling(
                g.doubling_time_days.value / g.metastasis_speedup.value,
                g.reference_size_cells.value, met_capacity,
            ),
            invasion=cancer.invasion.enabled,
            motility=cancer.invasion.motility_per_new_cell.value,
            breach=cancer.invasion.breach_rate.value,
            shedding=sh.rate.value,
            shedding_log10_sd=_value(sh, "rate_log10_sd", 0.0),
            shedding_log10_limit=_value(sh, "rate_log10_limit", math.inf),
            metastasis_shedding=_value(sh, "metastasis_factor", 1.0),
            metastasis_log10_sd=g.metastasis_rate_spread[0],
            metastasis_log10_lowest=g.metastasis_rate_spread[1],
            metastasis_log10_highest=g.metastasis_rate_spread[2],
            exponent=sh.exponent.value,
            route_wanted=(1.0 - lymph - cavity, lymph, cavity),
            blood_entry=_value(tr, "blood_entry_survival", 1.0),
            lymph_entry=_value(tr, "lymph_entry_survival", 1.0),
            blood_leg=tr.blood_leg_survival.value,
            lymph_leg=tr.lymph_leg_survival.value,
            cavity_survival=tr.cavity_survival.value,
            extravasation=co.extravasation.value,
            death_at_site=co.death_at_site.value,
            dormancy=co.dormancy.value,
            awakening=co.awakening.value,
            mean_dormancy=co.mean_dormancy_days.value,
            birth=co.colony_birth_rate.value,
            death=co.colony_death_rate.value,
            micro_cells=co.micrometastasis_cells.value,
            outgrowth=co.outgrowth.value,
            mean_outgrowth_delay=co.mean_outgrowth_delay_days.value,
            lethal=kb.circulation.lethal_burden_cells.value,
        )

    def route_weights(self, site: int) -> tuple[float, float, float]:
        """Share of the cells shed by ``site`` that take each route.

        A route exists where the site has somewhere to send it (a venous vessel, a lymph
        drainage, a cavity); the share of a missing route goes to the others in proportion to
        their own shares, or evenly if those shares are all zero.  A site with no route at
        all (a serous lining) sheds nothing.
        """
        s = self.sites[site]
        available = (s.vessel is not None, s.lymph_to is not None, s.cavity is not None)
        weights = [w if ok else 0.0 for w, ok in zip(self.route_wanted, available, strict=True)]
        total = sum(weights)
        if total > 0.0:
            return (weights[0] / total, weights[1] / total, weights[2] / total)
        count = sum(available)
        if count == 0:
            return (0.0, 0.0, 0.0)
        return tuple(1.0 / count if ok else 0.0 for ok in available)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReferencePatient:
    """One patient's natural history as the reference engine saw it.

    The founder columns describe every cell whose eventual fate is outgrowth and that was
    shed before the end (row k is lesion k + 1): its site, the lesion that shed it (parent, 0
    for the primary), its route, the day it arrived (``arrival``, equal to the day it was
    shed: travel takes no time in the model), left dormancy (``awakening``), reached the
    micrometastasis size (``micrometastasis``) and grew out (``outgrowth``).
    ``fates_by_source[source site, route, site, fate]`` and
    ``died_by_source[source site, route]`` count every shed cell once, by the site of the
    lesion that shed it; :attr:`fates` and :attr:`died_in_transit` sum over the sources, in
    the layout of the fast engine's accounting.
    """

    cancer: str
    site_names: tuple[str, ...]
    horizon_days: float
    end_time: float
    end_reason: str
    motility_time: float
    breach_time: float
    shedding_rate: float
    metastasis_rate: float
    """The Gompertz rate of this patient's metastases (the median patient's times the
    patient's factor)."""
    founder_site: NDArray[np.int64]
    founder_parent: NDArray[np.int64]
    founder_route: NDArray[np.int64]
    arrival: NDArray[np.float64]
    awakening: NDArray[np.float64]
    micrometastasis: NDArray[np.float64]
    outgrowth: NDArray[np.float64]
    died_by_source: NDArray[np.int64]
    fates_by_source: NDArray[np.int64]

    @property
    def died_in_transit(self) -> NDArray[np.int64]:
        """[route]: cells that died before arresting anywhere."""
        return self.died_by_source.sum(axis=0)

    @property
    def fates(self) -> NDArray[np.int64]:
        """[route, site, fate]: eventual fates of the cells that arrested."""
        return self.fates_by_source.sum(axis=0)

    @property
    def shed_by_site(self) -> NDArray[np.int64]:
        """[site]: cells shed by the lesions of each site."""
        return self.died_by_source.sum(axis=1) + self.fates_by_source.sum(axis=(1, 2, 3))

    @property
    def growing(self) -> NDArray[np.bool_]:
        """Founders that grew out by the end of the natural history (growing metastases)."""
        return self.outgrowth <= self.end_time

    @property
    def shed(self) -> int:
        return int(self.died_in_transit.sum() + self.fates.sum())

    def totals(self) -> dict[str, int]:
        """Whole-body counts along the cascade (same keys as the fast engine's totals)."""
        out = {"shed": self.shed}
        by_route = self.died_in_transit + self.fates.sum(axis=(1, 2))
        for route, name in enumerate(ROUTES):
            out[f"shed_{name}"] = int(by_route[route])
        out["died_in_circulation"] = int(self.died_in_transit.sum())
        out["arrested"] = int(self.fates.sum())
        out["extravasated"] = int(self.fates[:, :, 1:].sum())
        for k, fate in enumerate(FATES):
            out[fate] = int(self.fates[:, :, k].sum())
        return out


# ----------------------------------------------------------------------------- simulation


@dataclass
class _Lesion:
    """A growing lesion: a Gompertz curve and the curve its shedding follows."""

    site: int
    start: float  # day it began to grow (0 for the primary, outgrowth for a metastasis)
    x0: float
    rate: float
    capacity: float

    def size(self, t: float) -> float:
        if t < self.start:
            return 0.0
        return gompertz(t - self.start, self.x0, self.rate, self.capacity)


class _Patient:
    """The event-driven simulation of one patient (one use only)."""

    def __init__(
        self, model: _Model, rng: np.random.Generator, horizon: float, window: float
    ) -> None:
        self.m = model
        # the patient's own shedding rate: median rate times 10**(sd * Z), Z standard normal
        # truncated to |sd * Z| <= limit by drawing again
        self.shedding = model.shedding
        if model.shedding_log10_sd > 0.0:
            while True:
                exponent = model.shedding_log10_sd * rng.standard_normal()
                if abs(exponent) <= model.shedding_log10_limit:
                    break
            self.shedding *= 10.0**exponent
        # then its metastases' own growth rate, the same way (truncated to [-lowest, highest])
        self.metastasis_rate = model.metastasis_rate
        if model.metastasis_log10_sd > 0.0:
            while True:
                exponent = model.metastasis_log10_sd * rng.standard_normal()
                if -model.metastasis_log10_lowest <= exponent <= model.metastasis_log10_highest:
                    break
            self.metastasis_rate *= 10.0**exponent
        self.stream = _Stream(rng)
        self.horizon = horizon
        self.window = window
        n = len(model.sites)
        self.died = np.zeros((n, 3), dtype=np.int64)
        self.fates = np.zeros((n, 3, n, len(FATES)), dtype=np.int64)
        self.founders: list[tuple[int, int, int, float, float, float, float]] = []
        self.lesions: dict[int, _Lesion] = {}
        self.queue: list[tuple[float, int, str, int]] = []
        self.sheds: dict[int, Iterator[float]] = {}
        self._order = 0
        self.arterial = [(i, s.arterial_share) for i, s in enumerate(model.sites)
                         if s.arterial_share > 0.0]
        self.arterial_total = sum(share for _, share in self.arterial)
        self.routes = [model.route_weights(i) for i in range(n)]

    # -- the event queue
    def push(self, t: float, kind: str, lesion: int) -> None:
        self._order += 1
        heapq.heappush(self.queue, (t, self._order, kind, lesion))

    # -- growth and the end of the natural history
    def burden(self, t: float) -> float:
        return sum(lesion.size(t) for lesion in self.lesions.values())

    def lethal_day(self, after: float) -> float:
        """First day >= ``after`` on which the growing lesions reach the lethal burden.

        Every lesion grows from below its capacity, so the burden is non-decreasing and the
        first crossing is found by plain bisection; infinite if it is not reached by the
        horizon.
        """
        if self.burden(self.horizon) < self.m.lethal:
            return math.inf
        low, high = after, self.horizon
        if self.burden(low) >= self.m.lethal:
            return low
        for _ in range(200):
            middle = 0.5 * (low + high)
            if middle in (low, high):
                break
            if self.burden(middle) >= self.m.lethal:
                high = middle
            else:
                low = middle
        return high

    def start_growing(self, lesion_id: int, lesion: _Lesion, curve: Callable[[float], float],
                      emit_from: float) -> None:
        """Count a lesion in the burden and let it shed cells along ``curve`` from a day."""
        if lesion.x0 > lesion.capacity:
            raise ValueError(
                "reference engine: a lesion starting above its site's capacity would shrink and "
                "make the burden non-monotone; not supported"
            )
        self.lesions[lesion_id] = lesion
        # a metastasis sheds its own share of the primary's rate (no clones here: untreated)
        share = 1.0 if lesion_id == PRIMARY else self.m.metastasis_shedding
        sigma, alpha = self.shedding * share, self.m.exponent
        if sum(self.routes[lesion.site]) == 0.0 or sigma <= 0.0:
            return

        def rate(t: float) -> float:
            return sigma * curve(t) ** alpha

        times = thinned_times(rate, _monotone_bound(rate), emit_from, self.horizon,
                              self.stream, self.window)
        self.sheds[lesion_id] = times
        self._next_shed(lesion_id)

    def _next_shed(self, lesion_id: int) -> None:
        t = next(self.sheds[lesion_id], None)
        if t is not None:
            self.push(t, "shed", lesion_id)

    # -- steps 1 and 2: motility and breach
    def invasion(self) -> tuple[float, float]:
        """Days of the first motile cell and of the breach (both 0 if invasion is off).

        New cells appear at rate x_p'(t) = a x ln(K/x) and each is motile with probability u,
        so the first motile cell is the first point of a Poisson process of rate u x_p'(t);
        x ln(K/x) is largest at x = K/e, which bounds it on any window.  The breach is the
        first point of a process of rate kappa m(t)^alpha, m the motile clone.
        """
        m = self.m
        if not m.invasion:
            return 0.0, 0.0
        a, k, u = m.rate, m.capacity, m.motility

        def new_cells(t: float) -> float:
            x = gompertz(t, 1.0, a, k)
            return u * a * x * math.log(k / x)

        def new_cells_bound(t0: float, t1: float) -> float:
            x = min(max(k / math.e, gompertz(t0, 1.0, a, k)), gompertz(t1, 1.0, a, k))
            return u * a * x * math.log(k / x)

        motility = next(thinned_times(new_cells, new_cells_bound, 0.0, self.horizon,
                                      self.stream, self.window), math.inf)
        if not math.isfinite(motility):
            return math.inf, math.inf

        def hazard(t: float) -> float:
            return m.breach * gompertz(t - motility, 1.0, a, k) ** m.exponent

        breach = next(thinned_times(hazard, _monotone_bound(hazard), motility, self.horizon,
                                    self.stream, self.window), math.inf)
        return motility, breach

    # -- steps 3 and 4: a shed cell's route and journey
    def choose_route(self, site: int) -> int:
        u = self.stream.uniform()
        cumulative = 0.0
        weights = self.routes[site]
        for route, w in enumerate(weights):
            cumulative += w
            if u < cumulative:
                return route
        return max(r for r, w in enumerate(weights) if w > 0.0)  # u within rounding of 1

    def survives(self, p: float) -> bool:
        return self.stream.bernoulli(p)

    def journey(self, site: int, route: int) -> int | None:
        """Walk one cell through the anatomy; the bed where it arrests, or None if it dies.

        Places are capillary beds (site indices) or vessels ('portal', 'caval', 'arterial').
        From a vessel the cell takes one blood leg to the next bed (portal -> liver, caval ->
        lungs, arterial -> a bed drawn by share of cardiac output); in a bed it arrests or
        passes on to the bed's drainage: lymph onward for lymph nodes, else its venous vessel
        (or, for a share of it, the vertebral plexus straight to the bone bed).
        """
        m = self.m
        s = m.sites[site]
        place: int | str
        if route == BLOOD:
            if not self.survives(m.blood_entry):
                return None
            place = self.leave_by_vein(s)
        elif route == LYMPH:
            if not self.survives(m.lymph_entry):
                return None
            place = self.lymph_leg(s.lymph_to)
        else:
            if not self.survives(m.cavity_survival):
                return None
            place = m.index[s.cavity]  # type: ignore[index]
        for _ in range(MAX_JOURNEY_STEPS):
            if place == "lost":
                return None
            if isinstance(place, str):  # a vessel: one blood leg to the next bed
                bed = self.bed_after_vessel(place)
                if not self.survives(m.blood_leg):
                    return None
                place = bed
                continue
            bed_site = m.sites[place]
            if self.stream.bernoulli(bed_site.capillary_arrest):
                return place
            if bed_site.is_lymph_nodes:
                place = self.lymph_leg(bed_site.lymph_to)
            elif bed_site.vessel is not None:
                place = self.leave_by_vein(bed_site)
            else:
                return None  # nowhere to go: the cell is lost
        raise RuntimeError(
            f"a cell from {s.name} neither arrested nor died in {MAX_JOURNEY_STEPS} steps: the "
            "anatomy has a loop without capillary arrest or loss"
        )

    def leave_by_vein(self, s: _Site) -> int | str:
        """Where venous blood leaving site ``s`` takes a cell: its vessel, or the plexus."""
        if s.plexus_share > 0.0 and self.stream.bernoulli(s.plexus_share):
            return self.m.index["bone"] if self.survives(self.m.blood_leg) else "lost"
        return s.vessel  # type: ignore[return-value]

    def lymph_leg(self, target: str | None) -> int | str:
        """One lymphatic leg to ``target`` (a node basin, or the thoracic duct into the
        venae cavae); 'lost' if the cell dies on it or there is no lymph drainage."""
        if target is None or not self.survives(self.m.lymph_leg):
            return "lost"
        return "caval" if target == THORACIC_DUCT else self.m.index[target]

    def bed_after_vessel(self, vessel: str) -> int:
        """The capillary bed a vessel leads to: portal -> liver, caval -> lungs, arterial -> a
        bed drawn in proportion to its share of cardiac output (shares are validated to sum
        to 1 within rounding; dividing by their total makes the draw exact)."""
        if vessel == "portal":
            return self.m.index["liver"]
        if vessel == "caval":
            return self.m.index["lungs"]
        u = self.stream.uniform() * self.arterial_total
        cumulative = 0.0
        for bed, share in self.arterial:
            cumulative += share
            if u < cumulative:
                return bed
        return self.arterial[-1][0]  # u within rounding of the total

    # -- steps 5 and 6: fate at the site
    def colony_time_to_micrometastasis(self) -> float | None:
        """Gillespie birth-death colony from one cell: days to reach the micrometastasis size,
        or None if it dies out first."""
        b, d = self.m.birth, self.m.death
        target = math.ceil(self.m.micro_cells)
        uniform, exponential = self.stream.uniform, self.stream.exponential
        n, t = 1, 0.0
        while 0 < n < target:
            t += exponential() / (n * (b + d))  # next event among n cells
            if uniform() * (b + d) < b:  # it is a division
                n += 1
            else:
                n -= 1
        return t if n >= target else None

    def settle(self, site: int, t: float) -> tuple[int, tuple[float, float, float] | None]:
        """Eventual fate of a cell arrested in ``site`` on day ``t``, and for a founder its
        (awakening, micrometastasis, outgrowth) days."""
        m = self.m
        if not self.stream.bernoulli(m.extravasation * m.sites[site].affinity):
            return FAILED, None
        u = self.stream.uniform()
        if u < m.death_at_site:
            return DIED, None
        if u < m.death_at_site + m.dormancy:
            if not self.stream.bernoulli(m.awakening):
                return DORMANT, None
            wake = t + m.mean_dormancy * self.stream.exponential()
        else:
            wake = t
        to_micro = self.colony_time_to_micrometastasis()
        if to_micro is None:
            return EXTINCT, None
        micro = wake + to_micro
        if not self.stream.bernoulli(m.outgrowth):
            return MICRO, None
        return OUTGROWTH, (wake, micro, micro + m.mean_outgrowth_delay * self.stream.exponential())

    def release_cell(self, source: int, t: float) -> None:
        """Follow one cell shed by lesion ``source`` on day ``t`` to its eventual fate."""
        site = self.lesions[source].site
        route = self.choose_route(site)
        bed = self.journey(site, route)
        if bed is None:
            self.died[site, route] += 1
            return
        fate, times = self.settle(bed, t)
        self.fates[site, route, bed, fate] += 1
        if times is not None:
            wake, micro, out = times
            self.founders.append((bed, source, route, t, wake, micro, out))
            self.push(out, "outgrowth", len(self.founders))  # lesion id = founder row + 1

    # -- the whole natural history
    def run(self) -> ReferencePatient:
        m = self.m
        motility, breach = self.invasion()
        primary = _Lesion(m.primary, 0.0, 1.0, m.rate, m.capacity)
        if m.invasion:
            def curve(t: float) -> float:
                return gompertz(t - motility, 1.0, m.rate, m.capacity)
        else:
            curve = primary.size
        self.start_growing(PRIMARY, primary, curve, min(breach, self.horizon))
        lethal = self.lethal_day(0.0)  # with the lesions growing so far; only moves earlier
        while self.queue and self.queue[0][0] < min(lethal, self.horizon):
            t, _, kind, lesion_id = heapq.heappop(self.queue)
            if kind == "shed":
                self.release_cell(lesion_id, t)
                self._next_shed(lesion_id)
            else:  # a founder's outgrowth: a new growing metastasis
                bed = self.founders[lesion_id - 1][0]
                x0 = max(m.micro_cells, 1.0)
                lesion = _Lesion(bed, t, x0, self.metastasis_rate, m.sites[bed].capacity)
                self.start_growing(lesion_id, lesion, lesion.size, t)
                lethal = min(lethal, self.lethal_day(t))
        end = min(lethal, self.horizon)
        reason = "lethal_burden" if lethal <= self.horizon else "horizon"
        columns = list(zip(*self.founders, strict=True)) if self.founders else [()] * 7
        return ReferencePatient(
            cancer=m.cancer,
            site_names=tuple(s.name for s in m.sites),
            horizon_days=self.horizon,
            end_time=end,
            end_reason=reason,
            motility_time=motility,
            breach_time=breach,
            shedding_rate=self.shedding,
            metastasis_rate=self.metastasis_rate,
            founder_site=np.asarray(columns[0], dtype=np.int64),
            founder_parent=np.asarray(columns[1], dtype=np.int64),
            founder_route=np.asarray(columns[2], dtype=np.int64),
            arrival=np.asarray(columns[3], dtype=float),
            awakening=np.asarray(columns[4], dtype=float),
            micrometastasis=np.asarray(columns[5], dtype=float),
            outgrowth=np.asarray(columns[6], dtype=float),
            died_by_source=self.died,
            fates_by_source=self.fates,
        )


def simulate_reference_patient(
    kb: KnowledgeBase,
    cancer: str,
    rng: np.random.Generator,
    horizon_days: float,
    *,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> ReferencePatient:
    """Simulate one patient's untreated natural history cell by cell.

    ``kb`` is a validated knowledge base (build small test configurations with
    :func:`metastasis.knowledge.loader.from_dict`), ``cancer`` one of its cancer types and
    ``rng`` the patient's own generator.  ``window_days`` sets only the efficiency of thinning.
    """
    if not (math.isfinite(horizon_days) and horizon_days > 0.0):
        raise ValueError(f"horizon_days must be a positive finite number, got {horizon_days!r}")
    if not window_days > 0.0:
        raise ValueError(f"window_days must be positive, got {window_days!r}")
    return _Patient(_Model.read(kb, cancer), rng, float(horizon_days), window_days).run()
