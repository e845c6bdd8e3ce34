"""Immune memory (``memory_years`` of an immunotherapy).

In a responder the immune kill goes on, at the course's interval, for ``memory_years``
after the last dose; a non-responder has none, and a therapy without it stops with the last
dose.  Everything up to the last dose is the same course either way, and the memory keeps
responders alive who would otherwise die of the cells that woke from dormancy after it.
"""

from __future__ import annotations

import math
from functools import cache

import pytest

from metastasis.api import load_model
from metastasis.cli.clinical_story import treatment_lines
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import clinical_from_dict, load_clinical
from metastasis.clinical.treatment import IMMUNE_MEMORY
from metastasis.clinical.treatment_schema import (
    TreatmentKnowledge,
    load_treatments,
    treatments_from_dict,
)
from metastasis.errors import ModelError
from metastasis.units import DAYS_PER_YEAR

SEED = 5
PATIENTS = 160
THERAPY = "nivolumab_ipilimumab"
THERAPY_LABEL = "nivolumab + ipilimumab"
INTERVAL_DAYS = 21.0
"""The interval of the metastatic melanoma protocol's nivolumab + ipilimumab."""


def _treatments(memory_years: float | None) -> TreatmentKnowledge:
    raw = load_treatments().model_dump(mode="json")
    entry = raw["therapies"][THERAPY]
    entry.pop("memory_years", None)
    if memory_years is not None:
        entry["memory_years"] = {"value": memory_years, "source": "test"}
    return treatments_from_dict(raw)


@cache
def _courses(memory_years: float | None) -> tuple[ClinicalResult, ...]:
    """Melanomas whose primary is never noticed: most are found at stage III or IV."""
    raw = load_clinical().model_dump()
    raw["unnoticed_primary_share"]["melanoma"] = {"value": 1.0, "source": "test"}
    clinical, model = clinical_from_dict(raw), load_model("melanoma")
    treatments = _treatments(memory_years)
    return tuple(simulate_course(model, clinical, treatments, SEED, index, 30.0,
                                 Arm(years_after_diagnosis=6.0)) for index in range(PATIENTS))


def _course_events(result: ClinicalResult) -> list:
    return [e for e in result.treatment if e.therapy == THERAPY]


def _responded(result: ClinicalResult) -> bool:
    return any(e.outcome == "responded" for e in _course_events(result))


def test_a_responder_is_treated_by_immune_memory_after_the_last_dose() -> None:
    responders = [r for r in _courses(5.0) if _responded(r)]
    assert len(responders) >= 10
    intervals = int(5.0 * DAYS_PER_YEAR // INTERVAL_DAYS)
    for result in responders:
        events = _course_events(result)
        doses = [e for e in events if e.outcome in ("responded", "given")]
        memory = [e for e in events if e.outcome == IMMUNE_MEMORY]
        last_dose = max(e.day for e in doses)
        assert all(e.day > last_dose for e in memory)
        assert all("after the last dose" in e.description for e in memory)
        days = [e.day for e in memory]
        assert days == pytest.approx([last_dose + INTERVAL_DAYS * (j + 1)
                                      for j in range(len(days))])
        # every interval, unless the history ended first
        end = result.death_day if result.death_day is not None else result.patient.end_time
        assert len(memory) == intervals or end < last_dose + INTERVAL_DAYS * intervals
    assert any(len(_course_events(r)) > 35 + intervals // 2 for r in responders)


def test_non_responders_and_therapies_without_memory_have_none() -> None:
    for result in _courses(5.0):
        if not _responded(result):
            assert not any(e.outcome == IMMUNE_MEMORY for e in _course_events(result))
    assert not any(e.outcome == IMMUNE_MEMORY for r in _courses(None) for e in _course_events(r))


def test_the_course_up_to_the_last_dose_is_the_same() -> None:
    """The memory only adds intervals after the last dose: every patient's diagnosis and the
    treatment story before the first interval of memory are the same without it."""
    for with_memory, without in zip(_courses(5.0), _courses(None), strict=True):
        assert with_memory.diagnosis == without.diagnosis
        memory_days = [e.day for e in with_memory.treatment if e.outcome == IMMUNE_MEMORY]
        first = min(memory_days, default=math.inf)
        before = [e for e in with_memory.treatment if e.day < first]
        assert before == [e for e in without.treatment if e.day < first]


def test_memory_keeps_responders_alive() -> None:
    """Without memory the cells that wake after the last dose kill responders within a few
    years; with five years of it, more of them are alive five years after diagnosis."""
    def alive_at_five_years(courses: tuple[ClinicalResult, ...]) -> int:
        alive = 0
        for result in courses:
            if result.diagnosis is None or not _responded(result):
                continue
            lived = (math.inf if result.death_day is None
                     else result.death_day - result.diagnosis.day)
            alive += lived > 5.0 * DAYS_PER_YEAR
        return alive

    assert alive_at_five_years(_courses(5.0)) > alive_at_five_years(_courses(None)) + 3


@pytest.mark.parametrize("bad", [0.0, -1.0, 25.0, math.nan, "long"])
def test_a_memory_out_of_range_is_refused_by_name(bad: object) -> None:
    raw = load_treatments().model_dump(mode="json")
    raw["therapies"][THERAPY]["memory_years"] = {"value": bad, "source": "test"}
    with pytest.raises(ModelError, match="memory_years"):
        treatments_from_dict(raw)


def test_the_short_story_tells_the_memory_in_two_lines() -> None:
    """A responder's dozens of intervals of memory: the first in full, then one line for the
    rest (as the cycles of a course); the full story keeps every interval."""
    result = next(r for r in _courses(5.0)
                  if sum(e.outcome == IMMUNE_MEMORY for e in _course_events(r)) > 10)
    memory = [e for e in _course_events(result) if e.outcome == IMMUNE_MEMORY]
    short = [line for line in treatment_lines(result) if "immune memory" in line.text
             and THERAPY_LABEL in line.text]
    assert len(short) == 2
    assert "interval 1 of" in short[0].text
    assert f"intervals 2 to {len(memory)} of" in short[1].text
    full = [line for line in treatment_lines(result, all_events=True)
            if "immune memory, interval " in line.text and THERAPY_LABEL in line.text]
    assert len(full) == len(memory)
