"""Closed forms for Gompertz growth and for the emission it drives.

Every lesion grows as x(tau) = K * exp(ln(x0/K) * exp(-a*tau)) (Gompertz, as in Iwata et al.
2000) and emits at rate sigma * x**alpha.  The cumulative emission has a closed form in the
exponential integral E1, and its inverse (needed for exact time-rescaling of a
non-homogeneous Poisson process) is found by a monotone Newton iteration.  Keeping these as
closed forms is what lets the engine skip over days and cells entirely.

The emission functions are the engine's hot path (about 100,000 calls per 300 patients,
mostly for one value), so they are numba-compiled kernels over the compiled E1 and inverse
of :mod:`metastasis.model.special`: a scalar call is one compiled call from Python, an array
call one compiled loop, with no numpy temporaries and no SciPy.  The compiled kernels have
fixed float64 signatures, so arguments are converted rather than compiled for anew.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis.model.special import exp1, inverse_exp1, inverse_exp1_array

_SCALAR_SIGNATURE = "float64(float64, float64, float64, float64, float64, float64)"
"""(age or target, x0, rate, capacity, scale, exponent) -> value, for one lesion."""

_CURVE_SIGNATURE = "float64[::1](float64[::1], float64, float64, float64, float64, float64)"
"""Many ages or targets on one lesion's curve."""

_ROWS_SIGNATURE = (
    "float64[::1](float64[::1], float64[::1], float64[::1], float64[::1], float64, float64)"
)
"""Many ages or targets, each on its own lesion's curve (x0, rate and capacity per row)."""


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


@numba.njit(_SCALAR_SIGNATURE, cache=True, error_model="numpy")
def cumulative_emission_scalar(
    age: float, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> float:
    """:func:`cumulative_emission` for one age, without array overhead (the engine's hot path).

    With c = alpha ln(K/x0) and A = sigma K^alpha / a, the integral is
    A (E1(c e^(-a age)) - E1(c)); a lesion at or above its capacity (c <= 0) emits at the
    constant rate sigma K^alpha.  Negative ages count as 0 (NaN stays NaN, as in numpy).
    """
    if age < 0.0:
        age = 0.0
    c = exponent * math.log(capacity / x0)
    if c <= 0.0:
        return scale * capacity**exponent * age
    amplitude = scale * capacity**exponent / rate
    return amplitude * (exp1(c * math.exp(-rate * age)) - exp1(c))


@numba.njit(_CURVE_SIGNATURE, cache=True, error_model="numpy")
def _cumulative_curve(
    age: NDArray[np.float64], x0: float, rate: float, capacity: float, scale: float,
    exponent: float,
) -> NDArray[np.float64]:
    """:func:`cumulative_emission_scalar` over ages on one curve, with E1(c) computed once."""
    out = np.empty_like(age)
    c = exponent * math.log(capacity / x0)
    if c <= 0.0:
        level = scale * capacity**exponent
        for i in range(age.size):
            out[i] = level * (0.0 if age[i] < 0.0 else age[i])
        return out
    amplitude = scale * capacity**exponent / rate
    at_start = exp1(c)
    for i in range(age.size):
        elapsed = 0.0 if age[i] < 0.0 else age[i]
        out[i] = amplitude * (exp1(c * math.exp(-rate * elapsed)) - at_start)
    return out


@numba.njit(_ROWS_SIGNATURE, cache=True, error_model="numpy")
def _cumulative_rows(
    age: NDArray[np.float64], x0: NDArray[np.float64], rate: NDArray[np.float64],
    capacity: NDArray[np.float64], scale: float, exponent: float,
) -> NDArray[np.float64]:
    out = np.empty_like(age)
    for i in range(age.size):
        out[i] = cumulative_emission_scalar(age[i], x0[i], rate[i], capacity[i], scale, exponent)
    return out


@numba.njit(_SCALAR_SIGNATURE, cache=True, error_model="numpy")
def inverse_cumulative_emission_scalar(
    target: float, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> float:
    """:func:`inverse_cumulative_emission` for one target (the engine's hot path).

    Solves A (E1(c e^(-a age)) - E1(c)) = target: age = ln(c / z) / a with
    z = E1^-1(E1(c) + target / A), clipped at 0 against rounding; at or above the capacity
    (c <= 0) the emission is linear and so is its inverse.
    """
    c = exponent * math.log(capacity / x0)
    if c <= 0.0:
        return target / (scale * capacity**exponent)
    amplitude = scale * capacity**exponent / rate
    age = math.log(c / inverse_exp1(exp1(c) + target / amplitude)) / rate
    return 0.0 if age < 0.0 else age


@numba.njit(_CURVE_SIGNATURE, cache=True, error_model="numpy")
def _inverse_curve(
    target: NDArray[np.float64], x0: float, rate: float, capacity: float, scale: float,
    exponent: float,
) -> NDArray[np.float64]:
    """:func:`inverse_cumulative_emission_scalar` over targets on one curve (E1(c) once)."""
    out = np.empty_like(target)
    c = exponent * math.log(capacity / x0)
    if c <= 0.0:
        level = scale * capacity**exponent
        for i in range(target.size):
            out[i] = target[i] / level
        return out
    amplitude = scale * capacity**exponent / rate
    at_start = exp1(c)
    for i in range(target.size):
        age = math.log(c / inverse_exp1(at_start + target[i] / amplitude)) / rate
        out[i] = 0.0 if age < 0.0 else age
    return out


@numba.njit(_ROWS_SIGNATURE, cache=True, error_model="numpy")
def _inverse_rows(
    target: NDArray[np.float64], x0: NDArray[np.float64], rate: NDArray[np.float64],
    capacity: NDArray[np.float64], scale: float, exponent: float,
) -> NDArray[np.float64]:
    out = np.empty_like(target)
    for i in range(target.size):
        out[i] = inverse_cumulative_emission_scalar(
            target[i], x0[i], rate[i], capacity[i], scale, exponent
        )
    return out


def _flat(values: ArrayLike) -> NDArray[np.float64]:
    """A contiguous 1-D float64 copy or view, as the compiled kernels take."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


def _columns(*columns: ArrayLike) -> tuple[list[NDArray[np.float64]], tuple[int, ...]]:
    """The columns broadcast against each other and flattened, with their common shape."""
    arrays = [np.asarray(column, dtype=np.float64) for column in columns]
    shape = arrays[0].shape
    if any(array.shape != shape for array in arrays[1:]):
        arrays = list(np.broadcast_arrays(*arrays))
        shape = arrays[0].shape
    return [_flat(array) for array in arrays], shape


def cumulative_emission(
    age: ArrayLike, x0: float, rate: float, capacity: float, scale: float, exponent: float
) -> NDArray[np.float64]:
    """Integral over [0, age] of scale * x(s)**exponent for a Gompertz lesion from ``x0``.

    Elementwise over ``age`` (any shape; a scalar age gives a numpy scalar); see
    :func:`cumulative_emission_scalar` for the closed form.
    """
    shape = np.shape(age)
    out = _cumulative_curve(
        _flat(age), float(x0), float(rate), float(capacity), float(scale), float(exponent)
    )
    return out.reshape(shape)[()]


def cumulative_emission_rows(
    age: NDArray[np.float64], x0: NDArray[np.float64], rate: NDArray[np.float64],
    capacity: NDArray[np.float64], scale: float, exponent: float,
) -> NDArray[np.float64]:
    """:func:`cumulative_emission` for many lesions at once, each with its own curve."""
    (age, x0, rate, capacity), shape = _columns(age, x0, rate, capacity)
    return _cumulative_rows(age, x0, rate, capacity, float(scale), float(exponent)).reshape(
        shape
    )


_inverse_exp1 = inverse_exp1_array
"""Solve E1(z) = y for z > 0 elementwise (compiled; see :func:`~.special.inverse_exp1`)."""

_inverse_exp1_scalar = inverse_exp1
"""Solve E1(z) = y for one y (compiled; see :func:`~.special.inverse_exp1`)."""


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
    """Age at which the cumulative emission reaches ``target`` (the time-rescaling inverse).

    Elementwise over ``target`` (any shape, an array of the same shape back); see
    :func:`inverse_cumulative_emission_scalar` for the closed form.
    """
    shape = np.shape(target)
    out = _inverse_curve(
        _flat(target), float(x0), float(rate), float(capacity), float(scale), float(exponent)
    )
    return out.reshape(shape)


def inverse_cumulative_emission_rows(
    target: NDArray[np.float64], x0: NDArray[np.float64], rate: NDArray[np.float64],
    capacity: NDArray[np.float64], scale: float, exponent: float,
) -> NDArray[np.float64]:
    """:func:`inverse_cumulative_emission` for many targets, each on its own lesion's curve."""
    if np.size(target) == 0:
        return np.zeros(0)
    (target, x0, rate, capacity), shape = _columns(target, x0, rate, capacity)
    return _inverse_rows(target, x0, rate, capacity, float(scale), float(exponent)).reshape(
        shape
    )
