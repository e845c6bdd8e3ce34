"""The compiled exponential integral and its inverse, checked against SciPy.

:mod:`metastasis.model.special` replaces ``scipy.special.exp1`` in the engine's hot path, so
SciPy is the independent reference here: E1 must agree with it to 1e-13 relative everywhere
the engine or the inverse can reach (1e-300 <= x <= 700), the inverse must round-trip, and
the growth closed forms built on them must agree with the same closed forms written directly
in SciPy.  Grids are dense and logarithmic; random points are seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special

from metastasis.model.growth import (
    cumulative_emission,
    cumulative_emission_rows,
    cumulative_emission_scalar,
    gompertz_rate,
    inverse_cumulative_emission,
    inverse_cumulative_emission_rows,
    inverse_cumulative_emission_scalar,
)
from metastasis.model.special import (
    CHEBYSHEV_UPPER,
    SERIES_CUTOFF,
    exp1,
    exp1_array,
    inverse_exp1,
    inverse_exp1_array,
)

EXP1_RTOL = 1e-13
"""Required relative agreement of E1 with SciPy (measured: 1.6e-15 at most on these grids)."""

EPS = float(np.finfo(np.float64).eps)

RNG_SEED = 20_240_608


def _grid() -> np.ndarray:
    """20,001 log-spaced points over [1e-300, 700], seeded log-uniform and uniform points,
    and the neighbours of the pieces' boundaries (series | Chebyshev | continued fraction)."""
    rng = np.random.default_rng(RNG_SEED)
    edges = [SERIES_CUTOFF, CHEBYSHEV_UPPER]
    near_edges = [np.nextafter(e, d) for e in edges for d in (0.0, np.inf)]
    return np.concatenate([
        np.geomspace(1e-300, 700.0, 20_001),
        np.exp(rng.uniform(math.log(1e-300), math.log(700.0), 20_000)),
        rng.uniform(0.0, 40.0, 20_000),
        edges, near_edges,
    ])


def test_exp1_agrees_with_scipy() -> None:
    """Relative error <= 1e-13 against scipy.special.exp1 over x in [1e-300, 700], in the
    scalar and the array form (which must be the same numbers)."""
    x = _grid()
    expected = special.exp1(x)
    ours = exp1_array(x)
    np.testing.assert_allclose(ours, expected, rtol=EXP1_RTOL, atol=0.0)
    scalar = np.array([exp1(float(v)) for v in x[::97]])
    np.testing.assert_array_equal(scalar, ours[::97])


def test_exp1_edge_cases() -> None:
    """0 gives +inf, negative and NaN give NaN (as SciPy), +inf gives 0, values that
    underflow give 0, tiny x follow -gamma - ln x, large x follow e^-x / x."""
    assert exp1(0.0) == math.inf
    assert math.isnan(exp1(-1.0))
    assert math.isnan(exp1(math.nan))
    assert exp1(math.inf) == 0.0
    for x in (740.0, 750.0, 1e4, 1e300):
        assert exp1(x) == special.exp1(x) == 0.0
    assert exp1(5e-324) == pytest.approx(-np.euler_gamma - math.log(5e-324), rel=1e-15)
    assert exp1(1e-300) == pytest.approx(float(special.exp1(1e-300)), rel=1e-15)
    # 700: e^-x / x * (1 - 1/x + 2/x^2 - 6/x^3), the asymptotic series to 1e-11 relative
    x = 700.0
    asymptotic = math.exp(-x) / x * (1.0 - 1.0 / x + 2.0 / x**2 - 6.0 / x**3)
    assert exp1(x) == pytest.approx(asymptotic, rel=1e-10)
    assert exp1(3) == exp1(3.0)  # integers are converted, not compiled for anew


def test_exp1_array_keeps_shape_and_accepts_strided_input() -> None:
    """The array form maps any shape to the same shape, strided and 0-d input included."""
    x = np.geomspace(1e-5, 50.0, 24).reshape(4, 6)
    np.testing.assert_array_equal(exp1_array(x), exp1_array(x.ravel()).reshape(4, 6))
    np.testing.assert_array_equal(exp1_array(x[:, ::2]), exp1_array(x)[:, ::2])
    assert exp1_array(2.0).shape == ()
    assert float(exp1_array(2.0)) == exp1(2.0)


def test_exp1_is_decreasing_across_the_pieces() -> None:
    """E1 is strictly decreasing: no step at the joins between series, Chebyshev series and
    continued fraction, on a grid fine enough to see one."""
    for edge in (SERIES_CUTOFF, CHEBYSHEV_UPPER):
        x = np.linspace(edge * (1 - 1e-6), edge * (1 + 1e-6), 2001)
        assert np.all(np.diff(exp1_array(x)) < 0.0)


def test_inverse_round_trips() -> None:
    """z -> E1(z) -> z to 1e-13 relative for z in [1e-300, 700] (measured 5.7e-14, at the
    small end, where the relative sensitivity of z to y is E1(z) e^z ~ 690); and
    y -> z -> E1(z) (SciPy's E1) to 1e-14 + 2 eps z relative, because one ulp of z moves E1
    by z ulp (measured: 4.7e-15 for z < 30, 0.97 eps z for z > 100, 1.1e-13 at z = 674)."""
    rng = np.random.default_rng(RNG_SEED)
    z = np.concatenate([np.geomspace(1e-300, 700.0, 20_001),
                        np.exp(rng.uniform(math.log(1e-300), math.log(700.0), 20_000))])
    np.testing.assert_allclose(inverse_exp1_array(exp1_array(z)), z, rtol=1e-13, atol=0.0)
    y = np.concatenate([np.geomspace(1e-300, 690.0, 20_001),
                        np.exp(rng.uniform(math.log(1e-300), math.log(690.0), 20_000))])
    root = inverse_exp1_array(y)
    residual = np.abs(special.exp1(root) / y - 1.0)
    assert np.all(residual <= 1e-14 + 2.0 * EPS * root)
    scalar = np.array([inverse_exp1(float(v)) for v in y[::97]])
    np.testing.assert_array_equal(scalar, root[::97])


def test_inverse_edge_cases() -> None:
    """y = 0 has its root at +inf, y = +inf at 0; negative and NaN y have none (NaN); the
    ends of the start table (1e-14, 60) and beyond it are solved like the rest."""
    assert inverse_exp1(0.0) == math.inf
    assert inverse_exp1(math.inf) == 0.0
    assert math.isnan(inverse_exp1(-1.0))
    assert math.isnan(inverse_exp1(math.nan))
    for y in (1e-300, 1e-15, 1e-14, np.nextafter(1e-14, 1.0), 59.999, 60.0, 60.001, 690.0):
        z = inverse_exp1(float(y))
        assert float(special.exp1(z)) == pytest.approx(float(y), rel=1e-14 + 2.0 * EPS * z)
    assert inverse_exp1_array(np.array([[0.5, 2.0]])).shape == (1, 2)


# (x0, rate per day, capacity, emission scale, exponent), as in test_growth.py
PARAMETERS = [
    (1.0, 0.00286, 7.3e10, 5.3e-8, 2.0 / 3.0),
    (1.0, gompertz_rate(160.0, 1e9, 1e11), 1e11, 0.05, 0.6667),
    (1e6, 0.01, 1e10, 1.0, 0.5),
    (1.0, 0.05, 1e12, 1e-3, 1.0),
    (1e3, 1e-4, 1e5, 2.0, 0.3),
]


def _scipy_cumulative(age: np.ndarray, x0: float, rate: float, capacity: float, scale: float,
                      exponent: float) -> np.ndarray:
    """The closed form A (E1(c e^(-a t)) - E1(c)) written directly in SciPy."""
    c = exponent * math.log(capacity / x0)
    amplitude = scale * capacity**exponent / rate
    return amplitude * (special.exp1(c * np.exp(-rate * np.maximum(age, 0.0))) - special.exp1(c))


def _scipy_inverse(target: float, x0: float, rate: float, capacity: float, scale: float,
                   exponent: float) -> float:
    """ln(c / z) / a with SciPy's E1(z) = E1(c) + target / A solved by Brent's method in
    ln z, to the last bit."""
    c = exponent * math.log(capacity / x0)
    amplitude = scale * capacity**exponent / rate
    y = float(special.exp1(c)) + target / amplitude
    if y == float(special.exp1(c)):
        return 0.0
    log_z = optimize.brentq(lambda w: float(special.exp1(math.exp(w))) - y, -700.0,
                            math.log(c), xtol=1e-300, rtol=4 * EPS, maxiter=500)
    return max(math.log(c / math.exp(log_z)) / rate, 0.0)


def _rounding_bound(age: np.ndarray, x0: float, rate: float, capacity: float, scale: float,
                    exponent: float) -> np.ndarray:
    """8 eps A (E1(c) + E1(z) + e^-z), z = c e^(-a t): the rounding of A (E1(z) - E1(c))
    from its two terms and from z (see the test below)."""
    c = exponent * math.log(capacity / x0)
    amplitude = scale * capacity**exponent / rate
    z = c * np.exp(-rate * np.maximum(age, 0.0))
    return 8.0 * EPS * amplitude * (special.exp1(c) + special.exp1(z) + np.exp(-z))


@pytest.mark.parametrize(("x0", "rate", "capacity", "scale", "exponent"), PARAMETERS)
def test_growth_closed_forms_agree_with_scipy(
    x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> None:
    """The compiled emission functions (array, scalar and row forms) equal the closed form
    written in SciPy to 1e-12 relative, and the compiled inverse equals a SciPy-based one
    to 1e-12 relative (+ 1e-9 days) for ages from minutes to ten Gompertz time constants.

    In a curve's first minutes the emission is a small difference of two exponential
    integrals, and it is only as exact as their arguments: numpy's ``exp`` (SIMD, chosen by
    the CPU) and the compiled one may round ``c e^(-a t)`` an ulp apart, which the
    difference magnifies (2e-10 relative at one minute on one machine).  There the bound
    adds the rounding of the two terms and of the argument, 8 eps A (E1(c) + E1(z) + e^-z),
    z = c e^(-a t): what any implementation of the closed form can promise."""
    args = (x0, rate, capacity, scale, exponent)
    ages = np.concatenate([[0.0, 1e-3], np.geomspace(1e-3, 10.0, 80) / rate])
    expected = _scipy_cumulative(ages, *args)
    bound = 1e-12 * np.abs(expected) + _rounding_bound(ages, *args)
    n = ages.size
    for computed in (
        cumulative_emission(ages, *args),
        np.array([cumulative_emission_scalar(float(t), *args) for t in ages]),
        cumulative_emission_rows(ages, np.full(n, x0), np.full(n, rate), np.full(n, capacity),
                                 scale, exponent),
    ):
        assert np.all(np.abs(computed - expected) <= bound), np.abs(computed - expected) / bound

    targets = expected[::4]
    reference = np.array([_scipy_inverse(float(v), *args) for v in targets])
    np.testing.assert_allclose(inverse_cumulative_emission(targets, *args), reference,
                               rtol=1e-12, atol=1e-9)
    scalar = [inverse_cumulative_emission_scalar(float(v), *args) for v in targets]
    np.testing.assert_allclose(scalar, reference, rtol=1e-12, atol=1e-9)
    m = targets.size
    rows = inverse_cumulative_emission_rows(targets, np.full(m, x0), np.full(m, rate),
                                            np.full(m, capacity), scale, exponent)
    np.testing.assert_allclose(rows, reference, rtol=1e-12, atol=1e-9)


def test_rows_mix_curves_and_match_the_scalar_path() -> None:
    """Rows from different lesions, repeated in runs as the engine lists founders, and a
    lesion at its capacity (linear emission) give what the scalar functions give row by
    row; a scalar age broadcasts against the rows."""
    rng = np.random.default_rng(RNG_SEED)
    curves = np.array([[1.0, 0.003, 7.3e10], [1e6, 0.01, 1e10], [1e9, 0.01, 1e9],
                       [1.0, 0.003, 7.3e10]])
    runs = np.repeat(np.arange(4), [5, 1, 3, 4])
    x0, rate, capacity = curves[runs].T
    scale, exponent = 0.05, 0.6667
    ages = rng.uniform(-10.0, 3000.0, runs.size)
    forward = cumulative_emission_rows(ages, x0, rate, capacity, scale, exponent)
    one_by_one = [cumulative_emission_scalar(a, *curve, scale, exponent)
                  for a, curve in zip(ages, curves[runs], strict=True)]
    np.testing.assert_allclose(forward, one_by_one, rtol=1e-15, atol=0.0)
    back = inverse_cumulative_emission_rows(forward, x0, rate, capacity, scale, exponent)
    one_by_one = [inverse_cumulative_emission_scalar(v, *curve, scale, exponent)
                  for v, curve in zip(forward, curves[runs], strict=True)]
    np.testing.assert_allclose(back, one_by_one, rtol=1e-15, atol=0.0)
    np.testing.assert_allclose(back, np.maximum(ages, 0.0), rtol=1e-11, atol=1e-9)
    at_day = cumulative_emission_rows(100.0, x0, rate, capacity, scale, exponent)
    np.testing.assert_allclose(
        at_day, cumulative_emission_rows(np.full(runs.size, 100.0), x0, rate, capacity,
                                         scale, exponent), rtol=0.0, atol=0.0)
    assert inverse_cumulative_emission_rows(np.zeros(0), x0[:0], rate[:0], capacity[:0],
                                            scale, exponent).shape == (0,)


def test_emission_shapes_and_special_values() -> None:
    """Shapes as before the compiled kernels: a scalar age gives a numpy scalar, a scalar
    target a 0-d array, arrays keep their shape; negative ages count as 0, NaN stays NaN."""
    args = (1.0, 0.003, 7.3e10, 0.05, 0.6667)
    assert isinstance(cumulative_emission(5.0, *args), np.floating)
    assert inverse_cumulative_emission(5.0, *args).shape == ()
    grid = np.linspace(0.0, 100.0, 6).reshape(2, 3)
    assert cumulative_emission(grid, *args).shape == (2, 3)
    assert inverse_cumulative_emission(grid, *args).shape == (2, 3)
    assert cumulative_emission_scalar(-3.0, *args) == 0.0
    assert math.isnan(cumulative_emission_scalar(math.nan, *args))
    assert math.isnan(float(cumulative_emission(math.nan, *args)))
