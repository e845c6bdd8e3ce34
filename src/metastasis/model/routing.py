"""Where a shed cell ends up: the journey as an absorbing Markov chain.

A cell leaves its lesion by one of three routes (blood, lymph, a serous cavity) and moves
between *vessels* (portal vein, venae cavae, arterial tree) and *capillary beds* (one per
site).  In a bed it arrests with the site's capillary-arrest probability or passes on to the
bed's drainage; on each leg of the journey it survives with the cancer's leg survival.  The
absorption probabilities B = (I - Q)^-1 R give, for every source site and route, the exact
share of shed cells that die on the way and that arrest in each site.  This is the closed
form that the verification tests compare the engine with.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from metastasis.errors import ModelError
from metastasis.knowledge.schema import THORACIC_DUCT, KnowledgeBase, SiteKind, VenousDrainage


class Route(IntEnum):
    BLOOD = 0
    LYMPH = 1
    CAVITY = 2


ROUTE_NAMES = ("blood", "lymph", "cavity")
"""Names of the route codes 0, 1, 2 of a lesion row (the journey its founder made)."""
PRIMARY_ROUTE = -1
"""Route code of the primary (it travelled nowhere)."""
MUTATION_ROUTE = -2
"""Route code of a clone that arose by mutation inside its parent lesion (no journey)."""


@dataclass(frozen=True)
class JourneyOutcome:
    """Absorption probabilities of the journey for every source site and route.

    arrest[o, r, j]: probability that a cell shed from site o by route r arrests in site j.
    died[o, r]: probability that it dies on the way (1 - sum over j of arrest[o, r, j]).
    available[o, r]: whether route r exists from site o in this anatomy.
    """

    arrest: NDArray[np.float64]
    died: NDArray[np.float64]
    available: NDArray[np.bool_]


def journey_outcomes(
    kb: KnowledgeBase,
    site_names: list[str],
    blood_leg_survival: float,
    lymph_leg_survival: float,
    cavity_survival: float,
    blood_entry_survival: float = 1.0,
    lymph_entry_survival: float = 1.0,
) -> JourneyOutcome:
    """Solve the absorbing chain of the journey for every source site and route.

    Blood leaving a site with a ``vertebral_plexus_share`` partly flows through the vertebral
    venous plexus straight to the bone bed, bypassing the lungs (Batson 1940).
    """
    n = len(site_names)
    index = {name: i for i, name in enumerate(site_names)}
    portal, caval, arterial = n, n + 1, n + 2  # vessel states follow the n capillary beds
    n_transient = n + 3
    q = np.zeros((n_transient, n_transient))
    r = np.zeros((n_transient, n + 1))  # absorbing: arrest in site j, or death (column n)
    vessel_of = {
        VenousDrainage.PORTAL: portal,
        VenousDrainage.CAVAL: caval,
        VenousDrainage.ARTERIAL: arterial,
    }

    def leg(source: int, target: int, survival: float, weight: float = 1.0) -> None:
        q[source, target] += weight * survival
        r[source, n] += weight * (1.0 - survival)

    total_share = sum(site.arterial_share.value for site in kb.sites.values())
    leg(portal, index["liver"], blood_leg_survival)
    leg(caval, index["lungs"], blood_leg_survival)
    for name, site in kb.sites.items():
        share = site.arterial_share.value / total_share  # exact shares despite rounding
        if share > 0.0:
            leg(arterial, index[name], blood_leg_survival, share)

    for name, site in kb.sites.items():
        j = index[name]
        stops = site.capillary_arrest.value
        r[j, j] += stops
        passing = 1.0 - stops
        if site.kind is SiteKind.LYMPH_NODES:
            target = site.lymph_drainage
            if target == THORACIC_DUCT:
                leg(j, caval, lymph_leg_survival, passing)
            elif target is not None:
                leg(j, index[target], lymph_leg_survival, passing)
            else:
                r[j, n] += passing
        elif site.venous_drainage in vessel_of:
            plexus = _plexus_share(site)
            q[j, vessel_of[site.venous_drainage]] += passing * (1.0 - plexus)
            if plexus > 0.0:
                leg(j, index["bone"], blood_leg_survival, passing * plexus)
        else:
            r[j, n] += passing  # nowhere to go: the cell is lost

    try:
        absorbed = np.linalg.solve(np.eye(n_transient) - q, r)
    except np.linalg.LinAlgError:
        absorbed = None
    if absorbed is None or not np.allclose(absorbed.sum(axis=1), 1.0, atol=1e-9):
        raise ModelError(
            "sites.*.capillary_arrest",
            "0 in every bed the blood reaches, with lossless legs",
            "an anatomy in which a circulating cell eventually stops or dies: some capillary "
            "bed on the blood's path with capillary_arrest > 0, or a leg survival below 1",
        )

    arrest = np.zeros((n, 3, n))
    died = np.zeros((n, 3))
    available = np.zeros((n, 3), dtype=bool)
    for name, site in kb.sites.items():
        o = index[name]
        starts: dict[Route, NDArray[np.float64]] = {}
        if site.venous_drainage in vessel_of:
            start = np.zeros(n_transient)
            plexus = _plexus_share(site)
            start[vessel_of[site.venous_drainage]] = 1.0 - plexus
            if plexus > 0.0:
                start[index["bone"]] = plexus * blood_leg_survival
            starts[Route.BLOOD] = blood_entry_survival * start
        if site.lymph_drainage is not None:
            start = np.zeros(n_transient)
            first_node = (caval if site.lymph_drainage == THORACIC_DUCT
                          else index[site.lymph_drainage])
            start[first_node] = lymph_entry_survival * lymph_leg_survival
            starts[Route.LYMPH] = start
        if site.cavity is not None:
            start = np.zeros(n_transient)
            start[index[site.cavity]] = cavity_survival
            starts[Route.CAVITY] = start
        for route, start in starts.items():
            available[o, route] = True
            arrest[o, route] = start @ absorbed[:, :n]
            died[o, route] = 1.0 - arrest[o, route].sum()
    return JourneyOutcome(arrest=arrest, died=died, available=available)


def _plexus_share(site) -> float:
    return site.vertebral_plexus_share.value if site.vertebral_plexus_share else 0.0


def route_weights(available: NDArray[np.bool_], lymph: float, cavity: float) -> NDArray[np.float64]:
    """Share of shed cells taking each route from each site.

    Where a route does not exist from a site (no lymphatics in the brain, no cavity around
    the breast) its share goes to the routes that do, in proportion to their own shares.
    """
    wanted = np.array([1.0 - lymph - cavity, lymph, cavity])
    weights = np.where(available, wanted[None, :], 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    fallback = available / np.maximum(available.sum(axis=1, keepdims=True), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0.0, weights / totals, fallback)
