"""Typed, validated schema of the knowledge base.

The knowledge base is data, not code: every number the engine uses is a ``Sourced`` value
that carries its citation (or an ``assumption:`` with its reason).  Validation happens here,
once, so that the engine can trust a resolved model and bad input is reported with the
field, the value and what is allowed.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from metastasis.errors import ModelError


class Sourced(BaseModel):
    """A number together with where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    source: Annotated[str, Field(min_length=3)]

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
    """A probability: a finite number in [0, 1]."""

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
    vital: bool = False
    max_lesion_cells: Positive | None = None
    vertebral_plexus_share: Probability | None = None


class Circulation(BaseModel):
    """Anatomy-wide constants of the journey."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cells_per_cm3: Positive
    lethal_burden_cells: Positive
    clinical_size_cells: Positive


class Growth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    doubling_time_days: Positive
    reference_size_cells: Positive
    capacity_cells: Positive
    metastasis_speedup: Positive
    metastasis_capacity_cells: Positive | None = None
    """Gompertz capacity of a metastasis (absent: ``capacity_cells``).  Measured doubling
    times of metastases lengthen only modestly from occult to overt lesions, so a metastasis
    is not held back by the primary's ceiling."""

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
        return self


class Invasion(BaseModel):
    """Steps 1-2: acquiring motility and breaching the tissue boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    motility_per_new_cell: Probability
    breach_rate: Rate


class Shedding(BaseModel):
    """Step 3: intravasation, shed cells per day = rate * (invasive cells) ** exponent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: Rate
    exponent: Probability
    lymph_fraction: Probability
    cavity_fraction: Probability
    rate_log10_sd: Rate | None = None
    """Spread between patients of the shedding rate: each patient's rate is ``rate`` times
    10**(sd * Z), Z standard normal (``rate`` is the median patient's). Tumours of one type
    differ widely in how early and how much they spread; absent means no spread."""
    rate_log10_limit: Positive | None = None
    """Bound of that spread: sd * Z is drawn from the normal truncated to [-limit, limit]
    (absent: not truncated), so that no patient sheds more than 10**limit times the median."""

    @model_validator(mode="after")
    def _fractions(self) -> Shedding:
        total = self.lymph_fraction.value + self.cavity_fraction.value
        if total > 1.0:
            raise ValueError(
                "shedding.lymph_fraction + shedding.cavity_fraction must be at most 1, "
                f"got {total:g}"
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
    mean_dormancy_days: Rate
    colony_birth_rate: Positive
    colony_death_rate: Rate
    micrometastasis_cells: Positive
    outgrowth: Probability
    mean_outgrowth_delay_days: Rate

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
    sites: dict[str, Site]
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
            for site in cancer.affinity:
                if site not in names:
                    raise ValueError(
                        f"cancers.{key}.affinity.{site}: a site of this anatomy "
                        f"({', '.join(sorted(names))})"
                    )
        return self

    def cancer(self, name: str) -> CancerType:
        """Look a cancer type up, with an error that lists the allowed names."""
        try:
            return self.cancers[name]
        except KeyError:
            raise ModelError(
                field="cancer", value=name, allowed=", ".join(sorted(self.cancers))
            ) from None
