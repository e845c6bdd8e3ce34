"""Typed, validated schema of the knowledge base.

The knowledge base is data, not code: every number the engine uses is a ``Sourced`` value
that carries its citation (or an ``assumption:`` with its reason).  Validation happens here,
once, so that the engine can trust a resolved model and bad input is reported with the
field, the value and what is allowed.
"""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from metastasis.errors import ModelError
from metastasis.knowledge.ranges import (
    BIRTH_RATE,
    CELL_DENSITY,
    CELLS,
    DOUBLING_DAYS,
    EXPONENT,
    LOG10_LIMIT,
    LOG10_SPREAD,
    MAX_GOMPERTZ_RATE,
    MAX_SITES,
    MAX_SPREAD_PER_LIMIT,
    MEAN_DAYS,
    RATE_PER_DAY,
    SHEDDING_RATE,
    SPEEDUP,
    THRESHOLD_CELLS,
)


def a_number(value: Any) -> Any:
    """Refuse what is not a number before pydantic would convert it: ``true`` is not a rate
    (pydantic reads it as 1), nor is the text "0.5"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = "true/false" if isinstance(value, bool) else "text or a table"
        raise ValueError(f"must be a number, not {shown}, got {value!r}")
    if isinstance(value, int) and abs(value) > sys.float_info.max:
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


class Sourced(BaseModel):
    """A number together with where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    source: Annotated[str, Field(min_length=3)]

    @field_validator("value", mode="before")
    @classmethod
    def _a_number(cls, v: Any) -> Any:
        return a_number(v)

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v!r}")
        return v


def _check(value: Sourced, *, name: str, low: float, high: float, low_open: bool = False) -> None:
    v = value.value
    if v < low or v > high or (low_open and v == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low:g}, {high:g}], got {v!r}")


class Probability(Sourced):
    """A probability: a finite number in [0, 1] (any, however small: probabilities are only
    multiplied and compared; every other kind of number has a range of its own, in
    :mod:`~metastasis.knowledge.ranges`)."""

    @field_validator("value")
    @classmethod
    def _unit(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"must be a probability in [0, 1], got {v!r}")
        return v


class Rate(Sourced):
    """A non-negative finite rate or quantity."""

    @field_validator("value")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if v < 0.0:
            raise ValueError(f"must be a non-negative number, got {v!r}")
        return v


class Positive(Sourced):
    """A strictly positive finite quantity."""

    @field_validator("value")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0.0:
            raise ValueError(f"must be a positive number, got {v!r}")
        return v


THORACIC_DUCT = "thoracic_duct"
"""Lymph drainage target meaning: through the thoracic duct into the venous blood."""


class SiteKind(StrEnum):
    ORGAN = "organ"
    LYMPH_NODES = "lymph_nodes"
    CAVITY = "cavity"


class VenousDrainage(StrEnum):
    """Where blood leaving an organ's capillary bed goes next (Weiss's first-pass idea)."""

    PORTAL = "portal"  # portal vein -> liver capillaries first
    CAVAL = "caval"  # venae cavae -> right heart -> lung capillaries first
    ARTERIAL = "arterial"  # pulmonary veins -> left heart -> arterial tree (the lungs)
    NONE = "none"  # no blood drainage used by the model (lymph nodes, serous cavities)


class Site(BaseModel):
    """An anatomical site where cancer cells can arrest and metastases can grow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    kind: SiteKind = SiteKind.ORGAN
    venous_drainage: VenousDrainage
    lymph_drainage: str | None = None
    cavity: str | None = None
    arterial_share: Probability
    capillary_arrest: Probability
    vital: StrictBool = False
    max_lesion_cells: Annotated[Positive, CELLS] | None = None
    vertebral_plexus_share: Probability | None = None


class Circulation(BaseModel):
    """Anatomy-wide constants of the journey."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cells_per_cm3: Annotated[Positive, CELL_DENSITY]
    lethal_burden_cells: Annotated[Positive, THRESHOLD_CELLS]
    clinical_size_cells: Annotated[Positive, CELLS]


class Growth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    doubling_time_days: Annotated[Positive, DOUBLING_DAYS]
    reference_size_cells: Annotated[Positive, CELLS]
    capacity_cells: Annotated[Positive, CELLS]
    metastasis_speedup: Annotated[Positive, SPEEDUP]
    metastasis_capacity_cells: Annotated[Positive, CELLS] | None = None
    """Gompertz capacity of a metastasis (absent: ``capacity_cells``).  Measured doubling
    times of metastases lengthen only modestly from occult to overt lesions, so a metastasis
    is not held back by the primary's ceiling."""
    metastasis_rate_log10_sd: Annotated[Rate, LOG10_SPREAD] | None = None
    """Spread between patients of how fast their metastases grow: each patient's metastases
    follow the Gompertz rate of the median patient times 10**(sd * Z), Z standard normal
    truncated to ``|sd * Z| <= metastasis_rate_log10_limit`` (cut lower on the fast side
    where needed: :attr:`metastasis_rate_spread`).  Measured doubling times of
    metastases of one cancer type span several-fold between series and patients, and it is
    this spread that lets one type hold both long-surviving and quickly fatal metastatic
    disease; absent means none."""
    metastasis_rate_log10_limit: Annotated[Positive, LOG10_LIMIT] | None = None
    """Bound of that spread, required with it: a doubling time cannot be arbitrarily short."""

    @property
    def metastasis_rate_spread(self) -> tuple[float, float, float]:
        """(sd, lowest, highest) of the between-patient spread of the metastases' rate, in
        log10 units: a patient's factor is 10**(sd * Z) with -lowest <= sd * Z <= highest
        ((0, 0, 0): no spread).  ``highest`` is the limit, or less where the median rate is
        so fast that the limit would take the fastest patient past the engine's largest
        Gompertz rate (:data:`~metastasis.knowledge.ranges.MAX_GOMPERTZ_RATE`): the spread
        is then cut there, on that side only."""
        sd = self.metastasis_rate_log10_sd.value if self.metastasis_rate_log10_sd else 0.0
        if sd <= 0.0 or self.metastasis_rate_log10_limit is None:
            return 0.0, 0.0, 0.0
        limit = self.metastasis_rate_log10_limit.value
        headroom = math.log10(MAX_GOMPERTZ_RATE / self.gompertz_rates()[1])
        return sd, limit, max(0.0, min(limit, headroom))

    @property
    def metastasis_capacity(self) -> float:
        if self.metastasis_capacity_cells is None:
            return self.capacity_cells.value
        return self.metastasis_capacity_cells.value

    @model_validator(mode="after")
    def _reference_below_capacity(self) -> Growth:
        for name, value in (("capacity_cells", self.capacity_cells.value),
                            ("metastasis_capacity_cells", self.metastasis_capacity)):
            if self.reference_size_cells.value >= value:
                raise ValueError(
                    f"growth.reference_size_cells must be below growth.{name}, got "
                    f"{self.reference_size_cells.value:g} >= {value:g}"
                )
        if self.capacity_cells.value <= 1.0:
            raise ValueError(
                f"growth.capacity_cells must exceed 1 cell, got {self.capacity_cells.value:g}"
            )
        sd = self.metastasis_rate_log10_sd.value if self.metastasis_rate_log10_sd else 0.0
        limit = self.metastasis_rate_log10_limit
        if sd > 0.0 and limit is None:
            raise ModelError(
                "metastasis_rate_log10_limit", None,
                "a bound in log10 units whenever metastasis_rate_log10_sd is above 0 (the "
                "fastest patient's metastases must still double in a finite time)",
            )
        if limit is not None and sd > MAX_SPREAD_PER_LIMIT * limit.value:
            raise ModelError(
                "metastasis_rate_log10_limit", limit.value,
                f"at least metastasis_rate_log10_sd / {MAX_SPREAD_PER_LIMIT:g} ({sd:g} / "
                f"{MAX_SPREAD_PER_LIMIT:g}), so that a patient's rate is drawn in a few tries",
            )
        self._rates_within_reach()
        return self

    def gompertz_rates(self) -> tuple[float, float]:
        """Gompertz rates a = ln 2 / (DT ln(K / x_ref)) of the primary and of a metastasis
        (which doubles ``metastasis_speedup`` times faster at the reference size), per day;
        the same as :func:`metastasis.model.growth.gompertz_rate`."""
        dt, reference = self.doubling_time_days.value, self.reference_size_cells.value
        primary = math.log(2.0) / (dt * math.log(self.capacity_cells.value / reference))
        metastasis = math.log(2.0) * self.metastasis_speedup.value / (
            dt * math.log(self.metastasis_capacity / reference))
        return primary, metastasis

    def _rates_within_reach(self) -> None:
        """Lesions must not reach their capacity to machine precision within the longest
        horizon (see :data:`~metastasis.knowledge.ranges.MAX_GOMPERTZ_RATE`)."""
        primary, metastasis = self.gompertz_rates()
        most = f"{MAX_GOMPERTZ_RATE:.4g}"
        if primary > MAX_GOMPERTZ_RATE:
            raise ModelError(
                "doubling_time_days", self.doubling_time_days.value,
                f"at least {self.doubling_time_days.value * primary / MAX_GOMPERTZ_RATE:.4g} "
                f"days with these sizes: the Gompertz rate ln 2 / (DT ln(capacity / "
                f"reference)) must be at most {most} per day (it is {primary:.4g})",
            )
        if metastasis > MAX_GOMPERTZ_RATE:
            raise ModelError(
                "metastasis_speedup", self.metastasis_speedup.value,
                f"at most {self.metastasis_speedup.value * MAX_GOMPERTZ_RATE / metastasis:.4g} "
                f"with these sizes and doubling time: a metastasis's Gompertz rate must be at "
                f"most {most} per day (it is {metastasis:.4g})",
            )


class Invasion(BaseModel):
    """Steps 1-2: acquiring motility and breaching the tissue boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    motility_per_new_cell: Probability
    breach_rate: Annotated[Rate, RATE_PER_DAY]


class Shedding(BaseModel):
    """Step 3: intravasation, shed cells per day = rate * (invasive cells) ** exponent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: Annotated[Rate, SHEDDING_RATE]
    exponent: Annotated[Probability, EXPONENT]
    lymph_fraction: Probability
    cavity_fraction: Probability
    rate_log10_sd: Annotated[Rate, LOG10_SPREAD] | None = None
    """Spread between patients of the shedding rate: each patient's rate is ``rate`` times
    10**(sd * Z), Z standard normal (``rate`` is the median patient's). Tumours of one type
    differ widely in how early and how much they spread; absent means no spread."""
    rate_log10_limit: Annotated[Positive, LOG10_LIMIT] | None = None
    """Bound of that spread: sd * Z is drawn from the normal truncated to [-limit, limit]
    (absent: not truncated), so that no patient sheds more than 10**limit times the median."""
    metastasis_factor: Probability | None = None
    """How much a metastasis sheds per invasive cell, as a share of the primary's rate (a
    resistant clone sheds like the lesion it grew in).  Absent: 1, every lesion alike.
    Below 1 where most metastases are seeded by the primary rather than by other
    metastases, which lets a type spread early without every metastasis seeding hundreds
    more."""

    @model_validator(mode="after")
    def _fractions(self) -> Shedding:
        total = self.lymph_fraction.value + self.cavity_fraction.value
        if total > 1.0:
            raise ValueError(
                "shedding.lymph_fraction + shedding.cavity_fraction must be at most 1, "
                f"got {total:g}"
            )
        sd = self.rate_log10_sd.value if self.rate_log10_sd else 0.0
        limit = self.rate_log10_limit
        if limit is not None and sd > MAX_SPREAD_PER_LIMIT * limit.value:
            raise ModelError(
                "rate_log10_limit", limit.value,
                f"at least rate_log10_sd / {MAX_SPREAD_PER_LIMIT:g} ({sd:g} / "
                f"{MAX_SPREAD_PER_LIMIT:g}), so that a patient's rate is drawn in a few tries",
            )
        return self


class Travel(BaseModel):
    """Step 4: surviving the journey.

    Entry survival is paid once, by every cell entering blood or lymph (shear, anoikis, immune
    attack in the first minutes); leg survival on every leg from a vessel to the next
    capillary bed (mechanical trauma of passage), so long journeys cost more than short ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    blood_entry_survival: Probability
    lymph_entry_survival: Probability
    blood_leg_survival: Probability
    lymph_leg_survival: Probability
    cavity_survival: Probability


class Colonisation(BaseModel):
    """Steps 5-6: leaving the vessel, dormancy, micrometastasis and outgrowth."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extravasation: Probability
    death_at_site: Probability
    dormancy: Probability
    awakening: Probability
    mean_dormancy_days: Annotated[Rate, MEAN_DAYS]
    colony_birth_rate: Annotated[Positive, BIRTH_RATE]
    colony_death_rate: Annotated[Rate, RATE_PER_DAY]
    micrometastasis_cells: Annotated[Positive, CELLS]
    outgrowth: Probability
    mean_outgrowth_delay_days: Annotated[Rate, MEAN_DAYS]

    @model_validator(mode="after")
    def _consistent(self) -> Colonisation:
        if self.death_at_site.value + self.dormancy.value > 1.0:
            raise ValueError(
                "colonisation.death_at_site + colonisation.dormancy must be at most 1, got "
                f"{self.death_at_site.value + self.dormancy.value:g}"
            )
        if self.colony_death_rate.value > self.colony_birth_rate.value:
            raise ValueError(
                "colonisation.colony_death_rate must not exceed colonisation.colony_birth_rate "
                f"(a colony must be able to grow), got {self.colony_death_rate.value:g} > "
                f"{self.colony_birth_rate.value:g}"
            )
        if self.micrometastasis_cells.value < 1.0:
            raise ValueError(
                "colonisation.micrometastasis_cells must be at least 1, got "
                f"{self.micrometastasis_cells.value:g}"
            )
        return self


class CancerType(BaseModel):
    """One cancer type: its primary organ and every parameter of its cascade."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    primary_site: str
    naming: str
    growth: Growth
    invasion: Invasion
    shedding: Shedding
    travel: Travel
    colonisation: Colonisation
    affinity: dict[str, Probability]


class KnowledgeBase(BaseModel):
    """The whole validated knowledge base: anatomy plus cancer types."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "default"
    description: str = ""
    circulation: Circulation
    sites: Annotated[dict[str, Site], Field(max_length=MAX_SITES)]
    cancers: dict[str, CancerType]

    @model_validator(mode="after")
    def _references(self) -> KnowledgeBase:
        names = set(self.sites)
        for key, site in self.sites.items():
            for field in ("lymph_drainage", "cavity"):
                target = getattr(site, field)
                allowed_extra = {THORACIC_DUCT} if field == "lymph_drainage" else set()
                if target is not None and target not in names | allowed_extra:
                    raise ValueError(
                        f"sites.{key}.{field}: a site of this anatomy "
                        f"({', '.join(sorted(names | allowed_extra))})"
                    )
        self._check_lymph()
        self._check_cavities()
        for required in ("liver", "lungs"):
            if required not in names:
                raise ValueError(f"sites: the anatomy needs a site named {required!r}")
        plexus = [k for k, s in self.sites.items() if s.vertebral_plexus_share]
        if plexus and "bone" not in names:
            raise ValueError(
                f"sites.{plexus[0]}.vertebral_plexus_share: the vertebral plexus leads to a "
                "site named 'bone', which this anatomy lacks"
            )
        share = sum(s.arterial_share.value for s in self.sites.values())
        if not math.isclose(share, 1.0, abs_tol=1e-6):
            raise ValueError(
                f"sites.*.arterial_share must sum to 1 (shares of cardiac output), got {share:.6g}"
            )
        for key, cancer in self.cancers.items():
            if cancer.primary_site not in names:
                raise ValueError(
                    f"cancers.{key}.primary_site: a site of this anatomy "
                    f"({', '.join(sorted(names))})"
                )
            for soil in cancer.affinity:
                if soil not in names:
                    raise ValueError(
                        f"cancers.{key}.affinity.{soil}: a site of this anatomy "
                        f"({', '.join(sorted(names))})"
                    )
        return self

    def _of_kind(self, kind: SiteKind) -> list[str]:
        return sorted(k for k, s in self.sites.items() if s.kind is kind)

    def _check_lymph(self) -> None:
        """Lymph flows on, never back: from an organ into a lymph-node site (never the
        organ itself), from node to node, and out through the thoracic duct.  A site draining
        into itself or a cycle of nodes (regional -> distant -> regional) would send cells
        round for ever; the journey's equations then have no solution with lossless legs."""
        nodes = self._of_kind(SiteKind.LYMPH_NODES)
        for key, site in self.sites.items():
            target = site.lymph_drainage
            if target is None or target == THORACIC_DUCT:
                continue
            if target == key or target not in nodes:
                others = [n for n in nodes if n != key]
                raise ValueError(
                    f"sites.{key}.lymph_drainage: a lymph-node site other than this one "
                    f"({', '.join([*others, THORACIC_DUCT])})"
                )
        for start in nodes:
            seen = [start]
            target = self.sites[start].lymph_drainage
            while target is not None and target != THORACIC_DUCT:
                if target in seen:
                    raise ValueError(
                        f"sites.{seen[-1]}.lymph_drainage: a lymph-node site that does not "
                        f"lead back here, or {THORACIC_DUCT} (the lymph would flow in a "
                        f"cycle: {' -> '.join([*seen, target])})"
                    )
                seen.append(target)
                target = self.sites[target].lymph_drainage

    def _check_cavities(self) -> None:
        """A ``cavity`` names a serous cavity (a site of kind ``cavity``: the peritoneum,
        the pleura), not an ordinary organ: cells shed across a cavity settle on its lining."""
        cavities = self._of_kind(SiteKind.CAVITY)
        for key, site in self.sites.items():
            if site.cavity is not None and site.cavity not in cavities:
                raise ValueError(
                    f"sites.{key}.cavity: a site of kind cavity "
                    f"({', '.join(cavities) or 'none in this anatomy'})"
                )

    def cancer(self, name: str) -> CancerType:
        """Look a cancer type up, with an error that lists the allowed names."""
        try:
            return self.cancers[name]
        except KeyError:
            raise ModelError(
                field="cancer", value=name,
                allowed=", ".join(sorted(self.cancers)) or "none: no cancer type is defined"
            ) from None
