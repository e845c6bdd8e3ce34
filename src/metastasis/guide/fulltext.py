"""Full-text search over the guide: a real SQLite FTS5 index, ranked by BM25.

The index is built in memory from the pages as written (placeholders become a neutral
"(model figure)", so searching never waits for a simulation) and holds one row per ``##``
subsection, so a hit can point at the part of a page that answers the query, not just the
page.  Titles and headings weigh more than body text in the ranking, which is what a reader
expects: the page *about* the liver should beat a page that mentions the liver in passing.

FTS5 ships with the SQLite in CPython's standard builds; if it is missing the index cannot be
built and :class:`SearchUnavailable` says so plainly.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from functools import cache

from metastasis.errors import ModelError
from metastasis.guide import content
from metastasis.guide.pages import plain_text

HIT_START = "\x02"
HIT_END = "\x03"
"""Marks around matched words in a snippet: control characters never found in the text, so
each interface can turn them into its own highlighting (rich styles, ``<mark>``)."""

WEIGHTS = (10.0, 5.0, 1.0)
"""BM25 weights of the page title, the subsection heading and the body."""

PAGE_BOOST = {"glossary": 0.3}
"""Multipliers of a page's BM25 score (1 elsewhere).  A glossary entry is a two-line
definition whose heading is the query word itself, so title weight and BM25's preference for
short texts would put it above the page that actually discusses the topic; scaling its score
down keeps definitions in the results, after the pages that explain."""

SNIPPET_TOKENS = 14
MAX_QUERY_WORDS = 12


class SearchUnavailable(RuntimeError):
    """This Python's SQLite lacks FTS5, so the guide cannot be searched."""


@dataclass(frozen=True)
class SearchHit:
    """One ranked result: where it is, a highlighted snippet and its BM25 score."""

    slug: str
    number: int
    title: str
    heading: str
    anchor: str
    snippet: str  # matched words wrapped in HIT_START / HIT_END
    score: float  # BM25 as SQLite reports it: lower is better

    def segments(self) -> list[tuple[str, bool]]:
        """The snippet as (text, highlighted) pieces, for any renderer."""
        pieces = re.split(f"({HIT_START}.*?{HIT_END})", self.snippet)
        return [(p.strip(HIT_START + HIT_END), p.startswith(HIT_START)) for p in pieces if p]

    @property
    def location(self) -> str:
        return self.title if not self.anchor else f"{self.title} › {self.heading}"


class GuideIndex:
    """An in-memory FTS5 index of every subsection of the guide."""

    def __init__(self) -> None:
        # one connection shared by the threads of a web server: queries take a lock, since a
        # sqlite3 connection must not run two statements at once
        self.connection = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self.connection.execute(
                "CREATE VIRTUAL TABLE guide USING fts5("
                "slug UNINDEXED, number UNINDEXED, anchor UNINDEXED, boost UNINDEXED, "
                "page UNINDEXED, title, heading, body, tokenize = 'porter unicode61')"
            )
        except sqlite3.OperationalError as error:
            raise SearchUnavailable(
                f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5: {error}"
            ) from None
        rows = []
        for page in content.sections():
            for part in page.subsections():
                # the title is indexed once, on the page's lead, so that a query matching
                # only the title ranks the page itself, not every subsection of it
                lead = not part.anchor
                rows.append(
                    (
                        page.slug,
                        page.number,
                        part.anchor,
                        PAGE_BOOST.get(page.slug, 1.0),
                        page.title,
                        page.title if lead else "",
                        "" if lead else part.heading,
                        plain_text(part.body),
                    )
                )
        with self.connection:
            self.connection.executemany(
                "INSERT INTO guide (slug, number, anchor, boost, page, title, heading, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        self.size = len(rows)

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        """Subsections matching every word of ``query``, best first (BM25)."""
        expression = fts_query(query)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ModelError("limit", limit, "an integer from 1 to 100")
        title_w, heading_w, body_w = WEIGHTS
        with self._lock:
            cursor = self.connection.execute(
                "SELECT slug, number, page, heading, anchor, "
                f"snippet(guide, 7, ?, ?, ' … ', {SNIPPET_TOKENS}), "
                f"bm25(guide, 0, 0, 0, 0, 0, {title_w}, {heading_w}, {body_w}) * boost AS score "
                "FROM guide WHERE guide MATCH ? ORDER BY score LIMIT ?",
                (HIT_START, HIT_END, expression, limit),
            )
            found = cursor.fetchall()
        return [
            SearchHit(s, int(n), t, h, a, snip, float(score))
            for s, n, t, h, a, snip, score in found
        ]


def fts_query(query: str) -> str:
    """A safe FTS5 expression from what a person typed: each word quoted (so FTS5 syntax in
    the input cannot break the query), all words required; ``word*`` keeps prefix search."""
    words = re.findall(r"[\w]+\*?", query, flags=re.UNICODE)
    if not words or len(words) > MAX_QUERY_WORDS:
        raise ModelError("query", query, f"one to {MAX_QUERY_WORDS} words to search for")
    quoted = []
    for word in words:
        star = "*" if word.endswith("*") else ""
        quoted.append(f'"{word.rstrip("*")}"{star}')
    return " AND ".join(quoted)


@cache
def index() -> GuideIndex:
    """The process's index, built on first use (a few milliseconds)."""
    return GuideIndex()


def search(query: str, limit: int = 10) -> list[SearchHit]:
    """Search the guide; see :meth:`GuideIndex.search`."""
    return index().search(query, limit)
