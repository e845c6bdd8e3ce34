"""Units shared by every layer, defined once.

A leaf module: the disease process, the results and the interfaces all read the year from
here, so that no lower layer has to import the public API to know it.
"""

from __future__ import annotations

DAYS_PER_YEAR = 365.25
"""The Julian year: the mean calendar year, as survival statistics count years."""
