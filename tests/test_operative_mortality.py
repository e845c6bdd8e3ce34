"""Operative deaths: the audits' 30-day postoperative mortality, by cancer type.

Checked: an operation kills at its rate (binomial, alpha = 0.001), the death falls within
30 days of it and ends the history there, with its cause and its event; patients the
operation spares live exactly the course they live without operative mortality (the draws
come from a stream of their own); bad input is refused naming the field.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from scipy import stats

from metastasis.api import load_model
from metastasis.clinical.course import Arm, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment import OPERATIVE_WINDOW_DAYS, POSTOPERATIVE_DEATH
from metastasis.clinical.treatment_schema import (
    TreatmentKnowledge,
    load_treatments,
    treatments_from_dict,
)
from metastasis.errors import ModelError

ALPHA = 0.001
SEED = 7120
SOURCE = "test: a value chosen for this test"
PATIENTS = 240


def with_mortality(cancer: str, value: float | None) -> TreatmentKnowledge:
    """The default treatments with the resection's operative mortality for ``cancer`` set
    (None: no entry)."""
    raw = load_treatments().model_dump(mode="json")
    mortality = raw["therapies"]["resection"]["operative_mortality"]
    mortality.pop(cancer, None)
    if value is not None:
        mortality[cancer] = {"value": value, "source": SOURCE}
    return treatments_from_dict(raw)


@functools.cache
def _stories(value: float | None) -> list[Any]:
    model, clinical = load_model("colorectal"), load_clinical()
    treatments = with_mortality("colorectal", value)
    return [simulate_course(model, clinical, treatments, SEED, i, 20.0, Arm())
            for i in range(PATIENTS)]


def _operation_day(result: Any) -> float | None:
    """The day of the first operation that removed something, if any."""
    done = [e for e in result.treatment if e.modality == "surgery" and e.outcome == "resected"]
    return done[0].day if done else None


def test_an_operation_kills_at_its_rate() -> None:
    p = 0.25
    operated = deaths = 0
    for result in _stories(p):
        day = _operation_day(result)
        if day is None:
            continue
        operated += 1
        if result.cause_of_death == POSTOPERATIVE_DEATH:
            deaths += 1
            assert result.death_day is not None
            assert day <= result.death_day <= day + OPERATIVE_WINDOW_DAYS
            assert result.patient.end_time == pytest.approx(result.death_day)
            assert any(e.outcome.startswith("died ") and "after the operation" in e.outcome
                       for e in result.treatment)
            assert all(e.day <= result.death_day for e in result.events)
    assert operated > 100  # most diagnosed colorectal patients are operated
    assert stats.binomtest(deaths, operated, p).pvalue > ALPHA


def test_spared_patients_live_the_course_without_operative_mortality() -> None:
    """Operative deaths draw from their own stream: a patient the operation spares lives
    exactly the course of a knowledge base without operative mortality."""
    compared = 0
    for risky, safe in zip(_stories(0.25), _stories(None), strict=True):
        assert risky.diagnosis == safe.diagnosis
        if risky.cause_of_death == POSTOPERATIVE_DEATH:
            continue
        compared += 1
        assert (risky.death_day, risky.cause_of_death) == (safe.death_day, safe.cause_of_death)
        assert risky.treatment == safe.treatment
        assert risky.events == safe.events
    assert compared > PATIENTS // 2


def test_the_default_mortalities_are_sourced() -> None:
    resection = load_treatments().therapies["resection"]
    assert resection.operative_mortality  # the audits' figures ship
    for cancer, mortality in resection.operative_mortality.items():
        assert 0.0 < mortality.value < 0.1, cancer
        assert "recalled" in mortality.source, cancer


@pytest.mark.parametrize(("cancer", "value", "field"), [
    ("lymphoma", 0.02, "operative_mortality"),
    ("colorectal", 1.5, "operative_mortality"),
])
def test_bad_operative_mortality_is_refused(cancer: str, value: float, field: str) -> None:
    with pytest.raises((ModelError, ValueError), match=field):
        with_mortality(cancer, value)


def test_no_complication_is_told_of_an_operation_planned_after_death() -> None:
    """The course decides a death from the cancer after laying out the treatment; an
    operation planned after that death was never done, so its operative death is dropped
    (it was kept, and a patient dead of cachexia on day 2,714 'died 7 days after' an
    operation on day 2,745), while the other steps stay, as never given."""
    from metastasis.clinical.treatment import TreatmentEvent, given_before

    operation = TreatmentEvent(2745.0, "surgery", "resection", 3, "surgical resection of "
                               "metastases (1 found)", "resected")
    complication = TreatmentEvent(2745.0, "surgery", "resection", 3,
                                  "surgical resection: complications",
                                  "died 7 days after the operation")
    earlier = TreatmentEvent(100.0, "surgery", "resection", 0,
                             "surgical resection: complications", "died 3 days after the "
                             "operation")
    events = [earlier, operation, complication]
    assert given_before(events, 2713.9) == [earlier, operation]
    assert given_before(events, 2760.0) == events
    assert given_before(events, None) == events
