"""The guide's claims, as properties of the default models.

Each test simulates a seeded cohort of the default knowledge base and checks one claim the
guide makes, with a one-sided binomial test at alpha = 0.001 so the verdict is reproducible.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import numpy as np
import pytest
from scipy import stats

from metastasis.api import load_model, run_patient
from metastasis.results.patient import PatientResult

ALPHA = 0.001
SEED = 2026


@cache
def _cohort(cancer: str, patients: int, years: float) -> tuple[PatientResult, ...]:
    model = load_model(cancer)
    return tuple(run_patient(model, SEED, i, years) for i in range(patients))


def _more_than_half(successes: int, trials: int) -> float:
    return stats.binomtest(successes, trials, 0.5, alternative="greater").pvalue


@pytest.mark.parametrize(
    ("cancer", "patients", "years"),
    [("colorectal", 1500, 10.0), ("pancreatic", 150, 8.0), ("gastric", 300, 10.0)],
)
def test_gut_cancers_reach_the_liver_first_most_often(
    cancer: str, patients: int, years: float
) -> None:
    """Portal drainage: among patients with a metastasis in an organ, the liver is the first
    organ in more than half (binomial, H0: share <= 1/2) and more often than any other."""
    firsts = Counter(
        first[1]
        for patient in _cohort(cancer, patients, years)
        if (first := patient.first_organ_metastasis()) is not None
    )
    trials = sum(firsts.values())
    assert trials >= 50, f"too few metastatic patients ({trials}) for the test to have power"
    assert firsts.most_common(1)[0][0] == "liver", firsts
    assert _more_than_half(firsts["liver"], trials) < ALPHA, firsts


def test_nearly_all_shed_cells_die_in_circulation() -> None:
    """Of the cells a primary sheds, over 99 % die before stopping anywhere: in the closed
    form for every cancer type, and in a simulated colorectal cohort's accounting."""
    for cancer in ("colorectal", "pancreatic", "gastric", "breast", "nsclc", "prostate",
                   "melanoma", "renal_cell"):
        model = load_model(cancer)
        primary = model.primary_site
        assert model.transit_death_probability[primary].sum() > 0.99, cancer
    shed = died = 0
    for patient in _cohort("colorectal", 1500, 10.0):
        totals = patient.accounting.totals()
        shed += totals["shed"]
        died += totals["died_in_circulation"]
    assert shed > 1e9
    assert died / shed > 0.99


def _nodes_first(patient: PatientResult) -> bool | None:
    """Whether the regional nodes were involved before a distant organ was.

    A node is *involved* once a tumour deposit has settled in it (the founder of a future
    node metastasis: pathology would call the node positive, from micrometastasis on); an
    organ once a metastasis grows there (clinically, distant spread). None when no distant
    organ metastasis grew."""
    first = patient.first_organ_metastasis()
    if first is None:
        return None
    table = patient.lesions
    names = np.array(patient.site_names)[table.site]
    nodes = table.arrival[names == "regional_lymph_nodes"]
    return bool(nodes.size and nodes.min() < first[0])


@pytest.mark.parametrize(("cancer", "patients", "years"),
                         [("colorectal", 1500, 10.0), ("breast", 500, 12.0)])
def test_regional_nodes_are_involved_before_distant_organs_in_most_patients(
    cancer: str, patients: int, years: float
) -> None:
    """Among patients whose cancer grew in a distant organ, the regional nodes were involved
    first in more than half (binomial, H0: share <= 1/2)."""
    verdicts = [v for p in _cohort(cancer, patients, years) if (v := _nodes_first(p)) is not None]
    assert len(verdicts) >= 50, f"too few metastatic patients ({len(verdicts)})"
    assert _more_than_half(sum(verdicts), len(verdicts)) < ALPHA, (sum(verdicts), len(verdicts))


def test_some_patients_carry_micrometastases_while_the_primary_is_under_one_centimetre() -> None:
    """Early spread: in some patients a founder of a future metastasis has already settled
    while the primary holds fewer than 1e9 cells (about 1 cm^3). H0: no such patient in the
    population is rejected when the share observed has a Clopper-Pearson lower bound > 0."""
    early = 0
    cohort = _cohort("colorectal", 1500, 10.0)
    for patient in cohort:
        table = patient.lesions
        one_cm = table.time_to_size(1e9)[0]
        early += bool(np.any(table.arrival[1:] < one_cm))
    assert early > 0
    low = stats.binomtest(early, len(cohort)).proportion_ci(1 - ALPHA).low
    assert low > 0.0
