"""The guide to metastasis, in the project's own words, with the model's figures inside.

Pages are Markdown files under ``content/`` (:mod:`metastasis.guide.content`); rendering fills
their placeholders with numbers computed from the model (:mod:`metastasis.guide.figures`,
:mod:`metastasis.guide.pages`); :mod:`metastasis.guide.search` indexes them with SQLite FTS5;
:mod:`metastasis.guide.explain` explains one organ; :mod:`metastasis.guide.cli` is the
terminal.  The web explorer is meant to use these same functions.

Educational and research software: not medical advice.
"""

from metastasis.guide.content import (
    GlossaryTerm,
    Section,
    find,
    for_step,
    glossary,
    sections,
)
from metastasis.guide.explain import SiteExplanation, explain_site
from metastasis.guide.pages import RenderedPage, render, table_of_contents
from metastasis.guide.search import SearchHit, search

__all__ = [
    "GlossaryTerm",
    "RenderedPage",
    "SearchHit",
    "Section",
    "SiteExplanation",
    "explain_site",
    "find",
    "for_step",
    "glossary",
    "render",
    "search",
    "sections",
    "table_of_contents",
]
