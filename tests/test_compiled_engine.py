"""The compiled sampler is the reference sampler, patient for patient (issue 8, item 3).

:mod:`metastasis.engine.sampling` and :mod:`metastasis.engine.accounting` run the algorithm
of ``DiseaseProcess._sample_future_reference`` and ``_fate_draws_reference`` in numba with the
same generator, drawing the same numbers in the same order.  So the check is not a test in
distribution but an identity: for every patient, the same lesions (every integer column and
the number of rows exactly), the same days and sizes, the same end and the same fate counts.

Floats are compared to 1e-12 relative rather than bit for bit: the reference computes some
logarithms and exponentials with numpy's array functions, which on some processors (AVX-512)
are other implementations than the C library's that compiled code calls, and may differ in
the last bit.  On the development machine they agree bit for bit (checked when this was
written, and by 365 whole clinical courses of every cancer type).  A last-bit difference can
only change the history if a value falls exactly on a threshold, which these seeds do not.

The reference itself is what the statistical batteries (``test_reference_agreement``, the
Gillespie engine) and the closed-form verifications test in distribution; identity carries
their verdict over to the compiled sampler.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from metastasis.api import load_model
from metastasis.clinical import course as course_module
from metastasis.clinical.course import Arm, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.patient import simulate_patient
from metastasis.engine.process import DiseaseProcess
from metastasis.engine.seeds import patient_generator
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import PatientResult
from metastasis.units import DAYS_PER_YEAR

RTOL = 1e-12
SHED_RTOL = 1e-10
"""The cells a site is expected to shed over the history are an integral of exponential-like
growth over years from each lesion's founding day, so they magnify the engines' last-bit
differences in those days (within RTOL): one melanoma patient, whose metastases now grow
slower than the primary, differed by 4e-12 (a single lesion's emission, computed by the same
function from rows equal to 1e-12)."""
CANCER_TYPES = sorted(load_knowledge().cancers)


def _assert_same(fast: PatientResult, slow: PatientResult, label: str) -> None:
    assert fast.end_reason == slow.end_reason, label
    np.testing.assert_allclose(fast.end_time, slow.end_time, rtol=RTOL, err_msg=label)
    for field in dataclasses.fields(slow.lesions):
        mine, theirs = getattr(fast.lesions, field.name), getattr(slow.lesions, field.name)
        assert mine.shape == theirs.shape, f"{label}: {field.name}"
        if theirs.dtype.kind in "iub":
            np.testing.assert_array_equal(mine, theirs, err_msg=f"{label}: {field.name}")
        else:
            np.testing.assert_allclose(mine, theirs, rtol=RTOL, err_msg=f"{label}: {field.name}")
    accounting, reference = fast.accounting, slow.accounting
    np.testing.assert_array_equal(accounting.fates, reference.fates, err_msg=label)
    np.testing.assert_array_equal(accounting.died_in_transit, reference.died_in_transit,
                                  err_msg=label)
    np.testing.assert_allclose(accounting.expected_shed_by_site,
                               reference.expected_shed_by_site, rtol=SHED_RTOL,
                               err_msg=label)


def _both_engines(model: ResolvedModel, seed: int, index: int, years: float
                  ) -> PatientResult:
    """Patient ``index`` with the compiled sampler and with the reference; checks they are the
    same and returns the reference's."""
    fast = simulate_patient(model, patient_generator(seed, index), years * DAYS_PER_YEAR)
    slow = simulate_patient(model, patient_generator(seed, index), years * DAYS_PER_YEAR,
                            reference=True)
    _assert_same(fast, slow, f"{model.cancer} patient {index}")
    return slow


@pytest.mark.parametrize("cancer", CANCER_TYPES)
def test_untreated_histories_are_the_reference_s(cancer: str) -> None:
    """40 patients of each type over 12 years: every lesion, the end and every fate count."""
    model = load_model(cancer)
    lesions = 0
    for index in range(40):
        lesions += _both_engines(model, 11, index, 12.0).lesions.site.size
    assert lesions > 40  # metastases formed: the founders' path was exercised


def test_histories_that_end_at_the_lethal_burden_are_the_reference_s() -> None:
    """Colorectal over 25 years: most patients reach the lethal burden, so the end is found
    inside a piece, and thousands of founders are expanded a batch at a time."""
    model = load_model("colorectal")
    lethal = 0
    for index in range(12):
        lethal += _both_engines(model, 5, index, 25.0).end_reason == "lethal_burden"
    assert lethal >= 6


class _ReferenceProcess(DiseaseProcess):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, reference=True, **kwargs)  # type: ignore[arg-type, misc]


@pytest.mark.parametrize("cancer,arm", [("colorectal", Arm()), ("nsclc", Arm()),
                                        ("breast", Arm()), ("colorectal", Arm(screening=True))])
def test_treated_courses_are_the_reference_s(cancer: str, arm: Arm,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole clinical courses (diagnosis, surgery, chemotherapy cycles that cut and resample
    the future many times, follow-up): the same events, the same treatment story, the same
    lesions, the same death.  The compiled process does the later cycles of chemotherapy
    itself (``kill_dividing``, no lesion table); the reference reads a table for each."""
    model, clinical, treatments = load_model(cancer), load_clinical(), load_treatments()
    engine_cycles = []
    kill_dividing = DiseaseProcess.kill_dividing

    def counted(self: DiseaseProcess, *args: Any) -> Any:
        engine_cycles.append(self.reference)
        return kill_dividing(self, *args)

    monkeypatch.setattr(DiseaseProcess, "kill_dividing", counted)
    fast = [simulate_course(model, clinical, treatments, 3, i, 15.0, arm) for i in range(25)]
    monkeypatch.setattr(course_module, "DiseaseProcess", _ReferenceProcess)
    slow = [simulate_course(model, clinical, treatments, 3, i, 15.0, arm) for i in range(25)]
    assert not any(engine_cycles)  # the reference reads a table on every cycle
    if cancer == "colorectal":  # stage III patients among them: adjuvant FOLFOX
        assert engine_cycles
    treated = 0
    for i, (mine, theirs) in enumerate(zip(fast, slow, strict=True)):
        label = f"{cancer} patient {i}"
        assert repr(mine.events) == repr(theirs.events), label
        assert repr(mine.treatment) == repr(theirs.treatment), label
        assert (mine.death_day, mine.cause_of_death) == (theirs.death_day,
                                                         theirs.cause_of_death), label
        _assert_same(mine.patient, theirs.patient, label)
        treated += bool(np.isfinite(theirs.patient.lesions.valid_to).any())
    assert treated >= 3  # treatment closed lesion rows (and resampled) in several patients


def test_the_row_budget_is_kept_by_the_compiled_sampler(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """Past the budget the history is refused with the same error as the reference's."""
    from metastasis.engine import process
    from metastasis.errors import ModelError

    monkeypatch.setattr(process, "MAX_LESION_ROWS", 50)
    model = load_model("colorectal")
    for reference in (False, True):
        with pytest.raises(ModelError, match="lesion segments per patient"):
            for index in range(40):
                simulate_patient(model, patient_generator(5, index), 25 * 365.25,
                                 reference=reference)


def test_the_compiled_piece_grid_is_the_reference_s_burden_grid() -> None:
    """The compiled sampler builds each piece's grid itself (fill_piece_grid); the reference
    builds it with burden_grid, numpy's linspace: the same numbers, bit for bit."""
    from metastasis.engine.burden import GRID_INTERVALS, burden_grid, fill_piece_grid

    rng = np.random.default_rng(8)
    starts = rng.uniform(0.0, 30 * DAYS_PER_YEAR, size=20_000)
    ends = starts + rng.uniform(1e-3, DAYS_PER_YEAR, size=starts.size)
    ends[::3] = np.ceil(ends[::3] / 365.25) * 365.25  # pieces end on the year's days too
    ends[1::7] = starts[1::7] + 14.0  # and two weeks after a cut
    grid = np.empty(GRID_INTERVALS + 1)
    for start, end in zip(starts, ends, strict=True):
        fill_piece_grid(float(start), float(end), grid)
        np.testing.assert_array_equal(grid, burden_grid(float(start), float(end)))


@pytest.mark.parametrize("trial", range(40))
def test_the_compiled_lethal_day_is_the_bisection_of_the_reference(trial: int) -> None:
    """:func:`metastasis.engine.burden._first_lethal_day` against the numpy bisection on
    random lesions (some valid only for part of the piece): the same day to 1e-12 relative,
    the burden at it reaching the lethal burden and, a little before it, not."""
    from metastasis.engine.burden import BurdenTracker, total_burden

    rng = np.random.default_rng([2026, trial])
    n = int(rng.integers(1, 400))
    start = rng.uniform(0.0, 300.0, n)
    x0 = 10 ** rng.uniform(0.0, 9.0, n)
    capacity = np.full(n, 1e13)
    rate = 10 ** rng.uniform(-3.5, -2.0, n)
    valid_from = np.where(rng.random(n) < 0.2, rng.uniform(0.0, 365.0, n), 0.0)
    valid_to = np.where(rng.random(n) < 0.2, valid_from + rng.uniform(1.0, 365.0, n), np.inf)
    tracker = BurdenTracker(365.25, 1.0)
    columns = (start, x0, rate, capacity)
    tracker.total = np.array([total_burden(t, *columns, valid_from, valid_to)
                              for t in tracker.grid])
    tracker.lethal = float(rng.uniform(0.2, 1.2)) * float(tracker.total.max())
    reference = tracker.resolve_end(*columns, valid_from=valid_from, valid_to=valid_to)
    compiled = tracker.resolve_end(*columns, valid_from=valid_from, valid_to=valid_to,
                                   compiled=True)
    assert compiled[1] == reference[1]
    np.testing.assert_allclose(compiled[0], reference[0], rtol=1e-12)
    if reference[1] == "lethal_burden":
        assert total_burden(compiled[0], *columns, valid_from, valid_to) >= tracker.lethal * (
            1 - 1e-12)
        assert total_burden(compiled[0] * (1 - 1e-9), *columns, valid_from,
                            valid_to) < tracker.lethal
