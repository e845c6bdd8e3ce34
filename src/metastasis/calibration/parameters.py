"""Flat names for the parameters calibration may move, mapped onto the knowledge files.

A parameter lives in one of the three knowledge files (``file``):

- ``model`` (the disease, ``default.toml``): ``cancers.<cancer>.<section>.<field>``, read from
  ``[cancer_defaults]`` when the cancer type has no value of its own;
- ``clinical`` (``clinical.toml``): ``<section>.<cancer>.<field>``, read from
  ``<section>.default`` when the cancer type has no entry; setting it for a cancer type
  without one writes a copy of the default entry (label, spread) with the new value;
- ``treatments`` (``treatments.toml``): ``<section>.<field>``, the same for every cancer type
  (a therapy's effect: fitting it for one type changes it for every type that uses it).

``direction`` says how the spread statistics (distant share, site shares) respond when the
value grows, which the one-parameter search needs to bracket a root; 0 where there is no
known direction (the search refuses those; the ABC fit needs none).  ``low`` and ``high``
bound the prior of the ABC fit (log10-uniform between them), with the reason in ``prior``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from metastasis.errors import ModelError

File = Literal["model", "clinical", "treatments"]

DEFAULT_ENTRY = "default"
"""The entry of a clinical table that serves every cancer type without its own."""


@dataclass(frozen=True)
class Parameter:
    """One calibratable parameter of a cancer type."""

    name: str
    section: str
    field: str
    meaning: str
    direction: int = 1
    """+1: more of it means more (and earlier) spread; -1: less; 0: no known direction."""
    low: float | None = None
    high: float | None = None
    """Bounds of the fit's prior: log10-uniform between them."""
    prior: str = ""
    """Why the prior spans ``low``-``high`` (one line)."""
    file: File = "model"

    def path(self, cancer: str) -> str:
        """Where the cancer type's own value sits in the parameter's file."""
        if self.file == "model":
            return f"cancers.{cancer}.{self.section}.{self.field}"
        if self.file == "clinical":
            return f"{self.section}.{cancer}.{self.field}"
        return f"{self.section}.{self.field}"

    def fallback(self) -> str | None:
        """Where the value for every cancer type without its own sits, if anywhere."""
        if self.file == "model":
            return f"cancer_defaults.{self.section}.{self.field}"
        if self.file == "clinical":
            return f"{self.section}.{DEFAULT_ENTRY}.{self.field}"
        return None

    @property
    def bounds(self) -> tuple[float, float]:
        """The prior's bounds, checked: 0 < low < high."""
        if self.low is None or self.high is None or not (0.0 < self.low < self.high
                                                         and math.isfinite(self.high)):
            raise ModelError(f"{self.name} prior", (self.low, self.high),
                             "bounds 0 < low < high in its Parameter definition")
        return (self.low, self.high)


_CHEMOTHERAPIES = ("folfox", "folfirinox", "anthracycline_taxane", "platinum_doublet",
                   "docetaxel")
"""Therapies whose log-kill per cycle may be fitted (``<therapy>_surviving_fraction``)."""

PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("shedding_rate", "shedding", "rate",
                  "cells shed per day per invasive cell^exponent (the median patient's)",
                  low=1e-3, high=10.0,
                  prior="the shipped values (0.01-0.28) with more than an order of magnitude "
                        "either side"),
        Parameter("metastasis_shedding", "shedding", "metastasis_factor",
                  "how much a metastasis sheds per invasive cell, as a share of the primary",
                  low=0.01, high=1.0,
                  prior="from a hundredth (nearly every metastasis seeded by the primary) to "
                        "the primary's own rate (metastases seed metastases freely)"),
        Parameter("outgrowth", "colonisation", "outgrowth",
                  "share of micrometastases that grow out into lesions",
                  low=1e-4, high=1.0,
                  prior="a share; Luzzi et al. 1998 (recalled) put it near 0.01-0.02, two "
                        "orders below that is as unlikely as all of them"),
        Parameter("breach_rate", "invasion", "breach_rate",
                  "how soon a motile clone breaches the tissue boundary",
                  low=1e-7, high=1e-3,
                  prior="two orders either side of the assumed 1e-5 (breach within one to two "
                        "years of motility)"),
        Parameter("motility", "invasion", "motility_per_new_cell",
                  "chance that a new cell of the primary is motile",
                  low=1e-7, high=1e-3,
                  prior="two orders either side of the assumed 1e-5 (first motile cell at "
                        "about 1e5 cells)"),
        Parameter("blood_entry_survival", "travel", "blood_entry_survival",
                  "share of cells entering the blood that survive the first minutes",
                  low=1e-5, high=0.1,
                  prior="two orders either side of the assumed 2e-3 (most cells die in the "
                        "blood within minutes)"),
        Parameter("lymph_entry_survival", "travel", "lymph_entry_survival",
                  "share of cells entering the lymph that survive to travel on",
                  low=1e-4, high=0.1,
                  prior="from a twentieth of the assumed 5e-3 to twenty times it (node "
                        "spread that is rare to node spread in most patients)"),
        Parameter("metastasis_capacity", "growth", "metastasis_capacity_cells",
                  "Gompertz capacity of a metastasis, in cells",
                  low=1e11, high=1e14,
                  prior="from a tenth of the ~1e12-cell lethal burden (a metastasis could not "
                        "reach it) to 100 times it (growth nearly exponential to death)"),
        Parameter("metastasis_speedup", "growth", "metastasis_speedup",
                  "how many times faster a metastasis doubles than its primary at the "
                  "reference size",
                  low=0.5, high=10.0,
                  prior="from twice as slow as the primary to ten times as fast (a slow primary "
                        "such as a renal one, doubling in 200 days, can seed metastases that "
                        "double in weeks); Finlay et al. 1988 measured 1.86 in colorectal "
                        "liver metastases"),
        Parameter("cachexia_threshold", "outcomes.cachexia", "median_threshold_cells",
                  "whole tumour burden (cells) at which the median patient dies of cachexia",
                  direction=0, file="clinical", low=1e10, high=3e12,
                  prior="from 10 g of tumour to three times the ~1e12-cell (1 kg) lethal burden "
                        "(Del Monte 2009)"),
        *(Parameter(f"{therapy}_surviving_fraction", f"therapies.{therapy}",
                    "surviving_fraction",
                    f"share of sensitive cells a cycle of {therapy} leaves (every cancer type "
                    "that uses it)",
                    direction=0, file="treatments", low=0.01, high=0.9,
                    prior="from two logs of kill per cycle (beyond any single regimen) to "
                          "almost no kill")
          for therapy in _CHEMOTHERAPIES),
        *(Parameter(f"{therapy}_resistance", f"therapies.{therapy}", "resistance_per_cell",
                    f"share of a lesion's cells already resistant to {therapy} when the first "
                    "cycle is given (every cancer type that uses it)",
                    direction=0, file="treatments", low=1e-7, high=0.3,
                    prior="from the rare pre-existing mutants of Goldie and Coldman (1e-7 per "
                          "cell) to a third of the tumour tolerating the drug")
          for therapy in _CHEMOTHERAPIES),
    )
}


def parameter(name: str) -> Parameter:
    """The parameter called ``name``, or a clear error listing the names allowed."""
    if name not in PARAMETERS:
        raise ModelError("parameter", name, "one of " + ", ".join(sorted(PARAMETERS)))
    return PARAMETERS[name]


def _lookup(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def current_value(raw: dict[str, Any], cancer: str, name: str) -> float:
    """The value the raw knowledge file of the parameter (the disease file for a ``model``
    parameter, the clinical file for a ``clinical`` one...) gives it for a cancer type: its
    own value, else the default one."""
    p = parameter(name)
    for path in (p.path(cancer), p.fallback()):
        entry = None if path is None else _lookup(raw, path)
        if entry is not None:
            return float(entry["value"] if isinstance(entry, dict) else entry)
    raise ModelError(p.path(cancer), None, f"a value in the {p.file} knowledge file")


def with_value(
    raw: dict[str, Any], cancer: str, name: str, value: float, source: str
) -> dict[str, Any]:
    """A copy of the parameter's raw knowledge file with one parameter of one cancer type
    set (a therapy's for every type)."""
    p = parameter(name)
    out = copy.deepcopy(raw)
    entry = {"value": float(value), "source": source}
    if p.file == "model":
        if cancer not in raw.get("cancers", {}):
            raise ModelError("cancer", cancer,
                             "one of " + ", ".join(sorted(raw.get("cancers", {}))))
        section = out["cancers"][cancer].setdefault(p.section, {})
        section[p.field] = entry
        return out
    table = _lookup(out, p.section)
    if not isinstance(table, dict):
        raise ModelError(p.section, None, f"a table in the {p.file} knowledge file")
    if p.file == "clinical":
        if cancer not in table:
            if DEFAULT_ENTRY not in table:
                raise ModelError(f"{p.section}.{cancer}", None,
                                 f"an entry of its own or a {DEFAULT_ENTRY} entry to copy")
            # the cancer type gets its own entry: the default's (label, spread) with this value
            table[cancer] = copy.deepcopy(table[DEFAULT_ENTRY])
        table[cancer][p.field] = entry
        return out
    if p.field not in table:
        raise ModelError(p.path(cancer), None, "a value in the treatments knowledge file")
    table[p.field] = entry
    return out


@dataclass(frozen=True)
class Knowledge:
    """The three knowledge files as plain data (unvalidated), so values can be set in any of
    them before the model is built."""

    model: dict[str, Any]
    clinical: dict[str, Any]
    treatments: dict[str, Any]

    def raw(self, file: File) -> dict[str, Any]:
        return getattr(self, file)

    def value(self, cancer: str, name: str) -> float:
        """The parameter's value for the cancer type, from the file it lives in."""
        return current_value(self.raw(parameter(name).file), cancer, name)

    def with_values(self, cancer: str, values: dict[str, float],
                    sources: dict[str, str] | str) -> Knowledge:
        """A copy with each named parameter set (``sources``: one for all, or per name)."""
        out = self
        for name, value in values.items():
            p = parameter(name)
            source = sources if isinstance(sources, str) else sources[name]
            out = replace(out, **{p.file: with_value(out.raw(p.file), cancer, name, value,
                                                     source)})
        return out
