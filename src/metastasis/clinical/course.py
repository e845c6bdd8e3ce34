"""One patient's whole clinical story: symptoms, screening, work-up, diagnosis, stage,
treatment and outcome, on top of the exact disease process.

The order of events follows the clinic: the natural history is sampled first (nothing the
clinic does before diagnosis changes it); symptoms and screening rounds are read off it; the
first of them that leads to a diagnosis fixes the diagnosis day; imaging and pathology find
what they can (the observed state) while the lesion table keeps everything (the true
state); the stage picks a protocol, and treatment changes the disease through
:meth:`~metastasis.engine.process.DiseaseProcess.intervene`; organ failure or the total
burden ends the life, or the horizon censors it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from metastasis.api import DAYS_PER_YEAR
from metastasis.clinical.detection import Finding, biopsy, diameter_mm, scan
from metastasis.clinical.observe import BurdenQuery, first_crossing
from metastasis.clinical.schema import ClinicalKnowledge, ScreeningProgramme
from metastasis.clinical.screening import draw_onset_age, programmes_for, screening_days
from metastasis.clinical.staging import Stage, diagnosis_name, stage
from metastasis.clinical.symptoms import (
    SymptomThreshold,
    draw_cachexia_threshold,
    draw_symptom_thresholds,
    symptom_onsets,
)
from metastasis.clinical.treatment import (
    POSTOPERATIVE_DEATH,
    PatientTraits,
    TreatmentEvent,
    apply_protocol,
    default_protocol,
    draw_traits,
    given_before,
)
from metastasis.clinical.treatment_schema import Protocol, TreatmentKnowledge
from metastasis.engine.process import PRIMARY, SAMPLING_STEP_DAYS, DiseaseProcess
from metastasis.engine.seeds import (
    clinical_generator,
    keyed_uniform,
    patient_generator,
    side_stream,
)
from metastasis.limits import check_years
from metastasis.model.resolve import ResolvedModel
from metastasis.model.routing import MUTATION_ROUTE
from metastasis.results.patient import LesionTable, PatientResult
from metastasis.results.tables import REGIONAL_NODES

REPEAT_BIOPSY_DAYS = 7.0
"""assumption: a non-diagnostic biopsy is repeated about a week later."""

MAX_BIOPSIES = 5
"""assumption: after five non-diagnostic biopsies the team treats on imaging alone."""

PATHOLOGY_MIN_DIAMETER_MM = 0.2
"""AJCC 8th edition: a nodal deposit over 0.2 mm is a micrometastasis (N1mi); smaller ones
are isolated tumour cells, staged N0(i+). Pathology of resected nodes counts deposits above
this size."""

CANCER_DEATH = "tumour burden"
NO_TREATMENT = "no treatment"
"""The protocol recorded for a patient of an untreated arm."""
SUPPORTIVE_CARE = "best supportive care"
"""The protocol recorded for a patient given no anti-tumour treatment under the
default plans (:meth:`~metastasis.clinical.treatment.PatientTraits.given_supportive_care`)."""
SUPPORTIVE_CARE_MEANING = (
    "care of symptoms only, with no surgery, drugs or radiotherapy aimed at the cancer: "
    "registries count many such patients among those found with metastatic disease (too "
    "frail for treatment, or declining it), and so does the model"
)
"""What :data:`SUPPORTIVE_CARE` means, in the words every output surface uses."""




SYMPTOMS, SCREENING, EMERGENCY = "symptoms", "screening", "emergency"
"""The pathways to a diagnosis: a symptom and the work-up it leads to, a screening round, or
an emergency admission of a patient with symptoms who would not live to the work-up."""
EMERGENCY_STREAM = 2**32 - 4
"""Keys the side stream (:func:`~metastasis.engine.seeds.side_stream`) of the one draw an
emergency admission needs, so that it moves no other draw of the course."""
NODE_STAGING_STREAM = 2**32 - 7
"""Keys the uniform (:func:`~metastasis.engine.seeds.keyed_uniform`) that decides whether a
patient's nodes are staged by pathology (``workup.node_pathology_share``): aside, so that a
type's share moves no other draw."""

STOPPED_AT_DIAGNOSIS = "diagnosis"
"""End reason of a history stopped at diagnosis by an arm without follow-up."""


@dataclass(frozen=True)
class Arm:
    """What the clinic does for a patient: screen or not, and which protocol to follow.

    ``protocol`` None follows the cancer type's default plan for the stage found.
    ``years_after_diagnosis`` follows every diagnosed patient that long after the diagnosis,
    a horizon counted from diagnosis, so that survival from diagnosis is known to the same
    time for everyone; the course's ``years`` then bound the time from the first cancer cell
    to the diagnosis (a patient not diagnosed by then is followed no further).  None counts
    the horizon from the first cell: a patient diagnosed late is followed briefly.
    ``follow_up`` False ends each story at diagnosis (no treatment, no outcome): what a
    study of stage at diagnosis needs, such as calibration, at a fraction of the cost.
    ``treat`` False diagnoses and follows the patient but gives no treatment: the untreated
    patients whose survival registries report beside the treated ones.  Under the default
    plans (no ``protocol``), a patient whose supportive-care lot falls below the
    registries' share for the stage found is given no anti-tumour treatment; an explicit
    ``protocol`` is given to every patient.
    """

    name: str = "standard care"
    screening: bool = False
    protocol: Protocol | None = None
    follow_up: bool = True
    treat: bool = True
    years_after_diagnosis: float | None = None

    def __post_init__(self) -> None:
        if self.years_after_diagnosis is not None:
            check_years(self.years_after_diagnosis, "years after diagnosis")


@dataclass(frozen=True)
class Diagnosis:
    """What the clinic knows on the day of diagnosis, next to the truth."""

    day: float
    age_years: float
    pathway: str
    trigger: str
    findings: tuple[Finding, ...]
    biopsies: int
    confirmed: bool
    stage: Stage
    name: str
    distant_sites_found: tuple[str, ...]
    metastases_present: int
    metastases_found: int
    nodes_by_pathology: bool = False
    """Whether N comes from a pathologist's count of the resected nodes (else imaging's)."""

    @property
    def metastases_hidden(self) -> int:
        return self.metastases_present - self.metastases_found


@dataclass(frozen=True)
class ClinicalEvent:
    """A symptom, a screening round, a fracture or an organ failure, on a day."""

    day: float
    kind: str
    label: str
    detail: str = ""


@dataclass(frozen=True)
class ClinicalResult:
    """The whole story of one virtual patient: truth (``patient``) and what the clinic saw."""

    patient: PatientResult
    arm: str
    onset_age_years: float
    traits: PatientTraits
    events: tuple[ClinicalEvent, ...]
    diagnosis: Diagnosis | None
    treatment: tuple[TreatmentEvent, ...]
    death_day: float | None
    cause_of_death: str | None
    protocol: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    years_after_diagnosis: float | None = None
    """The arm's follow-up after diagnosis (None: the horizon counts from the first cell)."""

    @property
    def horizon_days(self) -> float:
        return self.patient.horizon_days

    @property
    def died(self) -> bool:
        return self.death_day is not None

    @property
    def followed_up(self) -> bool:
        """Whether the story goes on after diagnosis (see :attr:`Arm.follow_up`)."""
        return self.diagnosis is None or self.patient.end_reason != STOPPED_AT_DIAGNOSIS

    def present_at_diagnosis(self) -> dict[str, dict[str, int]]:
        """Distant deposits that existed on the day of diagnosis, by site and state: the
        true state the scans are set against (empty without a diagnosis).

        Counted as the course counts ``metastases_present``: every distinct lesion outside
        the primary's organ and the regional nodes (distant nodes are M1) whose founding cell
        had settled by that day, so the counts add up to it; before diagnosis the treated
        history is the natural one, so the patient's lesion table holds them."""
        dx = self.diagnosis
        if dx is None:
            return {}
        patient = self.patient
        table = patient.lesions
        # a clone that a drug given that very day selected did not exist at diagnosis
        made_by_treatment = (table.route == MUTATION_ROUTE) & (table.arrival >= dx.day)
        rows = np.flatnonzero((table.arrival <= dx.day) & table.valid_at(dx.day)
                              & (table.id != PRIMARY) & ~made_by_treatment)
        states = table.state_at(dx.day)
        primary = patient.primary_site
        seen: set[int] = set()
        out: dict[str, dict[str, int]] = {}
        for r in rows.tolist():
            lesion = int(table.id[r])
            site = patient.site_names[int(table.site[r])]
            if lesion in seen or site in (primary, REGIONAL_NODES):
                continue
            seen.add(lesion)
            by_state = out.setdefault(site, {})
            state = str(states[r])
            by_state[state] = by_state.get(state, 0) + 1
        return out

    @property
    def survival_from_diagnosis_days(self) -> float | None:
        """Days from diagnosis to death, or to the horizon when censored (None when the
        story was not followed past the diagnosis)."""
        if self.diagnosis is None or not self.followed_up:
            return None
        if self.death_day is None and self.years_after_diagnosis is not None:
            # the follow-up itself, exactly: (day + F) - day may round below F, and a
            # Kaplan-Meier curve would then not be known at F
            return self.years_after_diagnosis * DAYS_PER_YEAR
        end = self.death_day if self.death_day is not None else self.horizon_days
        return end - self.diagnosis.day

    @property
    def lifetime_days(self) -> float:
        """Days from the first cancer cell to death, or to the horizon when censored: free of
        the lead-time bias that survival from diagnosis has under screening."""
        if self.death_day is not None:
            return self.death_day
        return self.horizon_days if self.followed_up else self.patient.end_time


def _first_fatal_crossing(
    clinical: ClinicalKnowledge, model: ResolvedModel, table: LesionTable, start: float,
    stop: float, cachexia: tuple[float, str] | None,
) -> tuple[float, str] | None:
    """The first organ failure or death from the whole burden in [start, stop], if any."""
    best: tuple[float, str] | None = None
    query = BurdenQuery.of(table)
    reach = query.reach(start, stop)
    if cachexia is not None and cachexia[0] <= reach:
        day = query.first_crossing(None, cachexia[0], start, stop)
        if day is not None:
            best = (day, cachexia[1])
    for outcome in clinical.outcomes.organ_failure.values():
        if not outcome.fatal or outcome.threshold_cells.value > reach:
            continue  # not fatal, or not crossed in the window
        sites = [model.site_index(name) for name in outcome.sites]
        day = query.first_crossing(sites, outcome.threshold_cells.value, start, stop)
        if day is not None and (best is None or day < best[0]):
            best = (day, outcome.label)
    return best


_ENDS_IN_DEATH = {"lethal_burden": CANCER_DEATH, POSTOPERATIVE_DEATH: POSTOPERATIVE_DEATH}
"""Ends of the history that are deaths, with the cause each is recorded as."""


def _death(
    clinical: ClinicalKnowledge, model: ResolvedModel, process: DiseaseProcess, start: float,
    cachexia: tuple[float, str] | None, stop: float | None = None,
) -> tuple[float, str] | None:
    """The first fatal event in [start, stop] (stop: the end of the history)."""
    if stop is None:
        stop = process.end
        table = process.lesion_table()
    else:
        table = process.lesion_table(through=stop)
        stop = min(stop, process.known_end)
    failure = _first_fatal_crossing(clinical, model, table, start, stop, cachexia)
    ended = process.complete and process.end <= stop
    if ended and process.end_reason in _ENDS_IN_DEATH and (
        failure is None or process.end < failure[0]
    ):
        return process.end, _ENDS_IN_DEATH[process.end_reason]
    return failure


def _emergency(
    clinical: ClinicalKnowledge, onsets: list[tuple[float, SymptomThreshold]],
    death_day: float, rng: np.random.Generator,
) -> tuple[float, str, str] | None:
    """The emergency admission of a patient who would die before the work-up: the day,
    the pathway and the symptom that had sent the patient to a doctor.  None (the patient
    dies undiagnosed) without such a symptom before the death, or without the rule.

    The admission comes an exponential time before the death (``workup.
    emergency_days_before_death``), never before the symptom: the last weeks of a fatal
    untreated cancer are when a waiting patient is admitted.  Drawn on a side stream, so
    that no other draw of the course moves."""
    mean = clinical.workup.emergency_days_before_death
    symptom = next(((day, s) for day, s in onsets if s.workup and day <= death_day), None)
    if mean is None or symptom is None:
        return None
    lead = float(side_stream(rng, EMERGENCY_STREAM).exponential(mean.value))
    return max(symptom[0], death_day - lead), EMERGENCY, symptom[1].label


def _distant(model: ResolvedModel, site: int) -> bool:
    """Whether a deposit there is a distant metastasis (M1): anywhere but the primary's own
    organ and the regional nodes; distant lymph nodes are M1 (AJCC), as staging says."""
    return site != model.primary_site and model.site_names[site] != REGIONAL_NODES


def _metastases_present(model: ResolvedModel, process: DiseaseProcess, day: float) -> int:
    """Distant deposits that exist on ``day`` (any state from a settled cell on)."""
    table = process.lesion_table(through=day)
    present = (table.arrival <= day) & table.valid_at(day) & (table.id != PRIMARY)
    rows = np.flatnonzero(present)
    return len({int(table.id[r]) for r in rows if _distant(model, int(table.site[r]))})


def _involved_nodes(
    model: ResolvedModel, process: DiseaseProcess, day: float, findings: list[Finding],
    pathology: bool,
) -> int:
    """Regional node deposits the clinic knows of: imaging's finds, or pathology's when
    the nodes are resected (deposits above the micrometastasis size)."""
    regional = model.site_index(REGIONAL_NODES)
    if not pathology:
        return len({f.lesion for f in findings if f.site == REGIONAL_NODES})
    table = process.lesion_table(through=day)
    sizes = table.size_at(day)
    seen = diameter_mm(sizes, model.cells_per_cm3) > PATHOLOGY_MIN_DIAMETER_MM
    return len({int(table.id[r]) for r in np.flatnonzero(seen & (table.site == regional))})


def simulate_course(
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    treatments: TreatmentKnowledge,
    seed: int,
    index: int,
    years: float,
    arm: Arm | None = None,
) -> ClinicalResult:
    """Simulate patient ``index`` of root ``seed`` through ``years`` of life with cancer."""
    arm = arm or Arm()
    # a diagnosis comes at most `years` after the first cell (plus its repeat biopsies);
    # with a follow-up counted from diagnosis, the process may run that much further
    search_end = years * DAYS_PER_YEAR
    horizon = search_end
    if arm.years_after_diagnosis is not None:
        horizon += (arm.years_after_diagnosis * DAYS_PER_YEAR
                    + (MAX_BIOPSIES - 1) * REPEAT_BIOPSY_DAYS)
    process = DiseaseProcess(model, patient_generator(seed, index), horizon,
                             piece_break=search_end)
    rng = clinical_generator(seed, index)
    # the patient's own traits first, in a fixed order, so every arm draws them alike
    onset_age = draw_onset_age(clinical, model.cancer, rng)
    thresholds = draw_symptom_thresholds(clinical, model, rng)
    traits = draw_traits(treatments, model.cancer, rng)
    workup_delay = float(rng.exponential(clinical.workup.delay_days.value))
    cachexia = draw_cachexia_threshold(clinical, model.cancer, rng)

    events: list[ClinicalEvent] = []
    rounds: list[tuple[float, ScreeningProgramme]] = []
    if arm.screening:
        for programme in programmes_for(clinical, model.cancer):
            rounds += [(day, programme) for day in screening_days(programme, onset_age,
                                                                   search_end, rng)]
        rounds.sort(key=lambda pair: pair[0])
    # sample the natural history a piece at a time, only as far as the diagnosis needs:
    # exact (pieces of a Poisson process are independent), and it spares simulating decades
    # of untreated growth that treatment would discard
    candidate: tuple[float, str, str] | None = None
    sampled, searched, next_round = 0.0, 0.0, 0
    onsets: list[tuple[float, SymptomThreshold]] = []
    while True:
        sampled = min(sampled + SAMPLING_STEP_DAYS, search_end)
        natural = process.lesion_table(through=sampled)
        window = min(sampled, process.known_end)
        # only the symptoms not yet present can start in the new piece of history
        onset_names = {s.name for _, s in onsets}
        waiting = [t for t in thresholds if t.name not in onset_names]
        onsets = sorted(onsets + symptom_onsets(natural, waiting, searched, window),
                        key=lambda pair: pair[0])
        first_workup = next(((day, s) for day, s in onsets if s.workup), None)
        if first_workup is not None and candidate is None:
            candidate = (first_workup[0] + workup_delay, SYMPTOMS, first_workup[1].label)
        while next_round < len(rounds) and rounds[next_round][0] < window and (
            candidate is None or rounds[next_round][0] < candidate[0]
        ):
            day, programme = rounds[next_round]
            next_round += 1
            found = scan(clinical, model, natural, day, programme.modality, rng)
            hit = any(f.lesion == PRIMARY for f in found)
            events.append(ClinicalEvent(day, "screening", programme.label,
                                        "cancer found" if hit else "nothing found"))
            if hit:
                candidate = (day, SCREENING, programme.label)
        untreated_death = _death(clinical, model, process, searched, cachexia, window)
        searched = window
        if untreated_death is not None and (
            candidate is None or untreated_death[0] <= candidate[0]
        ):
            candidate = _emergency(clinical, onsets, untreated_death[0], rng)
            break
        if candidate is not None and candidate[0] <= window:
            break
        if window >= min(process.known_end, search_end):
            candidate, untreated_death = None, None
            break
    if candidate is None:
        process.shorten_horizon(search_end)  # undiagnosed: followed no further
        events += [ClinicalEvent(day, "symptom", s.label) for day, s in onsets]
        return _finish(model, clinical, process, arm, onset_age, traits, events, None, (),
                       untreated_death, index, seed, None)
    candidates = [candidate]

    dx_day, pathway, trigger = min(candidates)
    neurological = any(s.neurological and day <= dx_day for day, s in onsets)
    findings: list[Finding] = []
    scanned = natural  # found lesions are named by their ids in this table
    for modality, sites in clinical.workup.scans(model.cancer, neurological):
        findings += scan(clinical, model, scanned, dx_day, modality, rng, sites=sites)
    found_ids = {f.lesion for f in findings}
    if pathway == SCREENING:
        found_ids.add(PRIMARY)
    biopsies, confirmed, day = 0, False, dx_day
    # an emergency patient's biopsies stop at the death the admission came before: a cancer
    # not confirmed by then is diagnosed on imaging alone
    last_day = untreated_death[0] if pathway == EMERGENCY and untreated_death else math.inf
    while not confirmed and biopsies < MAX_BIOPSIES:
        biopsies += 1
        confirmed = biopsy(clinical, rng)
        if not confirmed:
            if day + REPEAT_BIOPSY_DAYS > last_day:
                break
            day += REPEAT_BIOPSY_DAYS
    natural = process.lesion_table(through=day)
    dx_day = min(day, process.known_end)
    if arm.years_after_diagnosis is not None and arm.follow_up:
        process.shorten_horizon(dx_day + arm.years_after_diagnosis * DAYS_PER_YEAR)

    primary_size = float(natural.size_at(dx_day)[PRIMARY])
    distant_found = sorted({
        f.site for f in findings if f.lesion != PRIMARY and f.site != REGIONAL_NODES
        and f.site != model.site_names[model.primary_site]
    })
    cutoffs = clinical.t_cutoffs(model.cancer)
    clinical_stage = stage(
        float(diameter_mm(primary_size, model.cells_per_cm3)),
        process.breach <= dx_day,
        _involved_nodes(model, process, dx_day, findings, pathology=False),
        distant_found,
        cutoffs=cutoffs,
        groups=clinical.groups(model.cancer),
    )
    # nodes resected with the primary are staged by pathology; a patient of a type whose
    # nodes are often left in place may be staged on imaging alone (a draw aside)
    pathology = clinical_stage.m == "M0" and clinical.workup.nodes_by_pathology(
        model.cancer, keyed_uniform(rng, NODE_STAGING_STREAM, 0))
    final_stage = stage(
        float(diameter_mm(primary_size, model.cells_per_cm3)),
        process.breach <= dx_day,
        _involved_nodes(model, process, dx_day, findings, pathology=pathology),
        distant_found,
        cutoffs=cutoffs,
        groups=clinical.groups(model.cancer),
    )
    labels = [model.site_labels[model.site_index(s)] for s in distant_found]
    diagnosis = Diagnosis(
        day=dx_day,
        age_years=onset_age + dx_day / DAYS_PER_YEAR,
        pathway=pathway,
        trigger=trigger,
        findings=tuple(findings),
        biopsies=biopsies,
        confirmed=confirmed,
        stage=final_stage,
        name=diagnosis_name(model.naming, final_stage, labels),
        distant_sites_found=tuple(distant_found),
        metastases_present=_metastases_present(model, process, dx_day),
        metastases_found=len({f.lesion for f in findings if _distant(
            model, model.site_index(f.site))}),
        nodes_by_pathology=pathology,
    )
    if not arm.follow_up:
        process.stop_at(dx_day, STOPPED_AT_DIAGNOSIS)
        events += [ClinicalEvent(day, "symptom", s.label) for day, s in onsets if day <= dx_day]
        return _finish(model, clinical, process, arm, onset_age, traits, events, diagnosis, (),
                       None, index, seed, None)
    protocol_label: str | None
    share = treatments.supportive_care_share(
        model.cancer, None if final_stage.m == "M1" else final_stage.group)
    if arm.treat and arm.protocol is None and traits.given_supportive_care(share):
        treatment, protocol_label = [], SUPPORTIVE_CARE
    elif arm.treat:
        protocol = arm.protocol or default_protocol(treatments, model.cancer, final_stage.group)
        treatment = apply_protocol(process, protocol, dx_day, sorted(found_ids), traits,
                                   treatments, rng, found_in=scanned)
        protocol_label = protocol.label
    else:
        treatment, protocol_label = [], NO_TREATMENT
    death = _death(clinical, model, process, dx_day, cachexia)
    # symptoms before diagnosis come from the natural history; later ones from the treated
    # course, for the symptoms the patient did not have yet
    present = {s.name for day, s in onsets if day <= dx_day}
    events += [ClinicalEvent(day, "symptom", s.label) for day, s in onsets if day <= dx_day]
    later = [t for t in thresholds if t.name not in present]
    end = death[0] if death is not None else process.end
    treated = process.lesion_table(through=end)
    events += [
        ClinicalEvent(day, "symptom", s.label)
        for day, s in symptom_onsets(treated, later, dx_day, end)
        if day > dx_day
    ]
    given = given_before(treatment, None if death is None else death[0])
    return _finish(model, clinical, process, arm, onset_age, traits, events, diagnosis,
                   tuple(given), death, index, seed, protocol_label)


def _finish(
    model: ResolvedModel,
    clinical: ClinicalKnowledge,
    process: DiseaseProcess,
    arm: Arm,
    onset_age: float,
    traits: PatientTraits,
    events: list[ClinicalEvent],
    diagnosis: Diagnosis | None,
    treatment: tuple[TreatmentEvent, ...],
    death: tuple[float, str] | None,
    index: int,
    seed: int,
    protocol: str | None,
) -> ClinicalResult:
    if death is not None:
        process.stop_at(death[0], death[1])
    table = process.lesion_table()
    fracture = clinical.outcomes.fracture
    bone = [model.site_index(name) for name in fracture.sites]
    fracture_day = first_crossing(table, bone, fracture.threshold_cells.value, 0.0, process.end)
    if fracture_day is not None:
        events.append(ClinicalEvent(fracture_day, "fracture", fracture.label))
    if death is not None:
        events.append(ClinicalEvent(death[0], "death", death[1]))
    events.sort(key=lambda e: e.day)
    patient = process.finish(patient_index=index, root_seed=seed)
    return ClinicalResult(
        patient=patient,
        arm=arm.name,
        onset_age_years=onset_age,
        traits=traits,
        events=tuple(events),
        diagnosis=diagnosis,
        treatment=treatment,
        death_day=None if death is None else float(death[0]),
        cause_of_death=None if death is None else death[1],
        protocol=protocol,
        years_after_diagnosis=arm.years_after_diagnosis if diagnosis is not None else None,
    )
