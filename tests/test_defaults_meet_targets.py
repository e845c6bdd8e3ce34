"""The registry targets the shipped defaults meet stay met, on a seed no fit used.

The README's validation table says which targets each cancer type meets on the validation
seed (2026, 2,000 patients a type).  Here the same defaults run on a fresh seed (2027:
neither a calibration nor the validation used it), 400 patients a type, and each target
listed below must still be within
reach: its interval at confidence 1 - alpha / k reaches the acceptable range (alpha = 0.05,
Bonferroni over the k targets of the test), so that a test of many targets keeps its family
error at alpha.  A change to the model that breaks a met target fails here; a target newly
met is added here with the README's table.
"""

from __future__ import annotations

import functools

import pytest

from metastasis.api import load_model
from metastasis.calibration.targets import load_targets
from metastasis.calibration.validation import Validation, measure, validate
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments

pytestmark = pytest.mark.slow

SEED = 2027
PATIENTS = 400
ALPHA = 0.05

MET: dict[str, tuple[str, ...]] = {
    "colorectal": (
        "distant_at_diagnosis", "liver_at_diagnosis", "lungs_of_metastatic",
        "peritoneum_of_metastatic", "stage_II_share", "stage_III_share", "survival_1y_I",
        "survival_1y_II", "survival_1y_III", "survival_1y_IV", "survival_5y_I", "survival_5y_II",
        "survival_5y_III",
        "median_treated_IV", "median_all_IV", "median_untreated_IV",
    ),
    "pancreatic": (
        "liver_at_diagnosis", "liver_of_metastatic", "distant_at_diagnosis", "median_treated_IV",
        "median_untreated_IV",
    ),
    "nsclc": (
        "liver_at_diagnosis", "brain_at_diagnosis", "distant_at_diagnosis", "survival_5y_I",
        "survival_1y_IV", "survival_5y_II",
        "survival_5y_III", "survival_5y_IV", "median_treated_IV", "median_all_IV",
        "median_untreated_IV",
    ),
    "prostate": (
        "bone_of_metastatic", "distant_at_diagnosis", "survival_5y_IV", "median_treated_IV",
    ),
    "breast": (
        "stage_I_share", "stage_II_share", "distant_at_diagnosis", "survival_5y_I",
        "survival_5y_II", "survival_5y_III", "survival_5y_IV",
    ),
    "renal_cell": (
        "bone_of_metastatic", "distant_at_diagnosis", "median_treated_IV", "median_untreated_IV",
    ),
    "gastric": (
        "distant_at_diagnosis", "survival_5y_IV", "median_untreated_IV",
    ),
    "melanoma": (
        "stage_I_share", "stage_II_share", "distant_at_diagnosis", "survival_5y_II",
        "survival_5y_III",
    ),
}
"""Per cancer type, the targets its defaults meet on the validation seed at 2,000 patients a
type (the README's table), whose met status this test holds on a fresh seed."""


@functools.cache
def _validation(cancer: str) -> Validation:
    targets = list(load_targets()[cancer].values())
    return validate(load_model(cancer), load_clinical(), load_treatments(), targets,
                    patients=PATIENTS, seed=SEED)


def test_every_type_is_listed() -> None:
    assert set(MET) == set(load_targets())
    for cancer, names in MET.items():
        assert set(names) <= set(load_targets()[cancer]), cancer


@pytest.mark.parametrize("cancer", sorted(MET))
def test_met_targets_stay_within_reach_on_a_fresh_seed(cancer: str) -> None:
    k = sum(len(names) for names in MET.values())
    confidence = 1.0 - ALPHA / k
    validation = _validation(cancer)
    targets = load_targets()[cancer]
    for name in MET[cancer]:
        check = measure(validation.cohorts, targets[name], confidence)
        low, high = targets[name].acceptable
        assert check.verdict != "no data", (name, check.note)
        assert check.lower <= high and check.upper >= low, (
            name, check.estimate, (check.lower, check.upper), (low, high))
