"""The guide to metastasis, in the project's own words, with the model's figures inside.

Pages are Markdown files under ``content/`` (:mod:`metastasis.guide.content`); rendering fills
their placeholders with numbers computed from the model (:mod:`metastasis.guide.figures`,
:mod:`metastasis.guide.pages`); :mod:`metastasis.guide.fulltext` indexes them with SQLite FTS5;
:mod:`metastasis.guide.explain` explains one organ; :mod:`metastasis.guide.cli` is the
terminal.  The web explorer is meant to use these same functions.

Educational and research software: not medical advice.
"""

from typing import TYPE_CHECKING

from metastasis.lazy import lazy_attributes

if TYPE_CHECKING:
    from metastasis.guide.content import (
        GlossaryTerm,
        Section,
        find,
        for_step,
        glossary,
        sections,
    )
    from metastasis.guide.explain import SiteExplanation, explain_site
    from metastasis.guide.fulltext import SearchHit, search
    from metastasis.guide.pages import RenderedPage, render, table_of_contents

_HOMES = {
    "metastasis.guide.content": ("GlossaryTerm", "Section", "find", "for_step", "glossary",
                                 "sections"),
    "metastasis.guide.explain": ("SiteExplanation", "explain_site"),
    "metastasis.guide.pages": ("RenderedPage", "render", "table_of_contents"),
    "metastasis.guide.fulltext": ("SearchHit", "search"),
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}
"""Public names, imported on first use: the pages and figures need the engine, which the
command line's ``--help`` should not wait for."""

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


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
