"""Number formatting for people: counts, shares, days and sizes.

The story and the summaries mix numbers that span twelve orders of magnitude (one dormant
cell, 1e12 cells of lethal burden), so every surface formats them the same way here:
small counts exactly with thousands separators, large ones in compact scientific notation,
and shares with just enough decimals to tell 99.99 % from 100 %.
"""

from __future__ import annotations

import math

EXACT_BELOW = 100_000
"""Counts below this are printed exactly; above it, three significant digits are enough."""


def count(n: float) -> str:
    """A count of cells or lesions: ``4,132`` or ``2.1e8``."""
    if not math.isfinite(n):
        return str(n)
    if abs(n) < EXACT_BELOW:
        return f"{round(n):,}"
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


MAX_DECIMALS = 8
ROUNDING = 1e-9
"""A percentage this close to 0 or 100 is floating-point noise around an exact 0 or 100."""


def share(part: float, whole: float) -> str:
    """``part / whole`` as a percentage that is never rounded to a misleading 0 or 100."""
    if whole <= 0:
        return "n/a"
    p = 100.0 * part / whole
    return percent(p)


def percent(p: float) -> str:
    """A percentage (0-100) with as few decimals as keep it honest."""
    if not math.isfinite(p):
        return "n/a"
    for exact in (0.0, 100.0):
        if math.isclose(p, exact, rel_tol=0.0, abs_tol=ROUNDING):
            return f"{exact:.0f} %"
    for decimals in range(1, MAX_DECIMALS + 1):
        text = f"{p:.{decimals}f}"
        if float(text) not in (0.0, 100.0):
            return f"{text} %"
    return f"{p:.{MAX_DECIMALS}f} %"


def day(t: float) -> str:
    """A day since the first cancer cell, ``Day 1,204``."""
    return f"Day {math.floor(t):,}"


def years(t_days: float) -> str:
    """Days as years, one decimal, for orientation next to the day number."""
    return f"{t_days / 365.25:.1f} y"


def volume(cells: float, cells_per_cm3: float) -> str:
    """A lesion size as cells and volume (``3.2e9 cells, about 3.2 cm³``)."""
    cm3 = cells / cells_per_cm3
    if cm3 >= 10:
        size = f"about {cm3:,.0f} cm³"
    elif cm3 >= 0.1:
        size = f"about {cm3:.2g} cm³"
    elif cm3 >= 1e-4:
        size = f"about {cm3 * 1000:.2g} mm³"
    else:
        size = "microscopic"
    return f"{count(cells)} cells, {size}"
