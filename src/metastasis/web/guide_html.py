"""The guide as HTML: the guide package's Markdown, rendered, with glossary links.

Every word of the guide and every number in it comes from :mod:`metastasis.guide` (its
public functions ``sections``, ``render``, ``glossary``, ``for_step`` and ``search``): the
web adds only presentation.  Markdown is rendered with markdown-it-py, which the CLI's
``rich`` already depends on, so the web needs no Markdown library of its own; raw HTML in
the Markdown is escaped, not passed through.

Glossary terms are linked where they first appear on a page, at the token level (never
inside a heading, a link or code), so a reader can look a word up without the text being
rewritten by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

import metastasis.guide as guide
from metastasis.errors import ModelError
from metastasis.guide.content import anchor
from metastasis.guide.fulltext import HIT_END, HIT_START
from metastasis.guide.pages import disclaimer_block

GUIDE_PREFIX = "/guide"
GLOSSARY_SLUG = "glossary"
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


@dataclass(frozen=True)
class TocEntry:
    number: int
    slug: str
    title: str
    summary: str
    step: int | None

    @property
    def url(self) -> str:
        return f"{GUIDE_PREFIX}/{self.slug}"


@dataclass(frozen=True)
class GuidePage:
    """A page ready for the template: its HTML and its neighbours for the page links."""

    slug: str
    number: int
    title: str
    step: int | None
    html: str
    markdown: str
    previous: TocEntry | None
    next: TocEntry | None


@dataclass(frozen=True)
class Hit:
    """One search result, with its snippet as (text, matched) pieces for safe escaping."""

    slug: str
    number: int
    title: str
    heading: str
    anchor: str
    url: str
    snippet: str
    segments: tuple[tuple[str, bool], ...]
    score: float


def toc() -> list[TocEntry]:
    """The table of contents, in reading order."""
    return [
        TocEntry(s.number, s.slug, s.title, s.summary, s.step) for s in guide.sections()
    ]


def step_url(step: int) -> str | None:
    """Where step ``step`` of the cascade is explained, or None if no page explains it."""
    try:
        return f"{GUIDE_PREFIX}/{guide.for_step(step).slug}"
    except ModelError:
        return None


def step_urls() -> dict[int, str]:
    """Guide URL of each of the six steps (for linking events)."""
    return {step: url for step in range(1, 7) if (url := step_url(step)) is not None}


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


@cache
def _term_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """A pattern per glossary term (longest first, so 'lymph node' wins over 'lymph'),
    with its anchor.  All-capital terms (CT, MRI) match only in capitals."""
    try:
        terms = guide.glossary()
    except ModelError:  # no glossary page: nothing to link
        return ()
    out = []
    for term in sorted(terms, key=lambda t: -len(t.term)):
        words = r"\s+".join(re.escape(w) for w in term.term.split())
        flags = 0 if term.term.isupper() else re.IGNORECASE
        out.append((re.compile(rf"\b{words}(?:s|es)?\b", flags), term.anchor))
    return tuple(out)


def _link_tokens(href: str, text: str, title: str) -> list[Token]:
    opening = Token("link_open", "a", 1)
    opening.attrs = {"href": href, "class": "term", "title": title}
    inner = Token("text", "", 0)
    inner.content = text
    return [opening, inner, Token("link_close", "a", -1)]


def _split_terms(text: str, pending: dict[str, re.Pattern[str]]) -> list[Token]:
    """``text`` as tokens, with the first occurrence of each pending term made a link."""
    out: list[Token] = []
    while pending:
        found = [(m.start(), -len(m.group(0)), a, m) for a, p in pending.items()
                 if (m := p.search(text))]
        if not found:
            break
        _, _, term_anchor, match = min(found, key=lambda f: (f[0], f[1]))
        if match.start():
            before = Token("text", "", 0)
            before.content = text[: match.start()]
            out.append(before)
        out += _link_tokens(
            f"{GUIDE_PREFIX}/{GLOSSARY_SLUG}#{term_anchor}", match.group(0), "in the glossary"
        )
        del pending[term_anchor]
        text = text[match.end():]
    if text:
        rest = Token("text", "", 0)
        rest.content = text
        out.append(rest)
    return out


def _decorate(tokens: list[Token], link_terms: bool) -> None:
    """Heading ids, absolute guide links and glossary links, in place."""
    pending = {a: p for p, a in _term_patterns()} if link_terms else {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag in ("h2", "h3"):
            token.attrSet("id", anchor(tokens[i + 1].content))
        if token.type != "inline" or token.children is None:
            continue
        in_heading = i > 0 and tokens[i - 1].type == "heading_open"
        children: list[Token] = []
        depth = 0
        for child in token.children:
            if child.type == "link_open":
                depth += 1
                href = str(child.attrGet("href") or "")
                if href and not EXTERNAL.match(href) and not href.startswith(("/", "#")):
                    child.attrSet("href", f"{GUIDE_PREFIX}/{href}")
            elif child.type == "link_close":
                depth -= 1
            if child.type == "text" and depth == 0 and not in_heading and pending:
                children += _split_terms(child.content, pending)
            else:
                children.append(child)
        token.children = children


def markdown_to_html(markdown: str, *, link_terms: bool = True) -> str:
    """Guide Markdown to HTML (raw HTML escaped), decorated as described above."""
    parser = _parser()
    tokens = parser.parse(markdown)
    _decorate(tokens, link_terms)
    return parser.renderer.render(tokens, parser.options, {})


@cache
def page(slug: str) -> GuidePage:
    """A guide page by slug or number; :class:`ModelError` names the pages that exist."""
    rendered = guide.render(slug)
    section = rendered.section
    markdown = rendered.markdown
    # the layout shows the disclaimer on every page already
    markdown = markdown.removeprefix(disclaimer_block()).lstrip("\n")
    entries = toc()
    position = [e.slug for e in entries].index(section.slug)
    return GuidePage(
        slug=section.slug,
        number=section.number,
        title=section.title,
        step=section.step,
        html=markdown_to_html(markdown, link_terms=section.slug != GLOSSARY_SLUG),
        markdown=rendered.markdown,
        previous=entries[position - 1] if position > 0 else None,
        next=entries[position + 1] if position + 1 < len(entries) else None,
    )


def search(query: str, limit: int = 10) -> list[Hit]:
    """Ranked hits from the guide's full-text index (:class:`ModelError` for a bad query)."""
    hits = []
    for h in guide.search(query, limit):
        url = f"{GUIDE_PREFIX}/{h.slug}" + (f"#{h.anchor}" if h.anchor else "")
        plain = h.snippet.replace(HIT_START, "").replace(HIT_END, "")
        hits.append(
            Hit(h.slug, h.number, h.title, h.heading, h.anchor, url, plain.strip(),
                tuple(h.segments()), h.score)
        )
    return hits
