"""The package's version and disclaimer, defined once in a leaf module.

Every layer may need them (a result's provenance records the version; every output surface
carries the disclaimer), so they live where importing them pulls in nothing else.
"""

from __future__ import annotations

__version__ = "0.1.0"

DISCLAIMER = (
    "Educational and research software: not medical advice, and no prediction for any "
    "real person."
)
