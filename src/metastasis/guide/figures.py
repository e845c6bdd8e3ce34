"""The model's own numbers for the guide: computed when a page is rendered, never typed in.

A page states a fact ("most cells die in the blood") and, next to it, a placeholder such as
``{{figure:died_in_circulation:colorectal}}``.  This module turns the placeholder into the
number the model gives for that fact, so the text can never drift from the model: change a
parameter in the knowledge base and every page that cites it changes with it.

Two kinds of figure exist.  *Closed forms* are read off the resolved model (the absorbing
chain of the journey, the fate probabilities, the growth rates) and are exact.  *Simulated*
figures come from a small seeded cohort run through the public API
(:func:`metastasis.api.run_patient`); they are sampling estimates, so each one states its
seed, patient count and horizon next to the number, and anyone can reproduce it.  Cohorts
are cached per process, so a page (or the ``explain`` command) pays for a cohort once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np

from metastasis.errors import ModelError
from metastasis.guide import store
from metastasis.guide.settings import GUIDE_PATIENTS, GUIDE_SEED, GUIDE_YEARS, MAX_PATIENTS
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.model.resolve import FATES, ResolvedModel, resolve
from metastasis.model.routing import ROUTE_NAMES

REGIONAL_NODES = "regional_lymph_nodes"
NODE_SITES = frozenset({REGIONAL_NODES, "distant_lymph_nodes"})


# ---------------------------------------------------------------- formatting


def percent(share: float) -> str:
    """A share as a percentage with just enough digits: ``99.32 %``, ``41.5 %``, ``0.093 %``.

    Shares near 0 or 100 % keep more digits so that 99.3 % is never shown as 100 % and a rare
    event never as 0 %; exact 0 and 1 print as whole numbers.
    """
    p = 100.0 * share
    if p == 0.0 or p == 100.0:
        return f"{p:.0f} %"
    if p < 1.0:
        digits = 1 - math.floor(math.log10(p))  # two significant digits, never 1e-05
        return f"{p:.{digits}f} %"
    if p > 99.0:
        return f"{min(p, 99.99):.2f} %"
    return f"{p:.1f} %"


def one_in(probability: float) -> str:
    """``1 in 2.5 million``: odds of a rare event, in words a reader can picture."""
    if probability <= 0.0:
        return "none"
    n = 1.0 / probability
    for scale, word in ((1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if n >= scale:
            return f"1 in {n / scale:.2g} {word}"
    return f"1 in {n:.0f}"


# ---------------------------------------------------------------- figure values


@dataclass(frozen=True)
class FigureValue:
    """One computed figure: the number, its text on the page and how it was obtained."""

    key: str
    value: float
    text: str
    method: str  # "closed form" or "simulation"
    description: str


@cache
def model(cancer: str) -> ResolvedModel:
    """The resolved default model of ``cancer``, cached (resolving solves the journey chain):
    :func:`metastasis.api.load_model` without importing the engine, which only a cohort not
    yet kept needs (see :func:`simulate_digest_rows`)."""
    return resolve(load_knowledge(None), cancer)


def site_index(m: ResolvedModel, site: str) -> int:
    """Index of ``site`` in the model, with an error naming the allowed sites."""
    if site not in m.site_names:
        raise ModelError("site", site, ", ".join(m.site_names))
    return m.site_index(site)


def site_label(m: ResolvedModel, site: str) -> str:
    return m.site_labels[site_index(m, site)]


def route_index(route: str) -> int:
    if route not in ROUTE_NAMES:
        raise ModelError("route", route, ", ".join(ROUTE_NAMES))
    return ROUTE_NAMES.index(route)


def first_bed_shares(m: ResolvedModel) -> np.ndarray:
    """Where the primary's blood-borne cells that stop anywhere stop: a share per site.

    Read from the absorbing chain of the journey (``arrest[primary, blood, :]``), normalised
    over the cells that arrest, so the share does not depend on how many die on the way.
    """
    arrest = m.arrest[m.primary_site, ROUTE_NAMES.index("blood")]
    return arrest / arrest.sum()


def distant_founder_shares(m: ResolvedModel) -> np.ndarray:
    """Share of the primary's growing-metastasis founders landing in each site, counted
    among founders outside the regional nodes (the distant spread a site page is about)."""
    founders = m.founder_probability[m.primary_site].copy()
    founders[m.site_index(REGIONAL_NODES)] = 0.0
    total = founders.sum()
    return founders / total if total > 0 else founders


def doubling_days(m: ResolvedModel, rate: float, capacity: float | None = None) -> float:
    """Volume doubling time at the reference size for a Gompertz rate and capacity (the
    primary's unless given; inverse of :func:`metastasis.model.growth.gompertz_rate`)."""
    growth = m.knowledge["cancers"][m.cancer]["growth"]
    reference = growth["reference_size_cells"]["value"]
    capacity = m.primary_capacity if capacity is None else capacity
    return math.log(2.0) / (rate * math.log(capacity / reference))


# ---------------------------------------------------------------- closed forms

ClosedForm = Callable[..., tuple[float, str, str]]
CLOSED_FORMS: dict[str, ClosedForm] = {}


def _closed(name: str) -> Callable[[ClosedForm], ClosedForm]:
    def register(function: ClosedForm) -> ClosedForm:
        CLOSED_FORMS[name] = function
        return function

    return register


@_closed("died_in_circulation")
def _died_in_circulation(cancer: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = float(m.transit_death_probability[m.primary_site].sum())
    return (
        value,
        percent(value),
        (
            f"share of all cells shed by a {m.label} primary that die in blood, lymph or a body "
            "cavity before stopping anywhere (absorbing chain of the journey, all routes)"
        ),
    )


@_closed("died_by_route")
def _died_by_route(cancer: str, route: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = float(m.died_in_transit[m.primary_site, route_index(route)])
    return (
        value,
        percent(value),
        (f"share of the cells a {m.label} primary sheds into the {route} that die on the way"),
    )


@_closed("first_bed")
def _first_bed(cancer: str, site: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = float(first_bed_shares(m)[site_index(m, site)])
    return (
        value,
        percent(value),
        (
            f"of the blood-borne cells of a {m.label} primary that stop in a capillary bed, the "
            f"share that stop in the {site_label(m, site)} (absorbing chain of the journey)"
        ),
    )


@_closed("founder_odds")
def _founder_odds(cancer: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = float(m.founder_total[m.primary_site])
    return (
        value,
        one_in(value),
        (
            f"chance that one cell shed by a {m.label} primary founds a metastasis that grows "
            "out, anywhere (product of route, journey and fate probabilities)"
        ),
    )


@_closed("survival_ratio")
def _survival_ratio(cancer: str, route: str, other: str) -> tuple[float, str, str]:
    m = model(cancer)
    alive = 1.0 - m.died_in_transit[m.primary_site]
    value = float(alive[route_index(route)] / alive[route_index(other)])
    return (
        value,
        f"{value:.0f} times",
        (
            f"chance that a cell a {m.label} primary sheds into the {route} arrives alive, "
            f"divided by the same chance for the {other}"
        ),
    )


@_closed("extravasation")
def _extravasation(cancer: str, site: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = float(m.extravasation[site_index(m, site)])
    return (
        value,
        percent(value),
        (
            f"share of {m.label} cells stopped in the {site_label(m, site)} that leave the vessel "
            "(extravasation probability times the site's seed-and-soil affinity)"
        ),
    )


@_closed("fate_after_extravasation")
def _fate_after_extravasation(cancer: str, site: str, fate: str) -> tuple[float, str, str]:
    m = model(cancer)
    if fate not in FATES[1:]:
        raise ModelError("fate", fate, ", ".join(FATES[1:]))
    j = site_index(m, site)
    value = float(m.fate[j, FATES.index(fate)] / m.extravasation[j])
    return (
        value,
        percent(value),
        (
            f"of the {m.label} cells that left the vessel in the {site_label(m, site)}, the "
            f"share whose eventual fate is '{fate.replace('_', ' ')}'"
        ),
    )


@_closed("colony_establish")
def _colony_establish(cancer: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = float(m.colony_survival)
    return (
        value,
        percent(value),
        (
            f"share of new {m.label} colonies that escape early extinction, 1 - d/b of the "
            "birth-death process of a colony"
        ),
    )


@_closed("speedup")
def _speedup(cancer: str) -> tuple[float, str, str]:
    m = model(cancer)
    value = (doubling_days(m, m.primary_rate)
             / doubling_days(m, m.metastasis_rate, m.metastasis_capacity))
    return (
        value,
        f"{value:.2f} times",
        (f"doubling time of a {m.label} primary divided by that of a metastasis, both at "
         "the reference size"),
    )


@_closed("doubling")
def _doubling(cancer: str, which: str) -> tuple[float, str, str]:
    m = model(cancer)
    curves = {"primary": (m.primary_rate, m.primary_capacity),
              "metastasis": (m.metastasis_rate, m.metastasis_capacity)}
    if which not in curves:
        raise ModelError("lesion", which, "primary, metastasis")
    value = doubling_days(m, *curves[which])
    return (
        value,
        f"{value:.0f} days",
        (
            f"volume doubling time of a {m.label} {which} at the size of 1 cm³, from its "
            "Gompertz rate"
        ),
    )


@_closed("arterial_share")
def _arterial_share(site: str) -> tuple[float, str, str]:
    m = model("colorectal")  # the anatomy is shared by every cancer type
    site_index(m, site)
    value = float(m.knowledge["sites"][site]["arterial_share"]["value"])
    return (
        value,
        percent(value),
        (
            f"share of cardiac output that reaches the {site_label(m, site)} through arteries "
            "(anatomy of the knowledge base)"
        ),
    )


# ---------------------------------------------------------------- simulated cohorts


@dataclass(frozen=True)
class PatientDigest:
    """What the guide needs from one simulated patient (a few fields, not the lesions)."""

    sites: frozenset[str]
    first_site: str | None
    first_organ: str | None
    has_distant: bool
    nodes_before_organ: bool
    nodes_seeded_before_organ: bool
    shedding_before_clinical: bool

    def to_row(self) -> list[Any]:
        """The digest as plain data (:mod:`metastasis.guide.store` keeps cohorts as JSON)."""
        return [sorted(self.sites), self.first_site, self.first_organ, self.has_distant,
                self.nodes_before_organ, self.nodes_seeded_before_organ,
                self.shedding_before_clinical]

    @classmethod
    def from_row(cls, row: list[Any]) -> PatientDigest:
        sites, first_site, first_organ, distant, before, seeded, shedding = row
        return cls(frozenset(sites), first_site, first_organ, bool(distant), bool(before),
                   bool(seeded), bool(shedding))


@dataclass(frozen=True)
class CohortDigest:
    """A small seeded cohort of one cancer type, reduced to :class:`PatientDigest` rows."""

    cancer: str
    label: str
    patients: int
    seed: int
    years: float
    rows: tuple[PatientDigest, ...]

    def provenance(self) -> str:
        return f"{self.patients} patients, seed {self.seed}, {self.years:g} years"

    def describe(self) -> str:
        return (
            f"{self.patients} virtual patients with untreated {self.label}, root seed "
            f"{self.seed}, followed for {self.years:g} years"
        )


def digest(result, m: ResolvedModel) -> PatientDigest:
    """Reduce one :class:`~metastasis.results.patient.PatientResult` to a digest."""
    lesions = result.lesions
    rows = result.metastasis_rows(growing_by=result.end_time)
    names = np.array(result.site_names)[lesions.site[rows]] if rows.size else np.array([])
    first_site = None
    if rows.size:
        first_site = str(names[np.argmin(lesions.outgrowth[rows])])
    first_organ = result.first_organ_metastasis()
    nodes_before = nodes_seeded = False
    if first_organ is not None:
        regional = rows[names == REGIONAL_NODES]
        nodes_before = bool(regional.size and lesions.outgrowth[regional].min() < first_organ[0])
        # a settled deposit (the founder of a node metastasis) already makes a node positive
        settled = lesions.arrival[np.array(result.site_names)[lesions.site] == REGIONAL_NODES]
        nodes_seeded = bool(settled.size and settled.min() < first_organ[0])
    clinical_day = float(lesions.time_to_size(m.clinical_size_cells)[0])
    return PatientDigest(
        sites=frozenset(result.sites_with_metastases()),
        first_site=first_site,
        first_organ=None if first_organ is None else first_organ[1],
        has_distant=result.first_distant_metastasis() is not None,
        nodes_before_organ=nodes_before,
        nodes_seeded_before_organ=nodes_seeded,
        shedding_before_clinical=bool(result.breach_time < min(clinical_day, result.end_time)),
    )


def check_patients(patients: int) -> int:
    if (
        isinstance(patients, bool)
        or not isinstance(patients, int)
        or not (1 <= patients <= MAX_PATIENTS)
    ):
        raise ModelError("patients", patients, f"an integer from 1 to {MAX_PATIENTS}")
    return patients


@lru_cache(maxsize=64)
def cohort(
    cancer: str,
    patients: int = GUIDE_PATIENTS,
    seed: int = GUIDE_SEED,
    years: float = GUIDE_YEARS,
) -> CohortDigest:
    """Patients 0..patients-1 of root ``seed`` for ``cancer``, digested: simulated once and
    kept (:mod:`metastasis.guide.store`: shipped with the package for the guide's own
    settings, else cached on disk), and held per process.

    Patient ``i`` is :func:`metastasis.api.run_patient` with index ``i``, so any figure can be
    reproduced one patient at a time through the public API.
    """
    check_patients(patients)
    m = model(cancer)
    name = store.key(cancer, patients, seed, years)
    stored = store.kept(name, lambda: simulate_digest_rows(cancer, patients, seed, years))
    rows = tuple(PatientDigest.from_row(row) for row in stored)
    return CohortDigest(cancer, m.label, patients, seed, float(years), rows)


def simulate_digest_rows(cancer: str, patients: int, seed: int, years: float) -> list[list[Any]]:
    """Simulate the cohort and reduce it to digest rows (what :func:`cohort` keeps)."""
    from metastasis.api import run_patient  # the engine: loaded only to simulate

    m = model(cancer)
    return [digest(run_patient(m, seed, i, years), m).to_row() for i in range(patients)]


def _simulated_share(
    c: CohortDigest, hits: int, among: int, who: str, what: str
) -> tuple[float, str, str]:
    value = hits / among if among else float("nan")
    shown = percent(value) if among else "n/a"
    text = f"{shown} ({hits} of {among} {who}; simulated cohort: {c.provenance()})"
    return value, text, f"{what}; simulation of {c.describe()}"


SIMULATED: dict[str, Callable[..., tuple[float, str, str]]] = {}


def _simulated(name: str):
    def register(function):
        SIMULATED[name] = function
        return function

    return register


@_simulated("sim_site_share")
def _sim_site_share(cancer: str, site: str) -> tuple[float, str, str]:
    c = cohort(cancer)
    label = site_label(model(cancer), site)
    hits = sum(site in r.sites for r in c.rows)
    return _simulated_share(
        c,
        hits,
        c.patients,
        "patients",
        f"share of simulated patients with a growing metastasis in the {label}",
    )


@_simulated("sim_first_organ")
def _sim_first_organ(cancer: str, site: str) -> tuple[float, str, str]:
    c = cohort(cancer)
    label = site_label(model(cancer), site)
    among = [r for r in c.rows if r.first_organ is not None]
    hits = sum(r.first_organ == site for r in among)
    return _simulated_share(
        c,
        hits,
        len(among),
        "patients with an organ metastasis",
        f"among simulated patients with a metastasis outside the lymph nodes, the share whose "
        f"first one grew in the {label}",
    )


@_simulated("sim_distant_share")
def _sim_distant_share(cancer: str) -> tuple[float, str, str]:
    c = cohort(cancer)
    hits = sum(r.has_distant for r in c.rows)
    return _simulated_share(
        c,
        hits,
        c.patients,
        "patients",
        "share of simulated patients with a growing distant metastasis (beyond the regional "
        "lymph nodes) within the follow-up",
    )


@_simulated("sim_nodes_first")
def _sim_nodes_first(cancer: str) -> tuple[float, str, str]:
    c = cohort(cancer)
    among = [r for r in c.rows if r.first_site is not None]
    hits = sum(r.first_site == REGIONAL_NODES for r in among)
    return _simulated_share(
        c,
        hits,
        len(among),
        "patients with any metastasis",
        "among simulated patients with any growing metastasis, the share whose first one was "
        "in the regional lymph nodes",
    )


def _share_among_organ_patients(cancer: str, flag: str, whose: str) -> tuple[float, str, str]:
    """Share of simulated patients with an organ metastasis for whom ``flag`` holds."""
    c = cohort(cancer)
    among = [r for r in c.rows if r.first_organ is not None]
    return _simulated_share(
        c,
        sum(getattr(r, flag) for r in among),
        len(among),
        "patients with an organ metastasis",
        "among simulated patients with a metastasis outside the lymph nodes, the share whose "
        + whose,
    )


@_simulated("sim_nodes_before_organ")
def _sim_nodes_before_organ(cancer: str) -> tuple[float, str, str]:
    return _share_among_organ_patients(
        cancer,
        "nodes_before_organ",
        "regional lymph nodes held a growing metastasis before the first organ did",
    )


@_simulated("sim_nodes_seeded_before_organ")
def _sim_nodes_seeded_before_organ(cancer: str) -> tuple[float, str, str]:
    return _share_among_organ_patients(
        cancer,
        "nodes_seeded_before_organ",
        "regional lymph nodes already held tumour deposits (settled cells that go on to form "
        "a node metastasis) when the first organ metastasis began to grow",
    )


@_simulated("sim_shedding_before_clinical")
def _sim_shedding_before_clinical(cancer: str) -> tuple[float, str, str]:
    c = cohort(cancer)
    hits = sum(r.shedding_before_clinical for r in c.rows)
    return _simulated_share(
        c,
        hits,
        c.patients,
        "patients",
        "share of simulated patients whose primary had broken through its tissue boundary and "
        "begun shedding cells before it reached 1 cm³ (the size the model takes as clinically "
        "evident)",
    )


# ---------------------------------------------------------------- entry point


def compute(key: str) -> FigureValue:
    """The figure for a placeholder body such as ``died_in_circulation:colorectal``."""
    name, *args = key.split(":")
    if name in CLOSED_FORMS:
        method, function = "closed form", CLOSED_FORMS[name]
    elif name in SIMULATED:
        method, function = "simulation", SIMULATED[name]
    else:
        allowed = ", ".join(sorted({*CLOSED_FORMS, *SIMULATED}))
        raise ModelError("figure", name, allowed)
    try:
        value, text, description = function(*args)
    except TypeError:
        raise ModelError("figure", key, f"{name} with the right number of arguments") from None
    return FigureValue(key, value, text, method, description)
