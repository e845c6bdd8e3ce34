"""The command line's own usage errors in the program's one-line form.

Bad input the program checks itself ends as one line, ``metastasis: error: ...``, and exit
status 2.  The parser's own errors (an unknown option, a missing value, a value outside an
option's declared range) were typer's framed, multi-line panels: still status 2, but not
one line to read or to grep.  The root command's class here lets the parser raise its error
instead of printing it, and says it the same way as every other error.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from metastasis.errors import ModelError
from metastasis.knowledge.files import FILE_FIELD

try:  # typer carries its own copy of click (0.2x), whose exceptions are its own
    from typer._click import exceptions as parser_errors
except ImportError:  # pragma: no cover - a typer that uses click itself
    from click import exceptions as parser_errors  # type: ignore[no-redef]

USAGE_ERROR = 2
"""Exit status of every kind of bad input."""


@contextlib.contextmanager
def file_option(option: str) -> Iterator[None]:
    """Name the option whose file could not be read (the shared reader calls every file a
    'model file'); errors inside the file keep their field path."""
    try:
        yield
    except ModelError as error:
        if error.field == FILE_FIELD:
            raise ModelError(f"{option} file", error.value, error.allowed) from None
        raise


class OneLineUsageErrors(TyperGroup):
    """The ``metastasis`` command, with usage errors as one line (see the module)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        run = dict(args=args, prog_name=prog_name, complete_var=complete_var,
                   windows_expand_args=windows_expand_args, **extra)
        if not standalone_mode:
            return super().main(standalone_mode=False, **run)
        try:
            code = super().main(standalone_mode=False, **run)
        except parser_errors.NoArgsIsHelpError as asked_for_help:
            asked_for_help.show()  # no arguments at all: the help, as before
            sys.exit(asked_for_help.exit_code)
        except parser_errors.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "metastasis"
            message = " ".join(error.format_message().split())
            typer.echo(f"metastasis: error: {message} ('{where} --help' lists the options)",
                       err=True)
            sys.exit(USAGE_ERROR)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
