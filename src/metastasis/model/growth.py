"""Closed forms for Gompertz growth and for the emission it drives.

Every lesion grows as x(tau) = K * exp(ln(x0/K) * exp(-a*tau)) (Gompertz, as in Iwata et al.
2000) and emits at rate sigma * x**alpha.  The cumulative emission has a closed form in the
exponential integral E1, and its inverse (needed for exact time-rescaling of a
non-homogeneous Poisson process) is found by a monotone Newton iteration.  Keeping these as
closed forms is what lets the engine skip over days and cells entirely.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import exp1

_EULER_GAMMA = float(np.euler_gamma)
_NEWTON_MAX_STEPS = 200
_NEWTON_TOLERANCE = 1e-13
_ASYMPTOTE_SWITCH = 0.2  # E1(z) = 0.2 near z = 1: where the large-z asymptote takes over


def gompertz_rate(doubling_time: float, reference_size: float, capacity: float) -> float:
    """Gompertz rate a such that the volume doubling time at ``reference_size`` is as given.

    The specific growth rate at size x is a * ln(K/x); measured doubling times are taken at a
    clinically visible reference size, so a = ln 2 / (DT * ln(K / x_ref)).
    """
    return float(np.log(2.0) / (doubling_time * np.log(capacity / reference_size)))


def gompertz_size(age: ArrayLike, x0: float, rate: float, capacity: float) -> NDArray[np.float64]:
    """Size of a lesion ``age`` days after it started growing from ``x0`` cells."""
    age = np.maximum(np.asarray(age, dtype=float), 0.0)
    return capacity * np.exp(np.log(x0 / capacity) * np.exp(-rate * age))


def gompertz_age_at(
    size: ArrayLike, x0: float, rate: float, capacity: float
) -> NDArray[np.float64]:
    """Days needed to grow from ``x0`` to ``size`` (infinite at or beyond the capacity)."""
    size = np.asarray(size, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(size / capacity) / np.log(x0 / capacity)
        age = -np.log(ratio) / rate
    age = np.where(size >= capacity, np.inf, age)
    return np.where(size <= x0, 0.0, age)


def _shape(x0: float, rate: float, capacity: float, scale: float, exponent: float):
    c = exponent * np.log(capacity / x0)
    amplitude = scale * capacity**exponent / rate
    return c, amplitude


def cumulative_emission(
    age: ArrayLike, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> NDArray[np.float64]:
    """Integral over [0, age] of scale * x(s)**exponent for a Gompertz lesion from ``x0``."""
    age = np.maximum(np.asarray(age, dtype=float), 0.0)
    c, amplitude = _shape(x0, rate, capacity, scale, exponent)
    if c <= 0.0:
        return scale * capacity**exponent * age
    return amplitude * (exp1(c * np.exp(-rate * age)) - exp1(c))


def cumulative_emission_scalar(
    age: float, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> float:
    """:func:`cumulative_emission` for one age, without array overhead (the engine's hot path)."""
    age = max(age, 0.0)
    c = exponent * math.log(capacity / x0)
    if c <= 0.0:
        return scale * capacity**exponent * age
    amplitude = scale * capacity**exponent / rate
    return amplitude * (float(exp1(c * math.exp(-rate * age))) - float(exp1(c)))


def cumulative_emission_rows(
    age: NDArray[np.float64], x0: NDArray[np.float64], rate: NDArray[np.float64],
    capacity: NDArray[np.float64], scale: float, exponent: float,
) -> NDArray[np.float64]:
    """:func:`cumulative_emission` for many lesions at once, each with its own curve."""
    age = np.maximum(age, 0.0)
    c = exponent * np.log(capacity / x0)
    flat = c <= 0.0
    safe_c = np.where(flat, 1.0, c)
    amplitude = scale * capacity**exponent / rate
    curved = amplitude * (exp1(safe_c * np.exp(-rate * age)) - exp1(safe_c))
    return np.where(flat, scale * capacity**exponent * age, curved)


def _newton_start(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Starting w = ln z for Newton: the asymptotes E1(z) ~ -gamma - ln z (small z) and
    E1(z) ~ exp(-z)/z (large z)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = -np.log(y)
        large = np.maximum(u - np.log(np.maximum(u, 1.0)), 1e-3)
    return np.where(y < _ASYMPTOTE_SWITCH, np.log(large), -_EULER_GAMMA - y)


_TABLE_LOG_Y = np.linspace(np.log(1e-14), np.log(60.0), 4001)


def _newton(w: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Newton's method on w = ln z for E1(z) = y, from ``w`` to double precision."""
    for _ in range(_NEWTON_MAX_STEPS):
        z = np.exp(w)
        step = (exp1(z) - y) * np.exp(z)
        w = w + step
        if float(np.max(np.abs(step) / np.maximum(1.0, np.abs(w)))) <= _NEWTON_TOLERANCE:
            break
    return w


def _build_table() -> NDArray[np.float64]:
    y = np.exp(_TABLE_LOG_Y)
    return _newton(_newton_start(y), y)


_TABLE_W = _build_table()
"""ln z solving E1(z) = y on a grid of ln y, so that Newton starts within ~1e-6 of the root."""


def _inverse_exp1(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Solve E1(z) = y for z > 0, elementwise.

    Newton's method on w = ln z: E1(exp(w)) is convex and decreasing in w, so after at most
    one step the iterates lie left of the root and increase monotonically to it.  Inside the
    tabulated range the start comes from interpolation (two steps then reach double
    precision); outside it, from the asymptotes.
    """
    log_y = np.log(y)
    inside = (log_y >= _TABLE_LOG_Y[0]) & (log_y <= _TABLE_LOG_Y[-1])
    w = np.interp(log_y, _TABLE_LOG_Y, _TABLE_W)
    if not inside.all():
        w = np.where(inside, w, _newton_start(y))
    return np.exp(_newton(w, y))


def _inverse_exp1_scalar(y: float) -> float:
    """:func:`_inverse_exp1` for one value: the same iteration without array overhead."""
    if y < _ASYMPTOTE_SWITCH:
        u = -math.log(y)
        w = math.log(max(u - math.log(max(u, 1.0)), 1e-3))
    else:
        w = -_EULER_GAMMA - y
    for _ in range(_NEWTON_MAX_STEPS):
        z = math.exp(w)
        step = (float(exp1(z)) - y) * math.exp(z)
        w += step
        if abs(step) <= _NEWTON_TOLERANCE * max(1.0, abs(w)):
            break
    return math.exp(w)


SCALAR_BATCH_LIMIT = 1
"""Below this many targets a Python loop over scalars beats numpy's per-call overhead."""


def inverse_cumulative_emission_scalar(
    target: float, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> float:
    """:func:`inverse_cumulative_emission` for one target (the engine's hot path)."""
    c = exponent * math.log(capacity / x0)
    if c <= 0.0:
        return target / (scale * capacity**exponent)
    amplitude = scale * capacity**exponent / rate
    z = _inverse_exp1_scalar(float(exp1(c)) + target / amplitude)
    return max(math.log(c / z) / rate, 0.0)


def gompertz_age_at_scalar(size: float, x0: float, rate: float, capacity: float) -> float:
    """:func:`gompertz_age_at` for one size."""
    if size <= x0:
        return 0.0
    if size >= capacity:
        return math.inf
    return -math.log(math.log(size / capacity) / math.log(x0 / capacity)) / rate


def inverse_cumulative_emission(
    target: ArrayLike, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> NDArray[np.float64]:
    """Age at which the cumulative emission reaches ``target`` (the time-rescaling inverse)."""
    target = np.asarray(target, dtype=float)
    if target.size <= SCALAR_BATCH_LIMIT:
        flat = [
            inverse_cumulative_emission_scalar(float(v), x0, rate, capacity, scale, exponent)
            for v in target.ravel()
        ]
        return np.array(flat, dtype=float).reshape(target.shape)
    c, amplitude = _shape(x0, rate, capacity, scale, exponent)
    if c <= 0.0:
        return target / (scale * capacity**exponent)
    y = exp1(c) + target / amplitude
    z = _inverse_exp1(np.atleast_1d(y))
    age = np.log(c / z) / rate
    return np.maximum(age, 0.0).reshape(target.shape)


def inverse_cumulative_emission_rows(
    target: NDArray[np.float64], x0: NDArray[np.float64], rate: NDArray[np.float64],
    capacity: NDArray[np.float64], scale: float, exponent: float,
) -> NDArray[np.float64]:
    """:func:`inverse_cumulative_emission` for many targets, each on its own lesion's curve."""
    target = np.asarray(target, dtype=float)
    if target.size == 0:
        return np.zeros(0)
    c = exponent * np.log(capacity / x0)
    flat = c <= 0.0
    safe_c = np.where(flat, 1.0, c)
    amplitude = scale * capacity**exponent / rate
    z = _inverse_exp1(exp1(safe_c) + target / amplitude)
    age = np.maximum(np.log(safe_c / z) / rate, 0.0)
    return np.where(flat, target / (scale * capacity**exponent), age)
