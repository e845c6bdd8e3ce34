"""Property-based tests (Hypothesis) of the model's invariants.

Invariants that must hold for *every* valid input, not only the shipped ones: journey
probabilities are a distribution, every shed cell is accounted for once, a patient depends
only on (root seed, index), lineage runs forward in time, and a knowledge base survives a
round trip through plain data.  Hypothesis is derandomized (see ``conftest.py``), so the
examples, and any failure, are reproducible.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from metastasis.api import load_model, run_patient
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict, load
from metastasis.model.resolve import FATES, ResolvedModel, resolve
from metastasis.results.patient import PatientResult

DEFAULT_CANCERS = sorted(load().cancers)
_MODELS: dict[str, ResolvedModel] = {}

TRAVEL_FIELDS = (
    "blood_entry_survival",
    "blood_leg_survival",
    "lymph_entry_survival",
    "lymph_leg_survival",
    "cavity_survival",
)

probability = st.floats(0.0, 1.0)
arrest_probability = st.one_of(st.just(0.0), st.floats(1e-3, 1.0))
"""Capillary arrest: none at all, or at least 1e-3 (not so close to 0 that the journey's
linear system becomes ill-conditioned, which is numerics, not the property tested)."""


def _model(cancer: str) -> ResolvedModel:
    if cancer not in _MODELS:
        _MODELS[cancer] = load_model(cancer)
    return _MODELS[cancer]


def _sourced(value: float) -> dict[str, Any]:
    return {"value": value, "source": "assumption: property test"}


# ------------------------------------------------------------------ routing


@st.composite
def anatomies(draw: st.DrawFn, default: dict[str, Any]) -> dict[str, Any]:
    """The default knowledge base with random arrest, flow shares, plexus and survival."""
    raw = copy.deepcopy(default)
    sites = raw["sites"]
    weights = {
        name: draw(st.floats(0.0, 1.0)) if site["arterial_share"]["value"] > 0 else 0.0
        for name, site in sites.items()
    }
    total = sum(weights.values())
    assume(total > 0.1)
    for name, site in sites.items():
        site["capillary_arrest"] = _sourced(draw(arrest_probability))
        site["arterial_share"] = _sourced(weights[name] / total)
        if "vertebral_plexus_share" in site:
            site["vertebral_plexus_share"] = _sourced(draw(probability))
    travel = raw["cancer_defaults"]["travel"]
    for field in TRAVEL_FIELDS:
        travel[field] = _sourced(draw(probability))
    shedding = raw["cancer_defaults"]["shedding"]
    lymph = draw(probability)
    shedding["lymph_fraction"] = _sourced(lymph)
    shedding["cavity_fraction"] = _sourced(draw(st.floats(0.0, 1.0 - lymph)))
    for cancer in raw["cancers"].values():  # the cancers' own values would override these
        cancer.pop("travel", None)
        cancer.pop("shedding", None)
    return raw


def _lossless_cycle(raw: dict[str, Any]) -> bool:
    """No cell can ever leave the blood: legs never kill and no blood-fed bed arrests."""
    sites = raw["sites"]
    fed = [n for n, s in sites.items() if s["arterial_share"]["value"] > 0] + ["liver", "lungs"]
    travel = raw["cancer_defaults"]["travel"]
    return travel["blood_leg_survival"]["value"] == 1.0 and all(
        sites[n]["capillary_arrest"]["value"] == 0.0 for n in fed
    )


@settings(max_examples=60)
@given(data=st.data(), cancer=st.sampled_from(DEFAULT_CANCERS))
def test_journey_probabilities_sum_to_one(
    data: st.DataObject, cancer: str, default_raw: dict[str, Any]
) -> None:
    """Property: for any valid anatomy and survival, from every source and available route,
    arrest[o, r, :] >= 0 and sum(arrest) + died = 1 (to 1e-12) with died in [0, 1]; route
    shares sum to 1 where a route exists; a shed cell founds at most one colony."""
    raw = data.draw(anatomies(default_raw))
    assume(not _lossless_cycle(raw))  # no absorbing state: refused, see the test below
    model = resolve(from_dict(raw), cancer)
    assert np.all(model.arrest >= -1e-15)
    available = model.route_weights > 0.0
    totals = model.arrest.sum(axis=2) + model.died_in_transit
    np.testing.assert_allclose(totals[available], 1.0, rtol=0.0, atol=1e-12)
    assert np.all(model.died_in_transit[available] >= -1e-12)
    assert np.all(model.died_in_transit[available] <= 1.0 + 1e-12)
    has_route = available.any(axis=1)
    np.testing.assert_allclose(model.route_weights[has_route].sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(model.fate.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(model.fate >= -1e-15)
    founder = model.founder_probability.sum(axis=1)
    assert np.all((founder >= 0.0) & (founder <= 1.0 + 1e-12))


def test_lossless_never_arresting_anatomy_is_rejected_clearly(default_raw: dict[str, Any]) -> None:
    """A cell that can never arrest nor die circulates forever: the knowledge base should be
    refused with a ModelError (field, value, what is allowed), not crash in linear algebra."""
    raw = copy.deepcopy(default_raw)
    for name, site in raw["sites"].items():
        site["capillary_arrest"] = _sourced(0.0)
        site["arterial_share"] = _sourced(0.5 if name in ("liver", "lungs") else 0.0)
    for field in TRAVEL_FIELDS:
        raw["cancer_defaults"]["travel"][field] = _sourced(1.0)
    with pytest.raises(ModelError):
        resolve(from_dict(raw), "colorectal")


# ------------------------------------------------------------------ accounting and lineage

patients = st.tuples(
    st.sampled_from(DEFAULT_CANCERS),
    st.integers(0, 2**63 - 1),
    st.integers(0, 10**6),
    st.floats(1.0, 20.0),
)


@settings(max_examples=40)
@given(patient=patients)
def test_every_shed_cell_is_accounted_for_once(patient: tuple[str, int, int, float]) -> None:
    """Property: shed = died in circulation + arrested; arrested = failed extravasation +
    extravasated; extravasated = died at site + dormant + extinct colony + micrometastasis
    + outgrowth; outgrowth = the metastases in the lesion table; every count >= 0.

    And the aggregate counts have the closed-form mean: cells with any fate but outgrowth
    are Poisson with mean sum_o S_o (1 - q_o) (S_o: expected cells shed from site o over the
    history, q_o: founder probability); |count - mean| < 6 sqrt(mean) + 1 (p < 2e-9 per
    example under the normal approximation).  The sum runs over sites from which a route
    leads anywhere (a site with no route out sheds nothing)."""
    cancer, seed, index, years = patient
    model = _model(cancer)
    result = run_patient(model, seed, index, years)
    totals = result.accounting.totals()
    assert all(v >= 0 for v in totals.values())
    assert totals["shed"] == totals["died_in_circulation"] + totals["arrested"]
    assert totals["shed"] == sum(totals[f"shed_{r}"] for r in ("blood", "lymph", "cavity"))
    assert totals["arrested"] == totals["failed_extravasation"] + totals["extravasated"]
    assert totals["extravasated"] == sum(totals[f] for f in FATES[1:])
    assert totals["outgrowth"] == len(result.lesions) - 1
    assert np.all(result.accounting.fates >= 0)
    assert np.all(result.accounting.died_in_transit >= 0)

    expected_shed = result.accounting.expected_shed_by_site
    founder = model.founder_probability.sum(axis=1)
    has_route = model.route_weights.sum(axis=1) > 0.0
    mean = float(np.dot(expected_shed[has_route], 1.0 - founder[has_route]))
    others = totals["shed"] - totals["outgrowth"]
    assert abs(others - mean) < 6.0 * math.sqrt(mean) + 1.0, (others, mean)


def test_cells_shed_by_a_peritoneal_metastasis_are_accounted_for() -> None:
    """Claim: every cell a lesion sheds lands in some count, wherever the lesion sits.

    The first colorectal patient (root seed 0, 12 years) whose peritoneal metastasis sheds
    over 1e5 cells: the non-outgrowth counts must be Poisson with mean
    sum over *all* sites of S_o (1 - q_o), |count - mean| < 6 sqrt(mean) + 1."""
    model = _model("colorectal")
    peritoneum = model.site_index("peritoneum")
    result = next(
        r for r in (run_patient(model, 0, i, 12.0) for i in range(400))
        if r.accounting.expected_shed_by_site[peritoneum] > 1e5
    )
    expected_shed = result.accounting.expected_shed_by_site
    totals = result.accounting.totals()
    mean = float(np.dot(expected_shed, 1.0 - model.founder_probability.sum(axis=1)))
    others = totals["shed"] - totals["outgrowth"]
    assert abs(others - mean) < 6.0 * math.sqrt(mean) + 1.0, (others, mean)


def _assert_lineage_runs_forward(result: PatientResult) -> None:
    lesions = result.lesions
    rows = np.arange(1, len(lesions))
    parent = lesions.parent[rows]
    assert lesions.parent[0] == -1
    assert np.all((parent >= 0) & (parent < rows)), "a parent is listed after its child"
    # a parent sheds only once it can: the primary after its breach, a metastasis after
    # its outgrowth; so every founder arrives after its parent was founded and shedding
    shedding_from = np.where(parent == 0, result.breach_time, lesions.outgrowth[parent])
    assert np.all(lesions.arrival[rows] >= shedding_from)
    assert np.all(lesions.arrival[rows] >= lesions.arrival[parent])
    assert np.all(lesions.arrival[rows] < result.end_time)
    assert np.all(lesions.awakening >= lesions.arrival)
    assert np.all(lesions.micrometastasis >= lesions.awakening)
    assert np.all(lesions.outgrowth >= lesions.micrometastasis)


@settings(max_examples=40)
@given(patient=patients)
def test_every_metastasis_parent_was_founded_before_it(
    patient: tuple[str, int, int, float],
) -> None:
    """Property: in every patient, each metastasis's parent precedes it in the table, was
    founded before it and was already shedding when the founding cell left it; each lesion's
    own milestones (arrival, awakening, micrometastasis, outgrowth) are in order."""
    cancer, seed, index, years = patient
    _assert_lineage_runs_forward(run_patient(_model(cancer), seed, index, years))


@settings(max_examples=10)
@given(seed=st.integers(0, 2**63 - 1), index=st.integers(0, 200))
def test_lineage_runs_forward_with_secondary_seeding(
    seed: int, index: int, iwata_path: Any
) -> None:
    """The same lineage property in Iwata's configuration, where colonies seed colonies
    (hundreds of generations-deep lesions per patient by day 1000)."""
    model = _MODELS.setdefault("hcc_iwata", load_model("hcc_iwata", iwata_path))
    result = simulate_patient(model, patient_generator(seed, index), 1000.0)
    assert np.any(result.lesions.parent > 0), "no secondary seeding: the test would not bite"
    _assert_lineage_runs_forward(result)


def _same_patient(a: PatientResult, b: PatientResult) -> None:
    for name in ("end_time", "end_reason", "motility_time", "breach_time"):
        assert getattr(a, name) == getattr(b, name)
    for name in ("site", "parent", "route", "arrival", "awakening", "colony_scale",
                 "micrometastasis", "outgrowth", "x0", "rate", "capacity"):
        np.testing.assert_array_equal(getattr(a.lesions, name), getattr(b.lesions, name))
    np.testing.assert_array_equal(a.accounting.fates, b.accounting.fates)
    np.testing.assert_array_equal(a.accounting.died_in_transit, b.accounting.died_in_transit)


@settings(max_examples=20)
@given(
    cancer=st.sampled_from(DEFAULT_CANCERS),
    seed=st.integers(0, 2**63 - 1),
    order=st.permutations(range(6)),
    position=st.integers(0, 5),
    offset=st.integers(0, 10**6),
)
def test_patient_is_the_same_alone_or_in_any_cohort(
    cancer: str, seed: int, order: list[int], position: int, offset: int
) -> None:
    """Property: patient i of root seed s is bit-identical whether run alone or anywhere in
    a cohort run in any order (its generator is patient_generator(s, i) and nothing else)."""
    model = _model(cancer)
    cohort = {offset + i: run_patient(model, seed, offset + i, 10.0) for i in order}
    chosen = offset + position
    alone = simulate_patient(model, patient_generator(seed, chosen), 10.0 * 365.25)
    _same_patient(cohort[chosen], alone)
    _same_patient(cohort[chosen], run_patient(model, seed, chosen, 10.0))


# ------------------------------------------------------------------ knowledge base


@settings(max_examples=30)
@given(
    data=st.data(),
    cancer=st.sampled_from(DEFAULT_CANCERS),
    rate=st.floats(0.0, 10.0),
    survival=probability,
)
def test_knowledge_base_round_trips_through_plain_data(
    data: st.DataObject, cancer: str, rate: float, survival: float, default_raw: dict[str, Any]
) -> None:
    """Property: a (randomly modified) valid knowledge base survives model_dump -> from_dict
    unchanged, directly and through JSON text, and resolves to the same model."""
    raw = copy.deepcopy(default_raw)
    raw["cancers"][cancer].setdefault("shedding", {})["rate"] = _sourced(rate)
    raw["cancers"][cancer].setdefault("travel", {})["blood_leg_survival"] = _sourced(survival)
    site = data.draw(st.sampled_from(sorted(raw["sites"])))
    raw["sites"][site]["capillary_arrest"] = _sourced(data.draw(st.floats(1e-3, 1.0)))
    kb = from_dict(raw)
    assert from_dict(kb.model_dump()) == kb
    text = json.dumps(kb.model_dump(mode="json"))
    again = from_dict(json.loads(text))
    assert again == kb
    a, b = resolve(kb, cancer), resolve(again, cancer)
    np.testing.assert_array_equal(a.arrest, b.arrest)
    np.testing.assert_array_equal(a.fate, b.fate)
    assert a.shedding_rate == rate


def test_shipped_knowledge_bases_round_trip(iwata_raw: dict[str, Any]) -> None:
    """Both shipped knowledge bases (default and Iwata 2000) round-trip exactly."""
    for kb in (load(), from_dict(iwata_raw)):
        assert from_dict(kb.model_dump()) == kb
        assert from_dict(json.loads(json.dumps(kb.model_dump(mode="json")))) == kb
