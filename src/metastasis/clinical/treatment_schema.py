"""Treatments as validated data: therapies, biomarkers, protocols and default plans by stage.

Effect sizes (a log-kill fraction, a response probability, a local-control probability) are
knowledge and live on a *therapy*, each a ``Sourced`` value with its citation or stated
assumption.  Schedules (when, how many cycles, how far apart) belong to a *protocol step*
that names the therapy, so one therapy can be used by many protocols and a user's protocol
file can reuse the packaged therapies.  Structural problems are caught by pydantic; checks
that need the whole knowledge base (a step naming an unknown therapy, two courses of one
kind overlapping, a protocol used for a cancer it was not declared for) are plain functions
here that raise :class:`~metastasis.errors.ModelError` naming the field, the value and what
is allowed, so that the CLI can print one clear line.
"""

from __future__ import annotations

import json
import math
import tomllib
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from metastasis.errors import ModelError
from metastasis.knowledge.files import errors_named
from metastasis.knowledge.loader import _first_error, read_raw
from metastasis.knowledge.ranges import (
    CYCLES,
    DIAMETER_MM,
    DOSE_GY,
    FRACTIONS,
    INTERVAL_DAYS,
    LESION_COUNT,
    LOG10_SPREAD,
    LOG_KILL_RATIO,
    MAX_STEPS,
    MEMORY_YEARS,
    RELATIVE_GROWTH,
    START_DAY,
)
from metastasis.knowledge.schema import Positive, Probability, Rate, Sourced

DEFAULT_TREATMENTS = "treatments.toml"
STAGE_GROUPS = ("I", "II", "III", "IV")
"""Stage groups of docs/clinical.md, the keys of a cancer's default plan."""

MAX_RESISTANCE_BITS = 62
"""The engine stores resistance as a signed 64-bit mask; one bit per therapy that selects
resistant clones, leaving the sign bit alone."""


class Modality(StrEnum):
    """The five kinds of treatment the guide describes (its 'drug classes' and modalities)."""

    SURGERY = "surgery"
    CHEMOTHERAPY = "chemotherapy"
    TARGETED = "targeted"
    IMMUNOTHERAPY = "immunotherapy"
    RADIATION = "radiation"


SELECTING_MODALITIES = (Modality.CHEMOTHERAPY, Modality.TARGETED)
"""Modalities whose therapies select resistant clones, each with its own resistance bit
(immunotherapy is taken as durable, surgery and radiotherapy act locally)."""


class Count(Sourced):
    """A whole number of at least zero (cycles, fractions, lesions)."""

    @field_validator("value")
    @classmethod
    def _whole(cls, v: float) -> float:
        if v < 0.0 or v != math.floor(v):
            raise ValueError(f"must be a whole number of at least 0, got {v!r}")
        return v

    @property
    def n(self) -> int:
        return int(self.value)


class Offset(Sourced):
    """A start day counted from the protocol's start; a step cannot begin before it."""

    @field_validator("value")
    @classmethod
    def _not_before_start(cls, v: float) -> float:
        if v < 0.0:
            raise ValueError(f"must be a day on or after the protocol start (>= 0), got {v!r}")
        return v


_FROZEN = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- knowledge
class Biomarker(BaseModel):
    """A property of the tumour that decides whether a drug can work (e.g. an EGFR mutation).

    ``prevalence`` is the share of patients with each cancer type whose tumour carries it;
    a cancer type not listed never carries it.
    """

    model_config = _FROZEN

    label: str
    prevalence: dict[str, Probability]


class ResponseCriteria(BaseModel):
    """How a course's effect is named: change in the sum of lesion diameters (RECIST)."""

    model_config = _FROZEN

    measurable_diameter_mm: Annotated[Positive, DIAMETER_MM]
    partial_response_shrinkage: Probability
    progression_growth: Annotated[Rate, RELATIVE_GROWTH]


class _Therapy(BaseModel):
    model_config = _FROZEN

    label: str
    description: str = ""


class SurgeryTherapy(_Therapy):
    """Resection, with the eligibility rules for removing metastases.

    Metastases are removed only when every found distant metastasis lies in one of
    ``metastasectomy_sites`` and there are at most ``max_metastases`` of them: surgery that
    leaves disease behind does not help (guide, 'Treating metastatic cancer').
    ``lymphadenectomy_sites``: lymph-node sites taken with the primary's specimen, every
    lesion in them removed whether found or not.  ``operative_mortality``: by cancer type,
    the share of patients who die of the operation within 30 days (the audits' postoperative
    mortality; a registry's net survival counts these deaths); none listed: no such deaths.
    """

    modality: Literal[Modality.SURGERY]
    metastasectomy_sites: list[str]
    max_metastases: Annotated[Count, LESION_COUNT]
    lymphadenectomy_sites: list[str] = []
    operative_mortality: dict[str, Probability] = {}


class ChemotherapyTherapy(_Therapy):
    """Cytotoxic chemotherapy: log-kill of sensitive cells, Goldie-Coldman resistance.

    Each cycle leaves ``surviving_fraction`` of the sensitive cells of every dividing lesion.
    At the first cycle a lesion of N cells already holds Poisson(``resistance_per_cell`` * N)
    resistant cells, which become a clone that later cycles spare.

    ``log_kill_sd``: tumours differ in how sensitive they are, so with a spread
    ``surviving_fraction`` is the median patient's and each patient's own fraction is
    min(1, ``surviving_fraction`` * 10**(sd * Z)), Z standard normal drawn once per patient
    (a log-kill per cycle of -log10 of it, normal with this sd, none below 0: a tumour the
    drug does not touch).  Absent or 0: every patient's tumour has the same fraction.

    ``avascular_log_kill_ratio`` (m): where given, the drug reaches the deposits that have no
    vessels of their own (establishing colonies and micrometastases) better than a tumour
    with vessels, where part of the cells sit far from a capillary: a cycle leaves f**m of
    such a deposit's cells (f the patient's fraction), and the drug-tolerant cells of
    ``resistance_per_cell`` are drawn only in growing (vascularised) lesions.  Absent: every
    dividing lesion keeps f and may hold tolerant cells (m = 1).
    """

    modality: Literal[Modality.CHEMOTHERAPY]
    surviving_fraction: Probability
    resistance_per_cell: Probability
    log_kill_sd: Annotated[Rate, LOG10_SPREAD] | None = None
    avascular_log_kill_ratio: Annotated[Positive, LOG_KILL_RATIO] | None = None

    def spread(self) -> float:
        """The between-patient sd of the log10 surviving fraction (0 when there is none)."""
        return 0.0 if self.log_kill_sd is None else self.log_kill_sd.value


class TargetedTherapy(_Therapy):
    """A drug aimed at one biomarker: no effect without it; acquired resistance with it.

    Patients with the biomarker respond with probability ``response[cancer]``; in responders
    every interval leaves ``surviving_fraction`` of sensitive cells, and at every interval a
    lesion of N sensitive cells gains Poisson(``resistance_per_cell`` * N) resistant cells.
    """

    modality: Literal[Modality.TARGETED]
    biomarker: str
    response: dict[str, Probability]
    surviving_fraction: Probability
    resistance_per_cell: Probability


class ImmunotherapyTherapy(_Therapy):
    """Immune checkpoint blockade: a responder probability and a durable effect.

    Only patients whose tumour carries ``biomarker`` (when one is named) can respond, with
    probability ``response[cancer]``; in responders every interval leaves
    ``surviving_fraction`` of the cells of every lesion, with no resistance selected.
    ``memory_years``: in responders the immune kill goes on, at the course's interval,
    for that long after the last dose (immune memory: the response outlasts the drug, and
    meets the cells that wake from dormancy later); none: it stops with the last dose.
    """

    modality: Literal[Modality.IMMUNOTHERAPY]
    biomarker: str | None = None
    response: dict[str, Probability]
    surviving_fraction: Probability
    memory_years: Annotated[Positive, MEMORY_YEARS] | None = None


class RadiationTherapy(_Therapy):
    """Radiotherapy of chosen found lesions: local control and, where given, pain relief.

    Each treated lesion is controlled with probability ``local_control`` (then
    ``controlled_surviving_fraction`` of its cells survive; 0 ablates it), otherwise
    ``uncontrolled_surviving_fraction`` survive.  ``pain_relief``: probability that the
    course relieves pain, drawn once per course.
    """

    modality: Literal[Modality.RADIATION]
    local_control: Probability
    controlled_surviving_fraction: Probability
    uncontrolled_surviving_fraction: Probability
    pain_relief: Probability | None = None
    max_lesions: Annotated[Count, LESION_COUNT]


Therapy = Annotated[
    SurgeryTherapy
    | ChemotherapyTherapy
    | TargetedTherapy
    | ImmunotherapyTherapy
    | RadiationTherapy,
    Field(discriminator="modality"),
]


# ---------------------------------------------------------------------------- protocols
class _Step(BaseModel):
    model_config = _FROZEN

    therapy: str
    start_day: Annotated[Offset, START_DAY]
    label: str = ""


class SurgeryStep(_Step):
    """An operation: the primary (with its regional nodes) and/or eligible metastases.

    ``curative_only``: operate only when every found metastasis can be removed too, as for
    colorectal liver metastases, and the disease did not progress on a drug course of the
    same protocol before it (a course whose RECIST evaluation was progressive disease:
    Adam et al., Ann Surg 2004;240:1052, recalled, found progression on chemotherapy a
    contraindication to resecting colorectal liver metastases); otherwise the step is
    skipped and the story says why.
    """

    modality: Literal[Modality.SURGERY]
    primary: StrictBool = False
    regional_nodes: StrictBool = False
    metastasectomy: StrictBool = False
    curative_only: StrictBool = False


class _CourseStep(_Step):
    cycles: Annotated[Count, CYCLES]
    interval_days: Annotated[Positive, INTERVAL_DAYS]

    def cycle_days(self, start: float) -> list[float]:
        """Days of every cycle when the protocol starts on day ``start``."""
        first = start + self.start_day.value
        return [first + k * self.interval_days.value for k in range(self.cycles.n)]

    def end_offset(self) -> float:
        """Offset of the day the course ends: one interval after its last cycle."""
        return self.start_day.value + self.cycles.n * self.interval_days.value


class ChemotherapyStep(_CourseStep):
    modality: Literal[Modality.CHEMOTHERAPY]


class TargetedStep(_CourseStep):
    modality: Literal[Modality.TARGETED]


class ImmunotherapyStep(_CourseStep):
    modality: Literal[Modality.IMMUNOTHERAPY]


class RadiationStep(_Step):
    """Radiotherapy to the found lesions in ``sites`` (largest first, up to the therapy's
    ``max_lesions``).  Dose and fractions describe the course for the story; the effect
    comes from the therapy's probabilities."""

    modality: Literal[Modality.RADIATION]
    sites: Annotated[list[str], Field(min_length=1)]
    dose_gy: Annotated[Positive, DOSE_GY]
    fractions: Annotated[Count, FRACTIONS]


Step = Annotated[
    SurgeryStep | ChemotherapyStep | TargetedStep | ImmunotherapyStep | RadiationStep,
    Field(discriminator="modality"),
]
CourseStep = ChemotherapyStep | TargetedStep | ImmunotherapyStep


class Protocol(BaseModel):
    """A named treatment plan: steps in order of their start day, for the declared cancers."""

    model_config = _FROZEN

    label: str
    description: str = ""
    cancers: Annotated[list[str], Field(min_length=1)]
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]


class SupportiveCare(BaseModel):
    """Who is given no anti-tumour treatment at all, by the registries of a cancer type.

    Registries report the survival of every patient of a stage, and many patients found
    with metastatic disease are too frail for, or decline, any anti-tumour treatment: a
    quarter in colorectal cancer, more than four in five in pancreatic.  Without them the
    model's stage IV survival is that of a trial's patients, not of a registry's.
    """

    model_config = _FROZEN

    metastatic_share: Probability
    """Share of patients diagnosed with distant metastases (M1) given best supportive care
    only: no surgery, drugs or radiotherapy aimed at the cancer."""
    stage_shares: dict[Literal["I", "II", "III", "IV"], Probability] = {}
    """By stage group without distant metastases (M0), the share given no curative or other
    anti-tumour treatment, where a registry says so (none listed: every M0 patient is
    treated).  One lot per patient decides every stage (see ``draw_traits``): with shares
    that grow with the stage, a patient left untreated at one stage would be at any later
    one, as frailty would have it."""


class TreatmentKnowledge(BaseModel):
    """The whole treatment knowledge base."""

    model_config = _FROZEN

    name: str = "default"
    description: str = ""
    response_criteria: ResponseCriteria
    biomarkers: dict[str, Biomarker]
    therapies: dict[str, Therapy]
    protocols: dict[str, Protocol] = {}
    plans: dict[str, dict[str, str]] = {}
    supportive_care: dict[str, SupportiveCare] = {}
    """By cancer type: who is given no anti-tumour treatment (none listed: everyone is
    treated by the plan)."""

    def supportive_care_share(self, cancer: str, stage_group: str | None = None) -> float:
        """Share of the cancer type's patients given supportive care only: of those found
        metastatic (M1) with no ``stage_group``, else of those of that stage group without
        distant metastases."""
        entry = self.supportive_care.get(cancer)
        if entry is None:
            return 0.0
        if stage_group is None:
            return entry.metastatic_share.value
        share = entry.stage_shares.get(stage_group)  # type: ignore[call-overload]
        return share.value if share is not None else 0.0

    def therapy(self, name: str) -> Any:
        """A therapy by name, with an error listing the known ones."""
        try:
            return self.therapies[name]
        except KeyError:
            raise ModelError("therapy", name, ", ".join(sorted(self.therapies))) from None

    def resistance_bit(self, therapy: str) -> int:
        """The resistance bit of a therapy that selects resistant clones (0 for the others).

        Bits follow the order of the therapies in the file, so they are stable for a given
        knowledge base; a clone resistant to one drug is not resistant to another.
        """
        selecting = [n for n, t in self.therapies.items() if t.modality in SELECTING_MODALITIES]
        return 1 << selecting.index(therapy) if therapy in selecting else 0


# ---------------------------------------------------------------------------- checks
def _step_field(field: str, index: int, name: str) -> str:
    return f"{field}.steps.{index}.{name}"


def check_protocol(
    treatments: TreatmentKnowledge,
    protocol: Protocol,
    *,
    field: str = "protocol",
    cancer: str | None = None,
) -> None:
    """Check a protocol against the knowledge base (and against the patient's cancer).

    Raises ModelError for: a step naming an unknown therapy or one of another modality; a
    course of no cycles; steps out of order; two courses of one modality overlapping; the
    primary removed twice; an operation that removes nothing; a drug without a response
    figure or biomarker prevalence for a declared cancer; a protocol used for a cancer it was
    not declared for.
    """
    if cancer is not None and cancer not in protocol.cancers:
        raise ModelError(f"{field}.cancers", cancer, "a protocol that declares this cancer "
                         f"type (this one declares {', '.join(map(repr, protocol.cancers))})")
    previous_start = 0.0
    course_end: dict[Modality, tuple[float, int]] = {}
    primary_step: int | None = None
    for i, step in enumerate(protocol.steps):
        therapy = treatments.therapies.get(step.therapy)
        same_kind = sorted(
            n for n, t in treatments.therapies.items() if t.modality == step.modality
        )
        if therapy is None or therapy.modality != step.modality:
            raise ModelError(
                _step_field(field, i, "therapy"),
                step.therapy,
                f"a {step.modality.value} therapy: {', '.join(same_kind) or 'none defined'}",
            )
        start = step.start_day.value
        if start < previous_start:
            raise ModelError(
                _step_field(field, i, "start_day"),
                start,
                f"a day on or after {previous_start:g} (steps are listed in order of start)",
            )
        previous_start = start
        if isinstance(step, ChemotherapyStep | TargetedStep | ImmunotherapyStep):
            if step.cycles.n < 1:
                raise ModelError(_step_field(field, i, "cycles"), step.cycles.value, "at least 1")
            running = course_end.get(step.modality)
            if running is not None and start < running[0]:
                raise ModelError(
                    _step_field(field, i, "start_day"),
                    start,
                    f"a day on or after {running[0]:g}, when the {step.modality.value} course "
                    f"of step {running[1]} ends (two {step.modality.value} courses must not "
                    "overlap)",
                )
            course_end[step.modality] = (step.end_offset(), i)
        if isinstance(step, SurgeryStep):
            if not (step.primary or step.regional_nodes or step.metastasectomy):
                raise ModelError(
                    _step_field(field, i, "primary"),
                    False,
                    "an operation that removes something: primary, regional_nodes or "
                    "metastasectomy set to true",
                )
            if step.primary:
                if primary_step is not None:
                    raise ModelError(
                        _step_field(field, i, "primary"),
                        True,
                        f"false: the primary is already removed by step {primary_step}",
                    )
                primary_step = i
        if isinstance(step, RadiationStep) and step.fractions.n < 1:
            raise ModelError(_step_field(field, i, "fractions"), step.fractions.value, "at least 1")
        if isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            _check_indication(treatments, therapy, step.therapy, protocol, field, i)


def _check_indication(
    treatments: TreatmentKnowledge,
    therapy: TargetedTherapy | ImmunotherapyTherapy,
    name: str,
    protocol: Protocol,
    field: str,
    index: int,
) -> None:
    """A drug used for a cancer needs a response figure and, if it has one, its biomarker."""
    for cancer in protocol.cancers:
        if cancer not in therapy.response:
            raise ModelError(
                f"{field}.cancers",
                cancer,
                f"cancers with a response figure for {name} (step {index}): "
                f"{', '.join(sorted(therapy.response)) or 'none'}",
            )
        if therapy.biomarker is not None:
            marker = treatments.biomarkers.get(therapy.biomarker)
            if marker is None or cancer not in marker.prevalence:
                raise ModelError(
                    f"therapies.{name}.biomarker",
                    therapy.biomarker,
                    f"a biomarker with a prevalence for {cancer}: "
                    + ", ".join(
                        sorted(
                            k for k, b in treatments.biomarkers.items() if cancer in b.prevalence
                        )
                    ),
                )


def check_treatments(treatments: TreatmentKnowledge) -> None:
    """Whole-knowledge checks: biomarkers named by drugs exist, protocols and plans agree."""
    selecting = [n for n, t in treatments.therapies.items() if t.modality in SELECTING_MODALITIES]
    if len(selecting) > MAX_RESISTANCE_BITS:
        raise ModelError(
            "therapies",
            f"{len(selecting)} chemotherapy and targeted therapies",
            f"at most {MAX_RESISTANCE_BITS} (one resistance bit each)",
        )
    for name, therapy in treatments.therapies.items():
        marker = getattr(therapy, "biomarker", None)
        if marker is not None and marker not in treatments.biomarkers:
            raise ModelError(
                f"therapies.{name}.biomarker", marker, ", ".join(sorted(treatments.biomarkers))
            )
    for name, protocol in treatments.protocols.items():
        check_protocol(treatments, protocol, field=f"protocols.{name}")
    for name, therapy in treatments.therapies.items():
        for cancer in getattr(therapy, "operative_mortality", {}):
            if cancer not in treatments.plans:
                raise ModelError(f"therapies.{name}.operative_mortality", cancer,
                                 "a cancer type with a plan: "
                                 + ", ".join(sorted(treatments.plans)))
    for cancer in treatments.supportive_care:
        if cancer not in treatments.plans:
            raise ModelError("supportive_care", cancer,
                             "a cancer type with a plan: " + ", ".join(sorted(treatments.plans)))
    for cancer, plan in treatments.plans.items():
        for stage, protocol_name in plan.items():
            field = f"plans.{cancer}.{stage}"
            if stage not in STAGE_GROUPS:
                raise ModelError(f"plans.{cancer}", stage, ", ".join(STAGE_GROUPS))
            planned = treatments.protocols.get(protocol_name)
            if planned is None:
                raise ModelError(field, protocol_name, ", ".join(sorted(treatments.protocols)))
            if cancer not in planned.cancers:
                raise ModelError(
                    field,
                    protocol_name,
                    f"a protocol declared for {cancer} (this one is for "
                    f"{', '.join(planned.cancers)})",
                )


# ---------------------------------------------------------------------------- loading
_MODALITY_TAGS = frozenset(m.value for m in Modality)


def _file_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The location of an error as the user wrote it in the file.

    Pydantic puts the tag of the discriminated union that chose a step's class into the
    location (``protocols.x.steps.1.chemotherapy.cycles``), but the file has no such key
    (``protocols.x.steps.1.cycles``), so the tag is dropped there, and only there: the step
    union sits exactly at ``protocols.<name>.steps.<index>``; other locations are kept.
    """
    if (
        len(loc) > 4
        and loc[0] == "protocols"
        and loc[2] == "steps"
        and isinstance(loc[3], int)
        and loc[4] in _MODALITY_TAGS
    ):
        return loc[:4] + loc[5:]
    return loc


def _validation_error(exc: ValidationError) -> ModelError:
    """One ModelError naming the field by its path in the file.

    An unknown or missing modality names the modality field itself; a protocol step's field
    is named without pydantic's union tag (see :func:`_file_loc`).
    """
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = ".".join(str(part) for part in _file_loc(loc))
    if err["type"] == "union_tag_invalid":
        allowed = ", ".join(m.value for m in Modality)
        return ModelError(f"{where}.modality", err["ctx"]["tag"], allowed)
    if err["type"] == "union_tag_not_found":
        allowed = ", ".join(m.value for m in Modality)
        return ModelError(f"{where}.modality", None, f"one of {allowed}")
    error = _first_error(exc)
    if error.field == ".".join(str(part) for part in loc):  # not a field a message named
        return ModelError(where, error.value, error.allowed)
    return error


def treatments_from_dict(raw: dict[str, Any]) -> TreatmentKnowledge:
    """Validate a treatment knowledge base given as plain data."""
    if not isinstance(raw, dict):
        raise ModelError("treatments", type(raw).__name__, "a table (mapping) at the top level")
    try:
        treatments = TreatmentKnowledge.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    check_treatments(treatments)
    return treatments


def load_treatments(path: str | Path | None = None) -> TreatmentKnowledge:
    """Load the packaged treatment knowledge base, or a user's modified copy from ``path``."""
    if path is None:
        text = resources.files("metastasis.knowledge.data").joinpath(DEFAULT_TREATMENTS)
        return treatments_from_dict(tomllib.loads(text.read_text(encoding="utf-8")))
    with errors_named(path):
        return treatments_from_dict(read_raw(path))


class ProtocolFile(BaseModel):
    """A user's protocol file: ``[protocols.<name>]`` tables, as in the knowledge base."""

    model_config = _FROZEN

    protocols: Annotated[dict[str, Protocol], Field(min_length=1)]


def protocols_from_dict(raw: dict[str, Any], treatments: TreatmentKnowledge) -> dict[str, Protocol]:
    """Validate protocols given as plain data against the treatment knowledge base."""
    if not isinstance(raw, dict):
        raise ModelError("protocols", type(raw).__name__, "a table (mapping) at the top level")
    try:
        parsed = ProtocolFile.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    for name, protocol in parsed.protocols.items():
        check_protocol(treatments, protocol, field=f"protocols.{name}")
    return dict(parsed.protocols)


def load_protocols(
    path: str | Path, treatments: TreatmentKnowledge | None = None
) -> dict[str, Protocol]:
    """Read a user's protocol file (TOML or JSON), checked against ``treatments``."""
    treatments = treatments or load_treatments()
    with errors_named(path):
        return protocols_from_dict(read_raw(path), treatments)


def protocols_to_dict(protocols: dict[str, Protocol]) -> dict[str, Any]:
    """Plain data of protocols, as a protocol file holds them."""
    return {"protocols": {n: p.model_dump(mode="json") for n, p in protocols.items()}}


def write_protocols(protocols: dict[str, Protocol], path: str | Path) -> Path:
    """Write protocols to a TOML file (JSON if the name ends in .json) that loads back."""
    path = Path(path)
    data = protocols_to_dict(protocols)
    text = json.dumps(data, indent=2) if path.suffix.lower() == ".json" else tomli_w.dumps(data)
    path.write_text(text, encoding="utf-8")
    return path
