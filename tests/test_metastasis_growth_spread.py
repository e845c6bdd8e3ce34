"""Patients differ in how fast their metastases grow: the between-patient spread of the
metastases' Gompertz rate (``growth.metastasis_rate_log10_sd``, issue 9).

Each patient's metastases grow at the cancer type's median rate times 10**(sd * Z), Z
standard normal truncated to ``|sd * Z| <= limit``, drawn from the patient's own generator
right after the shedding rate.  Checked here: the law of the drawn factors (Kolmogorov-Smirnov
against the truncated normal law of their log10, alpha = 0.001, seeded), that no spread
draws nothing (the stream of a model without one is what it was), that the fast and the
reference (Gillespie) engines give a patient the same factor from the same generator, that
every metastasis of a patient grows at the patient's rate while the primary keeps the type's,
and that bad values are refused with the field named.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy import stats

from metastasis.engine.patient import simulate_patient
from metastasis.engine.process import (
    PRIMARY,
    patient_metastasis_rate,
    patient_shedding_rate,
)
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict
from metastasis.knowledge.ranges import MAX_GOMPERTZ_RATE
from metastasis.model.resolve import resolve
from metastasis.reference.gillespie import simulate_reference_patient

ALPHA = 0.001


def _with_spread(raw: dict, sd: float | None, limit: float | None = None) -> dict:
    raw = copy.deepcopy(raw)
    growth = raw["cancers"]["colorectal"].setdefault("growth", {})
    for key in ("metastasis_rate_log10_sd", "metastasis_rate_log10_limit"):
        growth.pop(key, None)
        raw["cancer_defaults"]["growth"].pop(key, None)
    if sd is not None:
        growth["metastasis_rate_log10_sd"] = {"value": sd, "source": "assumption: test"}
    if limit is not None:
        growth["metastasis_rate_log10_limit"] = {"value": limit, "source": "assumption: test"}
    return raw


def _log10_factors(raw: dict, n: int = 4000) -> np.ndarray:
    model = resolve(from_dict(raw), "colorectal")
    factors = []
    for i in range(n):
        rng = patient_generator(5, i)
        patient_shedding_rate(model, rng)  # the process draws the shedding rate first
        factors.append(patient_metastasis_rate(model, rng) / model.metastasis_rate)
    return np.log10(np.array(factors))


def test_the_shipped_defaults_have_a_spread(default_raw):
    model = resolve(from_dict(default_raw), "colorectal")
    assert model.metastasis_rate_log10_sd > 0.0
    assert 0.0 < model.metastasis_rate_log10_limit < math.inf


def test_patient_factors_follow_the_truncated_log_normal_law(default_raw):
    """Truncated at one standard deviation here, so the untruncated law is rejected too:
    the test can tell the two apart."""
    exponents = _log10_factors(_with_spread(default_raw, 0.5, limit=0.5))
    assert np.abs(exponents).max() <= 0.5
    assert stats.kstest(exponents / 0.5, stats.truncnorm(-1.0, 1.0).cdf).pvalue > ALPHA
    assert stats.kstest(exponents / 0.5, "norm").pvalue < ALPHA


def test_a_limit_far_out_leaves_the_normal_law(default_raw):
    """5.5 standard deviations: no draw of 4,000 is refused in practice."""
    exponents = _log10_factors(_with_spread(default_raw, 0.2, limit=1.1))
    assert stats.kstest(exponents / 0.2, "norm").pvalue > ALPHA


def test_no_spread_draws_nothing_and_keeps_the_median_rate(default_raw):
    model = resolve(from_dict(_with_spread(default_raw, None)), "colorectal")
    assert model.metastasis_rate_log10_sd == 0.0
    rng = patient_generator(5, 0)
    state = copy.deepcopy(rng.bit_generator.state)
    assert patient_metastasis_rate(model, rng) == model.metastasis_rate
    assert rng.bit_generator.state == state
    result = simulate_patient(model, patient_generator(5, 0), 3000.0)
    assert result.metastasis_growth_factor == 1.0


@pytest.mark.parametrize("index", range(5))
def test_fast_and_reference_engines_draw_the_same_patient_factor(default_raw, index):
    raw = _with_spread(default_raw, 0.8, limit=0.4)  # rejections happen: both must redraw
    model = resolve(from_dict(raw), "colorectal")
    rng = patient_generator(9, index)
    patient_shedding_rate(model, rng)
    fast = patient_metastasis_rate(model, rng)
    reference = simulate_reference_patient(from_dict(raw), "colorectal",
                                           patient_generator(9, index), 1.0)
    assert reference.metastasis_rate == pytest.approx(fast, rel=1e-12)


def test_every_metastasis_grows_at_the_patients_rate_and_the_primary_at_the_types(
        default_raw):
    raw = _with_spread(default_raw, 0.5, limit=0.8)
    model = resolve(from_dict(raw), "colorectal")
    factors = []
    for index in range(40):
        result = simulate_patient(model, patient_generator(3, index), 10 * 365.25)
        table = result.lesions
        metastases = result.metastasis_rows()
        assert table.rate[PRIMARY] == model.primary_rate
        expected = model.metastasis_rate * result.metastasis_growth_factor
        assert np.allclose(table.rate[metastases], expected, rtol=1e-12, atol=0.0)
        factors.append(result.metastasis_growth_factor)
    assert max(factors) / min(factors) > 2.0  # the patients do differ


@pytest.mark.parametrize(("changes", "field"), [
    ({"metastasis_rate_log10_sd": 0.3}, "metastasis_rate_log10_limit"),
    ({"metastasis_rate_log10_sd": 3.0, "metastasis_rate_log10_limit": 0.1},
     "metastasis_rate_log10_limit"),
])
def test_bad_spreads_are_refused_with_the_field_named(default_raw, changes, field):
    raw = _with_spread(default_raw, None)
    growth = raw["cancers"]["colorectal"]["growth"]
    for key, value in changes.items():
        growth[key] = {"value": value, "source": "assumption: test"}
    with pytest.raises(ModelError) as caught:
        resolve(from_dict(raw), "colorectal")
    assert field in str(caught.value)


def test_near_the_engines_largest_rate_the_spread_is_cut_above_only(default_raw):
    """A limit that would take the fastest patient past the engine's largest Gompertz rate is
    cut on that side: no patient's metastases exceed it, and the slow side keeps its limit."""
    raw = _with_spread(default_raw, 0.5, limit=2.5)
    model = resolve(from_dict(raw), "colorectal")
    assert model.metastasis_rate_log10_limit == 2.5
    highest = model.metastasis_rate_log10_highest
    assert highest == pytest.approx(math.log10(MAX_GOMPERTZ_RATE / model.metastasis_rate))
    exponents = _log10_factors(raw, n=2000)
    assert exponents.max() <= highest + 1e-12
    assert exponents.min() < -highest  # the slow side reaches further
    law = stats.truncnorm(-2.5 / 0.5, highest / 0.5)
    assert stats.kstest(exponents / 0.5, law.cdf).pvalue > ALPHA
