"""The ``metastasis`` command: tell one virtual patient's story, summarise a cohort,
and let a model explain itself.

The command is a thin layer over the public API (:mod:`metastasis.api`,
:mod:`metastasis.cohort`, the result types): it parses options, calls the API and formats
what comes back.  Bad input of any kind surfaces as a :class:`~metastasis.errors.ModelError`
and is reported as one line naming the field, the value and what is allowed, with exit
status 2 (the same status as typer's own option errors) and no traceback; no file is
written unless the whole command succeeded.  The parser's own errors (an unknown option, a
missing value) read the same way, through the root command's class
(:class:`~metastasis.cli.usage.OneLineUsageErrors`); the commands' own checks, through
:func:`metastasis.cli.common.user_errors`.

This module only assembles the command: each group of commands lives in its own module
(``simulate_command``, ``cohort_command``, ``calibration_command``, ``model_command``, and
the guide's, the protocol's and the web explorer's), and what they share in
:mod:`metastasis.cli.common`.  None of them imports the engine, pandas or SciPy before a
command runs, so ``metastasis --help`` and a bad option answer at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

import metastasis
from metastasis.cli.calibration_command import calibrate, validate_command
from metastasis.cli.cohort_command import cohort, compare
from metastasis.cli.model_command import model_app
from metastasis.cli.protocol import protocol_app
from metastasis.cli.serve import serve
from metastasis.cli.simulate_command import simulate
from metastasis.cli.usage import USAGE_ERROR, OneLineUsageErrors
from metastasis.guide.cli import explain, guide_app

__all__ = ["USAGE_ERROR", "app", "main"]

app = typer.Typer(
    name="metastasis",
    help=(
        "A stochastic model of cancer metastasis, from one virtual patient to a cohort. "
        + metastasis.DISCLAIMER
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    cls=OneLineUsageErrors,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"metastasis {metastasis.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    """A stochastic model of cancer metastasis, from one virtual patient to a cohort."""


# the order of registration is the order `metastasis --help` lists them in (commands
# first, then the groups)
app.add_typer(model_app, name="model")
app.add_typer(guide_app, name="guide")
app.add_typer(protocol_app, name="protocol")
app.command("explain")(explain)
app.command("serve")(serve)
app.command("simulate")(simulate)
app.command("cohort")(cohort)
app.command("compare")(compare)
app.command("calibrate")(calibrate)
app.command("validate")(validate_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
