"""Plain JSON data from the program's values: the package's one cleaner.

Results hold numpy scalars and arrays, tuples, sets and non-finite numbers (a median not
reached, a survival not known); JSON has no NaN or infinity, and ``json`` cannot encode
numpy types.  Every JSON the program writes (CLI summaries, exports, the web API, reports)
goes through :func:`plain`, so that they all say the same thing the same way: NaN and
infinities as ``null``, numpy numbers as Python numbers, tuples and arrays as lists, sets as
sorted lists, mapping keys as strings.

Kept free of the rest of the package, so that every layer can use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """``value`` as plain JSON data (see the module's docstring)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [plain(v) for v in sorted(value)]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """:func:`plain` ``value`` as JSON text (never NaN or Infinity)."""
    return json.dumps(plain(value), indent=indent, allow_nan=False)
