"""Limits on the numbers every surface accepts, stated once (a leaf module: the command
line checks them before loading anything heavy, and the web and the API share them)."""

from __future__ import annotations

import math
import numbers

from metastasis.errors import ModelError

MAX_SEED = 2**63 - 1
"""Largest root seed accepted: the range :func:`metastasis.engine.seeds.draw_root_seed`
draws from, and small enough to be an exact integer in every JSON reader that uses 64-bit
integers."""

MAX_PATIENTS = 10**9
"""Largest cohort accepted: a billion patients, a thousand times the largest run this
project benchmarks; anything beyond is a typo (and would overflow counters and progress
bars long before it finished)."""

MAX_YEARS = 150.0
"""Longest horizon accepted: beyond any human life span, so a typo is caught."""

FOLLOW_UP_YEARS = 5.0
"""Default follow-up of a clinical course after diagnosis, on every surface (command line,
web, ``clinical_cohort``): each diagnosed patient is followed five years or to death, so
5-year survival, the registries' headline figure, is known for the whole cohort.  A horizon
counted from the first cell followed a late diagnosis only briefly (issue 11)."""


DEFAULT_CHUNK_PATIENTS = 500
"""Patients per part of a dataset: seconds of work, and a bounded memory per chunk in flight
(a worker held about 580 MB more than at rest with 1,000 untreated colorectal patients over
10 years, whose heaviest patients carry tens of thousands of lesions); 2,000 parts for a
million patients."""


def check_seed(seed: int | None) -> int:
    """Validate a root seed, drawing a fresh one when none is given."""
    if seed is None:
        from metastasis.engine.seeds import draw_root_seed  # numpy only, not the engine

        return draw_root_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ModelError("seed", seed, f"an integer from 0 to {MAX_SEED}")
    return seed


def check_years(years: float, name: str = "years") -> float:
    """Validate a horizon in years (or another span of years, named ``name`` in the error):
    finite and in (0, 150]."""
    if (
        isinstance(years, bool)
        or not isinstance(years, int | float)
        or not math.isfinite(years)
        or not (0.0 < years <= MAX_YEARS)
    ):
        raise ModelError(name, years, f"a number of years in (0, {MAX_YEARS:g}]")
    return float(years)


def check_count(name: str, value: object, minimum: int) -> int:
    """Validate a count (patients, a first index): an integer, not a bool, >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ModelError(name, value, f"an integer >= {minimum}")
    return int(value)
