"""A primary that is never noticed (``unnoticed_primary_share``).

A listed type's patient draws, aside from every other draw, whether the primary tumour ever
causes a symptom the patient acts on; one who does not is found from the spread.  The lot
must be as often as the share says, move nothing else of the patient (common random
numbers), leave the types not listed untouched, and be refused by name when it is not a
probability.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cache

import pytest
from scipy import stats

from metastasis.api import load_model
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import clinical_from_dict, load_clinical
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.symptoms import draw_symptom_thresholds, primary_unnoticed
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.seeds import clinical_generator
from metastasis.errors import ModelError

SEED = 23
ALPHA = 0.001
"""Significance of the binomial test of the share (seeded, so it does not flake)."""


def _with_share(cancer: str, share: float | None) -> ClinicalKnowledge:
    raw = load_clinical().model_dump()
    shares = raw["unnoticed_primary_share"]
    shares.pop(cancer, None)
    if share is not None:
        shares[cancer] = {"value": share, "source": "test"}
    return clinical_from_dict(raw)


def test_the_shipped_melanoma_share_is_drawn_as_often_as_it_says() -> None:
    clinical = load_clinical()
    share = clinical.unnoticed_primary_share["melanoma"].value
    n = 4000
    unnoticed = sum(primary_unnoticed(clinical, "melanoma", clinical_generator(SEED, i))
                    for i in range(n))
    assert stats.binomtest(unnoticed, n, share).pvalue > ALPHA
    assert not any(primary_unnoticed(clinical, "colorectal", clinical_generator(SEED, i))
                   for i in range(200))  # a type not listed: nobody


@pytest.mark.parametrize("cancer", ["melanoma", "colorectal"])
def test_the_lot_moves_no_other_draw(cancer: str) -> None:
    """With a share of 1 every primary threshold is infinite and every other threshold, and
    the generator afterwards, is the patient's own without the entry."""
    model = load_model(cancer)
    never, unlisted = _with_share(cancer, 1.0), _with_share(cancer, None)
    for index in range(30):
        a, b = clinical_generator(SEED, index), clinical_generator(SEED, index)
        with_lot = draw_symptom_thresholds(never, model, a)
        without = draw_symptom_thresholds(unlisted, model, b)
        assert a.random() == b.random()
        assert [t.name for t in with_lot] == [t.name for t in without]
        for drawn, own in zip(with_lot, without, strict=True):
            if drawn.kind == "primary":
                assert drawn.cells == math.inf and math.isfinite(own.cells)
            else:
                assert drawn == own


@cache
def _melanoma_courses(share: float | None, patients: int = 120) -> tuple[ClinicalResult, ...]:
    clinical, treatments = _with_share("melanoma", share), load_treatments()
    model = load_model("melanoma")
    return tuple(simulate_course(model, clinical, treatments, SEED, index, 30.0,
                                 Arm(follow_up=False)) for index in range(patients))


def test_a_primary_never_noticed_is_found_from_its_spread() -> None:
    """Without the share the changing mole brings almost every melanoma to a doctor at stage
    I or II; with every primary unnoticed none is, and the diagnoses come from the spread,
    at stage III and IV, the registries' melanomas that present in the nodes or beyond."""
    noticed = [r.diagnosis for r in _melanoma_courses(0.0) if r.diagnosis is not None]
    unnoticed = [r.diagnosis for r in _melanoma_courses(1.0) if r.diagnosis is not None]
    mole = "a changing mole"
    assert sum(d.trigger == mole for d in noticed) > 0.9 * len(noticed)
    assert not any(d.trigger == mole for d in unnoticed)
    groups = Counter(d.stage.group for d in unnoticed)
    assert groups["III"] + groups["IV"] > 0.5 * len(unnoticed)
    assert Counter(d.stage.group for d in noticed)["IV"] == 0


def test_everyone_else_is_the_same_patient() -> None:
    """Patients whose lot says 'noticed' have the same course with the shipped share as with
    none: the lot is drawn aside."""
    shipped, unlisted = _melanoma_courses(0.05), _melanoma_courses(None)
    clinical = load_clinical()
    same = 0
    for index, (a, b) in enumerate(zip(shipped, unlisted, strict=True)):
        if primary_unnoticed(clinical, "melanoma", clinical_generator(SEED, index)):
            continue
        assert a.diagnosis == b.diagnosis and a.events == b.events
        same += 1
    assert same > 100


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, "often"])
def test_a_share_that_is_not_a_probability_is_refused_by_name(bad: object) -> None:
    raw = load_clinical().model_dump()
    raw["unnoticed_primary_share"]["melanoma"] = {"value": bad, "source": "test"}
    with pytest.raises(ModelError, match="unnoticed_primary_share"):
        clinical_from_dict(raw)

