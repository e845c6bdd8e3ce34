"""Emergency admissions: a patient with symptoms who would die before the work-up.

Without the rule such a patient dies undiagnosed, so the registries' worst cases (a third of
lung cancers in England first found after an emergency presentation) were missing from the
model's stage shares and from the survival of metastatic patients.  With it
(``workup.emergency_days_before_death``), the patient is diagnosed an exponential time of
that mean before the death, never before the symptom that sent them to a doctor.  Checked
here: the admissions found in a cohort happen between the symptom and the death and leave
the untreated death where it was; no other patient's course moves (the draw is on a side
stream); without the rule the same patients die undiagnosed; the lead follows its
exponential law (Kolmogorov-Smirnov at alpha = 0.001); bad input is refused naming the
field; the story says how the patient was diagnosed.
"""

from __future__ import annotations

import functools

import pytest
from scipy import stats
from typer.testing import CliRunner

from metastasis.api import load_model
from metastasis.cli.app import app
from metastasis.clinical import course as course_module
from metastasis.clinical.course import (
    EMERGENCY,
    REPEAT_BIOPSY_DAYS,
    Arm,
    ClinicalResult,
    simulate_course,
)
from metastasis.clinical.loader import clinical_from_dict, load_clinical
from metastasis.clinical.observe import CROSSING_TOLERANCE_DAYS
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.symptoms import SymptomThreshold
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.seeds import clinical_generator
from metastasis.errors import ModelError

ALPHA = 0.001
SEED = 20261207
CANCER = "gastric"  # about a tenth of gastric patients die within the work-up delay
PATIENTS = 160
YEARS = 30.0


@functools.cache
def _clinical(emergency: float | None) -> ClinicalKnowledge:
    raw = load_clinical().model_dump(mode="json")
    if emergency is None:
        raw["workup"].pop("emergency_days_before_death", None)
    else:
        raw["workup"]["emergency_days_before_death"] = {"value": emergency,
                                                         "source": "a test value"}
    return clinical_from_dict(raw)


@functools.cache
def _cohort(emergency: float | None, treat: bool) -> tuple[ClinicalResult, ...]:
    model, treatments = load_model(CANCER), load_treatments()
    arm = Arm() if treat else Arm(name="untreated", treat=False)
    return tuple(simulate_course(model, _clinical(emergency), treatments, SEED, i, YEARS, arm)
                 for i in range(PATIENTS))


def _first_workup_symptom(result: ClinicalResult, clinical: ClinicalKnowledge) -> float:
    workup = {spec.label for spec in clinical.symptoms.values() if spec.workup}
    for primary in clinical.primary_symptoms.values():
        workup |= {spec.label for spec in primary.values() if spec.workup}
    return min(e.day for e in result.events if e.kind == "symptom" and e.label in workup)


def test_the_default_rule_is_sourced() -> None:
    rule = load_clinical().workup.emergency_days_before_death
    assert rule is not None and rule.value > 0 and "Elliss-Brookes" in rule.source


def test_an_emergency_comes_between_the_symptom_and_the_untreated_death() -> None:
    clinical = _clinical(30.0)
    with_rule, without = _cohort(30.0, treat=False), _cohort(None, treat=False)
    emergencies = 0
    for mine, before in zip(with_rule, without, strict=True):
        dx = mine.diagnosis
        if dx is None or dx.pathway != EMERGENCY:
            assert repr(mine.events) == repr(before.events)  # nobody else moves
            assert mine.diagnosis == before.diagnosis
            continue
        emergencies += 1
        assert before.diagnosis is None and before.death_day is not None  # died undiagnosed
        # untreated: the same death, found by a search that starts elsewhere
        assert mine.death_day == pytest.approx(before.death_day, abs=CROSSING_TOLERANCE_DAYS)
        assert _first_workup_symptom(mine, clinical) <= dx.day <= mine.death_day
        if not dx.confirmed:  # biopsies cut short by the death: diagnosed on imaging
            assert dx.day + REPEAT_BIOPSY_DAYS > mine.death_day
        assert dx.trigger in {e.label for e in mine.events if e.kind == "symptom"}
    assert emergencies >= 5


def test_treated_cohorts_move_only_the_emergency_patients() -> None:
    """Under standard care too, a patient not admitted as an emergency lives exactly the
    course they lived without the rule (the lead is drawn on a side stream)."""
    moved = 0
    for mine, before in zip(_cohort(30.0, treat=True), _cohort(None, treat=True),
                            strict=True):
        if mine.diagnosis is not None and mine.diagnosis.pathway == EMERGENCY:
            moved += 1
            assert before.diagnosis is None
            continue
        assert repr(mine.events) == repr(before.events)
        assert repr(mine.treatment) == repr(before.treatment)
        assert mine.death_day == before.death_day
    assert moved >= 5


def test_without_the_rule_nobody_is_admitted_as_an_emergency() -> None:
    assert not any(r.diagnosis is not None and r.diagnosis.pathway == EMERGENCY
                   for r in _cohort(None, treat=False))


def test_the_lead_before_death_is_exponential_with_the_rule_s_mean() -> None:
    """With the symptom long before the death (no clamp), death minus admission is
    Exp(mean) over patients: Kolmogorov-Smirnov at alpha = 0.001."""
    mean, death = 30.0, 10_000.0
    symptom = SymptomThreshold(name="pain", label="pain", sites=None, cells=1.0,
                               workup=True, neurological=False, kind="general")
    leads = []
    for i in range(2000):
        day, pathway, trigger = course_module._emergency(
            _clinical(mean), [(1000.0, symptom)], death, clinical_generator(SEED, i))
        assert (pathway, trigger) == (EMERGENCY, "pain")
        leads.append(death - day)
    assert stats.kstest(leads, stats.expon(scale=mean).cdf).pvalue > ALPHA
    # the clamp: a symptom a day before the death is the admission day when the lead is longer
    clamped = [course_module._emergency(_clinical(mean), [(death - 1.0, symptom)], death,
                                        clinical_generator(SEED, i))[0] for i in range(200)]
    assert min(clamped) == death - 1.0 and max(clamped) <= death


def test_no_admission_without_a_work_up_symptom_before_the_death() -> None:
    silent = SymptomThreshold(name="x", label="x", sites=None, cells=1.0, workup=False,
                              neurological=False, kind="general")
    late = SymptomThreshold(name="y", label="y", sites=None, cells=1.0, workup=True,
                            neurological=False, kind="general")
    rng = clinical_generator(SEED, 0)
    assert course_module._emergency(_clinical(30.0), [(5.0, silent)], 100.0, rng) is None
    assert course_module._emergency(_clinical(30.0), [(150.0, late)], 100.0, rng) is None


@pytest.mark.parametrize("value", [0.0, -3.0, "soon", 1e9])
def test_bad_input_is_refused_naming_the_field(value: object) -> None:
    raw = load_clinical().model_dump(mode="json")
    raw["workup"]["emergency_days_before_death"] = {"value": value, "source": "a test"}
    with pytest.raises(ModelError, match="emergency_days_before_death"):
        clinical_from_dict(raw)


def test_the_story_says_the_patient_was_admitted_as_an_emergency() -> None:
    index = next(i for i, r in enumerate(_cohort(30.0, treat=True))
                 if r.diagnosis is not None and r.diagnosis.pathway == EMERGENCY)
    # the packaged rule is the one the cohort used (30 days), so the CLI tells the same story
    assert load_clinical().workup.emergency_days_before_death.value == 30.0
    out = CliRunner().invoke(app, ["simulate", "--cancer", CANCER, "--seed", str(SEED),
                                   "--patient", str(index), "--years", f"{YEARS:g}"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "through an emergency admission (too ill to wait for the work-up)" in text
    assert "admitted as an emergency" in text
