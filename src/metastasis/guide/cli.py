"""Terminal interface of the guide: ``metastasis guide`` and ``metastasis explain``.

``guide_app`` is a typer sub-app mounted on the main command as ``guide``; ``explain`` is a
plain command function mounted at the top level.  Both print the disclaimer first, render
Markdown with rich, and turn bad input (an unknown section or site, an empty query) into one
line naming the value and what is allowed, with exit status 2 and no traceback, like the
rest of the ``metastasis`` command.

``metastasis guide SECTION`` needs a group that also accepts a free positional argument:
click would read ``search`` itself as a section name, so :class:`GuideGroup` routes any first
word that is not a sub-command to ``show``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

import metastasis
from metastasis.errors import ModelError
from metastasis.guide import content
from metastasis.guide.settings import EXPLAIN_PATIENTS, GUIDE_SEED, GUIDE_YEARS, MAX_PATIENTS
from metastasis.lazy import lazy_module

# the pages, figures and search need the model: loaded when a command uses them
explain_module = lazy_module("metastasis.guide.explain")
pages_module = lazy_module("metastasis.guide.pages")
search_module = lazy_module("metastasis.guide.fulltext")

USAGE_ERROR = 2
"""Exit status for bad input, the same as click's for a bad option."""

PIPE_WIDTH = 100
"""Line width when output is not a terminal: prose reads best at about 100 columns."""


class GuideGroup(TyperGroup):
    """A group whose unknown first word is a section: ``guide 3`` means ``guide show 3``."""

    # ctx is the click Context that typer vendors privately (typer._click), so it is not
    # named here
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


guide_app = typer.Typer(
    name="guide",
    cls=GuideGroup,
    help="Read the guide to metastasis. With no argument: the table of contents; "
    "`guide SECTION` (slug or number): one section with the model's figures; "
    "`guide search WORDS`: full-text search. " + metastasis.DISCLAIMER,
    invoke_without_command=True,
    add_completion=False,
)


def _console() -> Console:
    """A console on the current stdout (so test runners capture it), 100 columns in a pipe."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=PIPE_WIDTH)
    return console


def _fail(error: ModelError) -> NoReturn:
    typer.echo(
        f"metastasis: error: {error.field}: got {error.value!r}; allowed: {error.allowed}", err=True
    )
    raise typer.Exit(USAGE_ERROR)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except ModelError as error:
        _fail(error)


def _disclaimer(console: Console) -> None:
    console.print(Text(metastasis.DISCLAIMER, style="bold yellow"))


@guide_app.callback()
def guide(ctx: typer.Context) -> None:
    """Read the guide to metastasis in the terminal (with no argument: the contents)."""
    if ctx.invoked_subcommand is None:
        console = _console()
        _disclaimer(console)
        table = Table(title=pages_module.GUIDE_TITLE, title_style="bold", show_edge=False)
        table.add_column("#", justify="right")
        table.add_column("section")
        table.add_column("slug", style="cyan")
        table.add_column("about", style="dim")
        for page in content.sections():
            title = f"   {page.title}" if page.step else page.title
            table.add_row(str(page.number), title, page.slug, page.summary)
        console.print(table)
        console.print(
            Text(
                "Read a section: metastasis guide SECTION (slug or number). "
                "Search: metastasis guide search WORDS. "
                "About an organ: metastasis explain SITE.",
                style="dim",
            )
        )


@guide_app.command("show")
def show(
    section: Annotated[
        str, typer.Argument(help="Section slug or number (see `metastasis guide`).")
    ],
) -> None:
    """Show one section, with the model's figures computed for it."""
    with _user_errors():
        page = content.find(section)
        console = _console()
        with console.status("computing the model's figures…"):
            rendered = pages_module.render(page.slug)
    from rich.markdown import Markdown  # markdown-it and pygments: only to print a page

    console.print(Markdown(rendered.markdown))
    pages = content.sections()
    nav = []
    if page.number > 1:
        nav.append(f"previous: metastasis guide {pages[page.number - 2].slug}")
    if page.number < len(pages):
        nav.append(f"next: metastasis guide {pages[page.number].slug}")
    console.print(Text(" · ".join(nav), style="dim"))


@guide_app.command("search")
def search_command(
    words: Annotated[list[str], typer.Argument(help="Words to find (all must match).")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Most results to show (1-100).")] = 8,
) -> None:
    """Full-text search of the guide (SQLite FTS5, ranked by BM25)."""
    query = " ".join(words)
    with _user_errors():
        try:
            hits = search_module.search(query, limit)
        except search_module.SearchUnavailable as error:
            typer.echo(f"metastasis: error: {error}", err=True)
            raise typer.Exit(1) from None
    console = _console()
    _disclaimer(console)
    if not hits:
        console.print(f"No section of the guide mentions all of: {query}", markup=False)
        return
    console.print(Text(f"{len(hits)} result(s) for “{query}”, best first:", style="bold"))
    for rank, hit in enumerate(hits, start=1):
        head = Text(f"{rank}. ", style="bold")
        head.append(hit.location, style="bold cyan")
        head.append(f"   metastasis guide {hit.slug}", style="dim")
        console.print(head)
        snippet = Text("   ")
        for text, highlighted in hit.segments():
            snippet.append(text, style="bold reverse" if highlighted else None)
        console.print(snippet)


def explain(
    site: Annotated[str, typer.Argument(help="An organ or site, e.g. liver, lungs, bone, brain.")],
    patients: Annotated[
        int,
        typer.Option(
            "--patients",
            "-n",
            help=f"Virtual patients per cancer type (1-{MAX_PATIENTS}).",
        ),
    ] = EXPLAIN_PATIENTS,
    seed: Annotated[
        int, typer.Option("--seed", "-s", help="Root seed of the cohorts.")
    ] = GUIDE_SEED,
    years: Annotated[
        float, typer.Option("--years", "-y", help="Untreated follow-up, years.")
    ] = GUIDE_YEARS,
) -> None:
    """Explain which cancers spread to a site and why, its symptoms, and how often in the
    model."""
    with _user_errors():
        console = _console()
        with console.status("simulating small cohorts…"):
            explanation = explain_module.explain_site(site, patients, seed, years)
    from rich.markdown import Markdown  # markdown-it and pygments: only to print a page

    console.print(Markdown(explain_module.to_markdown(explanation)))
