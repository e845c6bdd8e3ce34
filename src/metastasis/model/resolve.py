"""From a validated knowledge base to the numbers the engine consumes.

The engine never reads the knowledge base: it reads a :class:`ResolvedModel`, a frozen set of
plain floats and arrays for one cancer type, in which every derived quantity (Gompertz rates,
journey absorption probabilities, per-cell fate probabilities) has been computed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from metastasis.errors import ModelError
from metastasis.knowledge.schema import KnowledgeBase, SiteKind
from metastasis.model.gompertz import gompertz_rate
from metastasis.model.routing import journey_outcomes, route_weights

FATES = (
    "failed_extravasation",
    "died_at_site",
    "dormant",
    "colony_extinct",
    "micrometastasis",
    "outgrowth",
)
"""Eventual fates of a cell that arrested in a site, in the order of the fate arrays.

``dormant``: entered dormancy and never re-awakened; ``micrometastasis``: founded a colony
that survived establishment but never grew out; ``outgrowth``: founded a growing metastasis
(these cells become tracked lesions)."""

OUTGROWTH = FATES.index("outgrowth")


@dataclass(frozen=True)
class ResolvedModel:
    """Everything the engine needs to simulate one cancer type, resolved and validated."""

    cancer: str
    label: str
    naming: str
    site_names: tuple[str, ...]
    site_labels: tuple[str, ...]
    site_kinds: tuple[str, ...]
    primary_site: int
    # growth
    primary_rate: float
    primary_capacity: float
    metastasis_rate: float  # the median patient's (see metastasis_rate_log10_sd)
    metastasis_capacity: float
    metastasis_rate_log10_sd: float  # between-patient spread of metastasis_rate (0: none)
    metastasis_rate_log10_limit: float  # how far below the median (log10) a patient may be
    metastasis_rate_log10_highest: float  # how far above: the limit, or less near the cap
    site_capacity: NDArray[np.float64]
    # steps 1-2
    invasion_enabled: bool
    motility_per_new_cell: float
    breach_rate: float
    # step 3
    shedding_rate: float
    shedding_exponent: float
    shedding_rate_log10_sd: float  # between-patient spread of shedding_rate (median patient)
    shedding_rate_log10_limit: float  # bound of that spread in log10 units (inf: none)
    metastasis_shedding_factor: float  # a metastasis's shedding rate / the primary's
    route_weights: NDArray[np.float64]  # [source site, route]
    # step 4: [source site, route, target site] and [source site, route]
    arrest: NDArray[np.float64]
    died_in_transit: NDArray[np.float64]
    # steps 5-6
    extravasation: NDArray[np.float64]  # per target site, affinity included
    fate: NDArray[np.float64]  # [target site, fate]: eventual fate of an arrested cell
    dormant_share_of_outgrowth: float  # of outgrowing founders, share that slept first
    mean_dormancy_days: float
    colony_birth_rate: float
    colony_death_rate: float
    micrometastasis_cells: float
    mean_outgrowth_delay_days: float
    # conventions
    cells_per_cm3: float
    lethal_burden_cells: float
    clinical_size_cells: float
    knowledge: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def n_sites(self) -> int:
        return len(self.site_names)

    def site_index(self, name: str) -> int:
        return self.site_names.index(name)

    @cached_property
    def cell_fate_probability(self) -> NDArray[np.float64]:
        """[source, route, target, fate]: chance that one shed cell takes exactly this path."""
        return (
            self.route_weights[:, :, None, None]
            * self.arrest[:, :, :, None]
            * self.fate[None, None, :, :]
        )

    @cached_property
    def has_route_out(self) -> NDArray[np.bool_]:
        """[site]: whether a cell shed there has any route (a site with none sheds nothing)."""
        return self.route_weights.sum(axis=1) > 0.0

    @cached_property
    def transit_death_probability(self) -> NDArray[np.float64]:
        """[source, route]: chance that one shed cell takes the route and dies on the way."""
        return self.route_weights * self.died_in_transit

    @cached_property
    def founder_probability(self) -> NDArray[np.float64]:
        """[source site, target site]: chance that one shed cell founds a growing metastasis."""
        return self.cell_fate_probability[:, :, :, OUTGROWTH].sum(axis=1)

    @cached_property
    def founder_total(self) -> NDArray[np.float64]:
        """[source site]: chance that one shed cell founds a growing metastasis anywhere."""
        return self.founder_probability.sum(axis=1)

    @cached_property
    def aggregate_paths(self) -> tuple[list[NDArray[np.float64]], list[NDArray[np.int64]]]:
        """Per source site: probabilities and flat [route, target, fate] indices of the paths
        that end in any fate but outgrowth, keeping only paths of positive probability so the
        engine's accounting is one Poisson draw per shedding site."""
        probability = self.cell_fate_probability.copy()
        probability[..., OUTGROWTH] = 0.0
        flat = probability.reshape(self.n_sites, -1)
        paths = [np.flatnonzero(row > 0.0) for row in flat]
        return [row[index] for row, index in zip(flat, paths, strict=True)], paths

    @cached_property
    def aggregate_path_columns(self) -> tuple[NDArray[np.float64], NDArray[np.int64],
                                              NDArray[np.int64]]:
        """:attr:`aggregate_paths` as the compiled accounting reads them: every source's
        probabilities and indices one after another, and where each source's run starts (the
        engine asked for these once per patient)."""
        cells, paths = self.aggregate_paths
        offsets = np.zeros(len(paths) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([index.size for index in paths])
        return (np.concatenate(cells), np.concatenate(paths).astype(np.int64), offsets)

    @cached_property
    def founder_target_cdf(self) -> NDArray[np.float64]:
        """[source, target]: cumulative distribution of a founder's target site."""
        total = np.maximum(self.founder_total[:, None], np.finfo(float).tiny)
        cdf = np.cumsum(self.founder_probability / total, axis=1)
        cdf[:, -1] = 1.0  # guard against rounding leaving the last bin unreachable
        return cdf

    @cached_property
    def founder_route(self) -> NDArray[np.float64]:
        """[source, target, route]: cumulative route distribution of a founder, given target."""
        joint = self.cell_fate_probability[:, :, :, OUTGROWTH].transpose(0, 2, 1)
        total = joint.sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0.0, joint / total, 1.0 / joint.shape[2])
        return np.cumsum(share, axis=2)

    @property
    def colony_survival(self) -> float:
        return 1.0 - self.colony_death_rate / self.colony_birth_rate


def resolve(kb: KnowledgeBase, cancer_name: str) -> ResolvedModel:
    """Resolve one cancer type of a validated knowledge base."""
    cancer = kb.cancer(cancer_name)
    names = list(kb.sites)
    sites = [kb.sites[n] for n in names]
    g, inv, shed, travel, col = (
        cancer.growth,
        cancer.invasion,
        cancer.shedding,
        cancer.travel,
        cancer.colonisation,
    )
    primary_rate = gompertz_rate(
        g.doubling_time_days.value, g.reference_size_cells.value, g.capacity_cells.value
    )
    capacity = g.capacity_cells.value
    # a metastasis doubles `metastasis_speedup` times faster than its primary at the reference
    # size, on its own Gompertz curve (capacity `metastasis_capacity`, or a site's own limit)
    metastasis_capacity = g.metastasis_capacity
    metastasis_rate = gompertz_rate(
        g.doubling_time_days.value / g.metastasis_speedup.value, g.reference_size_cells.value,
        metastasis_capacity,
    )
    site_capacity = np.array(
        [min(metastasis_capacity, s.max_lesion_cells.value) if s.max_lesion_cells
         else metastasis_capacity for s in sites]
    )
    micro = col.micrometastasis_cells.value
    if micro >= site_capacity.min():
        raise ModelError(
            f"cancers.{cancer_name}.colonisation.micrometastasis_cells",
            micro,
            f"fewer cells than the smallest lesion capacity ({site_capacity.min():g}): a "
            "micrometastasis must be able to grow out",
        )
    journey = journey_outcomes(
        kb,
        names,
        travel.blood_leg_survival.value,
        travel.lymph_leg_survival.value,
        travel.cavity_survival.value,
        travel.blood_entry_survival.value,
        travel.lymph_entry_survival.value,
    )
    weights = route_weights(
        journey.available, shed.lymph_fraction.value, shed.cavity_fraction.value
    )

    affinity = np.array([cancer.affinity[n].value if n in cancer.affinity else 0.0 for n in names])
    extravasation = col.extravasation.value * affinity
    p_die, p_dormant = col.death_at_site.value, col.dormancy.value
    p_proliferate = 1.0 - p_die - p_dormant
    p_awake = col.awakening.value
    survival = 1.0 - col.colony_death_rate.value / col.colony_birth_rate.value
    p_out = col.outgrowth.value
    colony_founders = p_proliferate + p_dormant * p_awake
    per_extravasated = np.array(
        [
            p_die,
            p_dormant * (1.0 - p_awake),
            colony_founders * (1.0 - survival),
            colony_founders * survival * (1.0 - p_out),
            colony_founders * survival * p_out,
        ]
    )
    fate = np.column_stack([1.0 - extravasation, np.outer(extravasation, per_extravasated)])
    dormant_share = p_dormant * p_awake / colony_founders if colony_founders > 0 else 0.0

    return ResolvedModel(
        cancer=cancer_name,
        label=cancer.label,
        naming=cancer.naming,
        site_names=tuple(names),
        site_labels=tuple(s.label for s in sites),
        site_kinds=tuple(str(s.kind) for s in sites),
        primary_site=names.index(cancer.primary_site),
        primary_rate=primary_rate,
        primary_capacity=capacity,
        metastasis_rate=metastasis_rate,
        metastasis_capacity=metastasis_capacity,
        metastasis_rate_log10_sd=g.metastasis_rate_spread[0],
        metastasis_rate_log10_limit=g.metastasis_rate_spread[1],
        metastasis_rate_log10_highest=g.metastasis_rate_spread[2],
        site_capacity=site_capacity,
        invasion_enabled=inv.enabled,
        motility_per_new_cell=inv.motility_per_new_cell.value,
        breach_rate=inv.breach_rate.value,
        shedding_rate=shed.rate.value,
        shedding_exponent=shed.exponent.value,
        shedding_rate_log10_sd=shed.rate_log10_sd.value if shed.rate_log10_sd else 0.0,
        shedding_rate_log10_limit=(
            shed.rate_log10_limit.value if shed.rate_log10_limit else float("inf")
        ),
        metastasis_shedding_factor=(
            shed.metastasis_factor.value if shed.metastasis_factor else 1.0
        ),
        route_weights=weights,
        arrest=journey.arrest,
        died_in_transit=journey.died,
        extravasation=extravasation,
        fate=fate,
        dormant_share_of_outgrowth=dormant_share,
        mean_dormancy_days=col.mean_dormancy_days.value,
        colony_birth_rate=col.colony_birth_rate.value,
        colony_death_rate=col.colony_death_rate.value,
        micrometastasis_cells=col.micrometastasis_cells.value,
        mean_outgrowth_delay_days=col.mean_outgrowth_delay_days.value,
        cells_per_cm3=kb.circulation.cells_per_cm3.value,
        lethal_burden_cells=kb.circulation.lethal_burden_cells.value,
        clinical_size_cells=kb.circulation.clinical_size_cells.value,
        knowledge=kb.model_dump(mode="json"),
    )


def is_lymph_node(model: ResolvedModel, site: int) -> bool:
    return model.site_kinds[site] == SiteKind.LYMPH_NODES.value
