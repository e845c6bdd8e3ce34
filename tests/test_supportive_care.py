"""Best supportive care: registries' metastatic patients who get no anti-tumour treatment.

A cancer type's ``[supportive_care]`` share decides, once per patient and from a stream of
its own, whether a patient found with distant metastases (or, with ``stage_shares``, of a
stage without them) is given supportive care only under the default plans.  Checked here:
the share is drawn at its rate (a binomial test at alpha = 0.001), the lot moves no other
draw, without stage shares only M1 patients under the default plan are concerned, with them
exactly the stages named, such a patient's course is exactly the untreated one,
calibration's ``treated`` arm leaves them out, and bad input is refused naming the field.
Also the curative-only surgery rule: no resection after a course that ended in progression.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from metastasis.api import load_model
from metastasis.calibration.targets import Target
from metastasis.calibration.validation import TREATED, patients_of
from metastasis.clinical.course import (
    SUPPORTIVE_CARE,
    SUPPORTIVE_CARE_MEANING,
    Arm,
    simulate_course,
)
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment import draw_traits
from metastasis.clinical.treatment_schema import (
    TreatmentKnowledge,
    load_treatments,
    treatments_from_dict,
)
from metastasis.engine.seeds import clinical_generator
from metastasis.errors import ModelError

ALPHA = 0.001
SEED = 20261207
SOURCE = "test: a value chosen for this test"


@functools.cache
def _treatments() -> TreatmentKnowledge:
    return load_treatments()


@functools.cache
def _clinical() -> ClinicalKnowledge:
    return load_clinical()


def with_share(cancer: str, share: float | None) -> TreatmentKnowledge:
    """The default treatments with ``cancer``'s supportive-care share set (None: no entry)."""
    raw = _treatments().model_dump(mode="json")
    raw["supportive_care"].pop(cancer, None)
    if share is not None:
        raw["supportive_care"][cancer] = {"metastatic_share": {"value": share,
                                                               "source": SOURCE}}
    return treatments_from_dict(raw)


def test_default_shares_are_sourced_and_cover_types_with_plans() -> None:
    treatments = _treatments()
    assert set(treatments.supportive_care) <= set(treatments.plans)
    for cancer, entry in treatments.supportive_care.items():
        assert 0.0 < entry.metastatic_share.value < 1.0, cancer
        assert "calibration-targets" in entry.metastatic_share.source, cancer
    assert treatments.supportive_care_share("breast") == 0.0  # no figure: everyone treated


def test_the_lot_is_drawn_at_its_share() -> None:
    """Binomial: the share of patients given supportive care only is the knowledge base's."""
    n, share = 3000, 0.3
    treatments = with_share("colorectal", share)
    lots = [draw_traits(treatments, "colorectal", clinical_generator(SEED, i))
            .given_supportive_care(share) for i in range(n)]
    assert stats.binomtest(sum(lots), n, share).pvalue > ALPHA


def test_the_lot_moves_no_other_draw() -> None:
    """With or without a share, every other trait is the same and the clinical stream is
    left where it was: the course's later draws (work-up, scans, biopsies) do not move."""
    with_lot, without = with_share("colorectal", 0.5), with_share("colorectal", None)
    lots = 0
    for i in range(40):
        one_rng, two_rng = clinical_generator(SEED, i), clinical_generator(SEED, i)
        one = draw_traits(with_lot, "colorectal", one_rng)
        two = draw_traits(without, "colorectal", two_rng)
        assert not two.given_supportive_care(1.0)  # no shares: never
        lots += one.given_supportive_care(0.5)
        assert (one.mutations, one.responder, one.chemo_surviving_fraction) == (
            two.mutations, two.responder, two.chemo_surviving_fraction)
        assert one_rng.random() == two_rng.random()
    assert 0 < lots < 40  # the test can fail: some patients, not all, drew the lot


def _stories(cancer: str, treatments: TreatmentKnowledge, arm: Arm, n: int) -> list[Any]:
    model = load_model(cancer)
    return [simulate_course(model, _clinical(), treatments, SEED, i, 20.0, arm)
            for i in range(n)]


@functools.cache
def _colorectal_everyone_supportive() -> tuple[list[Any], list[Any], list[Any]]:
    """The same 160 colorectal patients in standard care with a share of 1, left untreated,
    and given the metastatic protocol explicitly."""
    everyone = with_share("colorectal", 1.0)
    n = 160
    standard = _stories("colorectal", everyone, Arm(), n)
    untreated = _stories("colorectal", everyone, Arm(name="untreated", treat=False), n)
    chosen = Arm(name="chosen", protocol=everyone.protocols["colorectal_metastatic"])
    explicit = _stories("colorectal", everyone, chosen, n)
    return standard, untreated, explicit


def test_only_metastatic_patients_get_supportive_care_only() -> None:
    standard, _, _ = _colorectal_everyone_supportive()
    metastatic = [r for r in standard if r.diagnosis and r.diagnosis.stage.m == "M1"]
    others = [r for r in standard if r.diagnosis and r.diagnosis.stage.m == "M0"]
    assert metastatic and others  # the test can fail: both kinds of patient are there
    for result in metastatic:
        assert result.traits.given_supportive_care(1.0)
        assert result.protocol == SUPPORTIVE_CARE
        assert result.treatment == ()
    for result in others:
        assert result.protocol != SUPPORTIVE_CARE
        assert result.treatment  # treated by the plan for their stage


def test_supportive_care_is_the_untreated_course() -> None:
    """Common random numbers: a patient given supportive care only lives exactly the course
    the untreated arm gives the same patient."""
    standard, untreated, _ = _colorectal_everyone_supportive()
    compared = 0
    for one, two in zip(standard, untreated, strict=True):
        if one.protocol != SUPPORTIVE_CARE:
            continue
        compared += 1
        assert one.diagnosis == two.diagnosis
        assert (one.death_day, one.cause_of_death) == (two.death_day, two.cause_of_death)
        assert one.events == two.events
    assert compared > 0


def test_an_explicit_protocol_treats_every_patient() -> None:
    _, _, explicit = _colorectal_everyone_supportive()
    metastatic = [r for r in explicit if r.diagnosis and r.diagnosis.stage.m == "M1"]
    assert metastatic
    assert all(r.protocol != SUPPORTIVE_CARE and r.treatment for r in metastatic)


def test_the_treated_arm_leaves_out_supportive_care() -> None:
    standard = pd.DataFrame({"protocol": ["FOLFOX", SUPPORTIVE_CARE, "surgery", None],
                             "patient_index": [0, 1, 2, 3]})
    cohorts = {"standard care": standard}
    assert patients_of(cohorts, TREATED)["patient_index"].tolist() == [0, 2, 3]
    assert patients_of(cohorts, "standard care") is standard
    target = dict(label="x", statistic="median_survival_months", stage="IV", value=10.0,
                  source=SOURCE)
    assert Target(**target, arm=TREATED).arm == TREATED
    with pytest.raises(ValueError, match="arm: got 'treated'"):  # pydantic wraps it
        Target(label="x", statistic="distant_share", value=0.2, source=SOURCE, arm=TREATED)


@pytest.mark.parametrize(("cancer", "share", "field"), [
    ("lymphoma", 0.3, "supportive_care"),
    ("colorectal", 1.5, "metastatic_share"),
    ("colorectal", -0.1, "metastatic_share"),
])
def test_bad_supportive_care_is_refused(cancer: str, share: float, field: str) -> None:
    raw = _treatments().model_dump(mode="json")
    raw["supportive_care"][cancer] = {"metastatic_share": {"value": share, "source": SOURCE}}
    with pytest.raises(ModelError, match=field):
        treatments_from_dict(raw)


def test_no_curative_resection_after_progression() -> None:
    """Stage IV colorectal patients treated by the default plan: whoever's FOLFOX course
    ended in progressive disease is not resected, and the story says why."""
    treatments = with_share("colorectal", None)  # everyone treated
    stories = _stories("colorectal", treatments, Arm(), 400)
    progressed = resected = 0
    for result in stories:
        if not (result.diagnosis and result.diagnosis.stage.m == "M1"):
            continue
        evaluations = [e for e in result.treatment if e.description.startswith("after ")]
        surgery = [e for e in result.treatment if "resection" in e.description]
        if not evaluations or not surgery:
            continue
        if evaluations[0].outcome.startswith("progressive disease"):
            progressed += 1
            assert surgery[0].outcome.startswith(("not curable: the disease progressed on",
                                                  "not resectable"))
            assert all(e.outcome != "resected" for e in surgery)
        elif surgery[0].outcome == "resected":
            resected += 1
    assert progressed > 0 and resected > 0  # the test can fail: both kinds are there


def _first_supportive_patient(cancer: str, seed: int, years: float) -> int:
    """The first patient index of ``seed`` given supportive care only (searched, not
    hard-coded, so that a change of the model's law does not silently void the test)."""
    model = load_model(cancer)
    for index in range(200):
        result = simulate_course(model, _clinical(), _treatments(), seed, index, years, Arm())
        if result.protocol == SUPPORTIVE_CARE:
            return index
    raise AssertionError("no patient given supportive care only in 200")


def test_every_surface_says_what_supportive_care_means() -> None:
    """The command line and the patient page name the protocol and say what it means."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from metastasis.cli.app import app
    from metastasis.web.app import create_app

    index = _first_supportive_patient("pancreatic", 5, 20.0)
    shown = CliRunner().invoke(app, ["simulate", "--cancer", "pancreatic", "--seed", "5",
                                     "--patient", str(index), "--all-events"])
    assert shown.exit_code == 0, shown.output
    assert f"Treatment: {SUPPORTIVE_CARE}, none aimed at the cancer." in shown.output
    assert f"Protocol: {SUPPORTIVE_CARE}: {SUPPORTIVE_CARE_MEANING}." in shown.output
    with TestClient(create_app()) as client:
        page = client.get("/patient", params={"cancer": "pancreatic", "seed": 5,
                                              "index": index, "years": 20,
                                              "clinical": "true"})
    assert page.status_code == 200
    assert SUPPORTIVE_CARE_MEANING in page.text


def with_stage_shares(cancer: str, metastatic: float, stages: dict[str, float]
                      ) -> TreatmentKnowledge:
    raw = _treatments().model_dump(mode="json")
    raw["supportive_care"][cancer] = {
        "metastatic_share": {"value": metastatic, "source": SOURCE},
        "stage_shares": {k: {"value": v, "source": SOURCE} for k, v in stages.items()},
    }
    return treatments_from_dict(raw)


def test_stage_shares_leave_exactly_their_stages_untreated() -> None:
    """Shares of 1 for stage III and 0 for the metastatic: every stage III patient, and no
    other, is given supportive care only."""
    treatments = with_stage_shares("colorectal", 0.0, {"III": 1.0})
    assert treatments.supportive_care_share("colorectal", "III") == 1.0
    assert treatments.supportive_care_share("colorectal", "II") == 0.0
    assert treatments.supportive_care_share("colorectal") == 0.0
    stories = _stories("colorectal", treatments, Arm(), 120)
    groups = set()
    for result in stories:
        if result.diagnosis is None:
            continue
        stage = result.diagnosis.stage
        groups.add(stage.group)
        if stage.m == "M0" and stage.group == "III":
            assert result.protocol == SUPPORTIVE_CARE and result.treatment == ()
        else:
            assert result.protocol != SUPPORTIVE_CARE
    assert {"II", "III", "IV"} <= groups  # the test can fail: each kind of patient is there


def test_one_lot_decides_every_stage() -> None:
    """The lot is one uniform per patient: whoever is untreated at a stage's share is
    untreated at every larger share, and the shares' rates hold (binomial, alpha 0.001)."""
    treatments = with_stage_shares("colorectal", 0.6, {"I": 0.1, "III": 0.3})
    n = 2000
    traits = [draw_traits(treatments, "colorectal", clinical_generator(SEED, i))
              for i in range(n)]
    shares = [treatments.supportive_care_share("colorectal", g) for g in ("I", "III")]
    shares.append(treatments.supportive_care_share("colorectal"))
    counts = []
    for share in shares:
        counts.append(sum(t.given_supportive_care(share) for t in traits))
        assert stats.binomtest(counts[-1], n, share).pvalue > ALPHA
    for t in traits:
        decided = [t.given_supportive_care(share) for share in shares]
        assert decided == sorted(decided)  # False ... False True ... True


@pytest.mark.parametrize(("stages", "field"), [
    ({"V": 0.2}, "stage_shares"),
    ({"II": 1.2}, "stage_shares"),
    ({"II": -0.2}, "stage_shares"),
])
def test_bad_stage_shares_are_refused(stages: dict[str, float], field: str) -> None:
    with pytest.raises(ModelError, match=field):
        with_stage_shares("colorectal", 0.25, stages)
