"""The package's one Kaplan-Meier estimator and one Wilson interval
(:mod:`metastasis.results.statistics`), checked against lifelines (an independent
implementation: survival function, confidence bands, median and its interval) and against
closed forms (exponential survival, the Wilson formula with scipy's normal quantile).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from metastasis.results.statistics import (
    QUANTILE_SLACK,
    KaplanMeier,
    kaplan_meier,
    normal_quantile,
    wilson_interval,
)

lifelines = pytest.importorskip("lifelines")
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.utils import median_survival_times, qth_survival_time  # noqa: E402

SURVIVAL_ATOL = 1e-14
"""Survival is accumulated as lifelines does it (a sum of logs), so it agrees to rounding."""

BAND_ATOL = 1e-12
"""The bands agree to a few ulps: the normal quantile comes from the standard library here
(1.9599639845400536) and from scipy in lifelines (1.959963984540054)."""


def _fit(durations: np.ndarray, events: np.ndarray) -> KaplanMeierFitter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' own numpy warnings (log 0 and the like)
        return KaplanMeierFitter().fit(durations, event_observed=events)


def _censored_sample(seed: int, n: int, *, decimals: int | None = None,
                     censoring: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Exponential event times censored by independent exponential follow-up times;
    ``decimals`` rounds the times so that many are tied (events with events, events with
    censorings)."""
    rng = np.random.default_rng(seed)
    event_time = rng.exponential(2.0, n)
    follow_up = rng.exponential(2.0 * (1.0 - censoring) / censoring, n)
    time = np.minimum(event_time, follow_up)
    if decimals is not None:
        time = np.round(time, decimals)
    return time, event_time <= follow_up


def _assert_same_as_lifelines(time: np.ndarray, died: np.ndarray) -> KaplanMeier:
    fitter = _fit(time, died)
    km = kaplan_meier(time, died)
    np.testing.assert_array_equal(km.times, fitter.survival_function_.index.to_numpy())
    np.testing.assert_allclose(km.survival, fitter.survival_function_.iloc[:, 0].to_numpy(),
                               rtol=0, atol=SURVIVAL_ATOL)
    band = fitter.confidence_interval_.to_numpy()
    np.testing.assert_allclose(km.lower, band[:, 0], rtol=0, atol=BAND_ATOL)
    np.testing.assert_allclose(km.upper, band[:, 1], rtol=0, atol=BAND_ATOL)
    table = fitter.event_table
    np.testing.assert_array_equal(km.events, table["observed"].to_numpy())
    np.testing.assert_array_equal(km.censored, table["censored"].to_numpy())
    np.testing.assert_array_equal(km.at_risk, table["at_risk"].to_numpy())

    median = km.median()
    limits = median_survival_times(fitter.confidence_interval_).iloc[0].to_numpy(dtype=float)
    expected = (float(fitter.median_survival_time_), limits[0], limits[1])
    for got, want, curve in zip(median, expected, (km.survival, km.lower, km.upper),
                                strict=True):
        if got != want:
            # the one allowed difference: a curve exactly at 0.5 in exact arithmetic that
            # lifelines' rounding leaves a hair above it (see test_exact_half_...)
            assert got < want
            assert curve[np.searchsorted(km.times, got)] == pytest.approx(0.5, abs=1e-12)
    for p in (0.25, 0.75):
        assert km.quantile(p).estimate == qth_survival_time(1.0 - p, fitter.survival_function_)

    rng = np.random.default_rng(int(time.size))
    probes = np.concatenate(([0.0, time.max(), time.max() + 1.0], rng.uniform(0, time.max(), 25)))
    for t in probes:
        point = km.survival_at(float(t))
        assert point.estimate == pytest.approx(
            float(fitter.survival_function_at_times(float(t)).iloc[0]), abs=SURVIVAL_ATOL)
        row = fitter.confidence_interval_.asof(float(t)).to_numpy(dtype=float)
        assert (point.lower, point.upper) == pytest.approx(tuple(row), abs=BAND_ATOL)
    return km


# ---------------------------------------------------------------- against lifelines


@pytest.mark.parametrize("n", [2, 5, 31, 200, 2001])
@pytest.mark.parametrize("decimals", [None, 1, 0])
def test_kaplan_meier_matches_lifelines_on_censored_data(n: int, decimals: int | None) -> None:
    """Seeded censored samples of several sizes, continuous and rounded (heavy ties)."""
    time, died = _censored_sample(1000 * n + (decimals or 7), n, decimals=decimals)
    km = _assert_same_as_lifelines(time, died)
    assert km.subjects == n and km.n_events == int(died.sum())


@pytest.mark.parametrize("n", [1, 3, 50])
def test_kaplan_meier_all_censored_stays_at_one(n: int) -> None:
    time = np.random.default_rng(n).uniform(0.5, 8.0, n)
    km = _assert_same_as_lifelines(time, np.zeros(n, bool))
    assert np.all(km.survival == 1.0) and np.all(km.lower == 1.0) and np.all(km.upper == 1.0)
    assert km.median() == (math.inf, math.inf, math.inf)


@pytest.mark.parametrize("n", [1, 7, 101, 999])
def test_kaplan_meier_without_censoring_matches_lifelines(n: int) -> None:
    time = np.random.default_rng(n).exponential(3.0, n)
    km = _assert_same_as_lifelines(time, np.ones(n, bool))
    # without censoring the curve is the empirical survival function
    np.testing.assert_allclose(km.survival[1:], 1.0 - np.arange(1, n + 1) / n, rtol=0,
                               atol=1e-12)
    assert km.survival[-1] == 0.0 and km.lower[-1] == 0.0 and km.upper[-1] == 0.0


def test_kaplan_meier_single_subject() -> None:
    died = _assert_same_as_lifelines(np.array([2.5]), np.array([True]))
    assert list(died.times) == [0.0, 2.5] and list(died.survival) == [1.0, 0.0]
    assert died.median() == (2.5, 2.5, 2.5)
    alive = _assert_same_as_lifelines(np.array([2.5]), np.array([False]))
    assert list(alive.survival) == [1.0, 1.0] and math.isinf(alive.median().estimate)


def test_kaplan_meier_events_at_time_zero() -> None:
    time = np.array([0.0, 0.0, 1.0, 2.0, 3.0])
    died = np.array([True, False, True, False, True])
    km = _assert_same_as_lifelines(time, died)
    assert km.times[0] == 0.0 and km.survival[0] == pytest.approx(0.8, abs=1e-15)


def test_exact_half_is_reached_at_the_death_that_makes_it() -> None:
    """Ten deaths, no censoring: the curve is exactly 0.5 after the fifth, so the median is
    the fifth time (the inverted empirical distribution function; also R's survfit lower
    end). Rounding in the product leaves it at 0.5 + 1 ulp for some n (lifelines then
    reports the sixth time); :data:`QUANTILE_SLACK` absorbs that."""
    for n in range(2, 41, 2):
        time = np.arange(1.0, n + 1.0)
        km = kaplan_meier(time, np.ones(n, bool))
        assert km.median().estimate == n / 2, n
        assert km.median().estimate == np.quantile(time, 0.5, method="inverted_cdf")
        assert abs(km.survival_at(n / 2).estimate - 0.5) < QUANTILE_SLACK


# ---------------------------------------------------------------- closed forms


def test_kaplan_meier_recovers_exponential_survival() -> None:
    """Seeded: 20,000 exponential lifetimes (rate 0.2 per year, median ln 2 / 0.2 = 3.466 y)
    censored by independent exponential follow-up (rate 0.1, a third censored).

    The median estimate's standard error here is 0.038 y (measured over 200 such samples),
    so 0.15 y is about 4 s.e.; its 95 % interval, read off the bands, should then be about
    2 x 1.96 x 0.038 = 0.15 y wide.  The survival's standard error is below 0.005, so 0.02
    is over 4 s.e.  (Whether the intervals cover the truth is a matter of many samples:
    :func:`test_kaplan_meier_intervals_cover_at_their_nominal_rate`.)
    """
    rate = 0.2
    rng = np.random.default_rng(20_000)
    lifetime = rng.exponential(1.0 / rate, 20_000)
    follow_up = rng.exponential(10.0, 20_000)
    km = kaplan_meier(np.minimum(lifetime, follow_up), lifetime <= follow_up)
    median = km.median()
    truth = math.log(2.0) / rate
    assert median.estimate == pytest.approx(truth, abs=0.15)
    assert median.lower < median.estimate < median.upper
    assert 0.10 < median.upper - median.lower < 0.22
    for t in (1.0, 3.0, 6.0, 10.0):
        point = km.survival_at(t)
        assert point.estimate == pytest.approx(math.exp(-rate * t), abs=0.02)
        assert point.lower < point.estimate < point.upper


def test_kaplan_meier_intervals_cover_at_their_nominal_rate() -> None:
    """Seeded: 400 samples of 300 exponential lifetimes (rate 0.2) with a third censored.
    The Monte Carlo standard error of a 95 % coverage over 400 samples is 0.011; the band
    at 3 years and the median's interval must cover the truth in [0.91, 0.99] of them."""
    rate, n, samples = 0.2, 300, 400
    rng = np.random.default_rng(1958)  # Kaplan and Meier's year
    truth_median, truth_three = math.log(2.0) / rate, math.exp(-rate * 3.0)
    covered_median = covered_three = 0
    for _ in range(samples):
        lifetime = rng.exponential(1.0 / rate, n)
        follow_up = rng.exponential(10.0, n)
        km = kaplan_meier(np.minimum(lifetime, follow_up), lifetime <= follow_up)
        median = km.median()
        covered_median += median.lower <= truth_median <= median.upper
        point = km.survival_at(3.0)
        covered_three += point.lower <= truth_three <= point.upper
    assert 0.91 <= covered_median / samples <= 0.99
    assert 0.91 <= covered_three / samples <= 0.99


def test_steps_are_the_corners_of_the_curve() -> None:
    time = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    died = np.array([True, False, True, True, False])
    days, survival = kaplan_meier(time, died).steps()
    # 5 at risk: 4/5 after 1; 4 at risk at 2 (one death, one censoring): 3/5; then 2 at
    # risk at 3: 3/10; the censoring at 5 adds no corner
    assert list(days) == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_allclose(survival, [1.0, 0.8, 0.6, 0.3], rtol=0, atol=1e-15)


def test_survival_at_reads_the_step_function() -> None:
    km = kaplan_meier(np.array([1.0, 2.0, 3.0]), np.array([True, True, False]))
    assert km.survival_at(-1.0) == (1.0, 1.0, 1.0)
    assert km.survival_at(0.999).estimate == 1.0
    assert km.survival_at(1.0).estimate == pytest.approx(2 / 3, abs=1e-15)
    assert km.survival_at(2.5).estimate == pytest.approx(1 / 3, abs=1e-15)
    assert km.survival_at(100.0).estimate == pytest.approx(1 / 3, abs=1e-15)  # carried on
    assert km.follow_up == 3.0
    assert km.known_at(3.0) is not None and km.known_at(3.5) is None


def test_a_curve_that_fell_to_zero_is_known_beyond_its_follow_up() -> None:
    """Everyone died within two years: survival at five years is 0, not unknown (a stage
    IV cohort read "not known (follow-up under 5 years)")."""
    km = kaplan_meier(np.array([0.5, 1.0, 2.0]), np.array([True, True, True]))
    assert km.known_at(5.0) is not None and km.known_at(5.0).estimate == 0.0


@pytest.mark.parametrize(("durations", "events"), [
    ([], []), ([1.0, 2.0], [True]), ([1.0, np.nan], [True, True]), ([-1.0], [True]),
    ([1.0, np.inf], [True, False])])
def test_kaplan_meier_refuses_what_it_cannot_estimate(durations, events) -> None:
    with pytest.raises(ValueError):
        kaplan_meier(np.array(durations, float), np.array(events, bool))


def test_kaplan_meier_takes_pandas_columns() -> None:
    frame = pd.DataFrame({"t": [3.0, 1.0, 2.0], "died": [True, False, True]})
    km = kaplan_meier(frame["t"], frame["died"])
    assert list(km.times) == [0.0, 1.0, 2.0, 3.0] and km.n_events == 2


# ---------------------------------------------------------------- Wilson


def _wilson_by_hand(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson (1927) in its textbook form, with scipy's normal quantile."""
    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = k / n
    centre = (k + z * z / 2.0) / (n + z * z)
    half = z * math.sqrt(n) / (n + z * z) * math.sqrt(p * (1.0 - p) + z * z / (4.0 * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (5, 10), (1, 30), (22, 100),
                                      (999, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_the_formula(k: int, n: int, confidence: float) -> None:
    low, high = _wilson_by_hand(k, n, confidence)
    assert wilson_interval(k, n, confidence) == pytest.approx(
        (max(low, 0.0), min(high, 1.0)), abs=1e-12)


def test_wilson_textbook_values() -> None:
    """5 of 10 at 95 %: 0.2366 to 0.7634 (Newcombe 1998, table I); 0 and 10 of 10 have the
    closed ends 0 and 1 and the other end z^2 / (n + z^2) from them."""
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    z2 = float(norm.ppf(0.975)) ** 2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)), abs=1e-12)
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0), abs=1e-12)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_wilson_is_symmetric_and_empty_without_trials() -> None:
    for k in range(0, 13):
        low, high = wilson_interval(k, 12)
        mirrored = wilson_interval(12 - k, 12)
        assert (low, high) == pytest.approx((1 - mirrored[1], 1 - mirrored[0]), abs=1e-12)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    for bad in ((-1, 10), (11, 10), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)


def test_normal_quantile_is_scipys() -> None:
    for confidence in (0.8, 0.9, 0.95, 0.99):
        assert normal_quantile(confidence) == pytest.approx(
            float(norm.ppf(1 - (1 - confidence) / 2)), abs=1e-14)
