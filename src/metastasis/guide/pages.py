"""Render a guide page: fill its placeholders from the model and frame it with the disclaimer.

Placeholders are the only way a page states a number the model produces:

- ``{{figure:NAME:ARG...}}``: one number (see :mod:`metastasis.guide.figures`), shown in bold;
  a simulated figure carries its seed and patient count in brackets beside it;
- ``{{table:NAME:ARG...}}``: a Markdown table computed from the resolved models;
- ``{{cites:AUTHOR:YEAR}}``: which values of the default knowledge base cite a paper, so the
  references page shows where each paper enters the model.

The disclaimer is added here, to every page, rather than written into each file, so no page
can ship without it.  Rendering is cached per process: a page's simulated figures are
computed once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import metastasis
from metastasis.guide import content, figures
from metastasis.guide.content import ContentError, Section
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.knowledge.loader import raw_knowledge
from metastasis.model.resolve import FATES
from metastasis.model.routing import ROUTE_NAMES

PLACEHOLDER = re.compile(r"\{\{\s*(figure|table|cites):([^{}\s]+)\s*\}\}")


@dataclass(frozen=True)
class RenderedPage:
    """A page ready to show: Markdown with every number filled in, and the figures used."""

    section: Section
    markdown: str
    figures: tuple[figures.FigureValue, ...]


def disclaimer_block() -> str:
    """The educational disclaimer as it opens every page."""
    return f"> **{metastasis.DISCLAIMER}** This guide explains; it does not advise.\n"


# ---------------------------------------------------------------- tables


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cancers() -> list[str]:
    return list(load_knowledge().cancers)


def table_naming() -> str:
    """How each cancer type of the model is named once it has spread."""
    kb = load_knowledge()
    rows = [
        [spec.label, kb.sites[spec.primary_site].label, f"metastatic {spec.naming}"]
        for spec in kb.cancers.values()
    ]
    return _table(["cancer type in the model", "where it starts", "name once it spreads"], rows)


DRAINAGE_WORDS = {
    "portal": "portal vein, to the liver",
    "caval": "venae cavae, to the heart and lungs",
    "arterial": "pulmonary veins, to the heart and out through the arteries",
}


def table_first_bed() -> str:
    """For each cancer type: where the primary's blood goes and where its cells stop first."""
    kb = load_knowledge()
    rows = []
    for name in _cancers():
        m = figures.model(name)
        shares = figures.first_bed_shares(m)
        order = sorted(range(m.n_sites), key=lambda j: -shares[j])[:2]
        primary = kb.cancers[name].primary_site
        drainage = DRAINAGE_WORDS.get(str(kb.sites[primary].venous_drainage), "none")
        plexus = kb.sites[primary].vertebral_plexus_share
        if plexus:
            drainage += f"; {figures.percent(plexus.value)} through the spinal veins to bone"
        rows.append(
            [
                m.label,
                drainage,
                ", ".join(f"{m.site_labels[j]} {figures.percent(shares[j])}" for j in order),
            ]
        )
    return _table(
        ["cancer type", "blood leaves the primary by", "where blood-borne cells stop (top two)"],
        rows,
    )


FUNNEL_WORDS = {
    "died_in_transit": "die in the blood, lymph or a body cavity before stopping",
    "failed_extravasation": "stop in a capillary bed or node but never leave the vessel",
    "died_at_site": "leave the vessel and die in the new tissue",
    "dormant": "leave the vessel and stay dormant for good",
    "colony_extinct": "start a small colony that dies out",
    "micrometastasis": "form a micrometastasis that never grows further",
    "outgrowth": "found a metastasis that grows out",
}


def funnel(cancer: str) -> dict[str, float]:
    """Eventual fate of one shed cell of ``cancer``'s primary, as probabilities summing to 1."""
    m = figures.model(cancer)
    p = m.primary_site
    fates = m.cell_fate_probability[p].sum(axis=(0, 1))
    out = {"died_in_transit": float(m.transit_death_probability[p].sum())}
    out.update({fate: float(fates[k]) for k, fate in enumerate(FATES)})
    return out


def table_cell_funnel(cancer: str) -> str:
    """What becomes of a million cells shed by the primary (closed form)."""
    shares = funnel(cancer)
    rows = []
    for key, words in FUNNEL_WORDS.items():
        per_million = 1e6 * shares[key]
        shown = f"{per_million:,.0f}" if per_million >= 1 else f"{per_million:.2g}"
        rows.append([words, shown, figures.percent(shares[key])])
    return _table(["what happens to the cell", "per million shed cells", "share"], rows)


def table_routes(cancer: str) -> str:
    """How a primary's shed cells split between routes, and how many die on each."""
    m = figures.model(cancer)
    p = m.primary_site
    rows = [
        [route, figures.percent(m.route_weights[p, r]), figures.percent(m.died_in_transit[p, r])]
        for r, route in enumerate(ROUTE_NAMES)
        if m.route_weights[p, r] > 0
    ]
    return _table(["route", "share of shed cells", "of those, die on the way"], rows)


TABLES: dict[str, Callable[..., str]] = {
    "naming": table_naming,
    "first_bed": table_first_bed,
    "cell_funnel": table_cell_funnel,
    "routes": table_routes,
}

# ---------------------------------------------------------------- citations


@cache
def knowledge_sources() -> tuple[tuple[str, str], ...]:
    """Every ``(parameter path, source)`` of the default knowledge base as it is written."""
    raw = raw_knowledge()
    found: list[tuple[str, str]] = []

    def walk(node: Any, trail: list[str]) -> None:
        if isinstance(node, dict):
            if "value" in node and "source" in node:
                found.append((".".join(trail), str(node["source"])))
                return
            for key, child in node.items():
                walk(child, [*trail, key])

    walk(raw, [])
    return tuple(found)


def cites(author: str, year: str | None = None) -> list[str]:
    """Parameter paths whose source names ``author`` (and ``year``, when given)."""
    author = author.replace("_", " ")
    return [
        path
        for path, source in knowledge_sources()
        if author in source and (year is None or year in source)
    ]


def cites_text(author: str, year: str | None = None) -> str:
    paths = cites(author, year)
    if not paths:
        raise ContentError(f"no value of the knowledge base cites {author} {year or ''}")
    shown = ", ".join(f"`{p}`" for p in paths[:3])
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    noun = "value" if len(paths) == 1 else "values"
    return f"*In the model: {len(paths)} {noun} of the default knowledge base ({shown}{more}).*"


# ---------------------------------------------------------------- pages


def _fill(body: str) -> tuple[str, list[figures.FigureValue]]:
    used: list[figures.FigureValue] = []

    def replace(match: re.Match[str]) -> str:
        kind, key = match.group(1), match.group(2)
        name, *args = key.split(":")
        if kind == "figure":
            value = figures.compute(key)
            used.append(value)
            bold, _, rest = value.text.partition(" (")
            return f"**{bold}**" + (f" ({rest}" if rest else "")
        if kind == "table":
            if name not in TABLES:
                raise ContentError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
            return TABLES[name](*args)
        return cites_text(name, *args)

    return PLACEHOLDER.sub(replace, body), used


def _figure_notes(used: list[figures.FigureValue]) -> str:
    if not used:
        return ""
    lines = ["", "---", "", "**How the model's figures on this page were computed**", ""]
    for value in used:
        bold = value.text.split(" (")[0]
        lines.append(f"- **{bold}**: {value.description} ({value.method}).")
    lines.append(
        "- Closed forms are exact for the model's default parameters; simulated shares are "
        "estimates from the stated cohort and change a little with the seed. "
        "`metastasis model show CANCER` lists every parameter with its source."
    )
    return "\n".join(lines) + "\n"


@cache
def render(section: str | int) -> RenderedPage:
    """A page with its placeholders filled, the disclaimer on top and figure notes below."""
    page = content.find(section)
    body, used = _fill(page.body)
    if "{{" in body:
        raise ContentError(f"{page.filename}: a placeholder was not recognised")
    step = f"*Step {page.step} of the six steps of metastasis.*\n\n" if page.step else ""
    markdown = (
        f"{disclaimer_block()}\n# {page.number}. {page.title}\n\n{step}{body}{_figure_notes(used)}"
    )
    return RenderedPage(page, markdown, tuple(used))


GUIDE_TITLE = "Metastasis: a guide with a model inside"


def table_of_contents() -> str:
    """The generated contents page, as Markdown: a numbered list of pages, with the six step
    pages nested under the overview of the steps (links are page slugs)."""
    lines = [disclaimer_block(), f"# {GUIDE_TITLE}", ""]
    for page in content.sections():
        summary = f": {page.summary}" if page.summary else ""
        item = f"[{page.title}]({page.slug}){summary}"
        if page.step:
            lines.append(f"    - {page.number}. {item}")
        else:
            lines.append(f"{page.number}. {item}")
    return "\n".join(lines) + "\n"


def plain_text(markdown: str) -> str:
    """Text for the search index: placeholders become a neutral mark, Markdown marks go."""
    text = PLACEHOLDER.sub("(model figure)", markdown)
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)  # links keep their words
    text = re.sub(r"^\s*(?:[-+]|\d+\.)\s+", "", text, flags=re.M)  # list markers
    text = re.sub(r"[*`]+", "", text)  # emphasis and code marks vanish without a gap
    text = re.sub(r"[>#|]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()
