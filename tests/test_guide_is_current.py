"""The guide describes the model as it is: treatment, screening and the clinical course are
implemented, so no page may call them planned, and the commands it names must exist.

Issue 11 found `guide treatment`, `guide prevention` and `guide about-the-model` still
announcing the clinical layer as future work.  The checks read the pages' source text (every
page, so an outdated sentence cannot move elsewhere) and the rendered pages a reader sees,
which must keep the "educational, not medical advice" framing.
"""

from __future__ import annotations

import re

import pytest
import typer

import metastasis
from metastasis.cli.app import app
from metastasis.guide import content, pages

OUTDATED = (
    r"\bplanned\b",
    r"\bnot yet (?:modelled|modeled|implemented|included|simulated)\b",
    r"\bin (?:a )?future (?:version|release)s?\b",
    r"untreated natural histor(?:y|ies) only",
    r"describes untreated disease",
    r"follows an untreated natural history",
)
"""Phrases that described the clinical layer as missing."""

WHAT_EACH_PAGE_NOW_SAYS = {
    "treatment": ("protocol", "metastasis protocol example", "chemotherapy", "resist",
                  "found", "is given to breast cancers that carry hormone receptors",
                  "not part of the default plans"),
    "prevention": ("screening in the model", "metastasis compare", "first cancer cell"),
    "about-the-model": ("the clinical course", "what the doctors knew", "metastasis simulate",
                        "metastasis cohort", "metastasis compare", "untreated disease alone"),
}


def _flat(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize("section", content.sections(), ids=lambda s: s.slug)
def test_no_page_calls_the_clinical_layer_planned(section: content.Section) -> None:
    text = _flat(f"{section.summary} {section.body}")
    found = [p for p in OUTDATED if re.search(p, text)]
    assert not found, f"page {section.slug} still says {found}"


@pytest.mark.parametrize("slug", list(WHAT_EACH_PAGE_NOW_SAYS))
def test_the_pages_describe_what_is_implemented(slug: str) -> None:
    page = pages.render(slug)
    text = _flat(page.markdown)
    for phrase in WHAT_EACH_PAGE_NOW_SAYS[slug]:
        assert phrase in text, f"page {slug} never says {phrase!r}"
    # the framing stays: the disclaimer heads the page, and the model is no advice
    assert page.markdown.startswith(pages.disclaimer_block())
    assert metastasis.DISCLAIMER in page.markdown


def test_every_command_the_guide_names_exists() -> None:
    """A learner who types a command the guide shows gets that command, not an error."""
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    named = set()
    for section in content.sections():
        named.update(re.findall(r"`metastasis ([a-z-]+)", section.body))
    assert {"protocol", "compare", "simulate", "cohort"} <= named
    assert named <= set(commands), sorted(named - set(commands))
