"""Patients differ in how much their tumours shed: the between-patient spread of the rate.

Each patient's rate is the cancer type's median rate times 10**(sd * Z), Z standard normal
(truncated to |sd * Z| <= limit where the type sets a limit), drawn first from the patient's
own generator.  Checked here: the distribution of the drawn rates (Kolmogorov-Smirnov against
the normal and the truncated normal laws of log10 rates, alpha = 0.001, seeded), the
median patient (sd = 0 leaves every patient at the median rate and draws nothing), that the
fast and the reference engines give a patient the same rate from the same generator (one
semantics, two implementations), and that the rate reaches the cell counts it should.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy import stats

from metastasis.engine.process import patient_shedding_rate
from metastasis.engine.seeds import patient_generator
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import resolve
from metastasis.reference.gillespie import simulate_reference_patient

ALPHA = 0.001


def _with_spread(raw: dict, sd: float | None, limit: float | None = None) -> dict:
    raw = copy.deepcopy(raw)
    shedding = raw["cancers"]["colorectal"].setdefault("shedding", {})
    for key in ("rate_log10_sd", "rate_log10_limit"):
        shedding.pop(key, None)
        raw["cancer_defaults"]["shedding"].pop(key, None)
    if sd is not None:
        shedding["rate_log10_sd"] = {"value": sd, "source": "assumption: test"}
    if limit is not None:
        shedding["rate_log10_limit"] = {"value": limit, "source": "assumption: test"}
    return raw


def _log10_factors(raw: dict, n: int = 4000) -> np.ndarray:
    model = resolve(from_dict(raw), "colorectal")
    rates = np.array([patient_shedding_rate(model, patient_generator(5, i)) for i in range(n)])
    return np.log10(rates) - math.log10(model.shedding_rate)


def test_patient_rates_are_log_normal_around_the_median(default_raw):
    exponents = _log10_factors(_with_spread(default_raw, 0.7))
    assert stats.kstest(exponents / 0.7, "norm").pvalue > ALPHA


def test_a_limit_truncates_the_spread(default_raw):
    """With a limit the log10 factor follows the normal truncated to [-limit, limit]; here
    at one standard deviation, so that the untruncated law is rejected."""
    exponents = _log10_factors(_with_spread(default_raw, 0.7, limit=0.7))
    assert np.abs(exponents).max() <= 0.7
    assert stats.kstest(exponents / 0.7, stats.truncnorm(-1.0, 1.0).cdf).pvalue > ALPHA
    assert stats.kstest(exponents / 0.7, "norm").pvalue < ALPHA


def test_no_spread_means_every_patient_sheds_at_the_median_and_draws_nothing(default_raw):
    model = resolve(from_dict(_with_spread(default_raw, None)), "colorectal")
    assert model.shedding_rate_log10_sd == 0.0
    rng = patient_generator(5, 0)
    state = copy.deepcopy(rng.bit_generator.state)
    assert patient_shedding_rate(model, rng) == model.shedding_rate
    assert rng.bit_generator.state == state


@pytest.mark.parametrize("index", range(5))
def test_fast_and_reference_engines_draw_the_same_patient_rate(default_raw, index):
    raw = _with_spread(default_raw, 0.8, limit=0.5)  # rejections happen: both must redraw
    model = resolve(from_dict(raw), "colorectal")
    fast = patient_shedding_rate(model, patient_generator(9, index))
    # a short horizon: only the patient's first draw matters here
    reference = simulate_reference_patient(from_dict(raw), "colorectal",
                                           patient_generator(9, index), 1.0)
    assert reference.shedding_rate == pytest.approx(fast, rel=1e-12)


def test_the_engine_sheds_at_the_patients_own_rate(default_raw):
    """With invasion off the primary sheds from day 0 along a fixed curve, so the expected
    number of cells it sheds by the horizon is the patient's rate times the same integral
    for every patient."""
    from metastasis.engine.patient import simulate_patient

    raw = _with_spread(default_raw, 0.8)
    raw["cancers"]["colorectal"]["invasion"] = {"enabled": False}
    model = resolve(from_dict(raw), "colorectal")
    primary = model.primary_site
    results = [simulate_patient(model, patient_generator(2, i), 1500.0) for i in range(5)]
    assert all(r.end_reason == "horizon" for r in results)
    rates = np.array([r.shedding_rate for r in results])
    assert rates.max() / rates.min() > 2.0  # the patients do differ
    per_unit_rate = [r.accounting.expected_shed_by_site[primary] / r.shedding_rate
                     for r in results]
    assert per_unit_rate == pytest.approx([per_unit_rate[0]] * 5, rel=1e-9)
