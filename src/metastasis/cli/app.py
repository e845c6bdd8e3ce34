"""The ``metastasis`` command: tell one virtual patient's story, summarise a cohort,
and let a model explain itself.

The command is a thin layer over the public API (:mod:`metastasis.api`,
:mod:`metastasis.cohort`, the result types): it parses options, calls the API and formats
what comes back.  Bad input of any kind surfaces as a :class:`~metastasis.errors.ModelError`
and is reported as one line naming the field, the value and what is allowed, with exit
status 2 (the same status as typer's own option errors) and no traceback; no file is
written unless the whole command succeeded.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, overload

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

import metastasis
from metastasis.backends import DEFAULT_CHUNK_PATIENTS
from metastasis.cli.protocol import protocol_app
from metastasis.cli.serve import serve
from metastasis.cli.usage import USAGE_ERROR, OneLineUsageErrors, file_option
from metastasis.errors import ModelError
from metastasis.guide.cli import explain, guide_app
from metastasis.lazy import lazy_module
from metastasis.limits import MAX_PATIENTS, MAX_SEED, MAX_YEARS, check_years

# the engine, pandas and SciPy load only when a command needs them: --help and a bad option
# answer without them
if TYPE_CHECKING:  # the modules themselves load on first use (lazy_module below)
    from metastasis.cli.clinical_report import ClinicalSetup
    from metastasis.cli.clinical_story import ClinicalStory
    from metastasis.cli.narrative import Story
    from metastasis.model.resolve import ResolvedModel

api = lazy_module("metastasis.api")
jsondata = lazy_module("metastasis.jsondata")
calibration_report = lazy_module("metastasis.cli.calibration_report")
clinical_report = lazy_module("metastasis.cli.clinical_report")
clinical_story = lazy_module("metastasis.cli.clinical_story")
model_view = lazy_module("metastasis.cli.model_view")
narrative = lazy_module("metastasis.cli.narrative")
numbers = lazy_module("metastasis.cli.numbers")
output = lazy_module("metastasis.cli.output")
registry = lazy_module("metastasis.cli.registry")
validation_report = lazy_module("metastasis.cli.validation_report")
knowledge_loader = lazy_module("metastasis.knowledge.loader")

"""Exit status for bad input: the status click and typer use for a bad option."""

PIPE_WIDTH = 200
"""Line width when output is not a terminal: wide enough that tables and the story are not
wrapped mid-sentence in a file or a pipe (a terminal's own width is used otherwise)."""


WHOLE_MODEL_VALUE = "see message"
"""What the loader puts as the value of an error that a whole-model check found."""

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
model_app = typer.Typer(
    help="Show, list and export the model: parameters with sources, organ graph.",
    no_args_is_help=True,
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


app.add_typer(model_app, name="model")
app.add_typer(guide_app, name="guide")
app.add_typer(protocol_app, name="protocol")
app.command("explain")(explain)
app.command("serve")(serve)


Choice = TypeVar("Choice", bound=StrEnum)


class PatientFormat(StrEnum):
    """Output of ``simulate``: the story, or the patient's data."""

    text = "text"
    json = "json"
    csv = "csv"


PATIENT_SUFFIXES = {PatientFormat.text: (".txt", ".md"), PatientFormat.json: (".json",),
                    PatientFormat.csv: (".csv",)}
"""What ``simulate --out`` may be called in each format: a file's content matches its
suffix (text written into ``o.parquet`` would mislead whoever opens it)."""


class SummaryFormat(StrEnum):
    """Output of ``cohort``: tables, or the summary as data."""

    text = "text"
    json = "json"


class GraphFormat(StrEnum):
    """How ``model show`` draws the organ graph."""

    text = "text"
    mermaid = "mermaid"


# ---------------------------------------------------------------- shared plumbing


def _console(*, stderr: bool = False) -> Console:
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


def _fail(error: ModelError) -> NoReturn:
    one_line = " ".join(error_message(error).split())  # a parser's message may span lines
    typer.echo(f"metastasis: error: {one_line}", err=True)
    raise typer.Exit(USAGE_ERROR)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn bad input into one message and exit status 2, never a traceback."""
    try:
        yield
    except ModelError as error:
        _fail(error)


def _load_model(cancer: str, model: Path | None) -> ResolvedModel:
    """The resolved model; a file that cannot be read is reported against ``--model``."""
    with file_option("--model"):
        return api.load_model(cancer, model)


def _check_suffix(path: Path | None, allowed: tuple[str, ...]) -> None:
    if path is not None and path.suffix.lower() not in allowed:
        raise ModelError("--out", str(path), "a file ending in " + ", ".join(allowed))


def _choice(kind: type[Choice], option: str, text: str) -> Choice:
    """Parse a choice ourselves, so a bad one reads like every other bad input."""
    try:
        return kind(text.strip().lower())
    except ValueError:
        raise ModelError(option, text, ", ".join(m.value for m in kind)) from None


def _years(text: str) -> float:
    """Parse --years: any float Python reads (nan and inf included, then refused)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None:
        raise ModelError("years", text, f"a number of years in (0, {MAX_YEARS:g}]")
    return check_years(value)


MAXIMUM = {"seed": MAX_SEED, "patients": MAX_PATIENTS}
"""Options with a largest value (metastasis.limits); the others are bounded by what they
count (an index by its cohort, workers by the machine)."""

DIGITS = re.compile(r"[0-9]{1,40}")
"""A whole number as the command line accepts it: ASCII digits only (no '1_000', no other
scripts' digits, no spaces), at most 40 of them (beyond every limit, so a huge number is
refused by its value, not parsed at length)."""


@overload
def _integer(field: str, text: str, minimum: int) -> int: ...
@overload
def _integer(field: str, text: str | None, minimum: int) -> int | None: ...
def _integer(field: str, text: str | None, minimum: int) -> int | None:
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


def _disclaimer(console: Console) -> None:
    console.print(Text(metastasis.DISCLAIMER, style="bold yellow"))


CancerOption = Annotated[
    str, typer.Option("--cancer", "-c", help="Cancer type (see `metastasis model list`).")
]
YearsOption = Annotated[
    str, typer.Option("--years", "-y", metavar="YEARS", help="Horizon in years, in (0, 150].")
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
"""Default horizon of the clinical course: diagnosis typically comes years after the first
cell, so 20 years leaves room for treatment and follow-up."""
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


def _refuse_with_untreated(untreated: bool, **given: object) -> None:
    """The clinical options make no sense for the untreated natural history: say so."""
    if not untreated:
        return
    for option, value in given.items():
        if value not in (None, False):
            name = "--" + option.replace("_", "-")
            raise ModelError(name, str(value), "to be left out with --untreated (the untreated "
                             "natural history has no clinic)")


def _seed_note(seed: int, drawn: bool) -> str | None:
    if not drawn:
        return None
    return f"No --seed given: drew root seed {seed} (recorded; rerun with --seed {seed})."


# ---------------------------------------------------------------- simulate


def _patient_machine(
    patient: Any, model: Any, fmt: PatientFormat, out: Path | None, seed_drawn: bool
) -> None:
    """JSON or CSV through the results exporter, the disclaimer always included.

    JSON gets a top-level ``disclaimer`` field next to the exporter's provenance.  A CSV
    event log has no room for prose, so the disclaimer goes to stderr (and, written to a
    file, into the provenance file the exporter puts beside it).
    """
    from metastasis.results.export import write_patient

    if fmt is PatientFormat.csv:
        typer.echo(metastasis.DISCLAIMER, err=True)
        write_patient(patient, sys.stdout if out is None else out, "csv", model=model)
        return
    buffer = io.StringIO()
    write_patient(patient, buffer, "json", model=model)
    document = json.loads(buffer.getvalue())
    if isinstance(document.get("provenance"), dict):
        document["provenance"]["seed_drawn"] = seed_drawn
    text = json.dumps({"disclaimer": metastasis.DISCLAIMER, **document}, indent=1,
                      allow_nan=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        output.write_text(out, text)


def _print_accounting(console: Console, story: Any) -> None:
    """The cell-accounting part shared by the untreated and the clinical story."""
    console.print()
    console.print(Text("Cell accounting", style="bold underline"))
    for line in story.accounting:
        console.print(line, markup=False, soft_wrap=True)
    if story.site_rows:
        table = Table(title="Cells that arrested, by organ (eventual fates)", title_style="bold")
        for i, header in enumerate(narrative.SITE_HEADERS):
            table.add_column(header, justify="left" if i == 0 else "right")
        for row in story.site_rows:
            table.add_row(*row.cells())
        console.print(table)


def _print_story(console: Console, story: Story, seed_note: str | None) -> None:
    _disclaimer(console)
    console.print(Text(story.title, style="bold"))
    for heading in story.header:
        console.print(heading, markup=False, soft_wrap=True)
    if seed_note:
        console.print(Text(seed_note, style="cyan"), soft_wrap=True)
    console.print()
    console.print(Text("Timeline", style="bold underline"))
    for line in story.timeline:
        stamp = Text(f"{numbers.day(line.time)} ({numbers.years(line.time)})", style="bold")
        stamp.append(f" · step {line.step}, {narrative.STEPS[line.step]}: ", style="magenta")
        stamp.append(line.text)
        console.print(stamp, soft_wrap=True)
    if story.hidden_events:
        console.print(Text(narrative.hidden_note(story.hidden_events), style="dim"),
                      soft_wrap=True)
    console.print()
    console.print(Text("Where it spread", style="bold underline"))
    for sentence in story.spread:
        console.print(sentence, markup=False, soft_wrap=True)
    _print_accounting(console, story)
    console.print()
    console.print(Text("End", style="bold underline"))
    for sentence in story.ending:
        console.print(sentence, markup=False, soft_wrap=True)


def _clinical_document(result: Any, model: Any, setup: ClinicalSetup,
                       arm: Any, protocol_name: str | None, seed_drawn: bool) -> dict[str, Any]:
    """The whole course as data, with the provenance a rerun needs."""
    from metastasis.results.export import patient_provenance

    provenance = patient_provenance(result.patient, model)
    provenance["seed_drawn"] = seed_drawn
    provenance["clinical_course"] = {
        "arm": arm.name, "screening": arm.screening, "protocol_name": protocol_name,
        "protocol": None if arm.protocol is None else arm.protocol.model_dump(mode="json"),
        **setup.provenance(),
    }
    return {"disclaimer": metastasis.DISCLAIMER, "provenance": provenance,
            **clinical_story.course_dict(result, model, setup.clinical)}


def _print_clinical_story(console: Console, story: ClinicalStory,
                          seed_note: str | None) -> None:
    _disclaimer(console)
    console.print(Text(story.title, style="bold"))
    for heading in story.header:
        console.print(heading, markup=False, soft_wrap=True)
    if seed_note:
        console.print(Text(seed_note, style="cyan"), soft_wrap=True)
    console.print()
    console.print(Text("In short", style="bold underline"))
    for sentence in story.in_short:
        console.print(sentence, markup=False, soft_wrap=True)
    console.print()
    console.print(Text("Timeline", style="bold underline"))
    styles = {"disease": "magenta", "clinic": "green", "treatment": "blue"}
    for line in story.timeline:
        stamp = Text(f"{numbers.day(line.time)} ({numbers.years(line.time)})", style="bold")
        stamp.append(f" · {line.tag}: ", style=styles.get(line.source, "magenta"))
        stamp.append(line.text)
        console.print(stamp, soft_wrap=True)
    if story.hidden_events:
        console.print(Text(narrative.hidden_note(story.hidden_events), style="dim"),
                      soft_wrap=True)
    for heading, body in story.sections():
        console.print()
        console.print(Text(heading, style="bold underline"))
        for sentence in body:
            console.print(sentence, markup=False, soft_wrap=True)
    _print_accounting(console, story)


@app.command()
def simulate(
    cancer: CancerOption = "colorectal",
    years: Annotated[
        str | None,
        typer.Option("--years", "-y", metavar="YEARS",
                     help=f"Horizon in years, in (0, 150]; default {CLINICAL_YEARS} "
                          f"({UNTREATED_YEARS} with --untreated)."),
    ] = None,
    seed: SeedOption = None,
    patient: Annotated[
        str, typer.Option("--patient", "-p", metavar="INDEX",
                          help="Patient index within the cohort of this seed.")
    ] = "0",
    model: ModelOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json|csv]",
                          help="text: the story; json: everything; csv: one row per event.")
    ] = "text",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of printing.")
    ] = None,
    all_events: Annotated[
        bool, typer.Option("--all-events", help="Tell every event, not only the milestones.")
    ] = False,
    untreated: UntreatedOption = False,
    screening: ScreeningOption = False,
    protocol: ProtocolOption = None,
    protocol_name: ProtocolNameOption = None,
    clinical: ClinicalOption = None,
    treatments: TreatmentsOption = None,
) -> None:
    """Tell one virtual patient's whole story: the disease step by step, then symptoms,
    screening, work-up, diagnosis and stage, treatment and outcome (--untreated: the natural
    history alone)."""
    with _user_errors():
        _refuse_with_untreated(untreated, screening=screening, protocol=protocol,
                               protocol_name=protocol_name, clinical=clinical,
                               treatments=treatments)
        horizon = _years(years if years is not None
                         else UNTREATED_YEARS if untreated else CLINICAL_YEARS)
        chosen = _choice(PatientFormat, "--format", fmt)
        index = _integer("patient index", patient, 0)
        given_seed = _integer("seed", seed, 0)
        if out is not None:
            output.check_writable(out)
            _check_suffix(out, PATIENT_SUFFIXES[chosen])
        resolved = _load_model(cancer, model)
        if not untreated:
            setup = clinical_report.load_setup(resolved, model, clinical, treatments, protocol)
            picked = clinical_report.choose_protocol(setup, protocol_name)
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = _seed_note(root_seed, seed_drawn)
        if untreated:
            result = api.run_patient(resolved, root_seed, index, horizon)
            if chosen is PatientFormat.text:
                story = narrative.tell(result, resolved, years=horizon, all_events=all_events)
                if out is None:
                    _print_story(_console(), story, note)
                    return
                lines = [metastasis.DISCLAIMER, *([note] if note else []), *story.lines()]
                output.write_text(out, "\n".join(lines) + "\n")
            else:
                _patient_machine(result, resolved, chosen, out, seed_drawn)
        else:
            _simulate_clinical(resolved, setup, picked, screening, root_seed, index, horizon,
                               chosen, out, note, seed_drawn, all_events)
            if out is None and chosen is PatientFormat.text:
                return
        if note:
            typer.echo(note, err=True)
        if out is not None:
            typer.echo(f"Wrote {out}", err=True)


def _simulate_clinical(
    resolved: Any, setup: ClinicalSetup, picked: Any, screening: bool,
    root_seed: int, index: int, horizon: float, chosen: PatientFormat, out: Path | None,
    note: str | None, seed_drawn: bool, all_events: bool,
) -> None:
    """Run and tell (or write) one patient's whole clinical course."""
    from metastasis.clinical.course import simulate_course

    arm = clinical_report.make_arm(screening, picked)
    result = simulate_course(resolved, setup.clinical, setup.treatments, root_seed, index,
                             horizon, arm)
    if chosen is PatientFormat.text:
        source = None if picked is None else f"'{picked[0]}' from {setup.protocol_path}"
        story = clinical_story.tell(
            result, resolved, setup.clinical, years=horizon,
            care=clinical_report.describe_arm(arm, setup.clinical, resolved),
            all_events=all_events, protocol_source=source,
            screening_note=clinical_report.screening_note(screening, setup.clinical, resolved))
        if out is None:
            _print_clinical_story(_console(), story, note)
            return
        lines = [metastasis.DISCLAIMER, *([note] if note else []), *story.lines()]
        output.write_text(out, "\n".join(lines) + "\n")
        return
    document = _clinical_document(result, resolved, setup, arm,
                                  None if picked is None else picked[0], seed_drawn)
    if chosen is PatientFormat.json:
        text = _dumps(document)
        if out is None:
            sys.stdout.write(text)
        else:
            output.write_text(out, text)
        return
    rows = clinical_story.event_rows(result, resolved, setup.clinical)
    text = clinical_story.rows_as_csv(rows)
    typer.echo(metastasis.DISCLAIMER, err=True)
    if out is None:
        sys.stdout.write(text)
        return
    stem = out.with_suffix("")
    provenance = stem.with_name(stem.name + ".provenance.json")
    output.write_texts({provenance: _dumps(document["provenance"]), out: text})


def _dumps(document: Any, indent: int = 1) -> str:
    return jsondata.dumps(document, indent=indent) + "\n"


def _write_summary(data: dict[str, Any]) -> None:
    """A command's JSON summary on stdout, led by the disclaimer and the version."""
    sys.stdout.write(_dumps({"disclaimer": metastasis.DISCLAIMER,
                             "version": metastasis.__version__, **data}, indent=2))


# ---------------------------------------------------------------- cohort


def _days_years(days: float | None) -> str:
    if days is None or not math.isfinite(days):
        return "(not reached in follow-up)"
    return f"day {math.floor(days):,} ({numbers.years(days)})"


def _share_ci(entry: dict[str, Any]) -> str:
    return (f"{numbers.percent(100 * entry['share'])} "
            f"(95 % CI {numbers.percent(100 * entry['ci_low'])} to "
            f"{numbers.percent(100 * entry['ci_high'])})")


END_WORDS = {"horizon": "reached the horizon alive", "lethal_burden": "reached a lethal burden"}

ACCOUNTING_WORDS = {
    "died_in_circulation": "died in circulation",
    "arrested": "arrested in a capillary bed or node",
    "failed_extravasation": "arrested but never left the vessel",
    "extravasated": "left the vessels",
    "died_at_site": "died in the new tissue",
    "dormant": "stayed dormant",
    "colony_extinct": "started a colony that died out",
    "micrometastasis": "formed a micrometastasis that never grew out",
    "outgrowth": "founded a growing metastasis",
}


def _print_cohort(console: Console, summary: dict[str, Any], labels: dict[str, str],
                  label: str, seed_note: str | None) -> None:
    n = summary["n_patients"]
    console.print(Text(
        f"Cohort: {n:,} virtual patients with {label}, untreated, over "
        f"{summary['years']:g} years (root seed {summary['root_seed']}).", style="bold"),
        soft_wrap=True)
    if seed_note:
        console.print(Text(seed_note, style="cyan"), soft_wrap=True)
    ends = ", ".join(f"{v:,} {END_WORDS.get(k, k.replace('_', ' '))}"
                     for k, v in summary["end_reasons"].items())
    console.print(f"End of the natural history: {ends}.", markup=False, soft_wrap=True)
    console.print()
    for key, words in (("any_metastasis", "Any growing metastasis (nodes included)"),
                       ("node_involvement", "Regional lymph nodes involved"),
                       ("any_distant", "Distant metastasis (stage M1)")):
        console.print(f"{words}: {_share_ci(summary[key])}", markup=False, soft_wrap=True)

    table = Table(title="Share of patients with a growing metastasis, by site", title_style="bold")
    table.add_column("site")
    table.add_column("patients", justify="right")
    table.add_column("share", justify="right")
    table.add_column("95 % CI", justify="right")
    empty = []
    for entry in summary["sites"]:
        if entry["patients"] == 0:
            empty.append(labels.get(entry["site"], entry["site"]))
            continue
        table.add_row(labels.get(entry["site"], entry["site"]), f"{entry['patients']:,}",
                      numbers.percent(100 * entry["share"]),
                      f"{numbers.percent(100 * entry['ci_low'])} – "
                      f"{numbers.percent(100 * entry['ci_high'])}")
    console.print(table)
    if empty:
        console.print(f"No patient with a growing metastasis in: {', '.join(empty)}.",
                      markup=False, soft_wrap=True)
    console.print()

    first = summary["first_distant_metastasis"]
    console.print(Text("Time to the first distant metastasis", style="bold underline"))
    among = first["among_patients_with_one"]
    km = first["kaplan_meier"]
    console.print(
        f"  among the {first['patients']:,} patients who had one: median "
        f"{_days_years(among['median_days'])}, quartiles {_days_years(among['q1_days'])} to "
        f"{_days_years(among['q3_days'])}", markup=False, soft_wrap=True)
    reached = [(share, km[key]) for share, key in ((25, "q1_days"), (50, "median_days"),
                                                   (75, "q3_days")) if km[key] is not None]
    if reached:
        by = "; ".join(f"{share} % by {_days_years(days)}" for share, days in reached)
        km_text = f"over all patients (Kaplan-Meier, censored at the end of each history): {by}"
    else:
        km_text = ("over all patients (Kaplan-Meier): fewer than 25 % had one within "
                   "follow-up")
    console.print(f"  {km_text}", markup=False, soft_wrap=True)
    console.print()

    sites = summary["distant_sites_per_patient"]
    table = Table(title=f"Distant sites per patient (mean {sites['mean']:.2f})",
                  title_style="bold")
    table.add_column("distant sites", justify="right")
    table.add_column("patients", justify="right")
    table.add_column("share", justify="right")
    for entry in sites["distribution"]:
        table.add_row(str(entry["sites"]), f"{entry['patients']:,}",
                      numbers.percent(100 * entry["share"]))
    console.print(table)
    console.print()

    table = Table(title="Cell accounting: fate of the cells shed", title_style="bold")
    table.add_column("fate")
    table.add_column("pooled share of all shed cells", justify="right")
    table.add_column("mean share per patient", justify="right")
    for key, words in ACCOUNTING_WORDS.items():
        entry = summary["accounting_fraction_of_shed"].get(key)
        if entry is None:
            continue
        cells = [entry["pooled"], entry["mean_per_patient"]]
        table.add_row(words, *("n/a" if c is None else numbers.percent(100 * c) for c in cells))
    console.print(table)


def _progress(err: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
    )


DISEASE_NOTE = (
    "(The fast engine's untreated histories of the same seed and indices: each primary "
    "tumour grows, moves and invades as in the clinical course below, but the cells it sheds "
    "and the metastases they found are drawn afresh, so compare the two sections as "
    "distributions, not patient by patient.)"
)


def _check_figure(figure: Path | None) -> None:
    if figure is None:
        return
    if figure.suffix.lower() != ".png":
        raise ModelError("--figure", str(figure), "a file ending in .png")
    try:
        output.check_writable(figure)
    except ModelError as error:
        raise ModelError("--figure", error.value, error.allowed) from None


DATASET_CHUNK = str(DEFAULT_CHUNK_PATIENTS)
"""Default patients per part of a dataset directory (see :mod:`metastasis.runs`)."""


def _is_directory(out: str) -> bool:
    """``--out`` names a dataset directory: a path ending in a separator, or one that is a
    directory already (a file name always has one of the cohort formats' suffixes)."""
    if out.endswith(("/", "\\")):
        return True
    if not _exists(out):
        output.check_writable(Path(out))  # a name too long, a missing folder: said here
        return False
    return Path(out).is_dir()


def _exists(out: str) -> bool:
    """Whether ``out`` exists; a path the system cannot even look up is refused clearly."""
    try:
        return Path(out).exists()
    except OSError as exc:
        raise ModelError("--out", output.shown(out),
                         f"a path that can be written ({exc.strerror})") from None


def _scheduler(value: str | None) -> str | None:
    from metastasis.backends import check_scheduler

    return check_scheduler(value, "--scheduler")


@app.command()
def cohort(
    cancer: CancerOption = "colorectal",
    patients: Annotated[
        str | None,
        typer.Option("--patients", "-n", metavar="N",
                     help=f"Number of virtual patients (>= 1); default {CLINICAL_PATIENTS} "
                          f"({UNTREATED_PATIENTS} with --untreated)."),
    ] = None,
    seed: SeedOption = None,
    years: Annotated[
        str | None,
        typer.Option("--years", "-y", metavar="YEARS",
                     help=f"Horizon in years, in (0, 150]; default {CLINICAL_YEARS} "
                          f"({UNTREATED_YEARS} with --untreated)."),
    ] = None,
    model: ModelOption = None,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", metavar="PATH",
                     help="Write the disease cohort (.parquet, .csv or .json; the clinical "
                     "table goes beside it as <name>.clinical.csv), or, for a path ending in "
                     "/, a Parquet dataset directory written a part per chunk."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json]",
                          help="text: tables; json: the summary as data.")
    ] = "text",
    lesions: Annotated[
        bool | None, typer.Option("--lesions/--no-lesions",
                                  help="Write the lesions table with --out (large for long "
                                  "horizons); default: yes to a file, no to a dataset.")
    ] = None,
    figure: Annotated[
        Path | None,
        typer.Option("--figure", help="Write the Kaplan-Meier survival curves by stage (PNG)."),
    ] = None,
    untreated: UntreatedOption = False,
    screening: ScreeningOption = False,
    protocol: ProtocolOption = None,
    protocol_name: ProtocolNameOption = None,
    clinical: ClinicalOption = None,
    treatments: TreatmentsOption = None,
    workers: WorkersOption = "1",
    scheduler: SchedulerOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run written to --out DIR/ before "
                           "(killed or stopped): only the missing parts are run.")
    ] = False,
    chunk_size: Annotated[
        str | None, typer.Option("--chunk-size", metavar="N",
                                 help="Patients per part of an --out DIR/ dataset "
                                 f"(default {DATASET_CHUNK})."),
    ] = None,
) -> None:
    """Simulate a cohort: where and when cancer spread (the disease), and the clinical course:
    stage at diagnosis, metastases found and hidden, survival by stage, causes of death."""
    with _user_errors():
        _refuse_with_untreated(untreated, screening=screening, protocol=protocol,
                               protocol_name=protocol_name, clinical=clinical,
                               treatments=treatments, figure=figure)
        horizon = _years(years if years is not None
                         else UNTREATED_YEARS if untreated else CLINICAL_YEARS)
        n_patients = _integer("patients", patients if patients is not None
                              else UNTREATED_PATIENTS if untreated else CLINICAL_PATIENTS, 1)
        chosen = _choice(SummaryFormat, "--format", fmt)
        given_seed = _integer("seed", seed, 0)
        processes = _integer("workers", workers, 1)
        dask = _scheduler(scheduler)
    from metastasis.backends import opened
    from metastasis.calibration.registry import compare as compare_with_registries
    from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort, survival_figure
    from metastasis.cohort import run_cohort
    from metastasis.results.dataset import check_target, read_dataset_table
    from metastasis.results.export import COHORT_FORMATS, write_cohort
    from metastasis.results.tables import CohortResult, empty_lesions
    from metastasis.runs import ClinicalSetting, check_chunk_size, run_dataset

    with _user_errors():
        dataset = out is not None and _is_directory(out)
        target = None if out is None else Path(out)
        if dataset:
            assert target is not None
            check_target(target, resume=resume)
        else:
            _check_suffix(target, COHORT_FORMATS)
            if target is not None:
                output.check_writable(target)
            if resume:
                raise ModelError("--resume", "given", "only with --out DIR/ (a dataset "
                                 "directory, written a part at a time)")
            if chunk_size is not None:
                raise ModelError("--chunk-size", chunk_size, "only with --out DIR/")
        part_size = check_chunk_size(_integer("chunk-size", chunk_size or DATASET_CHUNK, 1),
                                     "--chunk-size")
        if resume and seed is None:
            raise ModelError("--resume", "no --seed", "a run with its seed given (--seed): a "
                             "drawn seed would make the resumed parts another cohort")
        keep_lesions = (not dataset) if lesions is None else lesions
        _check_figure(figure)
        resolved = _load_model(cancer, model)
        if not untreated:
            setup = clinical_report.load_setup(resolved, model, clinical, treatments, protocol)
            arm = clinical_report.make_arm(
                screening, clinical_report.choose_protocol(setup, protocol_name))
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = _seed_note(root_seed, seed_drawn)
        started = time.perf_counter()
        # the pool or cluster is started (or reached) before any work, and serves both runs
        with opened(processes, dask) as backend, _progress(_console(stderr=True)) as bar:
            course = None
            if dataset:
                assert target is not None
                task = bar.add_task("disease and clinic" if not untreated else "simulating",
                                    total=n_patients)
                setting = None if untreated else ClinicalSetting(setup.clinical,
                                                                 setup.treatments, arm)
                provenance = run_dataset(
                    target, resolved, n_patients, root_seed, horizon, lesions=keep_lesions,
                    clinical=setting, chunk_size=part_size, resume=resume,
                    progress=lambda k: bar.advance(task, k), backend=backend)
                # the report reads the patients tables back; the lesions stay on disk
                result = CohortResult(read_dataset_table(target), empty_lesions(), provenance)
                if not untreated:
                    course = ClinicalCohort(read_dataset_table(target, "clinical"),
                                            resolved.cancer, arm.name, root_seed, horizon)
            else:
                task = bar.add_task("natural history" if not untreated else "simulating",
                                    total=n_patients)
                # the summary reads only the patients table: lesions are kept only to be written
                result = run_cohort(resolved, n_patients, root_seed, horizon,
                                    progress=lambda k: bar.advance(task, k),
                                    keep_lesions=out is not None and keep_lesions,
                                    backend=backend)
                if not untreated:
                    task = bar.add_task("clinical course", total=n_patients)
                    course = run_clinical_cohort(
                        resolved, setup.clinical, setup.treatments, n_patients, root_seed,
                        horizon, arm, progress=lambda k: bar.advance(task, k),
                        backend=backend)
        elapsed = time.perf_counter() - started
        summary = result.summary()
        clinical_summary = None if course is None else clinical_report.clinical_summary(course)
        drawn = course if figure is not None else None
        if target is not None and not dataset:
            beside: dict[Path, str | Callable[[Path], object]] = {}
            if course is not None:
                table, provenance = clinical_report.clinical_sidecars(target)
                details = {**result.provenance, "seed_drawn": seed_drawn, "clinical_course": {
                    "arm": arm.name, "screening": arm.screening,
                    "protocol": None if arm.protocol is None
                    else arm.protocol.model_dump(mode="json"), **setup.provenance()}}
                beside = {provenance: _dumps(details), table: course.patients.to_csv(index=False)}
            if drawn is not None and figure is not None:
                beside[figure] = lambda path: survival_figure(drawn, path)
            # every file of the output at once, the figure too, aside then moved in: whole
            # or absent
            write_cohort(result, target, beside=beside)
        elif drawn is not None and figure is not None:
            survival_figure(drawn, figure)
        labels = dict(zip(resolved.site_names, resolved.site_labels, strict=True))
        if chosen is SummaryFormat.json:
            data = {"disclaimer": metastasis.DISCLAIMER, "seed_drawn": seed_drawn,
                    "version": metastasis.__version__, **summary}
            if clinical_summary is not None:
                data["clinical"] = clinical_summary
                assert course is not None
                data["clinical"]["registry_survival"] = registry.registry_data(
                    compare_with_registries(course, arm))
            sys.stdout.write(_dumps(data, indent=2))
            if note:
                typer.echo(note, err=True)
        else:
            console = _console()
            _disclaimer(console)
            if course is not None:
                console.print(Text("Disease: the natural history, untreated", style="bold "
                                   "underline"))
                console.print(DISEASE_NOTE, markup=False, soft_wrap=True, style="dim")
            _print_cohort(console, summary, labels, resolved.label, note)
            if clinical_summary is not None:
                console.print()
                clinical_report.print_clinical(
                    console, clinical_summary, horizon,
                    care=clinical_report.describe_arm(arm, setup.clinical, resolved),
                    note=clinical_report.screening_note(screening, setup.clinical, resolved))
                assert course is not None
                registry.print_registry(console, compare_with_registries(course, arm))
        if figure is not None:
            typer.echo(f"Wrote {figure}", err=True)
        if target is not None:
            typer.echo(f"Wrote {target}{'/ (a Parquet dataset)' if dataset else ''}", err=True)
        typer.echo(f"{n_patients:,} patients in {elapsed:.1f} s", err=True)


# ---------------------------------------------------------------- compare


@app.command()
def compare(
    cancer: CancerOption = "colorectal",
    patients: Annotated[
        str, typer.Option("--patients", "-n", metavar="N",
                          help="Number of virtual patients, each lived once in each arm.")
    ] = CLINICAL_PATIENTS,
    seed: SeedOption = None,
    years: Annotated[
        str, typer.Option("--years", "-y", metavar="YEARS", help="Horizon in years, in (0, 150].")
    ] = CLINICAL_YEARS,
    arm_a: Annotated[
        str, typer.Option("--arm-a", metavar="ARM",
                          help="'no screening', 'screening', a protocol name of --protocol "
                               "FILE, or 'screening + NAME'.")
    ] = "no screening",
    arm_b: Annotated[
        str, typer.Option("--arm-b", metavar="ARM", help="The other arm, as --arm-a.")
    ] = "screening",
    protocol: Annotated[
        Path | None,
        typer.Option("--protocol", help="A protocol file whose protocols the arms can name."),
    ] = None,
    model: ModelOption = None,
    clinical: ClinicalOption = None,
    treatments: TreatmentsOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json]",
                          help="text: a table; json: the differences as data.")
    ] = "text",
    workers: WorkersOption = "1",
    scheduler: SchedulerOption = None,
) -> None:
    """Run two arms on the same virtual patients (common random numbers) and report each
    difference with a 95 % confidence interval."""
    with _user_errors():  # what needs nothing loaded first: a typo answers at once
        horizon = _years(years)
        n_patients = _integer("patients", patients, 1)
        chosen = _choice(SummaryFormat, "--format", fmt)
        given_seed = _integer("seed", seed, 0)
        processes = _integer("workers", workers, 1)
        dask = _scheduler(scheduler)
    from metastasis.backends import opened
    from metastasis.clinical.cohort import compare as compare_arms
    from metastasis.clinical.cohort import run_clinical_cohort

    with _user_errors():
        resolved = _load_model(cancer, model)
        setup = clinical_report.load_setup(resolved, model, clinical, treatments, protocol)
        arms = (clinical_report.parse_arm("--arm-a", arm_a, setup),
                clinical_report.parse_arm("--arm-b", arm_b, setup))
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = _seed_note(root_seed, seed_drawn)
        cohorts = []
        with opened(processes, dask) as backend, _progress(_console(stderr=True)) as bar:
            for letter, arm in zip("AB", arms, strict=True):
                task = bar.add_task(f"arm {letter}", total=n_patients)

                def advance(k: int, task: TaskID = task) -> None:
                    bar.advance(task, k)

                cohorts.append(run_clinical_cohort(
                    resolved, setup.clinical, setup.treatments, n_patients, root_seed, horizon,
                    arm, progress=advance, backend=backend))
        differences = compare_arms(cohorts[0], cohorts[1])
        names = (arm_a.strip(), arm_b.strip())
        words = tuple(clinical_report.describe_arm(a, setup.clinical, resolved) for a in arms)
        if chosen is SummaryFormat.json:
            data = {
                "disclaimer": metastasis.DISCLAIMER, "version": metastasis.__version__,
                "cancer": resolved.cancer, "patients": n_patients, "years": horizon,
                "root_seed": root_seed, "seed_drawn": seed_drawn,
                "arms": {"a": {"name": names[0], "description": words[0],
                               "screening": arms[0].screening},
                         "b": {"name": names[1], "description": words[1],
                               "screening": arms[1].screening}},
                "differences": clinical_report.differences_data(differences),
                "notes": [clinical_report.CRN_NOTE, clinical_report.LIFETIME_NOTE],
                "clinical_course": setup.provenance(),
            }
            sys.stdout.write(_dumps(data, indent=2))
            if note:
                typer.echo(note, err=True)
            return
        console = _console()
        _disclaimer(console)
        console.print(Text(
            f"Comparison: {n_patients:,} virtual patients with {resolved.label}, each lived "
            f"in both arms over {horizon:g} years (root seed {root_seed}).", style="bold"),
            soft_wrap=True)
        if note:
            console.print(Text(note, style="cyan"), soft_wrap=True)
        clinical_report.print_compare(console, differences, names, words)


# ---------------------------------------------------------------- calibrate


@app.command()
def calibrate(
    cancer: CancerOption = "colorectal",
    method: Annotated[
        str, typer.Option("--method", metavar="[search|abc]",
                          help="search: move one parameter until one target is met (stories "
                               "end at diagnosis); abc: fit several parameters to every target "
                               "at once by ABC-SMC, with a posterior (pip install "
                               "'metastasis\\[calibrate]').")
    ] = "search",
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", metavar="NAME",
                     help="Target to fit (calibration.toml); default: the cancer type's "
                          "fit target. With --method abc: names separated by commas; "
                          "default: every target of the cancer type."),
    ] = None,
    parameter: Annotated[
        str | None, typer.Option("--parameter", "-p", metavar="NAME",
                                 help="Parameter the search moves: shedding_rate (default), "
                                      "outgrowth, breach_rate, motility, blood_entry_survival, "
                                      "lymph_entry_survival, metastasis_capacity or "
                                      "metastasis_speedup.")
    ] = None,
    parameters: Annotated[
        str | None, typer.Option("--parameters", metavar="A,B,...",
                                 help="With --method abc: the parameters to fit, separated by "
                                      "commas (any of --parameter's, cachexia_threshold, "
                                      "<chemotherapy>_surviving_fraction).")
    ] = None,
    patients: Annotated[
        str | None, typer.Option("--patients", "-n", metavar="N",
                                 help="Virtual patients per evaluation (the same ones every "
                                      "time); default 400 (search), 200 (abc).")
    ] = None,
    seed: Annotated[
        str, typer.Option("--seed", "-s", metavar="SEED",
                          help="Root seed of the patients (fixed, so a calibration reruns).")
    ] = "1",
    years: Annotated[
        str | None, typer.Option("--years", "-y", metavar="YEARS",
                                 help="Horizon in years, in (0, 150]; default 20 (search), 30 "
                                      "(abc: five years of follow-up after a late diagnosis).")
    ] = None,
    steps: Annotated[
        str, typer.Option("--steps", metavar="N", help="Most cohorts the search may run.")
    ] = "8",
    population: Annotated[
        str | None, typer.Option("--population", metavar="N",
                                 help="With --method abc: particles per generation (default "
                                      "20).")
    ] = None,
    generations: Annotated[
        str | None, typer.Option("--generations", metavar="G",
                                 help="With --method abc: generations after the prior sample "
                                      "(default 3).")
    ] = None,
    only_check: Annotated[
        bool, typer.Option("--check", help="Only set the model beside every target; no search.")
    ] = False,
    model: ModelOption = None,
    clinical: ClinicalOption = None,
    treatments: TreatmentsOption = None,
    targets: TargetsOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the calibrated knowledge base (.toml), to use "
                     "with --model (abc: fitted clinical or treatment parameters go to "
                     "FILE.clinical.toml / FILE.treatments.toml beside it)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json]",
                          help="text: tables; json: the results as data.")
    ] = "text",
    workers: WorkersOption = "1",
) -> None:
    """Set the model's stage-at-diagnosis statistics beside published figures, and fit one
    parameter so that one of them meets its target (stories end at diagnosis); or, with
    --method abc, fit several parameters to every target at once, with a posterior."""
    from metastasis.calibration.cohorts import CohortSettings, check
    from metastasis.calibration.parameters import parameter as find_parameter

    with _user_errors():
        if method.strip().lower() not in ("search", "abc"):
            raise ModelError("--method", method, "search, abc")
        if method.strip().lower() == "abc":
            _calibrate_abc(cancer, target, parameter, parameters, patients, seed, years,
                           population, generations, only_check, model, clinical, treatments,
                           targets, out, fmt, workers)
            return
        for option, given in (("--parameters", parameters), ("--population", population),
                              ("--generations", generations)):
            if given is not None:
                raise ModelError(option, given, "to be left out with --method search (it is "
                                 "an option of --method abc)")
        parameter = calibration_report.DEFAULT_PARAMETER if parameter is None else parameter
        horizon = _years(CLINICAL_YEARS if years is None else years)
        n_patients = _integer("patients", "400" if patients is None else patients, 1)
        root_seed = _integer("seed", seed, 0)
        n_steps = _integer("steps", steps, 1)
        processes = _integer("workers", workers, 1)
        chosen = _choice(SummaryFormat, "--format", fmt)
        if out is not None:
            if only_check:
                raise ModelError("--out", str(out), "to be left out with --check (nothing is "
                                 "calibrated)")
            _check_suffix(out, (".toml",))
            output.check_writable(out)
        resolved = _load_model(cancer, model)
        setup = clinical_report.load_setup(resolved, model, clinical, treatments, None)
        wanted = calibration_report.targets_for(resolved.cancer, targets)
        raw = knowledge_loader.raw_knowledge(model)
        settings = CohortSettings(resolved.cancer, setup.clinical, setup.treatments,
                                  n_patients, root_seed, horizon, processes)
        if only_check:
            checks = check(raw, settings, wanted)
            if chosen is SummaryFormat.json:
                _write_summary({
                    "cancer": resolved.cancer, "patients": n_patients, "root_seed": root_seed,
                    "years": horizon, "targets": calibration_report.checks_data(checks)})
                return
            console = _console()
            _disclaimer(console)
            console.print(calibration_report.checks_table(
                checks, f"{resolved.label}: {n_patients:,} virtual patients, stage at "
                f"diagnosis (root seed {root_seed}, {horizon:g} years)"))
            calibration_report.print_sources(console, checks)
            return
        goal = calibration_report.choose_target(wanted, target)
        moved = find_parameter(parameter)
        if moved.file != "model" or moved.direction == 0:
            raise ModelError("--parameter", parameter, "a disease parameter with a known "
                             "direction (the others are fitted with --method abc)")
        command = (f"metastasis calibrate --cancer {resolved.cancer} --target {goal.name} "
                   f"--parameter {parameter} --patients {n_patients} --seed {root_seed} "
                   f"--years {horizon:g}")
        err = _console(stderr=True)

        def report(value: float, estimate: Any) -> None:
            low, high = estimate.interval
            err.print(f"{parameter} = {value:.4g}: {100 * estimate.share:.1f} % "
                      f"({100 * low:.1f}-{100 * high:.1f})", markup=False)

        result = calibration_report.fit(raw, settings, wanted, goal, parameter, n_steps,
                                        command, progress=report)
        if out is not None:
            output.write_text(out, calibration_report.knowledge_toml(result.raw))
        if chosen is SummaryFormat.json:
            _write_summary({
                "cancer": resolved.cancer, "patients": n_patients, "root_seed": root_seed,
                "years": horizon, **calibration_report.fit_data(result)})
        else:
            console = _console()
            _disclaimer(console)
            calibration_report.print_fit(console, result)
            calibration_report.print_sources(console, result.checks)
        if out is not None:
            typer.echo(f"Wrote {out} (use it with --model)", err=True)


def _calibrate_abc(
    cancer: str, target: str | None, parameter: str | None, parameters: str | None,
    patients: str | None, seed: str, years: str | None, population: str | None,
    generations: str | None, only_check: bool, model: Path | None, clinical: Path | None,
    treatments: Path | None, targets: Path | None, out: Path | None, fmt: str, workers: str,
) -> None:
    """``calibrate --method abc``: every check of the options before the fit, then the fit,
    then the files (:mod:`metastasis.cli.abc_report` words and writes)."""
    from metastasis.calibration import abc
    from metastasis.calibration.validation import DEFAULT_YEARS
    from metastasis.cli import abc_report

    if only_check:
        raise ModelError("--check", True, "--method search (abc measures every target at the "
                         "posterior median)")
    if parameter is not None:
        raise ModelError("--parameter", parameter, "--parameters A,B,... with --method abc")
    names = abc_report.parse_parameters(parameters)
    horizon = _years(f"{DEFAULT_YEARS:g}" if years is None else years)
    n_patients = _integer("patients", str(abc_report.DEFAULT_PATIENTS) if patients is None
                          else patients, 1)
    root_seed = api.check_seed(_integer("seed", seed, 0))
    n_population = _integer("population", population or abc_report.DEFAULT_POPULATION, 1)
    n_generations = _integer("generations", generations or abc_report.DEFAULT_GENERATIONS, 1)
    processes = _integer("workers", workers, 1)
    chosen = _choice(SummaryFormat, "--format", fmt)
    paths = None
    if out is not None:
        _check_suffix(out, (".toml",))
        paths = abc_report.out_paths(out, abc_report.fitted_files(names))
        for path in paths.values():
            output.check_writable(path)
    resolved = _load_model(cancer, model)
    clinical_report.load_setup(resolved, model, clinical, treatments, None)  # checks the files
    wanted = abc_report.targets_to_fit(resolved.cancer, targets, target)
    base = abc_report.base_knowledge(model, clinical, treatments)
    command = abc_report.command_line(
        resolved.cancer, names, target, patients=n_patients, seed=root_seed, years=horizon,
        population=n_population, generations=n_generations,
        files={"--model": model, "--clinical": clinical, "--treatments": treatments,
               "--targets": targets})
    err = _console(stderr=True)

    def report(k: int, values: dict[str, float], distance: float, seconds: float) -> None:
        shown = ", ".join(f"{name} = {value:.4g}" for name, value in values.items())
        err.print(f"evaluation {k}: {shown}: distance {distance:.3g} ({seconds:.1f} s)",
                  markup=False)

    result = abc.fit(resolved.cancer, names, wanted, knowledge=base, patients=n_patients,
                     seed=root_seed, years=horizon, population=n_population,
                     generations=n_generations, workers=processes, progress=report)
    fitted = abc_report.fitted_knowledge(result, command)
    if paths is not None:
        # the fitted files are one output: all or none, the disease file (--out) last
        ordered = sorted(paths.items(), key=lambda item: item[0] == "model")
        output.write_texts({path: abc_report.toml_text(fitted.raw(file))
                            for file, path in ordered})
    if chosen is SummaryFormat.json:
        _write_summary(abc_report.abc_data(result, command))
    else:
        console = _console()
        _disclaimer(console)
        console.print(Text(command, style="bold"), soft_wrap=True)
        abc_report.print_abc(console, result)
    if paths is not None:
        options = {"model": "--model", "clinical": "--clinical", "treatments": "--treatments"}
        typer.echo("Wrote " + ", ".join(f"{path} (use it with {options[file]})"
                                        for file, path in paths.items()), err=True)

# ---------------------------------------------------------------- validate


@app.command("validate")
def validate_command(
    cancer: Annotated[
        str | None,
        typer.Option("--cancer", "-c", help="Cancer type(s) to validate, separated by commas; "
                     "default: every type with targets, in the targets file's order."),
    ] = None,
    patients: Annotated[
        str, typer.Option("--patients", "-n", metavar="N",
                          help="Virtual patients per cancer type (each arm lives the same ones).")
    ] = VALIDATE_PATIENTS,
    seed: Annotated[
        str, typer.Option("--seed", "-s", metavar="SEED",
                          help="Root seed (fixed by default, and not one a calibration uses).")
    ] = VALIDATE_SEED,
    years: Annotated[
        str | None,
        typer.Option("--years", "-y", metavar="YEARS",
                     help="Horizon from the first cancer cell, in (0, 150]; default 30 "
                          "(five years of follow-up after a late diagnosis)."),
    ] = None,
    model: ModelOption = None,
    clinical: ClinicalOption = None,
    treatments: TreatmentsOption = None,
    targets: TargetsOption = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Write an HTML report with figures "
                     "(DIR/index.html and SVG files beside it)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json]",
                          help="text: a table per cancer type; json: every check as data.")
    ] = "text",
    workers: WorkersOption = "1",
    scheduler: SchedulerOption = None,
) -> None:
    """Set the model beside every published registry figure of each cancer type (stage and
    sites at diagnosis, survival by stage, median survival), with 95 % intervals and a
    verdict for each (survival is net survival: the model has no deaths from other causes)."""
    from metastasis.backends import opened
    from metastasis.calibration.validation import DEFAULT_YEARS
    from metastasis.cli import validation_html

    with _user_errors():
        horizon = _years(years if years is not None else f"{DEFAULT_YEARS:g}")
        n_patients = _integer("patients", patients, 1)
        root_seed = api.check_seed(_integer("seed", seed, 0))
        chosen = _choice(SummaryFormat, "--format", fmt)
        processes = _integer("workers", workers, 1)
        dask = _scheduler(scheduler)
        if report is not None:
            validation_html.check_directory(report)
        plans = validation_report.prepare(cancer, targets, model, clinical, treatments)
        labels = {plan.cancer: plan.model.label for plan in plans}
        settings = {"patients": n_patients, "seed": root_seed, "years": horizon}
        started = time.perf_counter()
        with opened(processes, dask) as backend, _progress(_console(stderr=True)) as bar:
            done = validation_report.run(plans, backend=backend, bar=bar, **settings)
        elapsed = time.perf_counter() - started
        page = (None if report is None
                else validation_html.write_report(report, done, labels, **settings))
        if chosen is SummaryFormat.json:
            _write_summary(validation_report.document(done, labels, **settings))
        else:
            console = _console()
            _disclaimer(console)
            validation_report.print_validations(console, done, labels, **settings)
        if page is not None:
            typer.echo(f"Wrote {page}", err=True)
        typer.echo(f"{len(plans)} cancer type(s) x {n_patients:,} patients in {elapsed:.1f} s",
                   err=True)


# ---------------------------------------------------------------- model


@model_app.command("list")
def model_list(model: ModelOption = None) -> None:
    """List the cancer types of the knowledge base."""
    with _user_errors():
        kb = knowledge_loader.load(model)
    console = _console()
    _disclaimer(console)
    table = Table(title=f"Cancer types in knowledge base '{kb.name}'", title_style="bold")
    for header in ("cancer", "label", "primary site", "named as"):
        table.add_column(header)
    for key, spec in kb.cancers.items():
        site = kb.sites[spec.primary_site].label
        table.add_row(key, spec.label, site, spec.naming)
    console.print(table)


@model_app.command("show")
def model_show(
    cancer: Annotated[str, typer.Argument(help="Cancer type (see `metastasis model list`).")],
    model: ModelOption = None,
    graph: Annotated[
        str, typer.Option("--graph", "-g", metavar="[text|mermaid]",
                          help="Draw the organ graph as text or Mermaid.")
    ] = "text",
) -> None:
    """Print every parameter of a cancer type with its source, then the organ graph."""
    with _user_errors():
        drawing = _choice(GraphFormat, "--graph", graph)
        resolved = _load_model(cancer, model)
    console = _console()
    _disclaimer(console)
    table = Table(title=f"Parameters of {resolved.label} (anatomy and cancer type)",
                  title_style="bold", show_lines=False)
    table.add_column("parameter", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("source")
    for row in model_view.parameter_rows(resolved):
        style = "dim" if row.source == model_view.STRUCTURE else None
        table.add_row(row.path, row.value, row.source, style=style)
    console.print(table)
    console.print()

    routes, rows = model_view.journey_rows(resolved)
    primary = resolved.site_labels[resolved.primary_site]
    route_text = "; ".join(
        f"{name} {numbers.percent(100 * share)} of shed cells, of which "
        f"{numbers.percent(100 * died)} die on the way"
        for name, (share, died) in routes.items()
    )
    console.print(Text(f"Where a cell shed by the primary ({primary}) ends up, from the "
                       "resolved model (closed form)", style="bold"), soft_wrap=True)
    console.print(f"Routes: {route_text}.", markup=False, soft_wrap=True)
    table = Table()
    table.add_column("organ")
    table.add_column("arrests there (per shed cell)", justify="right")
    table.add_column("leaves the vessel (per arrested cell)", justify="right")
    table.add_column("founds a growing metastasis (per shed cell)", justify="right")
    for row in rows:
        table.add_row(row.site, f"{row.arrest:.3g}", f"{row.extravasation:.3g}",
                      f"{row.founds:.3g}")
    console.print(table)
    console.print()
    lines = (model_view.graph_text(resolved) if drawing is GraphFormat.text
             else ["```mermaid", *model_view.graph_mermaid(resolved), "```"])
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


@model_app.command("export")
def model_export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write: a .toml or .json file.")
    ],
    cancer: Annotated[
        str | None, typer.Option("--cancer", "-c", help="Keep only this cancer type.")
    ] = None,
    model: ModelOption = None,
) -> None:
    """Write the knowledge base (defaults merged, every source kept) for `--model FILE`."""
    with _user_errors():
        model_view.check_export_path(out)
        output.check_writable(out)
        kb = knowledge_loader.load(model)
        data = model_view.export_data(kb, cancer)
        if out.suffix.lower() == ".json":
            if metastasis.DISCLAIMER not in data.get("description", ""):
                data["description"] = f"{data.get('description', '')} {metastasis.DISCLAIMER}"
                data["description"] = data["description"].strip()
            text = model_view.to_json(data)
        else:
            header = [
                f"metastasis knowledge base, written by `metastasis model export` "
                f"(version {metastasis.__version__}).",
                metastasis.DISCLAIMER,
                "Every number is { value, source }; edit a value, cite its new source, and "
                "load the file with --model.",
            ]
            text = model_view.to_toml(data, header)
        output.write_text(out, text)
    typer.echo(f"Wrote {out}", err=True)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
