"""Chemotherapy in deposits without vessels of their own (``avascular_log_kill_ratio``).

The law: a cycle that leaves a share f of a vascularised (growing) lesion's sensitive cells
leaves f**m of an establishing colony's or a micrometastasis's, spares dormant cells as
before, and the drug-tolerant cells of ``resistance_per_cell`` are drawn only in growing
lesions.  Each check sets the engine's rule beside an independent statement of it: the
same day's changes written lesion by lesion, with each lesion's fraction chosen here from
its state in the readable lesion table.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from metastasis.api import load_model
from metastasis.clinical.treatment import PatientTraits, apply_protocol
from metastasis.clinical.treatment_schema import (
    load_treatments,
    protocols_from_dict,
    treatments_from_dict,
)
from metastasis.engine.process import MUTATION_ROUTE, Changes, DiseaseProcess
from metastasis.engine.seeds import clinical_generator, patient_generator
from metastasis.errors import ModelError

HORIZON = 12 * 365.25
DAY = 3300.0
SEED = 4
SOURCE = "test: a value chosen for this test"


@pytest.fixture(scope="module")
def model():
    return load_model("colorectal")


def _states(table, day: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows present on ``day``, and which of them are avascular (awake, not yet growing)
    and dormant, read from the table's own columns."""
    present = np.flatnonzero(table.valid_at(day) & (table.arrival <= day))
    avascular = (table.awakening[present] <= day) & (day < table.growth_start[present])
    dormant = day < table.awakening[present]
    return present, avascular, dormant


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "reference"])
def test_the_avascular_fraction_is_the_fraction_of_colonies_and_micrometastases(
    model, reference: bool
) -> None:
    """One day's kill with f for growing lesions and g for avascular deposits gives the
    rows of the same kill written lesion by lesion (g where the table says the lesion is a
    colony or a micrometastasis, f elsewhere), in both engines; every state occurs."""
    f, g = 0.4, 0.4**3
    seen = np.zeros(3, dtype=int)  # growing, avascular, dormant rows changed
    for index in range(30):
        a = DiseaseProcess(model, patient_generator(SEED, index), HORIZON, reference=reference)
        b = DiseaseProcess(model, patient_generator(SEED, index), HORIZON, reference=reference)
        table = a.lesion_table(through=DAY)
        b.lesion_table(through=DAY)
        if a.known_end <= DAY:
            continue
        present, avascular, dormant = _states(table, DAY)
        if present.size == 0:
            continue
        lesion = table.lesion[present]
        a.intervene(DAY, Changes.build(lesion, surviving_fraction=f, avascular_fraction=g))
        b.intervene(DAY, Changes.build(lesion, surviving_fraction=np.where(avascular, g, f)))
        size = a.rows.size
        assert b.rows.size == size
        np.testing.assert_array_equal(a.rows.floats[:, :size], b.rows.floats[:, :size])
        np.testing.assert_array_equal(a.rows.ints[:, :size], b.rows.ints[:, :size])
        seen += [int((~avascular & ~dormant).sum()), int(avascular.sum()), int(dormant.sum())]
    assert (seen > 0).all(), seen


def test_the_avascular_fraction_changes_only_patients_with_avascular_deposits(model) -> None:
    """The same day with NaN (the default: the law before, f everywhere) and with a very
    different avascular fraction: the rows differ only in patients holding a colony or a
    micrometastasis on the day, and do differ in some."""
    changed = 0
    for index in range(30):
        a = DiseaseProcess(model, patient_generator(SEED, index), HORIZON)
        b = DiseaseProcess(model, patient_generator(SEED, index), HORIZON)
        table = a.lesion_table(through=DAY)
        b.lesion_table(through=DAY)
        if a.known_end <= DAY:
            continue
        present, avascular, _ = _states(table, DAY)
        lesion = table.lesion[present]
        a.intervene(DAY, Changes.build(lesion, surviving_fraction=0.4))
        b.intervene(DAY, Changes.build(lesion, surviving_fraction=0.4, avascular_fraction=0.01))
        size = min(a.rows.size, b.rows.size)
        differ = np.any(a.rows.floats[:, :size] != b.rows.floats[:, :size])
        # a deposit of a cell or two is cleared by either fraction: no difference then
        assert not differ or bool(avascular.any())
        changed += int(differ)
    assert changed > 0


def test_a_drug_kill_without_a_table_takes_the_avascular_fraction(model) -> None:
    """The clinic's fast path (``kill_dividing``) and its table path agree with an avascular
    fraction too."""
    compared = 0
    for index in range(30):
        a = DiseaseProcess(model, patient_generator(6, index), HORIZON)
        b = DiseaseProcess(model, patient_generator(6, index), HORIZON)
        table = a.lesion_table(through=DAY)
        b.lesion_table(through=DAY)
        if a.known_end <= DAY:
            continue
        present, avascular, dormant = _states(table, DAY)
        rows = present[~dormant]
        a.intervene(DAY, Changes.build(table.lesion[rows], surviving_fraction=0.3,
                                       avascular_fraction=0.3**2))
        assert b.kill_dividing(DAY, 0.3, 0, 0.3**2) is not None
        size = a.rows.size
        assert b.rows.size == size
        np.testing.assert_array_equal(a.rows.floats[:, :size], b.rows.floats[:, :size])
        compared += int(avascular.any())
    assert compared >= 5


def _chemo(ratio: float | None, mu: float):
    raw = load_treatments().model_dump(mode="json")
    folfox = raw["therapies"]["folfox"]
    folfox["resistance_per_cell"] = {"value": mu, "source": SOURCE}
    folfox.pop("log_kill_sd", None)
    if ratio is None:
        folfox.pop("avascular_log_kill_ratio", None)
    else:
        folfox["avascular_log_kill_ratio"] = {"value": ratio, "source": SOURCE}
    treatments = treatments_from_dict(raw)
    step = {"modality": "chemotherapy", "therapy": "folfox", "start_day": {"value": 0,
            "source": SOURCE}, "cycles": {"value": 1, "source": SOURCE},
            "interval_days": {"value": 14, "source": SOURCE}}
    raw_plan = {"protocols": {"test": {"label": "test", "cancers": ["colorectal"],
                                       "steps": [step]}}}
    return treatments, protocols_from_dict(raw_plan, treatments)["test"]


@pytest.mark.parametrize("ratio", [3.0, None], ids=["avascular-law", "law-before"])
def test_tolerant_cells_arise_only_in_growing_lesions(model, ratio: float | None) -> None:
    """With the ratio, a first cycle whose tolerant share is large (so that every lesion of
    over a hundred cells would almost surely hold some) gives clones only in lesions growing
    on the day; without it, in colonies and micrometastases too: the check can fail."""
    treatments, plan = _chemo(ratio, mu=0.05)
    in_avascular, in_growing = 0, 0
    for index in range(30):
        proc = DiseaseProcess(model, patient_generator(SEED, index), DAY + 30.0)
        proc.lesion_table(through=DAY)
        if proc.known_end <= DAY:
            continue
        apply_protocol(proc, plan, DAY, [0], PatientTraits(), treatments,
                       clinical_generator(SEED, index))
        table = proc.lesion_table()
        clones = np.flatnonzero((table.route == MUTATION_ROUTE) & (table.arrival == DAY))
        for clone in clones:
            # the parent's row that the cycle closed on the day
            parent = np.flatnonzero((table.id == table.parent[clone])
                                    & (table.valid_to == DAY))
            assert parent.size == 1
            growing = table.growth_start[parent[0]] <= DAY
            in_growing += int(growing)
            in_avascular += int(not growing)
    assert in_growing > 0
    if ratio is None:
        assert in_avascular > 0
    else:
        assert in_avascular == 0


def test_the_clinic_s_cycle_kills_f_to_the_power_m_in_deposits(model) -> None:
    """A cycle of the clinic (median patient: f = 0.5, ratio 3, no tolerant cells) leaves
    the rows of the same day written lesion by lesion: 1/8 in the colonies and
    micrometastases, 1/2 in growing lesions, dormant cells untouched."""
    treatments, plan = _chemo(3.0, mu=0.0)
    compared = 0
    for index in range(30):
        a = DiseaseProcess(model, patient_generator(SEED, index), DAY + 30.0)
        b = DiseaseProcess(model, patient_generator(SEED, index), DAY + 30.0)
        table = a.lesion_table(through=DAY)
        b.lesion_table(through=DAY)
        if a.known_end <= DAY:
            continue
        present, avascular, dormant = _states(table, DAY)
        apply_protocol(a, plan, DAY, [0], PatientTraits(), treatments,
                       clinical_generator(SEED, index))
        rows = present[~dormant]
        b.intervene(DAY, Changes.build(table.lesion[rows],
                                       surviving_fraction=np.where(avascular[~dormant],
                                                                   0.125, 0.5)))
        ta, tb = a.lesion_table(), b.lesion_table()
        for name in ("x0", "colony_scale", "micrometastasis", "outgrowth", "valid_to"):
            np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name), name)
        compared += int(avascular.any())
    assert compared >= 5


@pytest.mark.parametrize("value", [0.5, 0.0, -1.0, 1e3, math.inf])
def test_a_ratio_outside_its_range_is_refused_by_name(value: float) -> None:
    raw = load_treatments().model_dump(mode="json")
    raw["therapies"]["folfox"]["avascular_log_kill_ratio"] = {"value": value,
                                                             "source": SOURCE}
    with pytest.raises(ModelError, match="avascular_log_kill_ratio"):
        treatments_from_dict(raw)
