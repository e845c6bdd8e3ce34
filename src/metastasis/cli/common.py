"""What the commands of ``metastasis`` share: the options they declare alike, the parsing
of option values, the reporting of bad input and the console they print to.

Every command parses its options itself (as text), so that a bad value of any kind reads
the same way: :func:`user_errors` turns a :class:`~metastasis.errors.ModelError` into one
line, ``metastasis: error: FIELD: got VALUE; allowed: WHAT`` (:func:`error_message`), and
exit status 2, the status of typer's own option errors, with no traceback.  The checks
that need nothing loaded run first, so that a typo answers at once.

Nothing heavy is imported here: the engine, pandas and SciPy load only when a command needs
them (:func:`metastasis.lazy.lazy_module`), so ``--help`` and a bad option answer without
them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, overload

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

import metastasis
from metastasis.cli.usage import USAGE_ERROR, file_option
from metastasis.errors import ModelError
from metastasis.lazy import lazy_module
from metastasis.limits import DEFAULT_CHUNK_PATIENTS, MAX_PATIENTS, MAX_SEED, MAX_YEARS, check_years
from metastasis.limits import FOLLOW_UP_YEARS as DEFAULT_FOLLOW_UP

# the engine, pandas and SciPy load only when a command needs them: --help and a bad option
# answer without them
if TYPE_CHECKING:  # the modules themselves load on first use (lazy_module below)
    from metastasis.model.resolve import ResolvedModel

api = lazy_module("metastasis.api")
jsondata = lazy_module("metastasis.jsondata")
output = lazy_module("metastasis.cli.output")

PIPE_WIDTH = 200
"""Line width when output is not a terminal: wide enough that tables and the story are not
wrapped mid-sentence in a file or a pipe (a terminal's own width is used otherwise)."""


WHOLE_MODEL_VALUE = "see message"
"""What the loader puts as the value of an error that a whole-model check found."""


Choice = TypeVar("Choice", bound=StrEnum)


class SummaryFormat(StrEnum):
    """Output of ``cohort``, ``compare``, ``calibrate`` and ``validate``: tables, or the
    summary as data."""

    text = "text"
    json = "json"


def new_console(*, stderr: bool = False) -> Console:
    """A console on the *current* stdout/stderr (so test runners capture it)."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=PIPE_WIDTH)
    return console


def error_message(error: ModelError) -> str:
    """One line naming the field, the value and what is allowed.

    Validation messages from the schema arrive as "must be X, got V" (or, for whole-model
    checks, as a complete sentence with no single value); they are reshaped so every error
    reads the same way, and the field is named by the parameter path ``model show`` prints.
    """
    field = error.field.removesuffix(".value")
    if error.file is not None:  # bad content of a file the user gave: name the file first
        field = f"{error.file}: {field}"
    if error.value == WHOLE_MODEL_VALUE:
        return f"{field}: {error.allowed}"
    allowed = error.allowed
    must = re.match(r"^must be (.*?)(?:, got .*)?$", allowed, re.S)
    if must:
        allowed = must.group(1)
    return f"{field}: got {error.value!r}; allowed: {allowed}"


def fail(error: ModelError) -> NoReturn:
    """End the command on bad input: one line on stderr and the status of a bad option."""
    one_line = " ".join(error_message(error).split())  # a parser's message may span lines
    typer.echo(f"metastasis: error: {one_line}", err=True)
    raise typer.Exit(USAGE_ERROR)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input into one message and exit status 2, never a traceback."""
    try:
        yield
    except ModelError as error:
        fail(error)


def load_model(cancer: str, model: Path | None) -> ResolvedModel:
    """The resolved model; a file that cannot be read is reported against ``--model``."""
    with file_option("--model"):
        return api.load_model(cancer, model)


def check_suffix(path: Path | None, allowed: tuple[str, ...]) -> None:
    """Refuse an ``--out`` whose suffix belongs to another format than the one written."""
    if path is not None and path.suffix.lower() not in allowed:
        raise ModelError("--out", str(path), "a file ending in " + ", ".join(allowed))


def parse_choice(kind: type[Choice], option: str, text: str) -> Choice:
    """Parse a choice ourselves, so a bad one reads like every other bad input."""
    try:
        return kind(text.strip().lower())
    except ValueError:
        raise ModelError(option, text, ", ".join(m.value for m in kind)) from None


def parse_years(text: str, option: str = "years") -> float:
    """Parse --years (or another span of years, named ``option`` in errors): any float
    Python reads (nan and inf included, then refused)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None:
        raise ModelError(option, text, f"a number of years in (0, {MAX_YEARS:g}]")
    return check_years(value, option)


MAXIMUM = {"seed": MAX_SEED, "patients": MAX_PATIENTS}
"""Options with a largest value (metastasis.limits); the others are bounded by what they
count (an index by its cohort, workers by the machine)."""

DIGITS = re.compile(r"[0-9]{1,40}")
"""A whole number as the command line accepts it: ASCII digits only (no '1_000', no other
scripts' digits, no spaces), at most 40 of them (beyond every limit, so a huge number is
refused by its value, not parsed at length)."""


@overload
def parse_integer(field: str, text: str, minimum: int) -> int: ...
@overload
def parse_integer(field: str, text: str | None, minimum: int) -> int | None: ...
def parse_integer(field: str, text: str | None, minimum: int) -> int | None:
    """Parse a whole-number option; ``None`` stays ``None`` (for a seed to be drawn)."""
    if text is None:
        return None
    value = int(text) if DIGITS.fullmatch(text) else None
    maximum = MAXIMUM.get(field)
    if value is None or value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            allowed = f"an integer from {minimum} to {maximum}"
        else:
            allowed = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        quoted = output.shown(text) if value is None or len(text) > output.SHOWN_CHARS \
            else value
        raise ModelError(field, quoted, allowed)
    return value


def parse_scheduler(value: str | None) -> str | None:
    """Check ``--scheduler`` before any work, so that a bad address answers at once."""
    from metastasis.backends import check_scheduler

    return check_scheduler(value, "--scheduler")


def print_disclaimer(console: Console) -> None:
    """Lead every printed report: the output must never pass for medical advice."""
    console.print(Text(metastasis.DISCLAIMER, style="bold yellow"))


def progress_bar(err: Console) -> Progress:
    """The progress of a long run, on stderr so that stdout stays the report alone."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
    )


def dumps(document: Any, indent: int = 1) -> str:
    """JSON as every command writes it (the package's one cleaner, so results' numpy values
    and missing medians read the same everywhere), ending its line for a shell."""
    return jsondata.dumps(document, indent=indent) + "\n"


CancerOption = Annotated[
    str, typer.Option("--cancer", "-c", help="Cancer type (see `metastasis model list`).")
]
SeedOption = Annotated[
    str | None,
    typer.Option("--seed", "-s", metavar="SEED", help="Root seed (a non-negative integer); "
                 "drawn and printed if left out."),
]
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="A modified knowledge base (TOML or JSON, as written "
                 "by `metastasis model export`)."),
]


ScreeningOption = Annotated[
    bool, typer.Option("--screening/--no-screening",
                       help="Offer the cancer type's screening programme (data: modality, ages, "
                            "interval, adherence).")
]
ProtocolOption = Annotated[
    Path | None,
    typer.Option("--protocol", help="A protocol file (TOML or JSON, \\[protocols.<name>] tables) "
                 "followed by every patient diagnosed, instead of the default plan by stage; "
                 "`metastasis protocol example` prints one to start from."),
]
ProtocolNameOption = Annotated[
    str | None,
    typer.Option("--protocol-name", metavar="NAME",
                 help="Which protocol of --protocol FILE (needed when it has several)."),
]
ClinicalOption = Annotated[
    Path | None,
    typer.Option("--clinical", help="A modified clinical knowledge base (symptoms, imaging, "
                 "work-up, screening, outcomes), TOML or JSON."),
]
TreatmentsOption = Annotated[
    Path | None,
    typer.Option("--treatments", help="A modified treatment knowledge base (therapies, "
                 "biomarkers, protocols, plans), TOML or JSON."),
]
UntreatedOption = Annotated[
    bool, typer.Option("--untreated", help="Only the untreated natural history (no clinic).")
]
WorkersOption = Annotated[
    str, typer.Option("--workers", metavar="N",
                      help="Run the patients on N processes, or N Dask workers with "
                           "--scheduler local (the same results as one).")
]
TargetsOption = Annotated[
    Path | None,
    typer.Option("--targets", help="A calibration targets file (TOML or JSON) instead of the "
                 "packaged one."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", metavar="local|tcp://HOST:PORT",
                 help="Run on Dask: 'local' starts a cluster of --workers processes; an "
                      "address uses a running one (pip install 'metastasis[distributed]')."),
]

CLINICAL_YEARS = "20"
"""Default of the clinical course's --years: the longest time from the first cancer cell to
a diagnosis (typically years after it; 20 years finds nearly every patient who will be)."""
FOLLOW_UP_YEARS = f"{DEFAULT_FOLLOW_UP:g}"
"""Default of --follow-up (:data:`metastasis.limits.FOLLOW_UP_YEARS`)."""
UNTREATED_YEARS = "10"
"""Default horizon of the untreated natural history (unchanged from earlier releases)."""
CLINICAL_PATIENTS = "200"
"""Default cohort size with the clinical course, which costs about 0.1-0.3 s per patient."""
UNTREATED_PATIENTS = "1000"
"""Default cohort size of the natural history alone (a few ms per patient)."""
VALIDATE_PATIENTS = "400"
"""Default of ``validate``: virtual patients per cancer type, intervals of about +-5 points
on the shares of all diagnosed patients, and all eight types in a few minutes on two
workers."""
VALIDATE_SEED = "2026"
"""Default of ``validate``: a fixed root seed that no calibration uses (``metastasis
calibrate`` defaults to 1), so the validation is on patients the fit never saw."""
DATASET_CHUNK = str(DEFAULT_CHUNK_PATIENTS)
"""Default patients per part of a dataset directory (see :mod:`metastasis.runs`)."""

HorizonOption = Annotated[
    str | None,
    typer.Option("--years", "-y", metavar="YEARS",
                 help=f"Years from the first cancer cell, in (0, 150]: within which a "
                      f"diagnosis can come (default {CLINICAL_YEARS}), or, with --untreated, "
                      f"the horizon (default {UNTREATED_YEARS})."),
]
"""--years of simulate and cohort, whose defaults differ with --untreated."""
FollowUpOption = Annotated[
    str | None,
    typer.Option("--follow-up", metavar="YEARS",
                 help=f"Years each diagnosed patient is followed after the diagnosis (or to "
                      f"death), in (0, 150]; default {FOLLOW_UP_YEARS}."),
]
"""--follow-up of the clinical course: a horizon counted from diagnosis."""


def parse_follow_up(text: str | None) -> float:
    """The follow-up after diagnosis in years (the default when not given)."""
    return parse_years(FOLLOW_UP_YEARS if text is None else text, "--follow-up")


def refuse_with_untreated(untreated: bool, **given: object) -> None:
    """The clinical options make no sense for the untreated natural history: say so."""
    if not untreated:
        return
    for option, value in given.items():
        if value not in (None, False):
            name = "--" + option.replace("_", "-")
            raise ModelError(name, str(value), "to be left out with --untreated (the untreated "
                             "natural history has no clinic)")


def drawn_seed_note(seed: int, drawn: bool) -> str | None:
    """What to say when no --seed was given: the run is reproducible only with its seed."""
    if not drawn:
        return None
    return f"No --seed given: drew root seed {seed} (recorded; rerun with --seed {seed})."
