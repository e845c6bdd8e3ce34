"""Compiled exponential integral E1 and its inverse, for the growth closed forms' hot paths.

The cumulative emission of a Gompertz lesion is a difference of two values of E1, and the
exact time-rescaling of its emission needs the inverse of E1 (:mod:`metastasis.model.growth`).
For 300 colorectal patients over 10 years the engine asks for about 78,000 single
cumulative emissions, 87,000 more in small arrays and 265,000 inverses in the founders'
arrays (counted on ``run_cohort(load_model('colorectal'), 300, 1, 10.0)``).  SciPy's
``exp1`` costs 100-670 ns per value inside its array loop (measured here; the most near
x = 1, where its continued fraction runs to 100 terms) plus about 400 ns of Python and
ufunc overhead per scalar call, and it cannot be called from compiled code.  The functions
here are numba-compiled (``cache=True``: compiled once, then loaded from ``__pycache__``),
evaluate E1 in about 20-80 ns, and let each growth function run as one compiled call.

Accuracy: relative error below 1e-13 against ``scipy.special.exp1`` for 1e-300 <= x <= 700
(``tests/test_special.py``, where the largest seen is 1.6e-15; against 40-digit arithmetic
it was 1.5e-15).
Three pieces, each used where it is both fast and accurate:

* x <= 1: the convergent series E1(x) = -gamma - ln x - sum_k (-x)^k / (k k!), whose
  alternating terms cancel little there (at most a factor ~4, at x = 1);
* 1 < x <= 32: x e^x E1(x) as a Chebyshev series in ln x.  That function is entire in ln x,
  so degree 24 reaches double precision.  The coefficients are computed at import by
  interpolating the continued fraction below at the Chebyshev nodes: no table of digits;
* x > 32: the continued fraction e^x E1(x) = 1 / (x+1 - 1/(x+3 - 4/(x+5 - ...))), evaluated
  backwards from a depth that depends on x (at most 11 terms here; up to 104 at x = 1 for
  the import-time fit).  E1 is zero where e^-x / x underflows (x above about 738).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

EULER_GAMMA = 0.5772156649015329
"""Euler-Mascheroni constant gamma, the constant term of E1's series (the nearest double)."""

SERIES_CUTOFF = 1.0
"""E1 by its power series up to here, where its alternating terms cancel at most a factor ~4."""

_SERIES_TERMS = 20
"""Terms kept of the series: the first one left out, 1 / (21 * 21!) ~ 9e-22 at x = 1, is far
below the 2^-53 ~ 1.1e-16 roundoff of the sum (~0.8) there."""

_SERIES = np.array([(-1.0) ** (k + 1) / (k * math.factorial(k))
                    for k in range(1, _SERIES_TERMS + 1)])
"""Coefficients (-1)^(k+1) / (k k!) of x^k, k = 1..20, in E1(x) = -gamma - ln x + sum."""

CHEBYSHEV_UPPER = 32.0
"""E1 by the Chebyshev series of x e^x E1(x) in ln x on (SERIES_CUTOFF, CHEBYSHEV_UPPER];
above it the continued fraction needs at most 11 terms."""

_CHEBYSHEV_DEGREE = 24
"""Chebyshev degree: on ln x in [0, ln 32] the coefficients fall below 2e-17 after degree 22
(checked in 40-digit arithmetic); two more for margin."""

_CHEBYSHEV_HALF_LOG = 0.5 * math.log(CHEBYSHEV_UPPER)
"""Centre and half-width of the Chebyshev interval [0, ln 32] in s = ln x."""

_FRACTION_BASE_TERMS = 8.0
_FRACTION_TERMS_PER_INVERSE_X = 96.0
"""Depth of the backward continued fraction: 8 + 96 / x terms.  Against 40-digit values the
fewest terms that give full double precision were 97 at x = 1, 50 at x = 2, 24 at x = 5,
14 at x = 10 and 3 at x = 700; the rule gives 104, 56, 27, 17 and 8."""


@numba.njit("float64(float64)", cache=True, error_model="numpy")
def _scaled_fraction(x: float) -> float:
    """e^x E1(x) for x >= 1 by the even (Jacobi) continued fraction, evaluated backwards.

    Backward evaluation divides once per term and, with these positive partial
    denominators, loses almost nothing to rounding (2e-16 measured), where forward (Lentz)
    evaluation accumulated 1e-14 near x = 1 in trials.
    """
    terms = int(_FRACTION_BASE_TERMS + _FRACTION_TERMS_PER_INVERSE_X / x)
    tail = 0.0
    for i in range(terms, 0, -1):
        tail = (i * i) / (x + (2 * i + 1) - tail)
    return 1.0 / (x + 1.0 - tail)


def _chebyshev_fit() -> NDArray[np.float64]:
    """Chebyshev coefficients of g(s) = x e^x E1(x), x = e^s, on s in [0, ln CHEBYSHEV_UPPER].

    Interpolation at the degree + 1 Chebyshev nodes of the first kind (a discrete cosine
    transform), with g from the continued fraction, which is accurate for x >= 1.  The
    angles j (2k + 1) pi / 2n are reduced modulo 2 pi in integers and the sums are exact
    (``math.fsum``): a plain ``cos(outer) @ g`` left 1e-15 errors in the small coefficients,
    which added up to 8e-15 in E1.  The first coefficient is halved so that the series
    reads sum_j c_j T_j(t).
    """
    n = _CHEBYSHEV_DEGREE + 1
    nodes = np.cos(np.pi * (2 * np.arange(n) + 1) / (2 * n))
    x = np.exp(_CHEBYSHEV_HALF_LOG + _CHEBYSHEV_HALF_LOG * nodes)
    g = np.array([xi * _scaled_fraction(xi) for xi in x])
    multiple = np.outer(np.arange(n), 2 * np.arange(n) + 1) % (4 * n)  # angle in pi / 2n
    cosine = np.cos(np.pi * multiple / (2 * n))
    coefficients = np.array([2.0 / n * math.fsum(row * g) for row in cosine])
    coefficients[0] *= 0.5
    return coefficients


_CHEBYSHEV = _chebyshev_fit()


@numba.njit("float64(float64)", cache=True, error_model="numpy")
def _series(x: float) -> float:
    """E1(x) for 0 < x <= SERIES_CUTOFF by its power series (Horner's scheme)."""
    total = _SERIES[_SERIES_TERMS - 1]
    for k in range(_SERIES_TERMS - 2, -1, -1):
        total = total * x + _SERIES[k]
    return (total * x - EULER_GAMMA) - math.log(x)


@numba.njit("float64(float64)", cache=True, error_model="numpy")
def _scaled(x: float) -> float:
    """e^x E1(x) for x > SERIES_CUTOFF: the Chebyshev series, then the continued fraction.

    The scaled function is near 1/x, so neither e^x nor e^-x is formed: no overflow or
    underflow at any x.
    """
    if x <= CHEBYSHEV_UPPER:
        t = (math.log(x) - _CHEBYSHEV_HALF_LOG) / _CHEBYSHEV_HALF_LOG
        two_t = 2.0 * t
        b1 = 0.0
        b2 = 0.0
        for j in range(_CHEBYSHEV_DEGREE, 0, -1):  # Clenshaw's recurrence
            b1, b2 = two_t * b1 - b2 + _CHEBYSHEV[j], b1
        return (t * b1 - b2 + _CHEBYSHEV[0]) / x
    return _scaled_fraction(x)


@numba.njit("float64(float64)", cache=True, error_model="numpy")
def exp1(x: float) -> float:
    """Exponential integral E1(x) = int_x^inf e^-t / t dt for real x >= 0.

    +inf at 0, 0 where the value underflows (x above about 738), NaN for x < 0 (where E1 is
    complex) and for NaN, as SciPy.  Relative error below 1e-13 against SciPy for
    1e-300 <= x <= 700.
    """
    if not x > 0.0:
        return math.inf if x == 0.0 else math.nan
    if x <= SERIES_CUTOFF:
        return _series(x)
    return math.exp(-x) * _scaled(x)


@numba.njit("float64[::1](float64[::1])", cache=True, error_model="numpy")
def _exp1_flat(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = exp1(x[i])
    return out


def exp1_array(x: ArrayLike) -> NDArray[np.float64]:
    """:func:`exp1` elementwise over an array of any shape (one compiled loop)."""
    values = np.asarray(x, dtype=np.float64)
    return _exp1_flat(np.ascontiguousarray(values).ravel()).reshape(values.shape)


_MAX_STEPS = 100
"""Safety cap on iterations for the inverse; from the starts below it takes 1-2 (measured
on 40,000 values of y from 1e-300 to 700)."""

_HALLEY_TOLERANCE = 1e-17
"""Stop once the predicted error in w = ln z left after a step (below) is under this, a
tenth of the unit roundoff: z then carries no error beyond that of E1 and of rounding."""

_ASYMPTOTIC_REGIME = 1e-3
"""The error prediction is the leading term of an expansion in the step, trusted only for
steps below this."""

_NEWTON_FALLBACK = 0.5
"""Take Halley's step only while its denominator 1 - z s / 2 (s: Newton's step) is above
this, that is near the root; otherwise Newton's step, which cannot overshoot (convexity)."""

_ASYMPTOTE_SWITCH = 0.2
"""Below this E1 value (root z near 1) the asymptotic start is the large-z one, above it
the small-z one."""

_LARGE_Z_START_FLOOR = 1e-3
"""Floor on the large-z start u - ln u (u = -ln y), which would be near 0 for y near 0.2."""

_START_REFINEMENTS = 2
"""Fixed-point passes on the asymptotic start through a two-term asymptote."""


@numba.njit("float64(float64, float64)", cache=True, error_model="numpy")
def _asymptotic_start(y: float, log_y: float) -> float:
    """A start w ~ ln z for E1(z) = y (y > 0) from E1's asymptotes, within a few percent.

    z ~ exp(-gamma - y) for large y (small z), z ~ u - ln(z + 1) with u = -ln y for small y
    (large z, E1(z) ~ e^-z / (z + 1)), each refined by two fixed-point passes.
    """
    if y < _ASYMPTOTE_SWITCH:
        u = -log_y
        z = max(u - math.log(max(u, 1.0)), _LARGE_Z_START_FLOOR)
        for _ in range(_START_REFINEMENTS):
            z = max(u - math.log(z + 1.0), _LARGE_Z_START_FLOOR)
        return math.log(z)
    w = -EULER_GAMMA - y
    for _ in range(_START_REFINEMENTS):  # y ~ -gamma - ln z + z - z^2 / 4
        z = math.exp(w)
        w = -EULER_GAMMA - y + z - 0.25 * z * z
    return w


@numba.njit("float64(float64, float64, float64)", cache=True, error_model="numpy")
def _solve(y: float, log_y: float, w: float) -> float:
    """z > 0 with E1(z) = y, by Halley's method on w = ln z from the start ``w``.

    With f(w) = E1(e^w) - y: f' = -e^-z, f''/f' = -z, so Newton's step is
    s = (E1(z) - y) e^z and Halley's s / (1 - z s / 2).  E1(e^w) is convex and decreasing
    in w, so Newton's steps never overshoot to the right and approach the root monotonically
    after the first; far from the root (z s > 1) Newton's step is taken.  Near it Halley's
    error after a step s is about (z/6 + z^2/12) s^3, and iteration stops once twice that is
    below ``_HALLEY_TOLERANCE``.  The step is formed as e^z E1(z) - exp(z + ln y) for z > 1
    so that nothing overflows for roots up to ~740, and the last step is applied to z itself
    (z e^s): rounding w = ln z to a double would cost ulp(w) relative in z, up to 1.1e-13
    for z near 1e-300.
    """
    for _ in range(_MAX_STEPS):
        z = math.exp(w)
        if z <= SERIES_CUTOFF:
            newton = (_series(z) - y) * math.exp(z)
        else:
            newton = _scaled(z) - math.exp(z + log_y)
        denominator = 1.0 - 0.5 * z * newton
        step = newton / denominator if denominator > _NEWTON_FALLBACK else newton
        size = abs(step)
        predicted = 2.0 * z * (1.0 / 6.0 + z / 12.0) * size * size * size
        if size <= _ASYMPTOTIC_REGIME and predicted <= _HALLEY_TOLERANCE:
            return z + z * math.expm1(step)
        w += step
    return math.exp(w)


_TABLE_LOG_Y_LOW = math.log(1e-14)
_TABLE_LOG_Y_HIGH = math.log(60.0)
"""Range of ln y tabulated for starts: roots z from 28.8 down to 4.9e-27.  It holds every
E1(c) + target / A of the engine while c = alpha ln(K / x0) <= 28.8 (capacities up to
3e12 cells at alpha = 1); outside it the asymptotic start costs a step or two more."""

_TABLE_POINTS = 4001
"""Grid points in ln y (spacing 0.009).  Linear interpolation of w = ln z between them is
within 1e-7 of the root for y <= 1e-5 and 9e-6 for y <= 1 (measured), so one Halley step,
whose error is about (z/6 + z^2/12) times the cube of the start's, usually suffices; near
y = 60 it is only within 6e-4, but there z is tiny and E1 nearly linear in w."""

_TABLE_SPACING = (_TABLE_LOG_Y_HIGH - _TABLE_LOG_Y_LOW) / (_TABLE_POINTS - 1)


@numba.njit("float64[::1]()", cache=True, error_model="numpy")
def _build_table() -> NDArray[np.float64]:
    """w = ln z solving E1(z) = y on the grid of ln y, each from the asymptotic start."""
    table = np.empty(_TABLE_POINTS)
    for i in range(_TABLE_POINTS):
        log_y = _TABLE_LOG_Y_LOW + i * _TABLE_SPACING
        y = math.exp(log_y)
        table[i] = math.log(_solve(y, log_y, _asymptotic_start(y, log_y)))
    return table


_TABLE_W = _build_table()


@numba.njit("float64(float64)", cache=True, error_model="numpy")
def inverse_exp1(y: float) -> float:
    """Solve E1(z) = y for z > 0: the ``z`` with ``exp1(z) == y``, to about 1e-13 relative.

    Halley's method on w = ln z (:func:`_solve`), started by linear interpolation in a
    table of w against ln y for 1e-14 <= y <= 60 and from E1's asymptotes outside it:
    1-2 steps, about 150 ns inside the table (measured), where Newton's method from the
    asymptotes alone took 4-5 steps and about 500 ns.

    +inf for y = 0, 0 for y = +inf, NaN for y < 0 and NaN.  Full accuracy needs
    y >= E1(700) ~ 1.4e-307; below that E1 itself is subnormal.
    """
    if not y > 0.0:
        return math.inf if y == 0.0 else math.nan
    if y == math.inf:
        return 0.0
    log_y = math.log(y)
    position = (log_y - _TABLE_LOG_Y_LOW) / _TABLE_SPACING
    if 0.0 <= position < _TABLE_POINTS - 1:
        i = int(position)
        share = position - i
        w = (1.0 - share) * _TABLE_W[i] + share * _TABLE_W[i + 1]
    else:
        w = _asymptotic_start(y, log_y)
    return _solve(y, log_y, w)


@numba.njit("float64[::1](float64[::1])", cache=True, error_model="numpy")
def _inverse_exp1_flat(y: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.empty_like(y)
    for i in range(y.size):
        out[i] = inverse_exp1(y[i])
    return out


def inverse_exp1_array(y: ArrayLike) -> NDArray[np.float64]:
    """:func:`inverse_exp1` elementwise over an array of any shape (one compiled loop)."""
    values = np.asarray(y, dtype=np.float64)
    return _inverse_exp1_flat(np.ascontiguousarray(values).ravel()).reshape(values.shape)
