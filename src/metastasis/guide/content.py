"""The guide's pages: Markdown files with a small header, loaded once and validated.

The pages live in ``content/`` inside the package so that a wheel carries them and every
interface (terminal, web, tests) reads the same text.  Each file opens with a header block
between ``---`` lines holding ``key: value`` pairs (``slug``, ``title``, ``order``, optionally
``step`` and ``summary``); a full YAML parser would be a dependency for four keys, so the
header is parsed here, strictly, and a malformed page fails loudly at load time rather than
rendering half a guide.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from metastasis.errors import ModelError

REQUIRED_KEYS = ("slug", "title", "order")
OPTIONAL_KEYS = ("step", "summary")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
HEADING_PATTERN = re.compile(r"^## +(.+?)\s*$", re.M)


class ContentError(RuntimeError):
    """A page of the shipped guide is malformed: a bug in the content, not bad user input."""


@dataclass(frozen=True)
class Subsection:
    """A ``##`` part of a page: the unit the search index ranks and links to."""

    heading: str
    anchor: str
    body: str


@dataclass(frozen=True)
class Section:
    """One page of the guide, as written (placeholders not yet replaced)."""

    slug: str
    title: str
    order: int
    number: int
    body: str
    step: int | None = None
    summary: str = ""
    filename: str = ""

    def subsections(self) -> list[Subsection]:
        """Split the page at its ``##`` headings; text before the first one is the lead."""
        parts = HEADING_PATTERN.split(self.body)
        out = [Subsection(self.title, "", parts[0].strip())]
        for heading, body in zip(parts[1::2], parts[2::2], strict=True):
            out.append(Subsection(heading, anchor(heading), body.strip()))
        return [s for s in out if s.body or s.anchor]


@dataclass(frozen=True)
class GlossaryTerm:
    """One glossary entry; ``anchor`` is its link target on the glossary page."""

    term: str
    anchor: str
    definition: str


def anchor(heading: str) -> str:
    """The link anchor of a heading: lower case, words joined by hyphens (GitHub style)."""
    words = re.findall(r"[a-z0-9]+", heading.lower())
    return "-".join(words)


def content_root() -> Traversable:
    """Where the Markdown and data files of the guide live inside the installed package."""
    return resources.files("metastasis.guide").joinpath("content")


def parse_page(text: str, filename: str) -> tuple[dict[str, Any], str]:
    """Split a page into its header (validated, typed) and its Markdown body."""
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    if not match:
        raise ContentError(f"{filename}: a page must open with a '---' header block")
    header: dict[str, Any] = {}
    for line in match.group(1).splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            raise ContentError(f"{filename}: unknown header line {line!r}")
        if key in header:
            raise ContentError(f"{filename}: header key {key!r} given twice")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # quoted, for titles that contain a colon
        header[key] = value
    missing = [k for k in REQUIRED_KEYS if k not in header]
    if missing:
        raise ContentError(f"{filename}: header lacks {', '.join(missing)}")
    if not SLUG_PATTERN.match(header["slug"]):
        raise ContentError(f"{filename}: slug {header['slug']!r} is not lower-case-hyphenated")
    for key in ("order", "step"):
        if key in header:
            try:
                header[key] = int(header[key])
            except ValueError:
                raise ContentError(f"{filename}: {key} must be an integer") from None
    return header, match.group(2).strip() + "\n"


@cache
def sections() -> tuple[Section, ...]:
    """Every page of the guide in reading order, numbered from 1 (cached per process)."""
    pages = []
    for entry in content_root().iterdir():
        if entry.name.endswith(".md"):
            header, body = parse_page(entry.read_text(encoding="utf-8"), entry.name)
            pages.append((header, body, entry.name))
    pages.sort(key=lambda page: page[0]["order"])
    out = tuple(
        Section(
            slug=h["slug"],
            title=h["title"],
            order=h["order"],
            number=i,
            body=body,
            step=h.get("step"),
            summary=h.get("summary", ""),
            filename=name,
        )
        for i, (h, body, name) in enumerate(pages, start=1)
    )
    _check_unique(out)
    return out


def _check_unique(pages: tuple[Section, ...]) -> None:
    for attribute in ("slug", "order"):
        seen: dict[object, str] = {}
        for page in pages:
            key = getattr(page, attribute)
            if key in seen:
                raise ContentError(f"{page.filename} and {seen[key]} share the {attribute} {key!r}")
            seen[key] = page.filename
    steps = sorted(p.step for p in pages if p.step is not None)
    if steps and steps != list(range(1, len(steps) + 1)):
        raise ContentError(f"step pages must be numbered 1..n without gaps, got {steps}")


def slugs() -> list[str]:
    return [s.slug for s in sections()]


def allowed_sections() -> str:
    """The phrase an error message uses to say which sections exist."""
    return f"a number from 1 to {len(sections())} or one of: {', '.join(slugs())}"


def find(section: str | int) -> Section:
    """A page by slug (case and spaces forgiven) or by its number in the table of contents."""
    text = str(section).strip()
    pages = sections()
    if text.isascii() and text.isdigit():  # "²" and "١" are digits to isdigit, not to int
        number = int(text)
        if 1 <= number <= len(pages):
            return pages[number - 1]
    else:
        wanted = re.sub(r"[\s_]+", "-", text.lower())
        for page in pages:
            if page.slug == wanted:
                return page
    raise ModelError("section", section, allowed_sections())


def for_step(step: int) -> Section:
    """The page that explains step ``step`` of the cascade (1 to 6), for linking events."""
    for page in sections():
        if page.step == step:
            return page
    raise ModelError("step", step, "a step of the cascade from 1 to 6")


@cache
def glossary() -> tuple[GlossaryTerm, ...]:
    """The glossary's terms, in the page's order: each ``##`` heading is a term."""
    page = find("glossary")
    return tuple(
        GlossaryTerm(term=s.heading, anchor=s.anchor, definition=s.body)
        for s in page.subsections()
        if s.anchor
    )


@cache
def site_notes() -> dict[str, dict[str, Any]]:
    """What the guide says about each site (symptoms, consequences, the guide's list of
    primaries), keyed by the knowledge base's site names; read from ``content/sites.toml``."""
    raw = tomllib.loads(content_root().joinpath("sites.toml").read_text(encoding="utf-8"))
    return raw["sites"]
