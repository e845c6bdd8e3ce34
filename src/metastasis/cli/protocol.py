"""`metastasis protocol`: help with writing a protocol file for ``--protocol FILE``.

``protocol example`` prints the commented example shipped with the package (or writes it
with ``--out``), so that a learner starts from a file that loads and runs rather than from
a description of the format.  The file goes to stdout alone, so ``> my.toml`` gives a
loadable file; the disclaimer goes to stderr (the file carries it in a comment too).
Nothing heavy is imported: the command answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

import metastasis
from metastasis.cli import output
from metastasis.clinical.protocol_example import example_text
from metastasis.errors import ModelError

USAGE_ERROR = 2
"""Exit status for bad input, the same as click's for a bad option."""

SUFFIX = ".toml"
"""The example is TOML, with comments: written under another suffix it would be misread
(a .json name makes the loader parse it as JSON)."""

protocol_app = typer.Typer(
    help="Protocol files for --protocol FILE: `protocol example` prints a commented example "
    "to start from.",
    no_args_is_help=True,
)


def _fail(error: ModelError) -> NoReturn:
    """One line naming the field, the value and what is allowed; exit status 2."""
    typer.echo(f"metastasis: error: {error}", err=True)
    raise typer.Exit(USAGE_ERROR)


@protocol_app.command("example")
def example(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the example to this .toml file instead of "
                     "printing it."),
    ] = None,
) -> None:
    """Print a commented example protocol file that loads with --protocol FILE."""
    text = example_text()
    if out is None:
        typer.echo(metastasis.DISCLAIMER, err=True)
        sys.stdout.write(text)
        return
    try:
        if out.suffix.lower() != SUFFIX:
            raise ModelError("--out", output.shown(out), f"a file ending in {SUFFIX}")
        output.check_writable(out)  # bad input answers in one line, before anything else
        typer.echo(metastasis.DISCLAIMER, err=True)
        output.write_text(out, text)
    except ModelError as error:
        _fail(error)
    typer.echo(f"Wrote {out}", err=True)
