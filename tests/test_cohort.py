"""Cohorts: validation, chunking invariance, tables that agree with each patient, summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import metastasis
from metastasis import cohort as cohort_module
from metastasis.api import DAYS_PER_YEAR, load_model, run_patient
from metastasis.cohort import CohortResult, rerun, run_cohort
from metastasis.errors import ModelError
from metastasis.model.resolve import FATES
from metastasis.results.patient import Accounting, LesionTable, PatientResult
from metastasis.results.tables import (
    ACCOUNTING_TOTALS,
    build_tables,
    kaplan_meier_quantiles,
    wilson_interval,
)

SEED = 20240601
YEARS = 10.0
"""A horizon at which the default colorectal model gives a mix of patients with and without
distant spread while a patient still costs milliseconds."""


@pytest.fixture(scope="module")
def colorectal():
    return load_model("colorectal")


@pytest.fixture(scope="module")
def cohort(colorectal) -> CohortResult:
    return run_cohort(colorectal, 30, SEED, YEARS)


def assert_same_tables(a: CohortResult, b: CohortResult) -> None:
    pd.testing.assert_frame_equal(a.patients, b.patients, check_exact=True)
    pd.testing.assert_frame_equal(a.lesions, b.lesions, check_exact=True)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("patients", [0, -3, 1.5, True, "10", None])
def test_bad_patient_counts_name_the_field(colorectal, patients):
    with pytest.raises(ModelError) as err:
        run_cohort(colorectal, patients, 1, YEARS)
    assert err.value.field == "patients"
    assert err.value.value == patients
    assert ">= 1" in err.value.allowed


@pytest.mark.parametrize("years", [0, -1.0, math.nan, math.inf, 150.5])
def test_bad_years_name_the_field(colorectal, years):
    with pytest.raises(ModelError) as err:
        run_cohort(colorectal, 5, 1, years)
    assert err.value.field == "years"


@pytest.mark.parametrize(("field", "kwargs"), [
    ("seed", {"seed": -1}),
    ("seed", {"seed": 2.5}),
    ("start", {"start": -1}),
    ("start", {"start": 0.5}),
])
def test_bad_seed_or_start_name_the_field(colorectal, field, kwargs):
    args = {"seed": 1, "start": 0, **kwargs}
    with pytest.raises(ModelError) as err:
        run_cohort(colorectal, 3, args["seed"], YEARS, start=args["start"])
    assert err.value.field == field


def test_unseeded_run_draws_and_records_a_seed_that_reproduces_it(colorectal):
    first = run_cohort(colorectal, 4, None, YEARS)
    seed = first.provenance["root_seed"]
    assert isinstance(seed, int) and seed >= 0
    assert first.provenance["seed_drawn"] is True
    again = run_cohort(colorectal, 4, seed, YEARS)
    assert again.provenance["seed_drawn"] is False
    assert_same_tables(first, again)


# --------------------------------------------------------------------------- chunking


def test_chunks_joined_in_any_order_equal_one_run(colorectal, cohort):
    parts = [
        run_cohort(colorectal, 10, SEED, YEARS, start=20),
        run_cohort(colorectal, 7, SEED, YEARS, start=0),
        run_cohort(colorectal, 13, SEED, YEARS, start=7),
    ]
    joined = CohortResult.concat(parts)
    assert_same_tables(joined, cohort)
    assert joined.provenance["patient_index_start"] == 0
    assert joined.provenance["patient_index_stop"] == 30
    assert joined.provenance["n_patients"] == 30


def test_internal_blocks_do_not_change_the_cohort(colorectal, cohort, monkeypatch):
    monkeypatch.setattr(cohort_module, "BLOCK_PATIENTS", 4)
    assert_same_tables(run_cohort(colorectal, 30, SEED, YEARS), cohort)


def test_patient_alone_equals_its_row_in_a_cohort(colorectal, cohort):
    lone = run_cohort(colorectal, 1, SEED, YEARS, start=17)
    row = cohort.patients.iloc[[17]].reset_index(drop=True)
    pd.testing.assert_frame_equal(lone.patients, row, check_exact=True)


@pytest.mark.parametrize(("change", "field"), [
    ({"root_seed": 2}, "provenance.root_seed"),
    ({"years": 11.0}, "provenance.years"),
    ({"patient_index_start": 11, "patient_index_stop": 14}, "patient_index_start"),  # gap
    ({"patient_index_start": 9, "patient_index_stop": 12}, "patient_index_start"),  # overlap
])
def test_concat_refuses_parts_of_different_runs(cohort, change, field):
    head = CohortResult(cohort.patients.iloc[:10], cohort.lesions, {
        **cohort.provenance, "patient_index_start": 0, "patient_index_stop": 10})
    tail = CohortResult(cohort.patients.iloc[10:13], cohort.lesions, {
        **cohort.provenance, "patient_index_start": 10, "patient_index_stop": 13, **change})
    with pytest.raises(ModelError) as err:
        CohortResult.concat([head, tail])
    assert err.value.field == field


def test_without_lesions_the_patients_table_is_unchanged(colorectal, cohort):
    parts = [run_cohort(colorectal, 12, SEED, YEARS, keep_lesions=False),
             run_cohort(colorectal, 18, SEED, YEARS, start=12, keep_lesions=False)]
    slim = CohortResult.concat(parts)
    pd.testing.assert_frame_equal(slim.patients, cohort.patients, check_exact=True)
    assert slim.lesions.empty
    assert list(slim.lesions.columns) == list(cohort.lesions.columns)
    assert (slim.lesions.dtypes == cohort.lesions.dtypes).all()
    assert slim.summary()["sites"] == cohort.summary()["sites"]
    with pytest.raises(ModelError):  # a part with lesions and one without do not mix
        CohortResult.concat([parts[0], run_cohort(colorectal, 18, SEED, YEARS, start=12)])


def test_progress_reports_every_patient_exactly_once(colorectal):
    advances: list[int] = []
    n = cohort_module.PROGRESS_EVERY * 2 + 3
    run_cohort(colorectal, n, SEED, 1.0, progress=advances.append)
    assert sum(advances) == n
    assert len(advances) == 3


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(("cancer", "years", "n"), [
    ("colorectal", YEARS, 30),
    ("pancreatic", 10.0, 8),  # some patients reach a lethal burden: ends differ per patient
])
def test_tables_agree_with_each_patient_result(cancer, years, n):
    """Every column is what PatientResult's own methods say about that patient."""
    model = load_model(cancer)
    result = run_cohort(model, n, SEED, years)
    sites = model.site_names
    assert list(result.patients["patient_index"]) == list(range(n))
    for i in range(n):
        patient = run_patient(model, SEED, i, years)
        row = result.patients.iloc[i]
        lesions = result.lesions[result.lesions["patient_index"] == i]
        assert row["end_time"] == patient.end_time
        assert row["end_reason"] == patient.end_reason
        assert row["n_lesions_founded"] == len(patient.lesions) - 1
        assert row["n_metastases"] == patient.metastasis_rows(growing_by=patient.end_time).size
        grown = patient.sites_with_metastases()
        assert [s for s in sites if row[f"met_{s}"]] == [s for s in sites if s in grown]
        first = patient.first_distant_metastasis()
        if first is None:
            assert math.isnan(row["first_distant_day"])
            assert pd.isna(row["first_distant_site"])
        else:
            assert (row["first_distant_day"], row["first_distant_site"]) == first
        totals = patient.accounting.totals()
        assert tuple(totals) == ACCOUNTING_TOTALS
        assert {k: row[f"cells_{k}"] for k in totals} == totals
        np.testing.assert_array_equal(lesions["lesion"], patient.lesions.id)
        np.testing.assert_array_equal(lesions["size_at_end"],
                                      patient.lesions.size_at(patient.end_time))
        assert list(lesions["site"]) == [sites[s] for s in patient.lesions.site]


def _synthetic(index: int, end: float, reason: str, motility: float, rows: list[tuple]
               ) -> PatientResult:
    """A hand-made patient; rows: (site, parent, route, arrival, awakening, micro, outgrowth)."""
    columns = list(zip(*rows, strict=True))
    n = len(rows)
    lesions = LesionTable(
        id=np.arange(n), site=np.array(columns[0]), parent=np.array(columns[1]),
        route=np.array(columns[2]), arrival=np.array(columns[3], float),
        awakening=np.array(columns[4], float), colony_scale=np.ones(n),
        micrometastasis=np.array(columns[5], float), outgrowth=np.array(columns[6], float),
        x0=np.full(n, 1e3), rate=np.full(n, 0.01), capacity=np.full(n, 1e12),
    )
    fates = np.zeros((3, 4, len(FATES)), dtype=np.int64)
    fates[0, 0, 0] = 5  # five cells failed to extravasate in the liver
    accounting = Accounting(np.array([90, 0, 0]), fates, np.zeros(4))
    return PatientResult(index, 1, "synthetic", 100.0, end, reason, motility, 5.0, 0.05, lesions,
                         accounting, ("liver", "lungs", "regional_lymph_nodes", "colon"))


def test_tables_of_hand_made_patients():
    """Ties, events after the end, lethal ends and patients without spread, by hand."""
    liver, lungs, nodes, colon = range(4)
    a = _synthetic(7, 100.0, "horizon", 2.0, [
        (colon, -1, -1, 0, 0, 0, 0),
        (nodes, 0, 1, 10, 10, 20, 30),
        (lungs, 0, 0, 20, 20, 40, 50),
        (liver, 0, 0, 25, 25, 40, 50),   # ties with the lungs: the earlier row wins
        (liver, 0, 0, 90, 120, 130, 140),  # founded, asleep at the end
    ])
    b = _synthetic(8, 60.0, "lethal_burden", math.inf, [
        (colon, -1, -1, 0, 0, 0, 0),
        (lungs, 0, 0, 20, 20, 40, 70),  # would grow out after death
    ])
    patients, lesions = build_tables([a, b], a.site_names)
    pa, pb = patients.iloc[0], patients.iloc[1]
    assert (pa["n_lesions_founded"], pa["n_metastases"], pa["n_distant_sites"]) == (4, 3, 2)
    assert (pa["first_distant_day"], pa["first_distant_site"]) == (50.0, "lungs")
    assert pa["node_involvement_day"] == 30.0
    assert (pa["met_liver"], pa["met_lungs"], pa["met_regional_lymph_nodes"]) == (True,) * 3
    assert not pa["met_colon"]
    assert pa["motility_time"] == 2.0
    assert (pb["n_lesions_founded"], pb["n_metastases"], pb["n_distant_sites"]) == (1, 0, 0)
    assert math.isnan(pb["first_distant_day"]) and pd.isna(pb["first_distant_site"])
    assert math.isnan(pb["node_involvement_day"])
    assert math.isnan(pb["motility_time"])  # never: NaN, not infinity
    assert pb["end_reason"] == "lethal_burden"
    asleep = lesions.iloc[4]
    assert asleep["arrival"] == 90.0
    assert all(math.isnan(asleep[c]) for c in ("awakening", "micrometastasis", "outgrowth"))
    assert math.isnan(lesions.iloc[6]["outgrowth"])
    assert list(lesions["route"].iloc[:3].fillna("-")) == ["-", "lymph", "blood"]
    np.testing.assert_array_equal(lesions["size_at_end"].iloc[:5], a.lesions.size_at(100.0))
    np.testing.assert_array_equal(lesions["size_at_end"].iloc[5:], b.lesions.size_at(60.0))
    assert list(patients["cells_shed"]) == [95, 95]
    assert list(patients["cells_died_in_circulation"]) == [90, 90]
    assert list(patients["cells_failed_extravasation"]) == [5, 5]


# --------------------------------------------------------------------------- statistics


def test_wilson_interval_known_values():
    # (5, 10): the textbook example, 0.2366 to 0.7634 (Wilson 1927; Newcombe 1998 table I)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    z2 = 1.959963984540054 ** 2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)), abs=1e-12)
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0), abs=1e-12)
    with pytest.raises(ModelError):
        wilson_interval(0, 0)


def test_wilson_interval_covers_at_its_nominal_rate():
    """Seeded: 4000 binomial samples (n=60, p=0.1); Monte Carlo s.e. of coverage is 0.0034.

    Wilson's coverage oscillates around 95 % with n and p; for n=60, p=0.1 it lies within
    [0.93, 0.97], and we allow 3 s.e. more either side.
    """
    rng = np.random.default_rng(1927)
    n, p = 60, 0.1
    draws = rng.binomial(n, p, size=4000)
    covered = [low <= p <= high for low, high in (wilson_interval(int(k), n) for k in draws)]
    assert 0.92 <= np.mean(covered) <= 0.98


def test_kaplan_meier_handles_censoring_by_hand():
    times = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    observed = np.array([True, False, True, True, True])
    # S: 0.8 after day 1, day 2 censored, 0.8*2/3 = 0.533 after 3, 0.267 after 4, 0 after 5;
    # ignoring the censoring would put the median of (1, 3, 4, 5) at 3.5
    assert kaplan_meier_quantiles(times, observed, (0.25, 0.5, 0.75)) == [3.0, 4.0, 5.0]
    assert kaplan_meier_quantiles(times, np.zeros(5, bool), (0.5,)) == [None]


def test_kaplan_meier_without_censoring_is_the_empirical_quantile():
    rng = np.random.default_rng(3)
    times = rng.exponential(10.0, size=101)
    got = kaplan_meier_quantiles(times, np.ones(101, bool), (0.25, 0.5, 0.75))
    expected = np.quantile(times, (0.25, 0.5, 0.75), method="inverted_cdf")
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)


def test_summary_is_plain_data_consistent_with_the_tables(cohort):
    summary = cohort.summary()
    json.dumps(summary, allow_nan=False)  # plain, JSON-ready data
    n = len(cohort)
    assert summary["n_patients"] == n
    by_site = {s["site"]: s for s in summary["sites"]}
    assert set(by_site) == set(cohort.site_names)
    for site, entry in by_site.items():
        assert entry["patients"] == int(cohort.patients[f"met_{site}"].sum())
        assert entry["ci_low"] <= entry["share"] <= entry["ci_high"]
    shares = [s["share"] for s in summary["sites"]]
    assert shares == sorted(shares, reverse=True)
    distribution = summary["distant_sites_per_patient"]["distribution"]
    assert sum(d["patients"] for d in distribution) == n
    first = summary["first_distant_metastasis"]
    assert first["patients"] == int(cohort.patients["first_distant_day"].notna().sum())
    died = summary["accounting_fraction_of_shed"]["died_in_circulation"]["pooled"]
    p = cohort.patients
    assert died == p["cells_died_in_circulation"].sum() / p["cells_shed"].sum()
    assert summary["cancer"] == "colorectal" and summary["root_seed"] == SEED


# --------------------------------------------------------------------------- provenance


def test_provenance_records_what_a_rerun_needs(colorectal, cohort):
    prov = cohort.provenance
    assert prov["version"] == metastasis.__version__
    assert prov["cancer"] == "colorectal"
    assert prov["root_seed"] == SEED
    assert (prov["patient_index_start"], prov["patient_index_stop"]) == (0, 30)
    assert prov["years"] == YEARS and prov["horizon_days"] == YEARS * DAYS_PER_YEAR
    assert prov["model"] == colorectal.knowledge
    assert prov["created_at"].endswith("+00:00")
    json.dumps(prov, allow_nan=False)


def test_rerun_from_provenance_reproduces_a_chunk(colorectal):
    chunk = run_cohort(colorectal, 6, SEED, YEARS, start=12)
    assert_same_tables(rerun(chunk.provenance), chunk)


# --------------------------------------------------------------------------- benchmark


@pytest.mark.slow
def test_benchmark_script_runs_and_prints_its_tables():
    """A smoke run of benchmarks/bench_cohort.py (no timing is asserted, only that it works)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cohort.py"
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True,
                          text=True, timeout=300, check=True)
    assert "patients/s" in done.stdout
    assert "## Cost against patients" in done.stdout
    assert "## Cost against years" in done.stdout
