"""Gompertz growth in closed form: rate from a doubling time, size at an age, age at a size.

Plain numpy, apart from the compiled emission kernels of :mod:`metastasis.model.growth`, so
that what only needs a lesion's size (resolving a model, the guide's figures, reading a
table) does not pay for compiling or loading them.  Every lesion grows as
x(tau) = K * exp(ln(x0/K) * exp(-a*tau)) (Iwata et al. 2000).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Numbers = float | NDArray[np.float64]
"""One value per lesion, or one for all: the closed forms broadcast over lesions."""


def gompertz_rate(doubling_time: float, reference_size: float, capacity: float) -> float:
    """Gompertz rate a such that the volume doubling time at ``reference_size`` is as given.

    The specific growth rate at size x is a * ln(K/x); measured doubling times are taken at a
    clinically visible reference size, so a = ln 2 / (DT * ln(K / x_ref)).
    """
    return float(np.log(2.0) / (doubling_time * np.log(capacity / reference_size)))


def gompertz_size(age: ArrayLike, x0: Numbers, rate: Numbers, capacity: Numbers
                  ) -> NDArray[np.float64]:
    """Size of a lesion ``age`` days after it started growing from ``x0`` cells."""
    days = np.maximum(np.asarray(age, dtype=float), 0.0)
    return np.asarray(capacity * np.exp(np.log(x0 / capacity) * np.exp(-rate * days)))


def gompertz_age_at(
    size: ArrayLike, x0: Numbers, rate: Numbers, capacity: Numbers
) -> NDArray[np.float64]:
    """Days needed to grow from ``x0`` to ``size`` (infinite at or beyond the capacity)."""
    cells = np.asarray(size, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(cells / capacity) / np.log(x0 / capacity)
        age = -np.log(ratio) / rate
    age = np.where(cells >= capacity, np.inf, age)
    return np.where(cells <= x0, 0.0, age)
