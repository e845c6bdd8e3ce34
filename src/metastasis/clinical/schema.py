"""Typed, validated schema of the clinical knowledge base.

The clinic's numbers (symptom thresholds, detection curves, screening programmes, work-up
delays, onset ages, organ-failure thresholds, the T cut-offs of staging) are data with
sources, exactly like the disease's: every number is a
:class:`~metastasis.knowledge.schema.Sourced` value carrying its citation or an
``assumption:`` with its reason.  Validation happens once, here, so the
clinical layer can trust what it reads, and bad input names its field, its value and what is
allowed (:class:`~metastasis.errors.ModelError`).

Site names are not checked against an anatomy here, because a clinical file may be paired
with a user's own knowledge base; :func:`metastasis.clinical.loader.check_against` does that
check once both are known.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from metastasis.errors import ModelError
from metastasis.knowledge.ranges import (
    AGE_YEARS,
    DELAY_DAYS,
    DIAMETER_MM,
    INTERVAL_YEARS,
    LOG10_SPREAD,
    MAX_ENTRIES,
    MIN_DIAMETER_MM,
    POSITIVE_AGE_YEARS,
    THRESHOLD_CELLS,
)
from metastasis.knowledge.schema import Positive, Probability, Rate

ALL_SITES = "*"
"""Site wildcard: a symptom driven by the total burden, or a modality that sees every site."""

SymptomKind = Literal["organ", "general", "primary"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_site_list(sites: list[str], field: str) -> None:
    """A site list is either exactly ``["*"]`` or named sites without the wildcard."""
    if not sites:
        raise ModelError(field, sites, 'at least one site name, or ["*"] for every site')
    if ALL_SITES in sites and len(sites) > 1:
        raise ModelError(field, sites, '["*"] alone, or site names without "*"')
    if len(set(sites)) != len(sites):
        raise ModelError(field, sites, "each site named once")


# ---------------------------------------------------------------- symptoms


class _SymptomBase(_Strict):
    """What every symptom shares: a per-patient threshold drawn once, lognormally.

    A patient's threshold in cells is ``10 ** N(log10 median, log10_spread)``: people differ
    in how much tumour it takes before they notice something, and a lognormal keeps the
    threshold positive and its spread multiplicative, as sizes are.
    """

    label: str = Field(min_length=1)
    median_threshold_cells: Annotated[Positive, THRESHOLD_CELLS]
    log10_spread: Annotated[Rate, LOG10_SPREAD]
    workup: StrictBool = True
    neurological: StrictBool = False

    @model_validator(mode="after")
    def _at_least_one_cell(self) -> _SymptomBase:
        if self.median_threshold_cells.value < 1.0:
            raise ModelError(
                "median_threshold_cells",
                self.median_threshold_cells.value,
                "at least 1 cell (no symptom comes from less than one cell)",
            )
        return self


class Symptom(_SymptomBase):
    """A symptom of metastatic (``organ``) or total (``general``) burden.

    ``sites`` names the sites whose summed burden drives the symptom; a general symptom has
    ``["*"]`` (the whole body's burden, primary included).
    """

    kind: Literal["organ", "general"]
    sites: list[str]

    @model_validator(mode="after")
    def _sites_match_kind(self) -> Symptom:
        _check_site_list(self.sites, "sites")
        if self.kind == "general" and self.sites != [ALL_SITES]:
            raise ModelError("sites", self.sites, 'a general symptom takes ["*"] (total burden)')
        if self.kind == "organ" and self.sites == [ALL_SITES]:
            raise ModelError("sites", self.sites, "an organ symptom names its sites")
        return self


class PrimarySymptom(_SymptomBase):
    """A symptom of the primary tumour itself, driven by the primary's own size."""

    kind: Literal["primary"] = "primary"


# ---------------------------------------------------------------- detection


class DetectionCurve(_Strict):
    """Logistic sensitivity in diameter: ``p(d) = 1 / (1 + exp(-(d - d50) / width))``."""

    d50_mm: Annotated[Positive, DIAMETER_MM]
    width_mm: Annotated[Positive, DIAMETER_MM]


class Modality(_Strict):
    """An imaging or endoscopic modality and how its sensitivity depends on lesion size.

    ``sites``: what it can see (``["*"]``: every site; colonoscopy sees only the colon).
    ``min_diameter_mm``: below it nothing is found, whatever the logistic says; the logistic
    alone would give a microscopic lesion a small but positive chance, which no scanner has.
    ``curves`` overrides ``default`` for named sites.
    """

    label: str = Field(min_length=1)
    sites: list[str] = Field(default_factory=lambda: [ALL_SITES])
    min_diameter_mm: Annotated[Rate, MIN_DIAMETER_MM]
    default: DetectionCurve
    curves: dict[str, DetectionCurve] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _curves_for_visible_sites(self) -> Modality:
        _check_site_list(self.sites, "sites")
        if self.sites != [ALL_SITES]:
            for site in self.curves:
                if site not in self.sites:
                    raise ModelError(
                        f"curves.{site}", site, f"a site this modality sees: {self.sites}"
                    )
        return self

    def sees(self, site: str) -> bool:
        """Whether a lesion in ``site`` can be found at all by this modality."""
        return self.sites == [ALL_SITES] or site in self.sites

    def curve(self, site: str) -> DetectionCurve:
        """The site's own curve, else the default."""
        return self.curves.get(site, self.default)


class Biopsy(_Strict):
    """Biopsy: tissue that names the cancer type when it is diagnostic."""

    diagnostic_yield: Probability


class StagingScan(_Strict):
    """One scan a cancer type's staging adds to every work-up, on ``sites`` (``["*"]``: the
    whole body), with the guideline or reason it follows."""

    modality: str = Field(min_length=1)
    sites: list[str] = Field(default_factory=lambda: [ALL_SITES], min_length=1)
    source: str = Field(min_length=1)


class Workup(_Strict):
    """From a symptom that sends the patient to a doctor to a diagnosis.

    ``delay_days``: mean of the (exponential) delay from the first such symptom to the
    work-up scans.  ``emergency_days_before_death``: a patient who has such a symptom but
    would die of the cancer before the work-up is admitted as an emergency and diagnosed
    then, an exponential time of this mean before the death (never before the symptom);
    without it such a patient dies undiagnosed.  ``imaging``: modalities used on every
    work-up (the whole body).
    ``neurological_imaging`` on ``neurological_sites`` only is added when a neurological
    symptom is present.  ``staging``: scans a cancer type's own staging adds to every
    work-up (lung cancer is staged with PET-CT and a brain MRI whatever the symptoms).
    ``node_pathology_share``: for a cancer type listed, the share of patients without
    distant metastases found whose regional nodes a pathologist examines (a lymph node
    dissection); the others' nodes are staged by imaging alone, as a registry records a
    patient treated without an operation on the nodes.  A type not listed: every such
    patient, the rule of the types whose primaries are resected with their nodes.
    """

    delay_days: Annotated[Positive, DELAY_DAYS]
    emergency_days_before_death: Annotated[Positive, DELAY_DAYS] | None = None
    imaging: list[str] = Field(min_length=1)
    neurological_imaging: list[str] = Field(default_factory=list)
    neurological_sites: list[str] = Field(default_factory=lambda: ["brain"])
    staging: dict[str, list[StagingScan]] = Field(default_factory=dict,
                                                  max_length=MAX_ENTRIES)
    node_pathology_share: dict[str, Probability] = Field(default_factory=dict,
                                                         max_length=MAX_ENTRIES)

    def scans(self, cancer: str, neurological: bool) -> list[tuple[str, list[str] | None]]:
        """The work-up's scans in order, each a modality and the sites it looks at (None:
        the whole body): the common imaging, the cancer type's staging scans, then the
        neurological imaging when a neurological symptom is present."""
        scans: list[tuple[str, list[str] | None]] = [(m, None) for m in self.imaging]
        for scan in self.staging.get(cancer, []):
            scans.append((scan.modality, None if scan.sites == [ALL_SITES] else scan.sites))
        if neurological:
            scans += [(m, list(self.neurological_sites)) for m in self.neurological_imaging]
        return scans

    def nodes_by_pathology(self, cancer: str, u: float) -> bool:
        """Whether a patient of ``cancer`` with uniform draw ``u`` has the regional nodes
        examined by a pathologist (see ``node_pathology_share``)."""
        share = self.node_pathology_share.get(cancer)
        return share is None or u < share.value


# ---------------------------------------------------------------- screening


ROUND_TOLERANCE = 1e-9
"""Relative slack so that a round falling exactly on the stop age (in years) is kept despite
floating-point rounding of (stop - start) / interval."""


class ScreeningProgramme(_Strict):
    """A screening programme as data: who (cancer type), how, from when, how often.

    Rounds fall at ages ``start, start + interval, ...`` up to ``stop``; each round is
    attended independently with probability ``adherence``.  ``name`` is the programme's key
    in the file (filled in by the knowledge base).
    """

    name: str = ""
    label: str = Field(min_length=1)
    cancer: str = Field(min_length=1)
    modality: str = Field(min_length=1)
    start_age_years: Annotated[Rate, AGE_YEARS]
    stop_age_years: Annotated[Rate, AGE_YEARS]
    interval_years: Annotated[Positive, INTERVAL_YEARS]
    adherence: Probability

    @model_validator(mode="after")
    def _ages_in_order(self) -> ScreeningProgramme:
        if self.start_age_years.value > self.stop_age_years.value:
            raise ModelError(
                "start_age_years",
                self.start_age_years.value,
                f"at most stop_age_years ({self.stop_age_years.value:g})",
            )
        return self

    def round_ages(self) -> list[float]:
        """Ages of every scheduled round, start to stop inclusive."""
        start, stop = self.start_age_years.value, self.stop_age_years.value
        interval = self.interval_years.value
        count = math.floor((stop - start) / interval + ROUND_TOLERANCE) + 1
        return [start + k * interval for k in range(count)]


class OnsetAge(_Strict):
    """Age at the first cancer cell: normal, truncated below at ``min_years``.

    ``mean_years`` is the median age at diagnosis minus the model's years from one cell to a
    clinically evident tumour; both are kept so a test can see that they still agree.
    """

    median_age_at_diagnosis_years: Annotated[Positive, POSITIVE_AGE_YEARS]
    mean_years: Annotated[Positive, POSITIVE_AGE_YEARS]
    sd_years: Annotated[Rate, AGE_YEARS]
    min_years: Annotated[Rate, AGE_YEARS]

    @model_validator(mode="after")
    def _min_below_mean(self) -> OnsetAge:
        if self.min_years.value > self.mean_years.value:
            raise ModelError(
                "min_years", self.min_years.value, f"at most mean_years ({self.mean_years.value:g})"
            )
        return self


# ---------------------------------------------------------------- outcomes


class Outcome(_Strict):
    """An event that happens when the burden of ``sites`` reaches ``threshold_cells``."""

    label: str = Field(min_length=1)
    sites: list[str]
    threshold_cells: Annotated[Positive, THRESHOLD_CELLS]
    fatal: StrictBool

    @model_validator(mode="after")
    def _sites(self) -> Outcome:
        _check_site_list(self.sites, "sites")
        return self


class Cachexia(_Strict):
    """Death from the whole tumour burden: wasting, which kills many patients before any one
    organ fails.  As with symptoms, each patient's threshold on the total burden (every
    lesion, the primary included) is drawn once: ``10 ** N(log10 median, log10_spread)``."""

    label: str = Field(default="cancer cachexia (whole tumour burden)", min_length=1)
    median_threshold_cells: Annotated[Positive, THRESHOLD_CELLS]
    log10_spread: Annotated[Rate, LOG10_SPREAD]

    @model_validator(mode="after")
    def _at_least_one_cell(self) -> Cachexia:
        if self.median_threshold_cells.value < 1.0:
            raise ModelError("median_threshold_cells", self.median_threshold_cells.value,
                             "at least 1 cell")
        return self


class Outcomes(_Strict):
    """Organ failure per vital organ (fatal), pathological fracture (bone) and death from
    the whole burden (``cachexia``: a ``default`` rule and, where a cancer type differs, its
    own, keyed by the cancer type; none at all leaves only organ failure and the lethal
    burden of the disease process)."""

    organ_failure: dict[str, Outcome] = Field(min_length=1, max_length=MAX_ENTRIES)
    fracture: Outcome
    cachexia: dict[str, Cachexia] = Field(default_factory=dict)

    def cachexia_rule(self, cancer: str) -> Cachexia | None:
        """The cachexia rule of a cancer type: its own, else the default, else none."""
        return self.cachexia.get(cancer, self.cachexia.get(DEFAULT_STAGING))


# ---------------------------------------------------------------- staging


DEFAULT_STAGING = "default"
"""Key of the T cut-offs used by every cancer type without its own ``[staging.<cancer>]``."""

_T_CUTOFFS = ("t1_max_mm", "t2_max_mm", "t3_max_mm")


class TCutoffs(_Strict):
    """Largest primary diameter, in mm, still staged T1, T2 and T3 (above ``t3_max_mm``: T4).

    Real TNM defines T differently for each cancer type (size for breast, depth of invasion
    for colorectal, anatomical extent for many others).  The model knows only the primary's
    size and whether it has invaded, so size stands in, with cut-offs per cancer type chosen
    to give that type's T categories.  A per-cancer entry is complete (all three cut-offs),
    never merged over the default: each entry then reads as the whole rule for its cancer
    and is checked on its own.  The cut-offs must increase strictly, or a T category would
    be empty and the rule would not say what the file meant.
    """

    t1_max_mm: Annotated[Positive, DIAMETER_MM]
    t2_max_mm: Annotated[Positive, DIAMETER_MM]
    t3_max_mm: Annotated[Positive, DIAMETER_MM]

    @model_validator(mode="after")
    def _strictly_increasing(self) -> TCutoffs:
        for lower, upper in pairwise(_T_CUTOFFS):
            low, high = getattr(self, lower).value, getattr(self, upper).value
            if high <= low:
                raise ModelError(
                    upper, high, f"more than {lower} ({low:g} mm): T cut-offs increase strictly"
                )
        return self


StageGroup = Literal["I", "II", "III", "IV"]
T_ORDER = ("Tis", "T1", "T2", "T3", "T4")
"""The T categories in the order a row of :class:`StageGroups` lists their groups."""


class StageGroups(_Strict):
    """Stage group of every T and N category without distant metastasis (M1 is always IV).

    One row per N category, one group per T category in :data:`T_ORDER`: the whole table is
    written out, so every combination has a group and the file reads as the rule.  Real stage
    groups differ by cancer type (breast T2 N0 is stage II, colorectal T2 N0 stage I; renal
    T4 is stage IV without distant spread), which is why the table is data per type.
    """

    N0: list[StageGroup] = Field(min_length=5, max_length=5)
    N1: list[StageGroup] = Field(min_length=5, max_length=5)
    N2: list[StageGroup] = Field(min_length=5, max_length=5)
    source: str = Field(min_length=3)

    def group(self, t: str, n: str) -> StageGroup:
        row: list[StageGroup] = getattr(self, n)
        return row[T_ORDER.index(t)]


# ---------------------------------------------------------------- the whole base


class ClinicalKnowledge(_Strict):
    """The validated clinical knowledge base."""

    name: str = "default"
    description: str = ""
    symptoms: dict[str, Symptom] = Field(min_length=1, max_length=MAX_ENTRIES)
    primary_symptoms: dict[str, Annotated[dict[str, PrimarySymptom],
                                          Field(max_length=MAX_ENTRIES)]] = Field(
        default_factory=dict)
    modalities: dict[str, Modality] = Field(min_length=1, max_length=MAX_ENTRIES)
    biopsy: Biopsy
    workup: Workup
    screening: dict[str, ScreeningProgramme] = Field(default_factory=dict,
                                                     max_length=MAX_ENTRIES)
    onset_age: dict[str, OnsetAge] = Field(min_length=1)
    outcomes: Outcomes
    staging: dict[str, TCutoffs]
    stage_groups: dict[str, StageGroups] = Field(default_factory=dict)
    """Stage groups per cancer type (``default`` for the rest); none at all: the
    colorectal rule (:data:`metastasis.clinical.staging.DEFAULT_GROUPS`)."""
    unnoticed_primary_share: dict[str, Probability] = Field(default_factory=dict,
                                                            max_length=MAX_ENTRIES)
    """By cancer type, the share of patients who never notice their primary tumour (a
    melanoma on the back, or one that regressed): none of its own symptoms appears, and
    the cancer is found from its spread, as a cancer of unknown primary is.  A type not
    listed: every patient can notice the primary."""

    @model_validator(mode="before")
    @classmethod
    def _name_programmes(cls, raw: Any) -> Any:
        """Give every screening programme its key as name (the file need not repeat it)."""
        if isinstance(raw, dict) and isinstance(raw.get("screening"), dict):
            named = {}
            for key, spec in raw["screening"].items():
                named[key] = {"name": key, **spec} if isinstance(spec, dict) else spec
            raw = {**raw, "screening": named}
        return raw

    @model_validator(mode="after")
    def _references(self) -> ClinicalKnowledge:
        known = ", ".join(sorted(self.modalities))
        for key, programme in self.screening.items():
            if programme.name != key:
                raise ModelError(f"screening.{key}.name", programme.name, f"the key {key!r}")
            if programme.modality not in self.modalities:
                raise ModelError(f"screening.{key}.modality", programme.modality, known)
        for field in ("imaging", "neurological_imaging"):
            for modality in getattr(self.workup, field):
                if modality not in self.modalities:
                    raise ModelError(f"workup.{field}", modality, known)
        for cancer, scans in self.workup.staging.items():
            for index, scan in enumerate(scans):
                if scan.modality not in self.modalities:
                    raise ModelError(f"workup.staging.{cancer}.{index}.modality",
                                     scan.modality, known)
        if DEFAULT_STAGING not in self.staging:
            raise ModelError(
                "staging",
                sorted(self.staging),
                f"a [staging.{DEFAULT_STAGING}] entry: the T cut-offs of every cancer type "
                "without its own",
            )
        return self

    def modality(self, name: str) -> Modality:
        """Look a modality up, with an error that lists the known ones."""
        try:
            return self.modalities[name]
        except KeyError:
            raise ModelError("modality", name, ", ".join(sorted(self.modalities))) from None

    def onset(self, cancer: str) -> OnsetAge:
        """The onset-age distribution of a cancer type."""
        try:
            return self.onset_age[cancer]
        except KeyError:
            raise ModelError(
                "onset_age", cancer, f"a cancer type with an onset age: {sorted(self.onset_age)}"
            ) from None

    def groups(self, cancer: str) -> StageGroups | None:
        """The stage groups of a cancer type: its own, else the default, else None."""
        return self.stage_groups.get(cancer, self.stage_groups.get(DEFAULT_STAGING))

    def t_cutoffs(self, cancer: str) -> TCutoffs:
        """The T cut-offs of a cancer type: its own ``[staging.<cancer>]``, else the default."""
        return self.staging.get(cancer, self.staging[DEFAULT_STAGING])
