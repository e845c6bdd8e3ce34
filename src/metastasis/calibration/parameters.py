"""Flat names for the parameters calibration may move, mapped onto the knowledge base.

A name stands for ``cancers.<cancer>.<section>.<field>``; ``direction`` says how the
spread statistics (distant share, site shares) respond when the value grows, which the
search needs to bracket a root.  Only parameters with a known direction are listed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from metastasis.errors import ModelError


@dataclass(frozen=True)
class Parameter:
    """One calibratable parameter of a cancer type."""

    name: str
    section: str
    field: str
    meaning: str
    direction: int = 1
    """+1: more of it means more (and earlier) spread; -1: less."""

    def path(self, cancer: str) -> str:
        return f"cancers.{cancer}.{self.section}.{self.field}"


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("shedding_rate", "shedding", "rate",
                  "cells shed per day per invasive cell^exponent (the median patient's)"),
        Parameter("outgrowth", "colonisation", "outgrowth",
                  "share of micrometastases that grow out into lesions"),
        Parameter("breach_rate", "invasion", "breach_rate",
                  "how soon a motile clone breaches the tissue boundary"),
        Parameter("motility", "invasion", "motility_per_new_cell",
                  "chance that a new cell of the primary is motile"),
        Parameter("blood_entry_survival", "travel", "blood_entry_survival",
                  "share of cells entering the blood that survive the first minutes"),
    )
}


def parameter(name: str) -> Parameter:
    """The parameter called ``name``, or a clear error listing the names allowed."""
    if name not in PARAMETERS:
        raise ModelError("parameter", name, "one of " + ", ".join(sorted(PARAMETERS)))
    return PARAMETERS[name]


def current_value(raw: dict[str, Any], cancer: str, name: str) -> float:
    """The value a raw knowledge base gives the parameter for a cancer type (its own value,
    else the ``[cancer_defaults]`` one)."""
    p = parameter(name)
    for table in (raw.get("cancers", {}).get(cancer, {}), raw.get("cancer_defaults", {})):
        entry = table.get(p.section, {}).get(p.field)
        if entry is not None:
            return float(entry["value"])
    raise ModelError(p.path(cancer), None, "a value in the knowledge base")


def with_value(
    raw: dict[str, Any], cancer: str, name: str, value: float, source: str
) -> dict[str, Any]:
    """A copy of a raw knowledge base with one parameter of one cancer type set."""
    p = parameter(name)
    if cancer not in raw.get("cancers", {}):
        raise ModelError("cancer", cancer, "one of " + ", ".join(sorted(raw.get("cancers", {}))))
    out = copy.deepcopy(raw)
    section = out["cancers"][cancer].setdefault(p.section, {})
    section[p.field] = {"value": float(value), "source": source}
    return out
