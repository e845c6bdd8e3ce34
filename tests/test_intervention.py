"""Treatment's way into the disease process: cut the future, change lesions, resample.

The claims: (1) cutting the future at day T and resampling it with no change leaves the
process's law unchanged (Poisson processes on disjoint intervals are independent), tested
in distribution; (2) a kill multiplies a growing lesion's size at T by the surviving
fraction and the lesion then regrows along its Gompertz curve; (3) removal stops a lesion
and everything it would have seeded; (4) a dormant cell is spared by a kill; (5) a resistant
clone is spared by the kills its bit protects it from, and its offspring inherit the bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from metastasis.api import load_model
from metastasis.engine.process import MUTATION_ROUTE, Change, DiseaseProcess
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict, read_raw
from metastasis.model.growth import gompertz_size
from metastasis.model.resolve import resolve

HORIZON = 20 * 365.25
CUT = 3000.0
ALPHA = 0.001


@pytest.fixture(scope="module")
def model():
    return load_model("colorectal")


def _metastases_founded(process: DiseaseProcess) -> int:
    table = process.lesion_table()
    return int((table.first_segments() & (table.id != 0)).sum())


@pytest.mark.slow
def test_a_cut_without_change_does_not_change_the_law(model) -> None:
    """Number of metastases founded by the end, and the end day: two-sample KS and
    Mann-Whitney between 600 uncut patients and 600 cut at day 3,000 (other seeds) over
    10 years, each at alpha = 0.001 / 2."""
    plain, cut = [], []
    ends_plain, ends_cut = [], []
    for i in range(600):
        a = DiseaseProcess(model, patient_generator(11, i), 10 * 365.25)
        plain.append(_metastases_founded(a))
        ends_plain.append(a.end)
        b = DiseaseProcess(model, patient_generator(12, i), 10 * 365.25)
        b.intervene(CUT, [])
        cut.append(_metastases_founded(b))
        ends_cut.append(b.end)
    assert np.mean(plain) > 1.0  # enough spread to have power
    assert stats.mannwhitneyu(plain, cut).pvalue > ALPHA / 2
    assert stats.ks_2samp(ends_plain, ends_cut).pvalue > ALPHA / 2


def test_the_past_is_kept_exactly(model) -> None:
    """Every lesion founded before the cut keeps its row; nothing founded before T is lost."""
    for i in range(40):
        process = DiseaseProcess(model, patient_generator(3, i), HORIZON)
        before = process.lesion_table()
        process.intervene(CUT, [])
        after = process.lesion_table()
        kept = before.arrival < CUT
        assert np.array_equal(after.arrival[: kept.sum()], before.arrival[kept])
        assert np.array_equal(after.site[: kept.sum()], before.site[kept])
        assert np.all(after.arrival[kept.sum() :] >= CUT)


def _growing_patient(model) -> tuple[DiseaseProcess, float]:
    for i in range(200):
        process = DiseaseProcess(model, patient_generator(5, i), HORIZON)
        table = process.lesion_table()
        growing = np.flatnonzero((table.id != 0) & (table.outgrowth < CUT - 100.0))
        if growing.size:
            return process, float(table.outgrowth[growing[0]])
    raise AssertionError("no patient with a growing metastasis before the cut")


def test_a_kill_scales_the_size_and_the_lesion_regrows_on_its_curve(model) -> None:
    process, _ = _growing_patient(model)
    before = process.lesion_table()
    size_at_cut = before.size_at(CUT)
    process.intervene(CUT, [Change(int(lesion), 1e-2) for lesion in np.unique(before.id)])
    after = process.lesion_table()
    later = CUT + 200.0
    for row in np.flatnonzero(after.valid_from == CUT):
        lesion = after.id[row]
        old = int(np.flatnonzero(before.id == lesion)[0])
        if before.state_at(CUT)[old] != "growing":
            continue
        expected_start = size_at_cut[old] * 1e-2
        assert after.x0[row] == pytest.approx(expected_start, rel=1e-12)
        expected = gompertz_size(later - CUT, expected_start, after.rate[row], after.capacity[row])
        assert after.size_at(later)[row] == pytest.approx(float(expected), rel=1e-12)
    # before the cut nothing changed: the rows founded before it keep their sizes
    kept = before.arrival < CUT
    assert np.array_equal(after.size_at(CUT - 1.0)[: kept.sum()], before.size_at(CUT - 1.0)[kept])


def test_removing_the_primary_stops_its_seeding(model) -> None:
    checked = 0
    for i in range(30):
        process = DiseaseProcess(model, patient_generator(8, i), HORIZON)
        if process.end <= CUT:
            continue  # the history ended before the surgery: there is nothing to remove
        process.intervene(CUT, [Change(0, 0.0)])
        table = process.lesion_table()
        assert table.size_at(CUT + 1.0)[0] == 0.0
        assert not np.any((table.parent == 0) & (table.arrival >= CUT))
        checked += 1
    assert checked >= 25


def test_a_dormant_cell_is_spared_by_a_kill(model) -> None:
    for i in range(400):
        process = DiseaseProcess(model, patient_generator(9, i), HORIZON)
        table = process.lesion_table()
        dormant = np.flatnonzero(table.state_at(CUT) == "dormant")
        if dormant.size:
            lesion = int(table.id[dormant[0]])
            process.intervene(CUT, [Change(lesion, 1e-9)])
            after = process.lesion_table()
            rows = np.flatnonzero(after.id == lesion)
            assert after.state_at(CUT + 1.0)[rows[-1]] in {"dormant", "colony", "growing",
                                                           "micrometastasis"}
            assert after.valid_to[rows[0]] == np.inf
            return
    raise AssertionError("no dormant founder found to test")


def test_a_resistant_clone_survives_the_kills_it_resists(model) -> None:
    process, _ = _growing_patient(model)
    process.intervene(CUT, [Change(0, 1e-3, clone_cells=100.0, clone_resistance=1)])
    table = process.lesion_table()
    clone = np.flatnonzero(table.route == MUTATION_ROUTE)
    assert clone.size == 1 and table.resistance[clone[0]] == 1
    lesions = [int(x) for x in np.unique(table.id)]
    process.intervene(CUT + 21.0, [Change(x, 1e-3, spare_resistance=1) for x in lesions])
    after = process.lesion_table()
    clone_rows = np.flatnonzero(after.route == MUTATION_ROUTE)
    assert after.valid_to[clone_rows[0]] == np.inf  # never cut: the kill spared it
    children = np.isin(after.parent, after.id[clone_rows])
    assert np.all(after.resistance[children] & 1)


def test_interventions_come_in_time_order(model) -> None:
    process = DiseaseProcess(model, patient_generator(1, 0), HORIZON)
    process.intervene(CUT, [])
    with pytest.raises(ValueError, match="time order"):
        process.intervene(CUT - 1.0, [])


def test_a_micrometastasis_larger_than_a_site_can_hold_is_refused() -> None:
    from importlib import resources

    path = resources.files("metastasis.knowledge.data").joinpath("default.toml")
    raw = read_raw(str(path))
    raw["cancer_defaults"]["colonisation"]["micrometastasis_cells"]["value"] = 5e10
    with pytest.raises(ModelError, match="micrometastasis_cells"):
        resolve(from_dict(raw), "colorectal")


def test_the_untreated_history_is_the_clinics_history_before_diagnosis(model) -> None:
    """The future is sampled in pieces on fixed days whoever asks, so the lesions founded
    before diagnosis in a patient's clinical course are exactly those of the same patient's
    untreated natural history (same days, same sites, same parents)."""
    from metastasis.clinical.course import simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments
    from metastasis.engine.patient import simulate_patient

    clinical, treatments = load_clinical(), load_treatments()
    compared = 0
    for index in range(15):
        course = simulate_course(model, clinical, treatments, 5, index, 20.0)
        if course.diagnosis is None:
            continue
        untreated = simulate_patient(model, patient_generator(5, index), 20 * 365.25)
        day = course.diagnosis.day
        a, b = untreated.lesions, course.patient.lesions
        before_a = a.arrival < day
        before_b = (b.arrival < day) & b.first_segments()
        order_a, order_b = np.argsort(a.arrival[before_a]), np.argsort(b.arrival[before_b])
        assert np.array_equal(a.arrival[before_a][order_a], b.arrival[before_b][order_b])
        assert np.array_equal(a.site[before_a][order_a], b.site[before_b][order_b])
        assert untreated.breach_time == course.patient.breach_time
        compared += 1
    assert compared > 0


def test_reading_after_a_cut_does_not_change_the_realisation(model) -> None:
    """After a cut the future is sampled in pieces anchored at the cut (two weeks, then
    doubling), whoever reads and whenever: a process read at many days after the cut ends
    with exactly the table of one read only at the end, and a second cut read the same way
    too."""
    compared = 0
    for i in range(30):
        a = DiseaseProcess(model, patient_generator(8, i), HORIZON)
        b = DiseaseProcess(model, patient_generator(8, i), HORIZON)
        for process in (a, b):
            process.intervene(CUT, [Change(0, 0.5)])
        for day in (CUT + 3.0, CUT + 14.0, CUT + 15.0, CUT + 60.0, CUT + 500.0):
            a.lesion_table(through=day)
        for process in (a, b):
            process.intervene(CUT + 700.0, [Change(0, 0.5)])
        a.lesion_table(through=CUT + 710.0)
        ta, tb = a.lesion_table(), b.lesion_table()
        for name in ("lesion", "arrival", "site", "parent", "valid_from", "valid_to", "x0"):
            assert np.array_equal(getattr(ta, name), getattr(tb, name)), name
        compared += len(ta)
    assert compared > 100
