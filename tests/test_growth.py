"""Closed forms of Gompertz growth and emission, checked against plain numerics.

The engine never integrates anything: it trusts ``cumulative_emission`` (an E1 closed form)
and its inverse for exact time-rescaling, and ``gompertz_age_at`` for the time a lesion
reaches a size.  If any of these were off, every stochastic result would be biased without
a sampling test noticing quickly, so they are checked here deterministically against
adaptive quadrature and round trips, over parameter sets spanning the knowledge bases
(Iwata 2000, default cancers, and extremes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from metastasis.model.growth import (
    cumulative_emission,
    cumulative_emission_scalar,
    gompertz_age_at,
    gompertz_age_at_scalar,
    gompertz_rate,
    gompertz_size,
    inverse_cumulative_emission,
    inverse_cumulative_emission_scalar,
)

# (x0, rate per day, capacity, emission scale, exponent)
PARAMETERS = [
    pytest.param(1.0, 0.00286, 7.3e10, 5.3e-8, 2.0 / 3.0, id="iwata2000"),
    pytest.param(1.0, gompertz_rate(160.0, 1e9, 1e11), 1e11, 0.05, 0.6667, id="colorectal"),
    pytest.param(1e6, 0.01, 1e10, 1.0, 0.5, id="from-micrometastasis"),
    pytest.param(1.0, 0.05, 1e12, 1e-3, 1.0, id="fast-linear-exponent"),
    pytest.param(1e3, 1e-4, 1e5, 2.0, 0.3, id="slow-small"),
]


def _quadrature(age: float, x0: float, rate: float, capacity: float, scale: float,
                exponent: float) -> float:
    """int_0^age scale * x(s)^exponent ds by adaptive quadrature on the explicit curve."""
    def integrand(s: float) -> float:
        return scale * (capacity * math.exp(math.log(x0 / capacity) * math.exp(-rate * s))) ** (
            exponent
        )

    # split at a few e-folding times of the Gompertz clock so quad sees the whole shape
    breaks = [b / rate for b in (0.5, 1.0, 2.0, 4.0, 8.0) if b / rate < age]
    value, _ = integrate.quad(integrand, 0.0, age, points=breaks or None, limit=200,
                              epsabs=0.0, epsrel=1e-12)
    return value


@pytest.mark.parametrize(("x0", "rate", "capacity", "scale", "exponent"), PARAMETERS)
def test_cumulative_emission_equals_quadrature(
    x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> None:
    """The E1 closed form equals adaptive quadrature of scale * x(s)^alpha (rel 1e-9), from
    early growth to the plateau, and the scalar fast path equals the array form (1e-13)."""
    args = (x0, rate, capacity, scale, exponent)
    for fraction in (1e-3, 0.1, 0.5, 1.0, 3.0, 10.0):
        age = fraction / rate
        expected = _quadrature(age, *args)
        assert float(cumulative_emission(age, *args)) == pytest.approx(expected, rel=1e-9)
        assert cumulative_emission_scalar(age, *args) == pytest.approx(
            float(cumulative_emission(age, *args)), rel=1e-13
        )
    assert float(cumulative_emission(0.0, *args)) == 0.0
    assert float(cumulative_emission(-5.0, *args)) == 0.0  # before the start: nothing yet


def test_cumulative_emission_at_capacity_is_linear() -> None:
    """A lesion starting at its capacity emits at the constant rate scale * K^alpha."""
    assert float(cumulative_emission(10.0, 1e9, 0.01, 1e9, 2.0, 0.5)) == pytest.approx(
        10.0 * 2.0 * 1e9**0.5, rel=1e-15
    )
    assert float(inverse_cumulative_emission(2e5, 1e9, 0.01, 1e9, 2.0, 0.5)) == pytest.approx(
        2e5 / (2.0 * 1e9**0.5), rel=1e-15
    )


@pytest.mark.parametrize(("x0", "rate", "capacity", "scale", "exponent"), PARAMETERS)
def test_inverse_cumulative_emission_round_trips(
    x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> None:
    """inverse(cumulative(t)) = t to 1e-9 days + 1e-12 t, for ages from seconds to ten
    Gompertz time constants, in the array path (many targets) and the scalar path."""
    args = (x0, rate, capacity, scale, exponent)
    ages = np.concatenate([[0.0, 1e-5, 1e-2], np.geomspace(1e-3, 10.0, 60) / rate])
    targets = cumulative_emission(ages, *args)
    back = inverse_cumulative_emission(targets, *args)
    np.testing.assert_allclose(back, ages, rtol=1e-12, atol=1e-9)
    scalar = np.array([inverse_cumulative_emission_scalar(float(v), *args) for v in targets])
    np.testing.assert_allclose(scalar, ages, rtol=1e-12, atol=1e-9)
    # and the other way round, on evenly spread targets
    y = np.linspace(0.0, float(targets[-1]), 101)
    np.testing.assert_allclose(cumulative_emission(inverse_cumulative_emission(y, *args), *args),
                               y, rtol=1e-11, atol=1e-12 * float(targets[-1]))
    assert np.all(np.diff(inverse_cumulative_emission(y, *args)) > 0.0)


@given(
    log_capacity=st.floats(3.0, 12.5),
    x0_fraction=st.floats(0.0, 0.9),
    log_rate=st.floats(-4.5, -0.5),
    log_scale=st.floats(-9.0, 1.0),
    exponent=st.floats(0.05, 1.0),
    u=st.floats(0.0, 1.0),
)
def test_inverse_round_trip_property(
    log_capacity: float, x0_fraction: float, log_rate: float, log_scale: float,
    exponent: float, u: float,
) -> None:
    """Property: for any valid Gompertz lesion and any age up to 20 time constants, the
    time-rescaling inverse returns the age (1e-9 days + 1e-12 relative)."""
    capacity = 10.0**log_capacity
    x0 = 10.0 ** (x0_fraction * log_capacity)
    rate = 10.0**log_rate
    args = (x0, rate, capacity, 10.0**log_scale, exponent)
    age = u * 20.0 / rate
    target = float(cumulative_emission(age, *args))
    assert inverse_cumulative_emission_scalar(target, *args) == pytest.approx(
        age, rel=1e-12, abs=1e-9
    )
    pair = inverse_cumulative_emission(np.array([target, target]), *args)
    np.testing.assert_allclose(pair, age, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(("x0", "rate", "capacity", "scale", "exponent"), PARAMETERS)
def test_gompertz_age_at_inverts_gompertz_size(
    x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> None:
    """gompertz_age_at(gompertz_size(t)) = t (rel 1e-9 where the size is resolvable in
    double precision), sizes at or below x0 take no time, the capacity is never reached."""
    ages = np.geomspace(1e-2, 5.0, 40) / rate
    sizes = gompertz_size(ages, x0, rate, capacity)
    np.testing.assert_allclose(gompertz_age_at(sizes, x0, rate, capacity), ages, rtol=1e-9)
    scalar = [gompertz_age_at_scalar(float(s), x0, rate, capacity) for s in sizes]
    np.testing.assert_allclose(scalar, ages, rtol=1e-9)
    assert float(gompertz_size(0.0, x0, rate, capacity)) == pytest.approx(x0, rel=1e-15)
    assert float(gompertz_age_at(x0, x0, rate, capacity)) == 0.0
    assert float(gompertz_age_at(0.5 * x0, x0, rate, capacity)) == 0.0
    assert math.isinf(float(gompertz_age_at(capacity, x0, rate, capacity)))
    assert math.isinf(gompertz_age_at_scalar(capacity, x0, rate, capacity))


@pytest.mark.parametrize(
    ("doubling", "reference", "capacity"),
    [(56.487925679369354, 1e9, 7.3e10), (160.0, 1e9, 1e11), (30.0, 1e6, 1e12), (500.0, 1e10, 1e11)],
)
def test_doubling_time_at_reference_size_equals_input(
    doubling: float, reference: float, capacity: float
) -> None:
    """The Gompertz rate from a doubling time gives back that doubling time at the reference
    size: ln 2 / (d ln x / dt) there, with the derivative taken numerically from
    gompertz_size at the age gompertz_age_at gives for the reference size (rel 1e-7)."""
    rate = gompertz_rate(doubling, reference, capacity)
    age = float(gompertz_age_at(reference, 1.0, rate, capacity))
    h = 1e-3 * doubling
    up, down = (float(gompertz_size(age + k * h, 1.0, rate, capacity)) for k in (1, -1))
    specific = (math.log(up) - math.log(down)) / (2.0 * h)
    assert math.log(2.0) / specific == pytest.approx(doubling, rel=1e-7)
    # and in closed form: the specific rate a ln(K/x) at the reference size
    assert math.log(2.0) / (rate * math.log(capacity / reference)) == pytest.approx(
        doubling, rel=1e-15
    )
