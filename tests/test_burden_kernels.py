"""The compiled burden kernels against their numpy and SciPy references.

:mod:`metastasis.clinical.burden_kernels` repeats the reference arithmetic step for step, so
on most machines the answers are equal to the last bit; the tests demand what the clinic
relies on and what holds wherever numpy's and the C library's ``exp``/``log`` differ in the
last bit: burdens equal to :data:`REL` and crossing days equal to the crossing tolerance,
on the lesion tables of real simulated patients, treated ones (rows closed by a cut, clones
by mutation) among them.  Every random query is seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from metastasis.api import run_patient
from metastasis.clinical import burden_kernels as kernels
from metastasis.clinical.course import Arm, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.observe import (
    CROSSING_TOLERANCE_DAYS,
    _float_columns,
    _rows,
    _rows_reference,
    first_crossing,
    first_crossing_reference,
    physical_lesions,
    physical_lesions_reference,
)
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.process import MUTATION_ROUTE
from metastasis.knowledge.loader import load
from metastasis.model.resolve import resolve
from metastasis.results.patient import LesionTable

REL = 1e-12
"""Relative agreement demanded of a compiled burden (the reference's is a numpy sum)."""

SEED = 20240601
YEARS = 20.0
TREATED = (0, 5, 9, 2)
"""Colorectal courses of root SEED: 83 rows (56 cut, 2 clones), 3,510 rows (994 cut,
27 clones), 239 rows (70 cut, 3 clones) and 43 rows (12 cut, 1 clone), when the patients
were last chosen (2026-11-30, with the metastases' growth spread and the weaker
chemotherapy of issue 9)."""

QUERIES_PER_TABLE = 120


@pytest.fixture(scope="module")
def tables() -> list[LesionTable]:
    """Whole histories of treated courses, and one untreated natural history."""
    model = resolve(load(), "colorectal")
    clinical, treatments = load_clinical(), load_treatments()
    out = [
        simulate_course(model, clinical, treatments, SEED, index, YEARS, Arm()).patient.lesions
        for index in TREATED
    ]
    out.append(run_patient(model, SEED, 3, 15.0).lesions)
    return out


def _burden(table: LesionTable, rows: np.ndarray, day: float) -> float:
    return kernels.burden_at(rows, *_float_columns(table), day)


def _reference_burden(table: LesionTable, rows: np.ndarray, day: float) -> float:
    return float(table.take(rows).size_at(day).sum())


def _interesting_days(table: LesionTable, rng: np.random.Generator) -> np.ndarray:
    """Days where the size law changes branch (each exactly, and the float just below),
    and random days over the history."""
    law = np.concatenate([
        table.arrival, table.awakening, table.micrometastasis, table.outgrowth,
        table.growth_start, table.valid_from, table.valid_to,
    ])
    law = law[np.isfinite(law)]
    law = rng.choice(law, size=min(law.size, 60), replace=False)
    end = float(np.max(np.where(np.isfinite(table.valid_to), table.valid_to, table.arrival)))
    return np.concatenate([
        law, np.nextafter(law, -np.inf), rng.uniform(0.0, end * 1.1 + 1.0, 40), [0.0, -1.0]
    ])


def _selections(table: LesionTable, rng: np.random.Generator) -> list[np.ndarray]:
    """All rows, each site's rows, and random subsets (kept in increasing order)."""
    n = len(table)
    out = [np.arange(n)]
    out += [np.flatnonzero(table.site == site) for site in np.unique(table.site)]
    out += [np.sort(rng.choice(n, size=rng.integers(1, n + 1), replace=False)) for _ in range(3)]
    return out


def test_the_patients_cover_cuts_clones_and_long_sums(tables: list[LesionTable]) -> None:
    """The tables exercise what the kernels must get right: rows closed by treatment, clones
    inside their parents, and sums longer than numpy's pairwise block."""
    assert any(np.isfinite(t.valid_to).sum() > 100 for t in tables)
    assert any((t.route == MUTATION_ROUTE).sum() > 5 for t in tables)
    assert any(len(t) > 128 for t in tables)  # numpy pairwise block size
    assert any(np.isinf(t.valid_to).all() for t in tables)  # the untreated history


def test_compiled_burden_equals_size_at_sum(tables: list[LesionTable]) -> None:
    rng = np.random.default_rng(SEED)
    checked = 0
    for table in tables:
        days = _interesting_days(table, rng)
        for rows in _selections(table, rng):
            for day in days:
                expected = _reference_burden(table, rows, float(day))
                got = _burden(table, rows, float(day))
                assert got == pytest.approx(expected, rel=REL, abs=0.0), (len(table), day)
                checked += 1
    assert checked > 1000


def test_pairwise_sum_is_numpys_sum() -> None:
    """The summation order is numpy's: exactly its result, whatever the length (pure
    float64 additions, so equality holds on any machine)."""
    rng = np.random.default_rng(SEED)
    lengths = [*range(0, 300), 1000, 4097, 8192, 10_001, 100_003]
    for n in lengths:
        values = rng.standard_normal(n) * 10.0 ** rng.uniform(0, 12, n)
        values[rng.random(n) < 0.3] = 0.0  # empty rows, as in a burden
        assert kernels._pairwise_sum(values, 0, n) == values.sum(), n


def test_heapsort_sorts() -> None:
    """The crossing search's own sort (closing days: many repeated, any order)."""
    rng = np.random.default_rng(SEED)
    for n in [*range(0, 40), 1000, 5001]:
        for values in (rng.standard_normal(n), rng.integers(0, 20, n).astype(float)):
            got = values.copy()
            kernels._heapsort(got)
            np.testing.assert_array_equal(got, np.sort(values))


def _query(
    table: LesionTable, rng: np.random.Generator
) -> tuple[list[int] | None, float, float, float, tuple[int, ...] | None]:
    """A random (sites, threshold, start, stop, lesions) query, mostly one that crosses."""
    sites_present = np.unique(table.site)
    kind = rng.integers(4)
    lesions = (0,) if kind == 0 else None
    if kind == 1:
        sites = None
    else:
        k = rng.integers(1, sites_present.size + 1)
        sites = sorted(int(s) for s in rng.choice(sites_present, size=k, replace=False))
    closing = table.valid_to[np.isfinite(table.valid_to)]
    end = float(np.max(np.concatenate([table.arrival, closing]))) + 365.0
    start, stop = np.sort(rng.uniform(0.0, end, 2))
    if closing.size and rng.random() < 0.3:  # windows that start or stop on a cut
        if rng.random() < 0.5:
            start = float(rng.choice(closing))
        else:
            stop = float(rng.choice(closing))
        start, stop = min(start, stop), max(start, stop)
    rows = _rows_reference(table, sites, lesions)
    probe = rng.uniform(start, stop) if stop > start else start
    level = _reference_burden(table, rows, probe) if rows.size else 1.0
    threshold = max(level, 1.0) * 10.0 ** rng.uniform(-1.0, 1.0)
    return sites, float(threshold), float(start), float(stop), lesions


def test_compiled_first_crossing_agrees_with_reference(tables: list[LesionTable]) -> None:
    rng = np.random.default_rng(SEED + 1)
    crossed = none = 0
    for table in tables:
        for _ in range(QUERIES_PER_TABLE):
            sites, threshold, start, stop, lesions = _query(table, rng)
            got = first_crossing(table, sites, threshold, start, stop, lesions=lesions)
            expected = first_crossing_reference(
                table, sites, threshold, start, stop, lesions=lesions
            )
            where = (len(table), sites, threshold, start, stop, lesions)
            if expected is None:
                assert got is None, where
                none += 1
                continue
            assert got is not None, where
            assert abs(got - expected) <= CROSSING_TOLERANCE_DAYS, where
            assert start <= got <= stop, where
            rows = _rows_reference(table, sites, lesions)
            assert _reference_burden(table, rows, got) >= threshold, where
            crossed += 1
    assert crossed > 100 and none > 20  # both outcomes were exercised


def test_first_crossing_edge_cases(tables: list[LesionTable]) -> None:
    table = tables[0]
    rows = np.arange(len(table))
    for args in [
        (None, 1.0, math.inf, 10.0),  # start not finite
        (None, 1.0, 10.0, 5.0),  # stop before start
        ([10_000], 1.0, 0.0, 100.0),  # no rows in these sites
        (None, 1.0, 0.0, math.nan),  # a NaN stop
    ]:
        assert first_crossing(table, *args) is None
    day = float(table.arrival[1]) + 10.0
    level = _burden(table, rows, day)
    # a window of one day: that day if the burden is reached there, else None
    assert first_crossing(table, None, level, day, day) == first_crossing_reference(
        table, None, level, day, day
    ) == day
    assert first_crossing(table, None, np.nextafter(level, np.inf) * 2, day, day) is None


def test_a_brief_excursion_ended_by_a_cut_is_found() -> None:
    """One lesion grows past the threshold and is cut back below it the next day: the
    crossing lies in the piece before the cut, which no grid of days need see."""
    capacity, x0, rate = 1e12, 1e6, 0.01
    table = LesionTable(
        id=np.array([0, 0]), site=np.array([0, 0]), parent=np.array([-1, -1]),
        route=np.array([0, 0]), arrival=np.array([0.0, 0.0]), awakening=np.array([0.0, 0.0]),
        colony_scale=np.array([1.0, 1.0]), micrometastasis=np.array([0.0, 0.0]),
        outgrowth=np.array([0.0, 0.0]), x0=np.array([x0, 10.0]),
        rate=np.array([rate, rate]), capacity=np.array([capacity, capacity]),
        growth_start=np.array([0.0, 100.0]), valid_from=np.array([0.0, 100.0]),
        valid_to=np.array([100.0, np.inf]),
    )
    threshold = float(capacity * np.exp(np.log(x0 / capacity) * np.exp(-rate * 99.5)))
    got = first_crossing(table, None, threshold, 0.0, 200.0)
    assert got == first_crossing_reference(table, None, threshold, 0.0, 200.0)
    assert got is not None and abs(got - 99.5) < 1e-6


def test_a_nan_burden_is_refused_alike() -> None:
    """A broken table (zero capacity: NaN sizes) stops both searches with ValueError."""
    table = LesionTable(
        id=np.array([0]), site=np.array([0]), parent=np.array([-1]), route=np.array([0]),
        arrival=np.array([0.0]), awakening=np.array([0.0]), colony_scale=np.array([1.0]),
        micrometastasis=np.array([0.0]), outgrowth=np.array([0.0]), x0=np.array([0.0]),
        rate=np.array([0.01]), capacity=np.array([0.0]),
    )
    for search in (first_crossing, first_crossing_reference):
        with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="NaN"):
            search(table, None, 1.0, 0.0, 10.0)


def test_row_selection_and_physical_lesions_agree(tables: list[LesionTable]) -> None:
    rng = np.random.default_rng(SEED + 2)
    for table in tables:
        np.testing.assert_array_equal(physical_lesions(table), physical_lesions_reference(table))
        sites_present = np.unique(table.site)
        for _ in range(20):
            sites = None if rng.random() < 0.2 else [
                int(s) for s in rng.choice(sites_present, size=rng.integers(1, 4))
            ]
            lesions = None if rng.random() < 0.5 else [
                int(i) for i in rng.choice(table.id, size=rng.integers(1, 3))
            ]
            np.testing.assert_array_equal(
                _rows(table, sites, lesions), _rows_reference(table, sites, lesions)
            )


def test_clone_chains() -> None:
    """A clone of a clone belongs to the first lesion; a clone whose parent is not in the
    table stands alone; the last row of a lesion speaks for it, as in the reference."""
    ids = np.array([0, 10, 20, 30, 40, 40], dtype=np.int64)
    parents = np.array([-1, 0, 10, 90, 0, 20], dtype=np.int64)
    routes = np.array([0, MUTATION_ROUTE, MUTATION_ROUTE, MUTATION_ROUTE, 0, MUTATION_ROUTE])
    routes = routes.astype(np.int64)
    n = ids.size
    table = LesionTable(
        id=ids, site=np.zeros(n, dtype=np.int64), parent=parents, route=routes,
        **{name: np.zeros(n) for name in (
            "arrival", "awakening", "colony_scale", "micrometastasis", "outgrowth", "x0",
            "rate", "capacity",
        )},
    )
    np.testing.assert_array_equal(physical_lesions(table), [0, 0, 0, 30, 0, 0])
    np.testing.assert_array_equal(physical_lesions_reference(table), [0, 0, 0, 30, 0, 0])
    loop = np.array([0, 1], dtype=np.int64)
    with pytest.raises(ValueError, match="loop"):
        kernels.physical_roots(loop, loop[::-1].copy(), np.ones(2, dtype=np.bool_))


def _counted_searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the compiled searches from here on (one entry per call)."""
    from metastasis.clinical import burden_kernels as kernels

    searches: list[int] = []
    search = kernels.first_crossing_rows

    def counted(*args):  # type: ignore[no-untyped-def]
        searches.append(1)
        return search(*args)

    monkeypatch.setattr(kernels, "first_crossing_rows", counted)
    return searches


def test_a_window_ceiling_skips_only_searches_that_cannot_cross(
    tables: list[LesionTable], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no row closes in a window, the whole body's burden at its end bounds every
    burden in it: a threshold above it is answered without a search, and the answer is the
    reference's; a threshold at it is still searched and found."""
    from metastasis.clinical.observe import BurdenQuery

    searches = _counted_searches(monkeypatch)
    checked = 0
    for table in tables:
        start = 0.0
        # up to the day before the first cut (a window in which nothing closes)
        stop = float(np.min(table.valid_to[np.isfinite(table.valid_to)], initial=4001.0))
        stop = min(stop, 4001.0) - 1.0
        query = BurdenQuery(table)
        ceiling = query.ceiling(start, stop)
        if not (np.isfinite(ceiling) and ceiling > 1.0):
            continue
        for sites, lesions in ((None, None), ([int(table.site[0])], None), (None, (0,))):
            before = len(searches)
            above = ceiling * 1.001
            assert query.first_crossing(sites, above, start, stop, lesions=lesions) is None
            assert first_crossing_reference(table, sites, above, start, stop,
                                            lesions=lesions) is None
            assert len(searches) == before  # answered by the ceiling
        at = query.first_crossing(None, ceiling, start, stop)
        assert at is not None and at <= stop
        assert len(searches) > 0
        checked += 1
    assert checked >= 3


def test_a_ceiling_across_cuts_bounds_every_burden_and_is_reached(
    tables: list[LesionTable], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where rows close in a window (treatment cut lesions), the largest whole-body burden at
    the ends of the pieces between closing days bounds every burden in it: the whole body's
    and each site's burden on a fine grid of days stays below it, a threshold above it is
    answered without a search (and the reference agrees nothing crosses), and the whole
    body's burden reaches it (a search for it finds a day)."""
    from metastasis.clinical.observe import CEILING_MARGIN, BurdenQuery

    searches = _counted_searches(monkeypatch)
    checked = 0
    for table in tables:
        closing = table.valid_to[np.isfinite(table.valid_to)]
        if closing.size == 0:
            continue
        start, stop = float(closing.min()) - 30.0, float(closing.max()) + 30.0
        query = BurdenQuery(table)
        ceiling = query.ceiling(start, stop)
        assert np.isfinite(ceiling) and ceiling > 0.0
        days = np.concatenate([np.linspace(start, stop, 400), closing,
                               np.nextafter(closing, -np.inf)])
        for day in days:
            sizes = table.size_at(day)
            assert sizes.sum() <= ceiling * (1.0 + CEILING_MARGIN)
            for site in np.unique(table.site):
                assert sizes[table.site == site].sum() <= ceiling * (1.0 + CEILING_MARGIN)
        above = ceiling * 1.001
        before = len(searches)
        for sites in (None, [int(table.site[0])]):
            assert query.first_crossing(sites, above, start, stop) is None
            assert first_crossing_reference(table, sites, above, start, stop) is None
        assert len(searches) == before  # answered by the ceiling
        at = query.first_crossing(None, ceiling, start, stop)
        assert at is not None and start <= at <= stop
        checked += 1
    assert checked >= 2
