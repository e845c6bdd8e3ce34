"""A horizon counted from diagnosis: every diagnosed patient is followed the same time.

With a horizon counted from the first cancer cell, a patient diagnosed late was followed
briefly, so a cohort's 5-year survival was unknown or rested on a few patients (issue 11:
"Alive at 5 years 100 %" with less than five years of follow-up).  A clinical course now
looks for a diagnosis within ``years`` of the first cell and follows each diagnosed patient
``Arm.years_after_diagnosis`` more.  Checked here: the process's horizon can be brought
forward exactly (the same draws as a process with that horizon from the start); the
diagnosis does not depend on the follow-up; every diagnosed patient is followed exactly the
follow-up or to death; deaths within five years of diagnosis agree in law between a 5-year
follow-up and a long horizon from the first cell (McNemar's exact test on the same patients,
alpha = 0.001); every surface defaults to five years and refuses bad values naming the
field; and the clinical cohort's 5-year survival is known for every stage.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from metastasis import clinical_cohort
from metastasis.api import DAYS_PER_YEAR, load_model
from metastasis.cli.app import app
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.process import SAMPLING_STEP_DAYS, DiseaseProcess
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.limits import FOLLOW_UP_YEARS

SEED = 404
runner = CliRunner()


@functools.cache
def _knowledge(cancer: str = "colorectal"):  # type: ignore[no-untyped-def]
    return load_model(cancer), load_clinical(), load_treatments()


@functools.cache
def story(index: int, years: float, follow_up: float | None) -> ClinicalResult:
    model, clinical, treatments = _knowledge()
    return simulate_course(model, clinical, treatments, SEED, index, years,
                           Arm(years_after_diagnosis=follow_up))


def _rows(process: DiseaseProcess, end: float) -> dict[str, np.ndarray]:
    table = process.lesion_table(through=end)
    return {"id": table.id, "site": table.site, "arrival": table.arrival, "x0": table.x0,
            "growth_start": table.growth_start}


@pytest.mark.parametrize("index", range(6))
def test_a_shortened_horizon_draws_what_that_horizon_would(index: int) -> None:
    """A process made for 30 years with a piece break at 7.5 years, brought forward to 7.5
    years, is draw for draw the process made for 7.5 years (pieces end on fixed days)."""
    model = _knowledge()[0]
    short_days = 7.5 * DAYS_PER_YEAR
    short = DiseaseProcess(model, patient_generator(SEED, index), short_days)
    long = DiseaseProcess(model, patient_generator(SEED, index), 30 * DAYS_PER_YEAR,
                          piece_break=short_days)
    long.lesion_table(through=5 * SAMPLING_STEP_DAYS)  # read part of it first, as the clinic
    long.shorten_horizon(short_days)
    assert long.horizon == short.horizon
    assert (long.end, long.end_reason) == (short.end, short.end_reason)
    a, b = _rows(long, long.end), _rows(short, short.end)
    for column in a:
        np.testing.assert_array_equal(a[column], b[column], err_msg=column)
    accounting_a = long.finish(patient_index=index, root_seed=SEED).accounting
    accounting_b = short.finish(patient_index=index, root_seed=SEED).accounting
    for column in dataclasses.fields(accounting_a):
        np.testing.assert_array_equal(getattr(accounting_a, column.name),
                                      getattr(accounting_b, column.name), err_msg=column.name)


def test_a_horizon_brought_inside_what_was_sampled_ends_there() -> None:
    model = _knowledge()[0]
    process = DiseaseProcess(model, patient_generator(SEED, 1), 20 * DAYS_PER_YEAR)
    process.lesion_table(through=6 * SAMPLING_STEP_DAYS)
    day = 5.25 * SAMPLING_STEP_DAYS
    process.shorten_horizon(day)
    assert process.end <= day and process.horizon == day
    table = process.lesion_table()
    assert float(table.arrival.max()) <= day
    process.shorten_horizon(30 * DAYS_PER_YEAR)  # a later day changes nothing
    assert process.horizon == day


def test_the_horizon_cannot_move_before_a_treatment() -> None:
    from metastasis.engine.process import Changes

    model = _knowledge()[0]
    process = DiseaseProcess(model, patient_generator(SEED, 2), 20 * DAYS_PER_YEAR)
    process.intervene(3 * SAMPLING_STEP_DAYS, Changes.build(np.array([0]),
                                                            surviving_fraction=0.5))
    with pytest.raises(ValueError, match="last intervention"):
        process.shorten_horizon(2 * SAMPLING_STEP_DAYS)


@pytest.mark.parametrize("index", range(25))
def test_the_diagnosis_does_not_depend_on_the_follow_up(index: int) -> None:
    """The same patient is found on the same day, in the same stage, whatever follow-up."""
    stories = [story(index, 20.0, f) for f in (None, 2.0, FOLLOW_UP_YEARS)]
    found = [s.diagnosis for s in stories]
    if found[0] is None:
        assert all(d is None for d in found)
        # not diagnosed within the 20 years: followed no further, whatever the follow-up
        assert all(s.horizon_days == 20 * DAYS_PER_YEAR for s in stories)
        return
    assert len({(d.day, d.stage, d.name, d.pathway) for d in found}) == 1


@pytest.mark.parametrize("index", range(25))
def test_every_diagnosed_patient_is_followed_the_follow_up_or_to_death(index: int) -> None:
    for follow_up in (2.0, FOLLOW_UP_YEARS):
        result = story(index, 20.0, follow_up)
        if result.diagnosis is None:
            continue
        assert result.years_after_diagnosis == follow_up
        assert result.horizon_days == pytest.approx(
            result.diagnosis.day + follow_up * DAYS_PER_YEAR, abs=1e-9)
        survival = result.survival_from_diagnosis_days
        assert survival is not None and survival <= follow_up * DAYS_PER_YEAR + 1e-9
        if result.death_day is None:
            assert survival == pytest.approx(follow_up * DAYS_PER_YEAR)


def test_deaths_within_five_years_agree_with_a_horizon_from_the_first_cell() -> None:
    """On the same 150 patients, death within five years of diagnosis under a 5-year
    follow-up and under a 40-year horizon from the first cell: the two are exact samples of
    one law, so discordant patients split evenly (McNemar's exact test, alpha = 0.001)."""
    short_only = long_only = compared = 0
    five = 5.0 * DAYS_PER_YEAR
    for index in range(150):
        a = story(index, 20.0, 5.0)
        b = story(index, 40.0, None)
        if a.diagnosis is None or b.diagnosis is None or b.diagnosis.day > 20 * DAYS_PER_YEAR:
            continue
        compared += 1
        dead_a = a.death_day is not None
        dead_b = b.death_day is not None and b.death_day - b.diagnosis.day <= five
        short_only += dead_a and not dead_b
        long_only += dead_b and not dead_a
    assert compared >= 100
    discordant = short_only + long_only
    if discordant:
        assert stats.binomtest(short_only, discordant, 0.5).pvalue > 0.001


def test_a_follow_up_must_be_a_positive_number_of_years() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf"), 151.0, True):
        with pytest.raises(ModelError, match="years after diagnosis"):
            Arm(years_after_diagnosis=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [
    ["simulate", "--follow-up", "0"],
    ["simulate", "--follow-up", "nan"],
    ["cohort", "--patients", "2", "--follow-up", "five"],
    ["cohort", "--patients", "2", "--follow-up", "200"],
])
def test_the_command_line_refuses_a_bad_follow_up(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--follow-up" in result.stderr and "(0, 150]" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_untreated_history_has_no_follow_up_to_set() -> None:
    result = runner.invoke(app, ["simulate", "--untreated", "--follow-up", "3"])
    assert result.exit_code == 2 and "--follow-up" in result.stderr


def test_simulate_follows_five_years_by_default_and_says_so() -> None:
    result = runner.invoke(app, ["simulate", "--seed", str(SEED), "--patient", "3",
                                 "--format", "json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"]["years_after_diagnosis"] == FOLLOW_UP_YEARS
    expected = story(3, 20.0, FOLLOW_UP_YEARS)
    assert document["outcome"]["horizon_days"] == pytest.approx(expected.horizon_days)
    text = runner.invoke(app, ["simulate", "--seed", str(SEED), "--patient", "3",
                               "--follow-up", "2"]).stdout
    assert "then 2 years of follow-up" in text


def test_every_stage_of_a_clinical_cohort_has_its_five_year_survival() -> None:
    """The defect of issue 11: a 10-year horizon from the first cell left 5-year survival
    unknown; with the default follow-up every stage with patients has it."""
    cohort = clinical_cohort("colorectal", 40, seed=SEED, years=10)
    summary = cohort.summary()
    assert summary["years_after_diagnosis"] == FOLLOW_UP_YEARS and summary["diagnosed"] > 0
    for stage, curve in summary["survival_by_stage"].items():
        assert curve["five_year_survival"] is not None, stage
    old = clinical_cohort("colorectal", 40, seed=SEED, years=10, years_after_diagnosis=None)
    assert any(curve["five_year_survival"] is None
               for curve in old.summary()["survival_by_stage"].values())
