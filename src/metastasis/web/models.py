"""Response types of the JSON API: they make the OpenAPI schema say what comes back.

The results themselves are built by the public result types
(:meth:`PatientResult.to_dict`, :meth:`CohortResult.summary`); these models describe them
for clients and check them on the way out.  Top-level models allow extra keys so that a
richer result (the clinical layer's) passes through before its schema is written here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import metastasis


class WithDisclaimer(BaseModel):
    model_config = ConfigDict(extra="allow")

    disclaimer: str = Field(
        default=metastasis.DISCLAIMER,
        description="Carried by every response: educational and research software.",
    )


class ErrorDetail(BaseModel):
    status: int
    field: str | None = Field(description="The request field at fault, if one is.")
    value: Any = Field(description="The value received (NaN and infinities as text).")
    allowed: str | None = Field(description="What the field accepts.")


class ErrorResponse(WithDisclaimer):
    """Every 4xx and 503 of the API: one sentence in ``detail``, its parts in ``error``."""

    detail: str = Field(description="'<field>: got <value>; allowed: <what is allowed>'")
    error: ErrorDetail


class CancerInfo(BaseModel):
    name: str
    label: str
    primary_site: str
    primary_label: str


class CancersResponse(WithDisclaimer):
    cancers: list[CancerInfo]


class SiteInfo(BaseModel):
    name: str
    label: str
    kind: str


class SitesResponse(WithDisclaimer):
    sites: list[SiteInfo]


class LimitsResponse(WithDisclaimer):
    limits: dict[str, float | int]


class Lesion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    site: str
    parent: int = Field(description="Row of the lesion that shed the founding cell; -1 for "
                                    "the primary.")
    route: str | None = Field(description="blood, lymph or cavity; null for the primary.")
    arrival: float | None = Field(description="Day the founding cell left the vessel.")
    awakening: float | None
    micrometastasis: float | None
    outgrowth: float | None
    size_at_end: float = Field(description="Cells at the end of the natural history.")


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    time: float = Field(description="Days since the first cancer cell.")
    step: int = Field(ge=1, le=6, description="Step of the cascade (1 to 6).")
    step_name: str
    kind: str
    site: str
    lesion: int
    parent: int
    route: str
    counts: dict[str, int]
    description: str = Field(description="The event in words.")
    guide_url: str | None = Field(description="The guide page explaining this step.")


class Accounting(BaseModel):
    totals: dict[str, int] = Field(description="Where every shed cell went, whole body.")
    by_site: dict[str, dict[str, int]]


class ClinicalEventOut(BaseModel):
    day: float = Field(description="Days since the first cancer cell.")
    years: float | None
    kind: str = Field(description="symptom, screening, fracture or death.")
    label: str
    detail: str = Field(description="For a screening round: what it found.")


class StageOut(BaseModel):
    t: str
    n: str
    m: str
    tnm: str = Field(description="The categories in the usual order, e.g. 'T2 N1 M0'.")
    group: str = Field(description="Stage group I to IV.")
    summary: str = Field(description="localized, regional or distant.")


class FindingOut(BaseModel):
    lesion: int = Field(description="Id of the lesion found (0: the primary).")
    site: str
    site_label: str
    diameter_mm: float
    modality: str
    day: float


class DiagnosisOut(BaseModel):
    """What the clinic knew on the day of diagnosis, next to the true state."""

    day: float
    years: float | None
    age_years: float
    pathway: str = Field(description="symptoms, screening or emergency.")
    pathway_words: str
    trigger: str = Field(description="The symptom or screening test that led to it.")
    name: str = Field(description="The diagnosis, named after the primary.")
    stage: StageOut
    biopsies: int
    confirmed: bool = Field(description="Whether a biopsy confirmed the cancer type.")
    distant_sites_found: list[str]
    metastases_present: int = Field(description="Distant deposits really there (true state).")
    metastases_found: int = Field(description="Distant deposits the scans found.")
    metastases_hidden: int = Field(description="present - found: undetected, e.g. "
                                               "micrometastases.")
    present_by_site: list[str] = Field(
        description="One sentence per organ with distant deposits that day, the most first: "
                    "how many in each state, and how many the scans found (they add up to "
                    "metastases_present).")
    nodes_by_pathology: bool = Field(
        description="Whether N counts the nodes a pathologist examined (else imaging's).")
    findings: list[FindingOut]


class TreatmentOut(BaseModel):
    day: float
    years: float | None
    modality: str
    therapy: str
    description: str
    outcome: str
    given: bool = Field(description="False for a step planned after the patient died.")


class OutcomeOut(BaseModel):
    died: bool
    death_day: float | None
    cause_of_death: str | None
    censored: bool = Field(description="Alive at the horizon.")
    horizon_days: float
    survival_from_diagnosis_days: float | None
    text: str


class ClinicalCourse(BaseModel):
    """A patient's clinical course (``clinical=true``): symptoms to outcome."""

    arm: str
    screening: bool
    onset_age_years: float
    summary: str = Field(description="The course in one sentence.")
    events: list[ClinicalEventOut]
    diagnosis: DiagnosisOut | None = Field(description="null: never diagnosed.")
    protocol: str | None = Field(description="The treatment plan followed, if diagnosed.")
    treatment: list[TreatmentOut]
    outcome: OutcomeOut


class PatientResponse(WithDisclaimer):
    """One virtual patient: the untreated natural history (``PatientResult.to_dict()``), or
    with ``clinical=true`` the true state under treatment plus the clinical course."""

    patient_index: int
    root_seed: int
    seed_drawn: bool = Field(description="True when no seed was given and one was drawn.")
    cancer: str
    years: float
    horizon_days: float
    end_time: float
    end_reason: str
    motility_time: float | None
    breach_time: float | None
    headline: str
    lesions: list[Lesion] = Field(description="One page of the lesion rows, from lesions_from.")
    lesions_total: int = Field(description="Lesion rows in all.")
    lesions_from: int = Field(description="First row of this page.")
    accounting: Accounting
    events: list[Event] = Field(description="One page of the events, from events_from.")
    events_total: int = Field(description="Events in all.")
    events_from: int = Field(description="First event of this page.")
    site_labels: dict[str, str]
    guide_urls: dict[int, str] = Field(description="Guide page of each step of the cascade.")
    clinical: ClinicalCourse | None = Field(
        default=None, description="Symptoms, screening, diagnosis, stage, treatment and "
                                  "outcome with clinical=true; null for the natural history.")


class LesionAtDay(BaseModel):
    id: int
    site: str
    cells: float
    state: str = Field(description="primary, dormant, colony, micrometastasis or growing")


class SiteAtDay(BaseModel):
    site: str
    label: str
    growing: int
    micrometastases: int
    colonies: int
    dormant: int
    cells: float


class SizesResponse(WithDisclaimer):
    """Sizes and states of every lesion founded by ``day``: one frame of the body map."""

    cancer: str
    root_seed: int
    patient_index: int
    years: float
    day: float
    end_time: float
    lesions: list[LesionAtDay]
    sites: list[SiteAtDay]


class SurvivalCurve(BaseModel):
    patients: int
    deaths: int
    median_years: float | None
    five_year_survival: float | None
    years: list[float] = Field(description="Kaplan-Meier step times, years from diagnosis.")
    survival: list[float]
    ci_low: list[float] = Field(description="Lower 95 % band.")
    ci_high: list[float]


class RegistryRow(BaseModel):
    """One registry survival figure beside the cohort's."""

    label: str
    unit: str = Field(description="share (a fraction) or months.")
    model: float | None = Field(description="This cohort's figure (null: no data, or a "
                                            "median not reached).")
    published: float
    verdict: str = Field(description="meets, misses or no data.")
    note: str
    patients: int


class RegistryComparison(BaseModel):
    """The cohort's survival beside the registries' figures (calibration.toml), or why not:
    comparable only for standard care without screening."""

    compared: bool
    rows: list[RegistryRow]
    sentence: str


class CohortClinical(BaseModel):
    """A cohort's clinical courses (``clinical=true``): the same patients, diagnosed and
    treated."""

    arm: str
    screening: bool
    patients: int
    diagnosed: int
    stage_group: dict[str, int] = Field(description="Diagnosed patients by stage group.")
    summary_stage: dict[str, int] = Field(description="localized, regional, distant.")
    stage_shares: dict[str, float] = Field(description="Share of the diagnosed by group.")
    metastases_at_diagnosis: dict[str, int]
    survival_by_stage: dict[str, SurvivalCurve] = Field(
        description="Kaplan-Meier from diagnosis (metastasis.results.statistics), by summary "
                    "stage.")
    deaths: int
    causes_of_death: dict[str, int]
    registry: RegistryComparison


class CohortResponse(WithDisclaimer):
    """A cohort's summary (``CohortResult.summary()``) and the data behind its charts."""

    cancer: str
    label: str
    provenance: dict[str, Any]
    summary: dict[str, Any]
    first_distant_days: list[float] = Field(
        description="Day of the first distant metastasis of each patient who had one, sorted."
    )
    cumulative_incidence: dict[str, list[float]] = Field(
        description="Step curve: share of all patients with a distant metastasis by each day."
    )
    clinical: CohortClinical | None = Field(
        default=None, description="Stage, survival and causes of death with clinical=true.")
    elapsed_seconds: float


class TocEntry(BaseModel):
    number: int
    slug: str
    title: str
    summary: str
    step: int | None
    url: str


class GuideResponse(WithDisclaimer):
    sections: list[TocEntry]


class GuidePageResponse(WithDisclaimer):
    slug: str
    number: int
    title: str
    step: int | None
    url: str
    markdown: str = Field(description="The page with the model's figures filled in.")
    html: str


class GlossaryEntry(BaseModel):
    term: str
    anchor: str
    definition: str
    url: str


class GlossaryResponse(WithDisclaimer):
    terms: list[GlossaryEntry]


class SearchHit(BaseModel):
    slug: str
    number: int
    title: str
    heading: str
    anchor: str
    url: str
    snippet: str
    segments: list[tuple[str, bool]] = Field(description="(text, matched) pieces of the "
                                                         "snippet, for highlighting.")
    score: float = Field(description="BM25 as SQLite reports it: lower is better.")


class SearchResponse(WithDisclaimer):
    query: str
    hits: list[SearchHit]
