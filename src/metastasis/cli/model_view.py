"""A model that explains itself: parameter tables, the organ graph and a loadable export.

Everything here reads validated data (the knowledge base as plain data, the resolved model's
arrays) and lays it out; nothing is computed that the model does not already hold, so what
``model show`` prints is exactly what the engine will use.  The export writes the knowledge
base back in the same shape the loader reads, so a user can copy it, change one number with
its source, and run ``--model FILE``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from metastasis.errors import ModelError
from metastasis.knowledge.schema import KnowledgeBase
from metastasis.model.resolve import ResolvedModel
from metastasis.model.routing import ROUTE_NAMES

THORACIC_DUCT = "thoracic_duct"
EXPORT_SUFFIXES = (".toml", ".json")
SCIENTIFIC_ABOVE = 1e5
SCIENTIFIC_BELOW = 1e-3
"""Floats outside [1e-3, 1e5) are exported as 1e9 rather than 1000000000.0."""
STRUCTURE = "(structure)"
"""Source column text for settings that are not numbers (drainage, names, switches)."""


@dataclass(frozen=True)
class ParameterRow:
    """One row of the parameter table: where the value lives, the value, its source."""

    path: str
    value: str
    source: str


def _is_sourced(node: Any) -> bool:
    return isinstance(node, Mapping) and set(node) == {"value", "source"}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = f"{value:.6g}"
        if "e" in text:  # 1e+09 -> 1e9, 1e-07 -> 1e-7: how people write it
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
        return text
    return str(value)


def _walk(node: Mapping[str, Any], prefix: str) -> Iterator[ParameterRow]:
    """Every leaf under ``node``: sourced numbers with their source, other settings marked."""
    for key, child in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if _is_sourced(child):
            yield ParameterRow(path, _fmt(child["value"]), str(child["source"]))
        elif isinstance(child, Mapping):
            yield from _walk(child, path)
        elif child is not None:
            yield ParameterRow(path, _fmt(child), STRUCTURE)


def parameter_rows(model: ResolvedModel) -> list[ParameterRow]:
    """Every parameter of the resolved cancer type: anatomy-wide constants, sites, cancer.

    Sourced numbers come first in each block; the site structure (drainage, kinds) is listed
    too so the table is complete, marked as structure rather than given a fake source.
    """
    kb = model.knowledge
    rows = list(_walk({"circulation": kb.get("circulation", {})}, ""))
    rows += list(_walk({"sites": kb.get("sites", {})}, ""))
    rows += list(_walk({"cancers": {model.cancer: kb["cancers"][model.cancer]}}, ""))
    return rows


@dataclass(frozen=True)
class JourneyRow:
    """Closed-form fate of one shed cell of the primary in one organ."""

    site: str
    arrest: float
    extravasation: float
    founds: float


def journey_rows(model: ResolvedModel) -> tuple[dict[str, tuple[float, float]], list[JourneyRow]]:
    """Where a cell shed by the primary ends up, read from the resolved arrays.

    Returns per route (share of shed cells, chance of dying on the way) and per organ the
    chance that a shed cell arrests there, the chance an arrested cell leaves the vessel, and
    the chance that a shed cell founds a growing metastasis there.
    """
    p = model.primary_site
    weights = model.route_weights[p]
    routes = {
        name: (float(weights[r]), float(model.died_in_transit[p, r]))
        for r, name in enumerate(ROUTE_NAMES)
        if weights[r] > 0
    }
    arrest = np.einsum("r,rj->j", weights, model.arrest[p])
    founds = model.founder_probability[p]
    rows = [
        JourneyRow(model.site_labels[j], float(arrest[j]), float(model.extravasation[j]),
                   float(founds[j]))
        for j in np.argsort(-arrest, kind="stable")
        if arrest[j] > 0
    ]
    return routes, rows


# ---------------------------------------------------------------- the organ graph


class _Graph:
    """The anatomy as edges: venous drainage, arterial shares, lymph chain, cavities."""

    def __init__(self, model: ResolvedModel) -> None:
        self.sites: dict[str, dict[str, Any]] = model.knowledge["sites"]
        self.labels = dict(zip(model.site_names, model.site_labels, strict=True))
        self.primary = model.site_names[model.primary_site]

    def label(self, site: str) -> str:
        return self.labels.get(site, site)

    def drained_by(self, kind: str) -> list[str]:
        return [k for k, s in self.sites.items() if s.get("venous_drainage") == kind]

    def arterial(self) -> list[tuple[str, float]]:
        shares = [(k, float(s["arterial_share"]["value"])) for k, s in self.sites.items()]
        return sorted([x for x in shares if x[1] > 0], key=lambda x: -x[1])

    def lymph(self) -> list[tuple[str, str]]:
        return [(k, s["lymph_drainage"]) for k, s in self.sites.items()
                if s.get("lymph_drainage")]

    def cavities(self) -> list[tuple[str, str]]:
        return [(k, s["cavity"]) for k, s in self.sites.items() if s.get("cavity")]

    def node_sites(self) -> set[str]:
        return {k for k, s in self.sites.items() if s.get("kind") == "lymph_nodes"}


def _join(labels: list[str]) -> str:
    return ", ".join(labels) if labels else "(none)"


def graph_text(model: ResolvedModel) -> list[str]:
    """The organ graph as indented text a learner can read top to bottom."""
    g = _Graph(model)

    def named(sites: list[str]) -> list[str]:
        return [f"{g.label(s)}*" if s == g.primary else g.label(s) for s in sites]

    lines = [
        f"Organ graph for {model.label} (* marks the primary: {g.label(g.primary)})",
        "",
        "Blood: where each organ's venous blood meets its first capillary bed",
        f"  portal vein -> {g.label('liver')}: from {_join(named(g.drained_by('portal')))}",
        f"  venae cavae -> right heart -> {g.label('lungs')}: from "
        f"{_join(named(g.drained_by('caval')))}",
        f"  pulmonary veins -> left heart -> arterial tree: from "
        f"{_join(named(g.drained_by('arterial')))}",
        "",
        "Arterial tree: each organ's share of the cardiac output",
    ]
    lines += [f"  {g.label(s)}: {100 * share:.1f} %" for s, share in g.arterial()]
    lines += ["", "Lymph: drainage chain (lymph nodes filter the cells that arrive)"]
    nodes = g.node_sites()
    sources: dict[str, list[str]] = {}
    for site, target in g.lymph():
        if site not in nodes:
            sources.setdefault(target, []).append(site)
    for target, from_sites in sources.items():
        lines.append(f"  {_join(named(from_sites))} -> {g.label(target)}")
    for site, target in g.lymph():
        if site in nodes:
            end = ("thoracic duct -> venae cavae -> " + g.label("lungs")
                   if target == THORACIC_DUCT else g.label(target))
            lines.append(f"  {g.label(site)} -> {end}")
    lines += ["", "Serous cavities: cells shed across a cavity settle on its lining"]
    cavities: dict[str, list[str]] = {}
    for site, cavity in g.cavities():
        cavities.setdefault(cavity, []).append(site)
    lines += [f"  {_join(named(s))} -> {g.label(c)}" for c, s in cavities.items()]
    return lines


def _mid(site: str) -> str:
    return "s_" + re.sub(r"\W", "_", site)


def graph_mermaid(model: ResolvedModel) -> list[str]:
    """The organ graph as a Mermaid flowchart (paste into any Mermaid renderer)."""
    g = _Graph(model)
    lines = [
        "flowchart LR",
        '  PV(["portal vein"])',
        '  VC(["venae cavae and right heart"])',
        '  ART(["left heart and arterial tree"])',
    ]
    has_duct = any(t == THORACIC_DUCT for _, t in g.lymph())
    if has_duct:
        lines.append('  TD(["thoracic duct"])')
    for site in g.sites:
        text = g.label(site).replace('"', "'")
        lines.append(f'  {_mid(site)}["{text}"]')
    vessel = {"portal": "PV", "caval": "VC", "arterial": "ART"}
    for site, spec in g.sites.items():
        target = vessel.get(spec.get("venous_drainage", ""))
        if target:
            lines.append(f"  {_mid(site)} --> {target}")
    lines.append(f"  PV --> {_mid('liver')}")
    lines.append(f"  VC --> {_mid('lungs')}")
    for site, share in g.arterial():
        lines.append(f'  ART -->|"{100 * share:.1f} %"| {_mid(site)}')
    for site, target in g.lymph():
        end = "TD" if target == THORACIC_DUCT else _mid(target)
        lines.append(f"  {_mid(site)} -.->|lymph| {end}")
    if has_duct:
        lines.append("  TD -.-> VC")
    for site, cavity in g.cavities():
        lines.append(f"  {_mid(site)} ==>|cavity| {_mid(cavity)}")
    lines.append("  classDef primary fill:#f9a,stroke:#c33,stroke-width:2px")
    lines.append(f"  class {_mid(g.primary)} primary")
    return lines


# ---------------------------------------------------------------- export


def export_data(kb: KnowledgeBase, cancer: str | None = None) -> dict[str, Any]:
    """The knowledge base as plain data the loader reads back, defaults already merged.

    With ``cancer`` only that cancer type is kept (the anatomy is always whole, because the
    journey needs every organ).
    """
    data = kb.model_dump(mode="json", exclude_none=True)
    if cancer is not None:
        kb.cancer(cancer)  # raises a ModelError listing the allowed names
        data["cancers"] = {cancer: data["cancers"][cancer]}
    return data


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _scalar(value: Any) -> str:
    """One TOML value; large and tiny floats in short scientific form (1e9, 2.5e-7).

    numpy's shortest unique digits keep the round trip exact.
    """
    if isinstance(value, float) and math.isfinite(value) and value != 0 and (
        abs(value) >= SCIENTIFIC_ABOVE or abs(value) < SCIENTIFIC_BELOW
    ):
        mantissa, exponent = np.format_float_scientific(value, trim="-").split("e")
        return f"{mantissa}e{int(exponent)}"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


def _toml_table(node: Mapping[str, Any], path: list[str], out: list[str]) -> None:
    """Emit one table: its plain and sourced entries inline, then its sub-tables."""
    inline = [(k, v) for k, v in node.items() if not isinstance(v, Mapping) or _is_sourced(v)]
    tables = [(k, v) for k, v in node.items() if isinstance(v, Mapping) and not _is_sourced(v)]
    if path and (inline or not tables):
        out.append("")
        out.append("[" + ".".join(_key(p) for p in path) + "]")
    for key, value in inline:
        if _is_sourced(value):
            text = (f"{{ value = {_scalar(value['value'])}, "
                    f"source = {_scalar(value['source'])} }}")
        else:
            text = _scalar(value)
        out.append(f"{_key(key)} = {text}")
    for key, value in tables:
        _toml_table(value, [*path, key], out)


def to_toml(data: Mapping[str, Any], header: list[str]) -> str:
    """TOML with every sourced number on one line, ``name = { value = ..., source = ... }``."""
    out = [f"# {line}" for line in header]
    _toml_table(data, [], out)
    return "\n".join(out) + "\n"


def to_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def check_export_path(path: Path) -> None:
    """Refuse a suffix the loader could not read back, before anything is written."""
    if path.suffix.lower() not in EXPORT_SUFFIXES:
        raise ModelError("--out", str(path), "a file ending in " + " or ".join(EXPORT_SUFFIXES))
