"""The ranges a knowledge number may take, each with the reason for its ends.

The schema's kinds (:class:`~metastasis.knowledge.schema.Probability`, ``Rate``, ``Positive``)
say what a number means; a :class:`Range` says how far it may go so that every accepted file
simulates without overflow, a crash or a hang.  The ends are generous for science (a factor
of a thousand or more beyond any figure in the shipped files) and stated here, once, as data:
a range is attached to a field as ``Annotated[Rate, RANGE]``, which checks it and puts the
reason in the field's JSON-schema description.

Where the ends come from, in general: the growth and emission closed forms take logarithms,
powers and exponential integrals of rates and sizes, which under- or overflow for values
near the ends of floating point (``breach_rate = 1e-300`` gave a math domain error,
``metastasis_speedup = 1e300`` a Poisson mean too large, ``reference_size_cells = 5e-324`` a
division by zero); a log10 spread enters as ``10 ** (spread * z)``, which overflows, and as a
rejection sampler, which never ends, when the spread is huge; a count of cycles or rounds is
a count of events the engine simulates one by one (``cycles = 1e9`` exhausted memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from metastasis.limits import MAX_YEARS
from metastasis.units import DAYS_PER_YEAR


@dataclass(frozen=True)
class Range:
    """Closed interval ``[low, high]`` (with ``off``: 0 is allowed too, meaning none)."""

    low: float
    high: float
    unit: str
    why: str
    off: bool = False

    def allows(self, value: float) -> bool:
        return (self.off and value == 0.0) or self.low <= value <= self.high

    def text(self) -> str:
        """What is allowed, in the words of an error message."""
        unit = f" {self.unit}" if self.unit else ""
        span = f"[{self.low:g}, {self.high:g}]{unit}"
        return f"0 (none) or within {span}" if self.off else f"within {span}"

    def describe(self) -> str:
        """The range and the reason for it (a field's description)."""
        return f"{self.text()}: {self.why}"

    def check(self, sourced: Any) -> Any:
        """Refuse a ``Sourced`` number outside the range (a pydantic after-validator)."""
        value = sourced.value
        if not self.allows(value):
            raise ValueError(f"must be {self.text()}, got {value!r}")
        return sourced

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        """Used as ``Annotated[Rate, RANGE]``: validate the kind, then check the range."""
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The range and its reason become the field's description."""
        json_schema = handler(schema)
        json_schema["description"] = self.describe()
        return json_schema


# ---------------------------------------------------------------- the disease
RATE_PER_DAY = Range(
    1e-12, 1e3, "per day", off=True,
    why="from once in three billion years to a thousand times a day (as good as at once); "
        "0 switches it off. Closer to 0 the breach time, drawn against the hazard's "
        "exponential integral, leaves the range of floating point (breach_rate = 1e-300 "
        "gave a math domain error)",
)
"""Rates per day (per cell, or per motile cell ** exponent for the breach hazard)."""

SHEDDING_RATE = Range(
    0.0, 100.0, "cells per day per cell ** exponent",
    why="up to ten times the top of the calibration prior (10) and 350 times the largest "
        "shipped rate (0.28): every shed cell is a chance of a new lesion, and a patient "
        "shedding at 100 (times their own spread factor) already costs seconds and a "
        "gigabyte to simulate. Any small rate is safe: the shedding times are drawn within "
        "the emission itself, unlike the breach's, which a tiny rate pushed out of range",
)

BIRTH_RATE = Range(
    1e-6, 1e3, "per day",
    why="from one division in 3,000 years to a thousand a day (a colony must grow)",
)
CELLS = Range(
    1.0, 1e14, "cells",
    why="from one cell to 1e14 cells (about 100 kg of tumour at 1e9 cells per cm^3, more "
        "than a body holds); beyond, sizes and their logarithms lose meaning and overflow",
)
THRESHOLD_CELLS = Range(
    1.0, 1e30, "cells",
    why="a burden that ends or marks something, from one cell up to 1e30, which stands for "
        "'never' (the Iwata model's lethal burden) and stays far from overflow",
)
CELL_DENSITY = Range(
    1e6, 1e12, "cells per cm^3",
    why="cells from 100 um across (1e6 per cm^3) down to 1 um (1e12 per cm^3)",
)
DOUBLING_DAYS = Range(
    0.1, 1e5, "days",
    why="from 2.4 hours (faster than any human cell divides) to about 270 years",
)
SPEEDUP = Range(
    0.01, 100.0, "",
    why="a metastasis grows at most a hundred times faster or slower than its primary; "
        "1e300 gave a Poisson mean too large to draw",
)
MAX_HORIZON_DAYS = MAX_YEARS * DAYS_PER_YEAR
MAX_GOMPERTZ_RATE = 700.0 / MAX_HORIZON_DAYS
"""Largest Gompertz rate a = ln 2 / (DT ln(K / x_ref)) of a primary or a metastasis, per day
(about 0.0128).  A lesion's emission is A (E1(c exp(-a t)) - E1(c)): once a t exceeds about
745, exp(-a t) underflows to 0 and E1(0) is infinite (a Poisson mean too large to draw, as
with metastasis_speedup = 1e300).  Keeping a t <= 700 over the longest horizon leaves room for
c = exponent ln(K / x0) down to e^-40 (see :data:`EXPONENT`).  The fastest shipped lesion
has 0.0029 (the Iwata model), the calibration priors' corner 0.0125 (melanoma)."""

EXPONENT = Range(
    0.01, 1.0, "", off=True,
    why="an emission grows as cells ** exponent (2/3: cells at the surface); 0 makes it "
        "constant. A tiny positive exponent makes c = exponent ln(K / x0) so small that "
        "c exp(-a t) underflows to 0 within the horizon (see MAX_GOMPERTZ_RATE)",
)
MEAN_DAYS = Range(
    0.0, 1e12, "days",
    why="a mean delay (of an exponential draw), 0 for none; far beyond any lifetime it "
        "stands for 'never' (verification tests use 1e9 days), and 1e12 keeps every draw "
        "far from overflow",
)
LOG10_SPREAD = Range(
    0.0, 3.0, "log10 units",
    why="a factor of up to 1000 for one standard deviation between patients; a huge spread "
        "overflows 10 ** (spread * z) and hangs the truncated draw",
)
LOG_KILL_RATIO = Range(
    1.0, 100.0, "",
    why="an avascular deposit takes at least the kill of a tumour with vessels (a drug reaches "
        "it at least as well) and at most a hundred times its log-kill, beyond which every "
        "cycle already leaves nothing of it",
)
MEMORY_YEARS = Range(
    0.01, 20.0, "years",
    why="an immune response that outlasts the drug by up to twenty years: each of its "
        "intervals is a treatment day of every responder, so a longer one costs time and "
        "changes little within the horizons simulated",
)
LOG10_LIMIT = Range(
    0.01, 3.0, "log10 units",
    why="a truncation between 2 % and a factor of 1000 either way of the median",
)
MAX_SPREAD_PER_LIMIT = 10.0
"""A truncated normal spread is drawn by rejection, each draw kept with probability
P(|z| <= limit / sd): with sd <= 10 * limit that is at least 8 %, so the draw ends quickly
(rate_log10_sd = 1e308 with a limit of 1.6 never ended)."""

MAX_SITES = 100
"""Most sites an anatomy may have: a body has a few dozen organs and nodal basins, and the
journey's matrices grow with the square (the cell paths with the cube) of the count."""

# ---------------------------------------------------------------- the clinic
MAX_ENTRIES = 200
"""Most entries of a clinical table read for every patient (symptoms, a cancer type's primary
symptoms, modalities, screening programmes, organ failures): the shipped file has at most 15;
each entry costs every simulated patient a draw or a search of their whole history."""
DIAMETER_MM = Range(
    1e-3, 1e3, "mm",
    why="from a micrometre to a metre: beyond any lesion and any scanner",
)
MIN_DIAMETER_MM = Range(0.0, 1e3, "mm", why="at most a metre: beyond any lesion")
AGE_YEARS = Range(
    0.0, MAX_YEARS, "years",
    why=f"an age within the longest horizon the program simulates ({MAX_YEARS:g} years)",
)
POSITIVE_AGE_YEARS = Range(
    0.01, MAX_YEARS, "years",
    why=f"a positive age within the longest horizon ({MAX_YEARS:g} years)",
)
INTERVAL_YEARS = Range(
    0.1, MAX_YEARS, "years",
    why="screening rounds at least five weeks apart: each round is an event drawn for every "
        "patient, so a tiny interval meant billions of rounds",
)
DELAY_DAYS = Range(
    1e-3, 10 * DAYS_PER_YEAR, "days",
    why="a mean delay from about a minute and a half to ten years",
)

# ---------------------------------------------------------------- treatment
START_DAY = Range(
    0.0, MAX_HORIZON_DAYS, "days",
    why=f"a step starts within the longest horizon ({MAX_YEARS:g} years) of its protocol",
)
CYCLES = Range(
    0.0, 400.0, "cycles",
    why="weekly for more than seven years; every cycle is an event simulated one by one "
        "(cycles = 1e9 exhausted memory, 1e18 never ended)",
)
INTERVAL_DAYS = Range(1.0, 10 * DAYS_PER_YEAR, "days", why="from daily to once in ten years")
FRACTIONS = Range(0.0, 100.0, "fractions", why="radiotherapy courses have at most a few dozen")
DOSE_GY = Range(1e-3, 200.0, "Gy", why="a course's dose: curative courses give about 80 Gy")
LESION_COUNT = Range(0.0, 1000.0, "lesions", why="lesions treated at once, far beyond practice")
RELATIVE_GROWTH = Range(0.0, 100.0, "", why="growth by at most a hundredfold of the sum")
MAX_STEPS = 50
"""Most steps one protocol may have (each course holds at most :data:`CYCLES` cycles)."""
