"""The guide's clinical claims, as properties of the default models (seeded, alpha = 0.001).

Each cohort is a seeded set of whole clinical stories (`simulate_course`); comparisons of
two arms use the same patients (common random numbers), so a paired test is the right one.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy import stats

from metastasis.api import load_model
from metastasis.clinical.cohort import ClinicalCohort, compare, run_clinical_cohort
from metastasis.clinical.course import Arm, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.errors import ModelError

ALPHA = 0.001
SEED = 2026
YEARS = 20.0
DIAGNOSED = 800
"""Patients of the cohorts that end at diagnosis (claims about stage at diagnosis: cheap)."""
FOLLOWED = 300
"""Patients of the cohorts followed to death or the horizon (claims about survival)."""


@cache
def _knowledge():
    return load_clinical(), load_treatments()


@cache
def _cohort(cancer: str, screening: bool, follow_up: bool = True) -> ClinicalCohort:
    clinical, treatments = _knowledge()
    arm = Arm(name="screening" if screening else "no screening", screening=screening,
              follow_up=follow_up)
    return run_clinical_cohort(load_model(cancer), clinical, treatments,
                               FOLLOWED if follow_up else DIAGNOSED, SEED, YEARS, arm)


def _at_diagnosis(cancer: str, screening: bool) -> ClinicalCohort:
    return _cohort(cancer, screening, follow_up=False)


@pytest.mark.slow
def test_screening_lowers_the_share_with_metastases_at_diagnosis() -> None:
    """Colonoscopy screening finds colorectal cancers earlier, so fewer patients already
    carry distant deposits when diagnosed: paired per-patient difference (screening minus
    none) below zero, one-sided Wilcoxon signed-rank test."""
    none, screened = _at_diagnosis("colorectal", False), _at_diagnosis("colorectal", True)
    a = (none.patients["metastases_present"] > 0).to_numpy(dtype=float)
    b = (screened.patients["metastases_present"] > 0).to_numpy(dtype=float)
    assert a.sum() >= 20, "too few patients with metastases at diagnosis to test"
    assert b.mean() < a.mean()
    assert stats.wilcoxon(b - a, alternative="less", zero_method="wilcox").pvalue < ALPHA
    assert (screened.patients["pathway"] == "screening").sum() > 0


@pytest.mark.slow
def test_screening_does_not_shorten_lives_and_compare_reports_it() -> None:
    """The comparison's restricted mean lifetime from onset (free of lead-time bias) is not
    lower with screening: its 95 % interval's upper end is above zero."""
    differences = {d.measure: d for d in compare(_cohort("colorectal", False),
                                                 _cohort("colorectal", True))}
    lifetime = differences["restricted mean lifetime from onset (years)"]
    assert lifetime.high >= 0.0
    metastases = differences["metastases present at diagnosis"]
    assert metastases.difference < 0.0


def test_screening_lowers_the_share_of_distant_stage_diagnoses() -> None:
    """The guide's claim in its own terms: with screening fewer patients are diagnosed with
    distant (M1) disease.  Per patient, distant-stage diagnosis is 0 or 1 in each arm; the
    paired difference (screening minus none) is tested below zero with a one-sided
    Wilcoxon signed-rank test (on 0/1 pairs, McNemar's test) at alpha = 0.001."""
    def distant(cohort: ClinicalCohort) -> np.ndarray:
        return (cohort.patients["summary_stage"] == "distant").to_numpy(dtype=float)

    a = distant(_at_diagnosis("colorectal", False))
    b = distant(_at_diagnosis("colorectal", True))
    assert a.sum() >= 40, "too few distant-stage diagnoses to test"
    assert b.mean() < a.mean()
    assert stats.wilcoxon(b - a, alternative="less", zero_method="wilcox").pvalue < ALPHA


def _stage(frame, name: str):
    part = frame[frame["diagnosed"] & (frame["summary_stage"] == name)]
    assert len(part) >= 40, f"too few {name}-stage patients to test ({len(part)})"
    return part


@pytest.mark.parametrize(("worse", "better"), [("regional", "localized"),
                                               ("distant", "regional")])
def test_survival_falls_with_stage(worse: str, better: str) -> None:
    """Survival from diagnosis: distant below regional below localized (the guide: spread
    found late is harder to treat), each step a one-sided log-rank test (lifelines) at
    alpha = 0.001, Bonferroni over the two steps."""
    from lifelines.statistics import logrank_test

    frame = _cohort("colorectal", False).patients
    low, high = _stage(frame, worse), _stage(frame, better)
    result = logrank_test(low["survival_days"], high["survival_days"],
                          event_observed_A=low["died"], event_observed_B=high["died"])
    assert low["died"].mean() > high["died"].mean()
    assert result.p_value / 2 < ALPHA / 2


def test_node_involvement_goes_with_a_higher_stage() -> None:
    """Every node-positive patient without distant spread is stage III, above every
    node-negative one (stages I-II)."""
    frame = _at_diagnosis("colorectal", False).patients
    frame = frame[frame["diagnosed"] & (frame["m"] == "M0")]
    positive = frame[frame["n"] != "N0"]
    negative = frame[frame["n"] == "N0"]
    assert len(positive) > 0 and len(negative) > 0
    assert set(positive["stage_group"]) == {"III"}
    assert set(negative["stage_group"]) <= {"I", "II"}


@pytest.mark.parametrize("cancer", ["colorectal", "breast", "nsclc"])
def test_a_diagnosis_is_named_after_the_primary(cancer: str) -> None:
    """Biopsy confirms the primary's type, wherever the tissue came from: every diagnosis
    name carries the cancer type's name, and every lesion has the primary's type."""
    clinical, treatments = _knowledge()
    model = load_model(cancer)
    named = 0
    for index in range(40):
        result = simulate_course(model, clinical, treatments, SEED, index, YEARS,
                                 Arm(follow_up=False))
        if result.diagnosis is None:
            continue
        named += 1
        assert model.naming in result.diagnosis.name
        assert result.diagnosis.confirmed
        assert result.patient.cancer == cancer
    assert named > 0


def test_arms_with_identical_care_do_not_differ() -> None:
    """Common random numbers: the same care on the same patients gives zero differences."""
    clinical, treatments = _knowledge()
    model = load_model("colorectal")
    a = run_clinical_cohort(model, clinical, treatments, 30, SEED, YEARS, Arm(name="A"))
    b = run_clinical_cohort(model, clinical, treatments, 30, SEED, YEARS, Arm(name="B"))
    for difference in compare(a, b):
        assert difference.difference == 0.0
    assert np.array_equal(a.patients["death_day"].to_numpy(), b.patients["death_day"].to_numpy(),
                          equal_nan=True)


def test_a_clinical_cohort_run_in_chunks_is_the_cohort_run_at_once() -> None:
    """Patient i depends only on (seed, i): chunks joined in any order equal one run."""
    clinical, treatments = _knowledge()
    model = load_model("colorectal")
    whole = run_clinical_cohort(model, clinical, treatments, 12, SEED, YEARS)
    parts = [
        run_clinical_cohort(model, clinical, treatments, 5, SEED, YEARS, start=7),
        run_clinical_cohort(model, clinical, treatments, 7, SEED, YEARS, start=0),
    ]
    joined = ClinicalCohort.concat(parts)
    assert joined.patients.equals(whole.patients)
    with pytest.raises(ModelError):
        ClinicalCohort.concat([parts[0], parts[0]])
