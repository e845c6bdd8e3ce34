"""One story of the disease, whoever tells it: the events.

A treated patient's lesion table holds several rows (segments) per lesion; the events of
:func:`metastasis.results.story.lesion_events` tell each lesion once, and only what the row
describing it at that moment says happened then.  The command line, the patient page and the
JSON API all read that one list, so a lesion removed by surgery is never told to grow out
afterwards anywhere (issue 11: the page once did, beside a command line that did not)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from metastasis.api import load_model
from metastasis.cli import clinical_story
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.results.patient import PatientResult
from metastasis.results.story import CLONE, lesion_events
from metastasis.results.words import EventWords
from metastasis.web.story import TOTAL_KINDS, sentences

SEED = 11
PATIENTS = 40
YEARS = 20.0
LESION_KINDS = ("awakened", "micrometastasis", "outgrowth", "clinical_size")
"""Events of a lesion that exists: told only while a row of the lesion is valid."""


@cache
def _courses() -> tuple[ClinicalResult, ...]:
    model, clinical, treatments = load_model("colorectal"), load_clinical(), load_treatments()
    return tuple(simulate_course(model, clinical, treatments, SEED, index, YEARS, Arm())
                 for index in range(PATIENTS))


def _valid_on(patient: PatientResult, lesion: int, day: float) -> bool:
    table = patient.lesions
    rows = table.id == lesion
    return bool(np.any((table.valid_from[rows] <= day) & (day < table.valid_to[rows])))


def test_no_lesion_is_told_to_change_after_it_is_gone() -> None:
    """Every event of a lesion's growth falls while a row of that lesion is valid; and the
    cohort holds lesions removed before the day their first row says they would grow out (so
    a story read from the first rows alone would fail here)."""
    removed_before_outgrowth = 0
    for course in _courses():
        patient = course.patient
        table = patient.lesions
        for event in patient.events():
            if event.kind in LESION_KINDS and event.lesion > 0:
                assert _valid_on(patient, event.lesion, event.time), (event, course.protocol)
        first = np.flatnonzero(table.first_segments() & (table.id > 0))
        for row in first.tolist():
            lesion = int(table.id[row])
            last = float(table.valid_to[table.id == lesion].max())
            outgrowth = float(table.outgrowth[row])
            if last < outgrowth <= patient.end_time and math.isfinite(outgrowth):
                removed_before_outgrowth += 1
    assert removed_before_outgrowth > 0


def test_each_lesion_event_is_told_once() -> None:
    for course in _courses():
        told = [(e.lesion, e.kind) for e in lesion_events(course.patient) if e.lesion >= 0]
        assert len(told) == len(set(told))


def test_the_command_line_and_the_page_tell_the_same_events() -> None:
    """The CLI's event table (``simulate --format csv``) and the patient page's / API's event
    list hold the same disease events, day for day."""
    model, clinical = load_model("colorectal"), load_clinical()
    for course in _courses():
        cli = [(row["day"], row["kind"]) for row in
               clinical_story.event_rows(course, model, clinical) if row["source"] == "disease"]
        page = [(e["time"], e["kind"]) for e in course.patient.to_dict()["events"]
                if e["kind"] not in TOTAL_KINDS and e["kind"] != course.patient.end_reason]
        assert cli == page


def _founders_reference(patient: PatientResult) -> list[tuple[float, str, int]]:
    """The untreated rule, written independently: each founder's own columns, once."""
    table = patient.lesions
    end = patient.end_time
    out: list[tuple[float, str, int]] = []
    for row in range(1, len(table)):
        lesion = int(table.id[row])
        times = [(table.arrival[row], "extravasated")]
        if table.awakening[row] > table.arrival[row]:
            times += [(table.arrival[row], "dormant"), (table.awakening[row], "awakened")]
        if table.micrometastasis[row] > table.awakening[row]:
            times.append((table.micrometastasis[row], "micrometastasis"))
        times.append((table.outgrowth[row], "outgrowth"))
        out += [(float(t), kind, lesion) for t, kind in times if math.isfinite(t) and t <= end]
    clinical = table.time_to_size(patient.clinical_size_cells)
    out += [(float(clinical[r]), "clinical_size", int(table.id[r])) for r in range(1, len(table))
            if math.isfinite(clinical[r]) and clinical[r] <= end]
    return sorted(out)


def test_an_untreated_history_tells_each_founders_own_columns() -> None:
    """Untreated (one row per lesion), the events are the founders' columns as they are."""
    for cancer in ("colorectal", "breast", "nsclc"):
        model = load_model(cancer)
        for index in range(15):
            patient = simulate_patient(model, patient_generator(SEED, index), YEARS * 365.25)
            assert np.all(patient.lesions.first_segments())
            told = sorted((e.time, e.kind, e.lesion) for e in lesion_events(patient)
                          if e.lesion > 0)
            assert told == _founders_reference(patient)


def test_the_command_line_and_the_page_say_the_same_sentences() -> None:
    """The patient page's sentence of each lesion event is the command line's (capitalised):
    one wording (:class:`metastasis.results.words.EventWords`)."""
    model = load_model("colorectal")
    labels = dict(zip(model.site_names, model.site_labels, strict=True))
    for course in _courses()[:10]:
        patient = course.patient
        cli, _ = clinical_story.disease_lines(patient, model, all_events=True)
        events = patient.events()
        page = [text for event, text in zip(events, sentences(patient, model, labels, events),
                                            strict=True)
                if event.kind not in TOTAL_KINDS and event.lesion >= 0]
        assert [line.text[:1].upper() + line.text[1:] for line in cli] == page


def test_a_resistant_clone_is_told_in_words() -> None:
    """A clone that survived a drug is named after the lesion it came from."""
    model = load_model("colorectal")
    told = 0
    for course in _courses():
        words = EventWords(course.patient, model)
        for event in lesion_events(course.patient):
            if event.kind == CLONE:
                parent = "the primary" if event.parent == 0 else f"metastasis #{event.parent}"
                text = words.sentence(event)
                assert text.startswith(f"a drug-resistant clone of {parent}")
                assert f"metastasis #{event.lesion}" in text
                assert event.route == ""  # the clone made no journey
                told += 1
    assert told > 0, "no resistant clone in the cohort to tell"


def test_the_deposits_by_organ_add_up_to_those_present_and_every_surface_shows_them() -> None:
    """The true state at diagnosis by organ and state counts every distant deposit
    (distant lymph nodes included: they are M1) once, so the organs add up to the
    diagnosis's ``metastases_present``; the command line and the page say the same lines."""
    from metastasis.clinical import words
    from metastasis.web.clinical_view import course_payload

    model = load_model("colorectal")
    labels = dict(zip(model.site_names, model.site_labels, strict=True))
    checked = 0
    for course in _courses():
        dx = course.diagnosis
        if dx is None:
            continue
        present = course.present_at_diagnosis()
        assert sum(sum(states.values()) for states in present.values()) == dx.metastases_present
        assert not {model.site_names[model.primary_site], "regional_lymph_nodes"} & set(present)
        lines = words.present_by_site(course, labels)
        assert course_payload(course, labels, screening=False)["diagnosis"][
            "present_by_site"] == lines
        story = "\n".join(clinical_story.tell(course, model, load_clinical(), years=YEARS)
                          .lines())
        assert all(f"  {line}" in story for line in lines)
        checked += bool(present)
    assert checked > 0
