"""How much a metastasis sheds, as a share of the primary's rate (``shedding.metastasis_factor``).

The law: the primary and the clones that grew in it shed at the patient's rate; every
metastasis, and every clone that grew in one, at ``metastasis_factor`` times that rate.  Checked
here: the share of every row, through clones of clones; that the compiled engine is the
reference engine row for row with a factor below 1 (untreated and through whole clinical
courses); that a factor of 0 leaves every founder a child of the primary; and that the
metastases' share of the founders falls with the factor as the closed form of the emission
says.  The Gillespie engine agrees in distribution with a factor of 0.5
(``tests/test_reference_agreement.py``, the ``caval`` configuration).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from metastasis.api import load_model
from metastasis.clinical import course as course_module
from metastasis.clinical.course import simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.patient import simulate_patient
from metastasis.engine.process import MUTATION_ROUTE, Change, DiseaseProcess
from metastasis.engine.sampling import shedding_shares, shedding_shares_reference
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict, load
from metastasis.model.resolve import FATES, ResolvedModel, resolve
from metastasis.units import DAYS_PER_YEAR

RTOL = 1e-12


def _with_factor(cancer: str, factor: float) -> ResolvedModel:
    return dataclasses.replace(load_model(cancer), metastasis_shedding_factor=factor)


def test_the_factor_is_read_from_the_knowledge_base_and_defaults_to_one() -> None:
    raw = load().model_dump(mode="json")
    shipped = raw["cancers"]["breast"]["shedding"]["metastasis_factor"]["value"]
    assert shipped < 1.0
    assert resolve(from_dict(raw), "breast").metastasis_shedding_factor == shipped
    del raw["cancers"]["breast"]["shedding"]["metastasis_factor"]  # absent: 1
    assert resolve(from_dict(raw), "breast").metastasis_shedding_factor == 1.0
    shedding = raw["cancers"]["breast"].setdefault("shedding", {})
    shedding["metastasis_factor"] = {"value": 0.25, "source": "a test"}
    assert resolve(from_dict(raw), "breast").metastasis_shedding_factor == 0.25
    shedding["metastasis_factor"] = {"value": 1.5, "source": "a test"}
    with pytest.raises(ModelError, match="metastasis_factor"):
        from_dict(raw)


def test_every_row_sheds_its_lineage_s_share() -> None:
    """The primary 1, metastases the factor; a clone of the primary 1, a clone of a
    metastasis and a clone of that clone the factor."""
    model = _with_factor("colorectal", 0.3)
    day = 3300.0
    for index in range(40):
        process = DiseaseProcess(model, patient_generator(4, index), 12 * DAYS_PER_YEAR)
        table = process.lesion_table(through=day)
        live = np.flatnonzero(table.valid_at(day) & (table.arrival <= day) & (table.id > 0))
        if process.known_end > day + 60 and live.size:
            break
    else:  # pragma: no cover
        raise AssertionError("no patient with a metastasis alive on the day")
    metastasis = int(table.lesion[live[0]])
    process.intervene(day, [Change(0, 0.5, clone_cells=2.0, clone_resistance=1),
                            Change(metastasis, 0.5, clone_cells=2.0, clone_resistance=1)])
    rows = process.rows
    clones = np.flatnonzero(rows.route[: rows.size] == MUTATION_ROUTE)
    of_primary = clones[rows.parent[clones] == 0]
    of_metastasis = clones[rows.parent[clones] == metastasis]
    assert of_primary.size == 1 and of_metastasis.size == 1
    grandchild = int(rows.lesion[of_metastasis[0]])
    process.intervene(day + 30.0, [Change(grandchild, 0.5, clone_cells=2.0,
                                          clone_resistance=2)])
    rows = process.rows
    shares = shedding_shares(rows, model)
    route, parent = rows.route[: rows.size], rows.parent[: rows.size]
    assert np.all(shares[route == -1] == 1.0)
    assert np.all(shares[route >= 0] == 0.3)
    assert np.all(shares[(route == MUTATION_ROUTE) & (parent == 0)] == 1.0)
    assert np.all(shares[(route == MUTATION_ROUTE) & (parent == metastasis)] == 0.3)
    assert np.all(shares[(route == MUTATION_ROUTE) & (parent == grandchild)] == 0.3)


def test_the_compiled_lineage_walk_is_the_reference_s() -> None:
    """Random forests of lesions (clones of clones of metastases or of the primary, several
    segments per lesion, parents whose rows were removed): the compiled walk gives the
    reference's share on every row."""
    model = _with_factor("colorectal", 0.3)
    rng = np.random.default_rng(5)
    for _ in range(200):
        rows = DiseaseProcess(model, patient_generator(4, 0), DAYS_PER_YEAR).rows
        n = int(rng.integers(1, 40))
        route = np.where(rng.random(n) < 0.5, MUTATION_ROUTE, rng.integers(0, 3, n))
        route[0] = -1  # the primary
        parent = np.array([-1] + [int(rng.integers(-1, i)) for i in range(1, n)])
        segments = rng.integers(1, 3, n)  # a lesion cut by treatment has several rows
        keep = rng.random(int(segments.sum())) < 0.9  # rows removed by surgery
        lesion = np.repeat(np.arange(n), segments)[keep]
        rows.add(lesion.size, lesion=lesion, site=0, parent=parent[lesion],
                 route=route[lesion], arrival=0.0, awakening=0.0, colony_scale=1.0,
                 micrometastasis=0.0, outgrowth=0.0, x0=1.0, rate=0.01, capacity=1e12,
                 growth_start=0.0, valid_from=0.0, valid_to=np.inf, resistance=0,
                 curve_start=0.0, curve_x0=1.0, emit_from=0.0)
        rows.next_lesion = n
        np.testing.assert_array_equal(shedding_shares(rows, model),
                                      shedding_shares_reference(rows, model))


@pytest.mark.parametrize("cancer", ["nsclc", "colorectal"])
def test_the_compiled_engine_is_the_reference_with_a_factor(cancer: str) -> None:
    model = _with_factor(cancer, 0.2)
    founders = 0
    for index in range(25):
        fast = simulate_patient(model, patient_generator(9, index), 15 * DAYS_PER_YEAR)
        slow = simulate_patient(model, patient_generator(9, index), 15 * DAYS_PER_YEAR,
                                reference=True)
        assert fast.end_reason == slow.end_reason
        np.testing.assert_allclose(fast.end_time, slow.end_time, rtol=RTOL)
        for field in dataclasses.fields(slow.lesions):
            mine, theirs = getattr(fast.lesions, field.name), getattr(slow.lesions, field.name)
            np.testing.assert_allclose(mine, theirs, rtol=RTOL, err_msg=field.name)
        np.testing.assert_array_equal(fast.accounting.fates, slow.accounting.fates)
        np.testing.assert_allclose(fast.accounting.expected_shed_by_site,
                                   slow.accounting.expected_shed_by_site, rtol=RTOL)
        founders += int(np.sum(slow.lesions.parent > 0))
    assert founders > 0  # metastases seeded metastases: their share was exercised


class _ReferenceProcess(DiseaseProcess):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, reference=True, **kwargs)  # type: ignore[arg-type, misc]


def test_treated_courses_with_a_factor_are_the_reference_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clones under treatment take their lineage's share in both engines."""
    model, clinical, treatments = _with_factor("colorectal", 0.2), load_clinical(), \
        load_treatments()
    fast = [simulate_course(model, clinical, treatments, 5, i, 15.0) for i in range(15)]
    monkeypatch.setattr(course_module, "DiseaseProcess", _ReferenceProcess)
    slow = [simulate_course(model, clinical, treatments, 5, i, 15.0) for i in range(15)]
    clones = 0
    for mine, theirs in zip(fast, slow, strict=True):
        assert repr(mine.events) == repr(theirs.events)
        for field in dataclasses.fields(theirs.patient.lesions):
            np.testing.assert_allclose(getattr(mine.patient.lesions, field.name),
                                       getattr(theirs.patient.lesions, field.name), rtol=RTOL)
        clones += int(np.sum(theirs.patient.lesions.route == MUTATION_ROUTE))
    assert clones > 0


def test_without_metastasis_shedding_every_founder_is_the_primary_s() -> None:
    model = _with_factor("colorectal", 0.0)
    founders = 0
    for index in range(30):
        patient = simulate_patient(model, patient_generator(3, index), 20 * DAYS_PER_YEAR)
        parents = patient.lesions.parent[1:]
        assert np.all(parents == 0)
        founders += parents.size
    assert founders > 100


def test_metastases_shed_the_factor_times_the_primary_s_emission() -> None:
    """The expected cells shed by a site holding only metastases scale by the factor:
    the accounting of the same history (the same rows) with two factors."""
    model = load_model("colorectal")
    liver = model.site_index("liver")
    for index in range(40):
        process = DiseaseProcess(model, patient_generator(2, index), 20 * DAYS_PER_YEAR)
        table = process.lesion_table()
        if np.any((table.site == liver) & (table.growth_start < process.end)) and not np.any(
                table.site[1:] == model.primary_site):
            break
    else:  # pragma: no cover
        raise AssertionError("no patient with a growing liver metastasis")
    from metastasis.engine.accounting import draw_accounting

    shed = {}
    for factor in (1.0, 0.25):
        changed = dataclasses.replace(model, metastasis_shedding_factor=factor)
        shed[factor], _, _ = draw_accounting(process.rows, changed, np.random.default_rng(0),
                                             process.shedding_rate, process.end,
                                             3 * model.n_sites * len(FATES))
    assert shed[1.0][liver] > 0.0
    np.testing.assert_allclose(shed[0.25][liver], 0.25 * shed[1.0][liver], rtol=1e-12)
    primary = model.primary_site  # only the primary sheds there: unchanged
    np.testing.assert_allclose(shed[0.25][primary], shed[1.0][primary], rtol=1e-12)
