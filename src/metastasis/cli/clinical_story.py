"""One virtual patient's whole clinical story, in plain language and as data.

The clinical course (:func:`metastasis.clinical.course.simulate_course`) has decided
everything: the hidden disease, the symptoms, the scans, the diagnosis, the treatment and
the outcome.  This module only *words* a :class:`~metastasis.clinical.course.ClinicalResult`
so that a reader can follow it in time order and see, at every turn, the difference between
what was really there (the true state) and what the clinic found (the observed state).  The
natural-history part reuses :mod:`metastasis.cli.narrative`, so a cell's journey reads the
same in the untreated story and in the whole one.

Like the narrative, it returns plain strings and plain data; the command decides how to style
them, and the tests read them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from metastasis.cli import narrative
from metastasis.clinical import words
from metastasis.clinical.course import (
    DAYS_PER_YEAR,
    EMERGENCY,
    REPEAT_BIOPSY_DAYS,
    SCREENING,
    SUPPORTIVE_CARE,
    SUPPORTIVE_CARE_MEANING,
    SYMPTOMS,
    ClinicalResult,
)
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment import TreatmentEvent
from metastasis.model.resolve import ResolvedModel
from metastasis.results import numbers
from metastasis.results.patient import STEPS, PatientResult
from metastasis.results.story import lesion_events
from metastasis.results.words import EventWords

CLINIC = "clinic"
"""Tag of a timeline line written by the clinical layer rather than the disease."""

CYCLE = re.compile(r"^(?P<drug>.*?), cycle (?P<k>\d+) of (?P<n>\d+): (?P<detail>.*)$")
"""How the treatment layer describes one cycle of a course: collapsed in the short story."""

MEMORY = re.compile(r"^(?P<drug>.*?), immune memory, interval (?P<k>\d+) of (?P<n>\d+) "
                    r"after the last dose: (?P<detail>.*)$")
"""How it describes an interval of an immunotherapy's immune memory, after the last dose:
collapsed in the short story like the cycles (a responder has dozens)."""

_RUNS = ((CYCLE, "cycles {first} to {last} of {n}"),
         (MEMORY, "immune memory, intervals {first} to {last} of {n} after the last dose"))
"""The descriptions the short story tells a run of as one line, with the run's wording."""

COLLAPSE_ROUNDS = 3
"""Runs of at least this many screening rounds that found nothing are told as one line."""

DEATH_DETAIL = {
    "tumour burden": "the total tumour burden reached the {lethal} cells the model treats as "
                     "lethal",
}



@dataclass(frozen=True)
class Line:
    """One line of the merged timeline: the disease's steps and the clinic's acts."""

    time: float
    tag: str
    text: str
    source: str

    def render(self) -> str:
        return f"{numbers.day(self.time)} ({numbers.years(self.time)}) · {self.tag}: {self.text}"


@dataclass
class ClinicalStory:
    """The whole story of one patient, as plain text pieces in reading order."""

    title: str
    header: list[str]
    in_short: list[str]
    """Who was found with what, when; what was done; how it ended: read before the
    timeline, which can run to hundreds of lines."""
    timeline: list[Line]
    hidden_events: int
    diagnosis: list[str]
    true_vs_found: list[str]
    treatment: list[str]
    outcome: list[str]
    spread: list[str]
    accounting: list[str]
    site_rows: list[narrative.SiteRow] = field(default_factory=list)

    def sections(self) -> list[tuple[str, list[str]]]:
        """The prose sections after the timeline, as (heading, lines)."""
        return [
            ("Diagnosis", self.diagnosis),
            ("True state at diagnosis vs what was found", self.true_vs_found),
            ("Treatment", self.treatment),
            ("Outcome", self.outcome),
            ("What was really there at the end (true state)", self.spread),
        ]

    def lines(self) -> list[str]:
        """The story as plain lines (what tests, files and a plain terminal read)."""
        out = [self.title, *self.header, "", "In short", *self.in_short, "", "Timeline"]
        out += [line.render() for line in self.timeline]
        if self.hidden_events:
            out.append(narrative.hidden_note(self.hidden_events))
        for heading, body in self.sections():
            out += ["", heading, *body]
        out += ["", "Cell accounting", *self.accounting]
        if self.site_rows:
            out.append("")
            out.append(_table_row(narrative.SITE_HEADERS))
            out += [_table_row(row.cells()) for row in self.site_rows]
        return out


# ---------------------------------------------------------------- helpers


def _table_row(cells: Sequence[str]) -> str:
    """A fixed-width row of the organ table, laid out as the untreated story lays it out."""
    first, *rest = cells
    widths = narrative.SITE_WIDTHS
    return "  ".join([f"{first:<{widths[0]}}",
                      *(f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True))])


_when = words.when
_duration = words.duration


def _labels(model: ResolvedModel) -> dict[str, str]:
    return dict(zip(model.site_names, model.site_labels, strict=True))


def _site(model: ResolvedModel, site: str) -> str:
    return _labels(model).get(site, site.replace("_", " "))


def _primary_site(model: ResolvedModel) -> str:
    return model.site_names[model.primary_site]


def _alive_after(result: ClinicalResult, day: float) -> bool:
    return result.death_day is None or day <= result.death_day


def scan_day(result: ClinicalResult) -> float | None:
    """The day of the work-up scans: each non-diagnostic biopsy added a week after them."""
    dx = result.diagnosis
    if dx is None:
        return None
    if dx.findings:
        return float(dx.findings[0].day)
    repeats = dx.biopsies - 1 if dx.confirmed else dx.biopsies
    return float(dx.day - REPEAT_BIOPSY_DAYS * repeats)


def workup_modalities(result: ClinicalResult, clinical: ClinicalKnowledge) -> list[str]:
    """The modalities of the work-up: the standard imaging, the cancer type's staging scans,
    and the neurological imaging when a neurological symptom was present by the scan day (the
    rule the course follows)."""
    dx = result.diagnosis
    if dx is None:
        return []
    day = scan_day(result)
    neurological = {s.label for s in clinical.symptoms.values() if s.neurological}
    for by_cancer in clinical.primary_symptoms.values():
        neurological |= {s.label for s in by_cancer.values() if s.neurological}
    had = any(e.kind == "symptom" and e.label in neurological and day is not None
              and e.day <= day for e in result.events)
    modalities = list(dict.fromkeys(
        modality for modality, _ in clinical.workup.scans(result.patient.cancer, had)))
    for finding in dx.findings:  # whatever the course did, a finding's modality was used
        if finding.modality not in modalities:
            modalities.append(finding.modality)
    return modalities


def _modality_label(clinical: ClinicalKnowledge, name: str) -> str:
    spec = clinical.modalities.get(name)
    return spec.label if spec is not None else name


# ---------------------------------------------------------------- the disease, segment by segment

def disease_lines(patient: PatientResult, model: ResolvedModel, *,
                  all_events: bool) -> tuple[list[Line], int]:
    """The disease's part of the timeline in the untreated story's words, and how many events
    the milestone filter left out."""
    told = EventWords(patient, model)
    events = lesion_events(patient)
    keep = [True] * len(events) if all_events else narrative._milestones(events)
    lines = []
    for event, kept in zip(events, keep, strict=True):
        if not kept:
            continue
        text = told.sentence(event)
        lines.append(Line(event.time, f"step {event.step}, {STEPS[event.step]}", text,
                          "disease"))
    return lines, len(events) - len(lines)


# ---------------------------------------------------------------- timeline


def _clinic_line(day: float, kind: str, text: str) -> Line:
    return Line(day, f"{CLINIC}, {kind}", text, CLINIC)


def _screening_lines(result: ClinicalResult, all_events: bool) -> list[Line]:
    rounds = [e for e in result.events if e.kind == "screening"]
    lines: list[Line] = []
    run: list[Any] = []

    def flush() -> None:
        if len(run) >= COLLAPSE_ROUNDS and not all_events:
            lines.append(_clinic_line(
                run[0].day, "screening",
                f"{len(run)} rounds of {run[0].label}, the last on {_when(run[-1].day)}: "
                "nothing found each time."))
        else:
            lines.extend(_clinic_line(e.day, "screening", f"{e.label}: {e.detail}.") for e in run)
        run.clear()

    for event in rounds:
        if event.detail == "nothing found" and (not run or run[-1].label == event.label):
            run.append(event)
            continue
        flush()
        if event.detail == "nothing found":
            run.append(event)
        else:
            lines.append(_clinic_line(
                event.day, "screening",
                f"{event.label}: {event.detail}; the patient is referred for a work-up."))
    flush()
    return lines


def _symptom_lines(result: ClinicalResult) -> list[Line]:
    dx = result.diagnosis
    lines = []
    sent = False
    for event in result.events:
        if event.kind != "symptom":
            continue
        text = f"new symptom: {event.label}"
        if (dx is not None and dx.pathway in (SYMPTOMS, EMERGENCY) and not sent
                and event.label == dx.trigger and event.day <= dx.day):
            text += (" (it sends the patient to a doctor; a work-up follows)"
                     if dx.pathway == SYMPTOMS else
                     " (it sends the patient to a doctor; before the work-up the patient"
                     " is admitted as an emergency)")
            sent = True
        elif dx is not None and event.day > dx.day:
            text += " (after diagnosis)"
        lines.append(_clinic_line(event.day, "symptom", text + "."))
    return lines


def _finding_text(model: ResolvedModel, finding: Any) -> str:
    where = _site(model, finding.site)
    if finding.lesion == 0:
        return f"the primary tumour in the {where}, {finding.diameter_mm:.0f} mm"
    return f"a {finding.diameter_mm:.1f} mm lesion in the {where}"


def _workup_lines(result: ClinicalResult, model: ResolvedModel,
                  clinical: ClinicalKnowledge) -> list[Line]:
    dx = result.diagnosis
    if dx is None:
        return []
    day = scan_day(result)
    assert day is not None
    lines = []
    for modality in workup_modalities(result, clinical):
        found = [f for f in dx.findings if f.modality == modality]
        label = _modality_label(clinical, modality)
        if found:
            shown = "; ".join(_finding_text(model, f) for f in found)
            text = f"{label} shows {len(found)} lesion{'s' if len(found) > 1 else ''}: {shown}."
        else:
            text = f"{label} shows nothing."
        lines.append(_clinic_line(day, "work-up", text))
    for k in range(dx.biopsies):
        diagnostic = dx.confirmed and k == dx.biopsies - 1
        when = day + REPEAT_BIOPSY_DAYS * k
        text = (f"biopsy {k + 1}: diagnostic; pathology finds {model.naming} cells"
                if diagnostic else f"biopsy {k + 1}: not diagnostic (too little tumour tissue)")
        lines.append(_clinic_line(when, "biopsy", text + "."))
    stage = dx.stage
    how = f"{words.pathway_phrase(dx.pathway)} ({dx.trigger})"
    name = _name_with_stage(dx)
    lines.append(_clinic_line(dx.day, "diagnosis",
                              f"diagnosed after {how}: {name}; {stage.tnm}."))
    return lines


def _treatment_text(event: TreatmentEvent) -> str:
    return f"{event.description} → {event.outcome}."


def treatment_lines(result: ClinicalResult, all_events: bool = False) -> list[Line]:
    """Every treatment event while the patient lives; in the short story the cycles of a
    course that went alike are told as one line (first cycle and evaluation in full)."""
    events = [e for e in result.treatment if _alive_after(result, e.day)]
    lines: list[Line] = []
    i = 0
    while i < len(events):
        event = events[i]
        tag = f"treatment, {event.modality}"
        pattern, wording = next(((p, w) for p, w in _RUNS if p.match(event.description)),
                                (CYCLE, ""))
        match = pattern.match(event.description)
        j = i + 1
        if match and not all_events and int(match.group("k")) > 1:
            while j < len(events):
                nxt = events[j]
                later = pattern.match(nxt.description)
                if not (later and nxt.step == event.step and nxt.outcome == event.outcome):
                    break
                j += 1
        if j - i > 1 and match:
            last = events[j - 1]
            last_match = pattern.match(last.description)
            assert last_match is not None
            run = wording.format(first=match.group("k"), last=last_match.group("k"),
                                 n=last_match.group("n"))
            text = (f"{match.group('drug')}, {run} (to {numbers.day(last.day).lower()}); at "
                    f"the last: {last_match.group('detail')} → {event.outcome}.")
            lines.append(Line(event.day, tag, text, "treatment"))
        else:
            lines.append(Line(event.day, tag, _treatment_text(event), "treatment"))
        i = j
    return lines


def _ending_lines(result: ClinicalResult, model: ResolvedModel,
                  clinical: ClinicalKnowledge) -> list[Line]:
    lines = []
    for event in result.events:
        if event.kind == "fracture":
            lines.append(_clinic_line(
                event.day, "fracture",
                f"{event.label}: the burden in the bones crossed the fracture threshold "
                f"({numbers.count(clinical.outcomes.fracture.threshold_cells.value)} cells)."))
        elif event.kind == "death":
            lines.append(_clinic_line(event.day, "death",
                                      f"death from {cause_words(event.label, model, clinical)}."))
    if result.death_day is None:
        followed = result.years_after_diagnosis is not None and result.diagnosis is not None
        lines.append(_clinic_line(
            result.horizon_days, "horizon",
            f"alive {result.years_after_diagnosis:g} years after diagnosis, at the end of "
            "follow-up (censored)." if followed
            else "alive at the end of the simulated horizon (censored)."))
    return lines


def cause_words(cause: str, model: ResolvedModel, clinical: ClinicalKnowledge) -> str:
    """A cause of death with why: which organ's burden crossed which threshold."""
    for outcome in clinical.outcomes.organ_failure.values():
        if outcome.label == cause:
            where = ", ".join(_site(model, s) for s in outcome.sites)
            return (f"{cause}: the tumour burden in the {where} reached the failure threshold "
                    f"of {numbers.count(outcome.threshold_cells.value)} cells")
    if cause in DEATH_DETAIL:
        return f"{cause}: " + DEATH_DETAIL[cause].format(
            lethal=numbers.count(model.lethal_burden_cells))
    return cause


# ---------------------------------------------------------------- prose sections


def _header(result: ClinicalResult, model: ResolvedModel, years: float, care: str | None,
            screening_note: str | None) -> list[str]:
    patient = result.patient
    traits = result.traits
    carried = ", ".join(sorted(traits.mutations)) or "none of the actionable markers"
    span = (f"the whole clinical course over {years:g} years from the first cancer cell"
            if result.years_after_diagnosis is None
            else f"the whole clinical course: a diagnosis within {years:g} years of the first "
                 f"cancer cell, then {result.years_after_diagnosis:g} years of follow-up")
    lines = [
        f"Cancer type: {model.label} (primary in the {_site(model, _primary_site(model))}); "
        f"{span}.",
        f"Root seed {patient.root_seed}, patient index {patient.patient_index} (rerun with "
        f"--seed {patient.root_seed} --patient {patient.patient_index}).",
        f"Care: {care or result.arm}.",
        f"The first cancer cell appears at age {result.onset_age_years:.1f}. "
        f"Tumour markers carried: {carried}.",
    ]
    if screening_note:
        lines.append(screening_note)
    return lines


def _diagnosis_section(result: ClinicalResult, model: ResolvedModel,
                       clinical: ClinicalKnowledge) -> list[str]:
    dx = result.diagnosis
    if dx is None:
        if result.death_day is not None:
            return [f"Never diagnosed: the patient died on {_when(result.death_day)} before any "
                    "symptom or screening round led to a diagnosis."]
        return ["Never diagnosed within the horizon: no symptom sent the patient to a doctor"
                " and no screening round found the cancer."]
    stage = dx.stage
    pathway = ("a screening round" if dx.pathway == SCREENING
               else f"{words.pathway_phrase(dx.pathway)} (first: {dx.trigger})")
    day = scan_day(result)
    modalities = ", ".join(_modality_label(clinical, m)
                           for m in workup_modalities(result, clinical))
    biopsy = (f"{dx.biopsies} biopsy attempt{'s' if dx.biopsies > 1 else ''}, the last "
              f"diagnostic: pathology names {model.naming}"
              if dx.confirmed else
              f"{dx.biopsies} biopsies, none diagnostic: treated on imaging alone")
    lines = [
        f"Pathway: {pathway}; work-up scans on {_when(day or dx.day)}: {modalities}.",
        f"Biopsy: {biopsy}.",
        f"Diagnosed on {_when(dx.day)} at age {dx.age_years:.1f}: {dx.name}.",
        f"Stage: {stage.tnm} (T: primary size and invasion; N: involved regional lymph nodes; "
        f"M: distant metastasis found) = stage group {stage.group}, summary stage "
        f"{stage.summary}.",
    ]
    if dx.distant_sites_found:
        sites = ", ".join(_site(model, s) for s in dx.distant_sites_found)
        lines.append(f"Distant metastases found in: {sites}.")
    return lines


def _true_vs_found(result: ClinicalResult, model: ResolvedModel) -> list[str]:
    dx = result.diagnosis
    if dx is None:
        return ["No diagnosis, so nothing was found; the true state is told at the end."]
    lines = [
        f"Distant metastases (any size, from a settled cell on) present on the day of "
        f"diagnosis: {dx.metastases_present:,}; found by imaging: {dx.metastases_found:,}; "
        f"hidden: {dx.metastases_hidden:,}."
    ]
    lines += [f"  {line}" for line in words.present_by_site(result, _labels(model))]
    nodes = len({f.lesion for f in dx.findings if f.site == "regional_lymph_nodes"})
    source = ("pathology of the resected nodes" if dx.nodes_by_pathology
              else "imaging (no operation on the nodes)")
    lines.append(f"Regional lymph-node lesions seen on imaging: {nodes:,}; {dx.stage.n} comes "
                 f"from {source}.")
    if dx.metastases_hidden:
        lines.append("The hidden ones are too small for any scan: they are part of the true "
                     "state, not of the diagnosis, and they are why a cancer with no "
                     "metastasis found can still come back after treatment.")
    return lines


def _treatment_section(result: ClinicalResult, protocol_source: str | None) -> list[str]:
    if result.diagnosis is None:
        return ["No treatment: the cancer was never diagnosed."]
    if result.protocol == SUPPORTIVE_CARE:
        return [f"Protocol: {SUPPORTIVE_CARE}: {SUPPORTIVE_CARE_MEANING}."]
    source = protocol_source or f"the default plan for stage {result.diagnosis.stage.group}"
    lines = [f"Protocol: {result.protocol} ({source})."]
    given = [e for e in result.treatment if _alive_after(result, e.day)]
    missed = len(result.treatment) - len(given)
    by_modality: dict[str, list[str]] = {}
    for event in given:
        by_modality.setdefault(event.modality, []).append(event.outcome)
    for modality, outcomes in by_modality.items():
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1
        told = "; ".join(f"{o} ×{n}" if n > 1 else o for o, n in counts.items())
        lines.append(f"  {modality}: {told}.")
    if not given:
        lines.append("  Nothing was given.")
    if missed:
        lines.append(f"{missed} planned treatment event{'s' if missed > 1 else ''} fell after "
                     "the patient's death and were not given.")
    why = [e for e in given if e.outcome.startswith("no effect")]
    if why:
        lines.append("Why some drugs did nothing: " + "; ".join(
            dict.fromkeys(f"{e.therapy}: {e.outcome.removeprefix('no effect: ')}"
                          for e in why)) + ".")
    return lines


_name_with_stage = words.name_with_stage


def _in_short(result: ClinicalResult, model: ResolvedModel, clinical: ClinicalKnowledge
              ) -> list[str]:
    """The diagnosis (or none), the treatment, the outcome and, for a survivor, what is still
    hidden (the words every surface says, :mod:`metastasis.clinical.words`, with the cause of
    death explained)."""
    cause = (None if result.death_day is None
             else cause_words(result.cause_of_death or "unknown", model, clinical))
    return words.in_short(result, cause, dict(zip(model.site_names, model.site_labels,
                                                  strict=True)))


def _outcome_section(result: ClinicalResult, model: ResolvedModel,
                     clinical: ClinicalKnowledge) -> list[str]:
    onset = result.onset_age_years
    if result.death_day is not None:
        day = result.death_day
        cause = cause_words(result.cause_of_death or "unknown", model, clinical)
        lines = [f"Died on {_when(day)} at age {onset + day / DAYS_PER_YEAR:.1f}, of {cause}."]
        if result.survival_from_diagnosis_days is not None:
            survival = _duration(result.survival_from_diagnosis_days)
            lines.append(f"Survival from diagnosis: {survival}; lifetime from the first "
                         f"cancer cell: {_duration(day)}.")
    else:
        end = result.horizon_days
        lines = [f"Alive at the end of follow-up ({_when(end)}, age "
                 f"{onset + end / DAYS_PER_YEAR:.1f}): censored, so the survival time is "
                 "only known to be longer."]
        if result.survival_from_diagnosis_days is not None:
            lines.append("Survival from diagnosis: at least "
                         f"{_duration(result.survival_from_diagnosis_days)} (censored).")
    fractures = [e for e in result.events if e.kind == "fracture"]
    if fractures:
        lines.append(f"Pathological fracture on {_when(fractures[0].day)}.")
    return lines


def _primary_gone(result: ClinicalResult, model: ResolvedModel) -> str | None:
    """'The primary was removed' when treatment left none of it (the untreated story would
    say it holds 0 cells)."""
    table = result.patient.lesions
    end = result.patient.end_time
    if float(table.size_at(end)[table.id == 0].sum()) > 0:
        return None
    last = float(table.valid_to[table.id == 0].max())
    if not math.isfinite(last):
        return None
    return (f"The primary ({_site(model, _primary_site(model))}) is gone: removed or destroyed "
            f"by treatment on {_when(last)}.")


def tell(
    result: ClinicalResult,
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    *,
    years: float,
    care: str | None = None,
    all_events: bool = False,
    protocol_source: str | None = None,
    screening_note: str | None = None,
) -> ClinicalStory:
    """Word one patient's whole clinical course as a :class:`ClinicalStory`.

    ``care`` says what the arm does (screening, protocol); ``protocol_source`` where the
    protocol came from (a user's file) when it is not the default plan; ``screening_note`` is
    a line for the header (e.g. no programme exists for this cancer type).
    """
    natural = narrative.tell(result.patient, model, years=years, all_events=all_events)
    disease, hidden = disease_lines(result.patient, model, all_events=all_events)
    clinic = [*_screening_lines(result, all_events), *_symptom_lines(result),
              *_workup_lines(result, model, clinical), *treatment_lines(result, all_events),
              *_ending_lines(result, model, clinical)]
    rank = {"disease": 0, CLINIC: 1, "treatment": 2}
    order = sorted(range(len(disease) + len(clinic)),
                   key=lambda i: ((disease + clinic)[i].time, rank[(disease + clinic)[i].source],
                                  i))
    merged = [(disease + clinic)[i] for i in order]
    spread = [line.replace("Diagnosis name: ", "Named from the true state at the end: ")
              for line in natural.spread]
    gone = _primary_gone(result, model)
    if gone is not None and spread and spread[0].startswith("The primary"):
        spread[0] = gone
    return ClinicalStory(
        title=f"The clinical story of virtual patient {result.patient.patient_index} "
              f"({model.label})",
        header=_header(result, model, years, care, screening_note),
        in_short=_in_short(result, model, clinical),
        timeline=merged,
        hidden_events=hidden,
        diagnosis=_diagnosis_section(result, model, clinical),
        true_vs_found=_true_vs_found(result, model),
        treatment=_treatment_section(result, protocol_source),
        outcome=_outcome_section(result, model, clinical),
        spread=spread,
        accounting=natural.accounting,
        site_rows=natural.site_rows,
    )


# ---------------------------------------------------------------- data: JSON and CSV


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def diagnosis_dict(result: ClinicalResult, model: ResolvedModel,
                   clinical: ClinicalKnowledge) -> dict[str, Any] | None:
    """The diagnosis as data, with the true state next to the observed one."""
    dx = result.diagnosis
    if dx is None:
        return None
    return {
        "day": dx.day,
        "age_years": dx.age_years,
        "pathway": dx.pathway,
        "trigger": dx.trigger,
        "scan_day": scan_day(result),
        "imaging": workup_modalities(result, clinical),
        "findings": [
            {"lesion": f.lesion, "site": f.site, "diameter_mm": f.diameter_mm,
             "modality": f.modality, "day": f.day}
            for f in dx.findings
        ],
        "biopsies": dx.biopsies,
        "confirmed": dx.confirmed,
        "name": dx.name,
        "stage": {"t": dx.stage.t, "n": dx.stage.n, "m": dx.stage.m, "group": dx.stage.group,
                  "summary": dx.stage.summary, "tnm": dx.stage.tnm},
        "distant_sites_found": list(dx.distant_sites_found),
        "true_vs_observed": {
            "metastases_present": dx.metastases_present,
            "metastases_found": dx.metastases_found,
            "metastases_hidden": dx.metastases_hidden,
            "present_by_site_and_state": result.present_at_diagnosis(),
        },
    }


def outcome_dict(result: ClinicalResult) -> dict[str, Any]:
    """How the story ends: death (day, cause) or censoring at the horizon."""
    return {
        "died": result.died,
        "death_day": _finite(result.death_day),
        "cause_of_death": result.cause_of_death,
        "censored": not result.died,
        "horizon_days": result.horizon_days,
        "years_after_diagnosis": result.years_after_diagnosis,
        "survival_from_diagnosis_days": _finite(result.survival_from_diagnosis_days),
        "lifetime_days": min(result.lifetime_days, result.horizon_days),
        "age_at_end_years": result.onset_age_years
        + (result.horizon_days if result.death_day is None else result.death_day)
        / DAYS_PER_YEAR,
    }


def treatment_dicts(result: ClinicalResult) -> list[dict[str, Any]]:
    """Every treatment event; ``after_death`` marks those the patient did not live to get."""
    return [
        {"day": e.day, "modality": e.modality, "therapy": e.therapy, "step": e.step,
         "description": e.description, "outcome": e.outcome, "lesions": list(e.lesions),
         "other_lesions": e.other_lesions, "after_death": not _alive_after(result, e.day)}
        for e in result.treatment
    ]


def course_dict(result: ClinicalResult, model: ResolvedModel,
                clinical: ClinicalKnowledge) -> dict[str, Any]:
    """Everything about one patient's course as JSON-ready data (true and observed state)."""
    return {
        "arm": result.arm,
        "onset_age_years": result.onset_age_years,
        "traits": {"mutations": sorted(result.traits.mutations),
                   "responder": dict(sorted(result.traits.responder.items()))},
        "clinical_events": [
            {"day": e.day, "kind": e.kind, "label": e.label, "detail": e.detail}
            for e in result.events
        ],
        "diagnosis": diagnosis_dict(result, model, clinical),
        "protocol": result.protocol,
        "treatment": treatment_dicts(result),
        "outcome": outcome_dict(result),
        "true_state": result.patient.to_dict(),
    }


CSV_COLUMNS = ("day", "years", "source", "step", "kind", "site", "label", "detail", "outcome")


def event_rows(result: ClinicalResult, model: ResolvedModel,
               clinical: ClinicalKnowledge) -> list[dict[str, Any]]:
    """One row per event, disease and clinic merged in time order (the CSV of ``simulate``)."""
    rows: list[dict[str, Any]] = []

    def add(day: float, source: str, kind: str, *, step: int | str = "", site: str = "",
            label: str = "", detail: str = "", outcome: str = "") -> None:
        rows.append({"day": day, "years": day / DAYS_PER_YEAR, "source": source, "step": step,
                     "kind": kind, "site": site, "label": label, "detail": detail,
                     "outcome": outcome})

    for event in lesion_events(result.patient):
        detail = f"lesion {event.lesion}" + (
            f", parent {event.parent}" if event.parent >= 0 else "")
        detail += f", route {event.route}" if event.route else ""
        add(event.time, "disease", event.kind, step=event.step, site=event.site,
            label=event.step_name, detail=detail)
    for happening in result.events:
        add(happening.day, CLINIC, happening.kind, label=happening.label,
            detail=happening.detail)
    dx = result.diagnosis
    if dx is not None:
        day = scan_day(result) or dx.day
        for modality in workup_modalities(result, clinical):
            found = [f for f in dx.findings if f.modality == modality]
            add(day, CLINIC, "scan", label=_modality_label(clinical, modality),
                detail="; ".join(f"{f.site} {f.diameter_mm:.1f} mm" for f in found),
                outcome=f"{len(found)} found")
        for k in range(dx.biopsies):
            diagnostic = dx.confirmed and k == dx.biopsies - 1
            add(day + REPEAT_BIOPSY_DAYS * k, CLINIC, "biopsy", label=f"biopsy {k + 1}",
                outcome="diagnostic" if diagnostic else "not diagnostic")
        add(dx.day, CLINIC, "diagnosis", label=dx.name,
            detail=f"{dx.stage.tnm}; stage {dx.stage.group}; {dx.stage.summary}; "
                   f"pathway {dx.pathway} ({dx.trigger}); metastases present "
                   f"{dx.metastases_present}, found {dx.metastases_found}, hidden "
                   f"{dx.metastases_hidden}",
            outcome=dx.stage.summary)
    for given in result.treatment:
        if _alive_after(result, given.day):
            add(given.day, "treatment", given.modality, label=given.therapy,
                detail=given.description, outcome=given.outcome)
    if not result.died:
        add(result.horizon_days, CLINIC, "censored", label="alive at the horizon")
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["day"], i))
    return [rows[i] for i in order]


def rows_as_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str] = CSV_COLUMNS) -> str:
    """CSV text of the event rows (header first)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
