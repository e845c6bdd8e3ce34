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
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

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
from rich.table import Table
from rich.text import Text

import metastasis
from metastasis import api
from metastasis.cli import model_view, narrative, numbers, output
from metastasis.errors import ModelError
from metastasis.guide.cli import explain, guide_app
from metastasis.knowledge.loader import load as load_knowledge

USAGE_ERROR = 2
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
)
model_app = typer.Typer(
    help="Show, list and export the model: parameters with sources, organ graph.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")
app.add_typer(guide_app, name="guide")
app.command("explain")(explain)


Choice = TypeVar("Choice", bound=StrEnum)


class PatientFormat(StrEnum):
    """Output of ``simulate``: the story, or the patient's data."""

    text = "text"
    json = "json"
    csv = "csv"


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
        raise ModelError("years", text, f"a number of years in (0, {api.MAX_YEARS:g}]")
    return api.check_years(value)


def _integer(field: str, text: str | None, minimum: int) -> int | None:
    """Parse a whole-number option; ``None`` stays ``None`` (for a seed to be drawn)."""
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        allowed = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise ModelError(field, text if value is None else value, allowed)
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


def _print_story(console: Console, story: narrative.Story, seed_note: str | None) -> None:
    _disclaimer(console)
    console.print(Text(story.title, style="bold"))
    for line in story.header:
        console.print(line, markup=False, soft_wrap=True)
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
    for line in story.spread:
        console.print(line, markup=False, soft_wrap=True)
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
    console.print()
    console.print(Text("End", style="bold underline"))
    for line in story.ending:
        console.print(line, markup=False, soft_wrap=True)


@app.command()
def simulate(
    cancer: CancerOption = "colorectal",
    years: YearsOption = "10",
    seed: SeedOption = None,
    patient: Annotated[
        str, typer.Option("--patient", "-p", metavar="INDEX",
                          help="Patient index within the cohort of this seed.")
    ] = "0",
    model: ModelOption = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json|csv]",
                          help="text: the story; json or csv: for machines.")
    ] = "text",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of printing.")
    ] = None,
    all_events: Annotated[
        bool, typer.Option("--all-events", help="Tell every event, not only the milestones.")
    ] = False,
) -> None:
    """Tell one virtual patient's untreated natural history, step by step."""
    with _user_errors():
        horizon = _years(years)
        chosen = _choice(PatientFormat, "--format", fmt)
        index = _integer("patient index", patient, 0)
        given_seed = _integer("seed", seed, 0)
        if out is not None:
            output.check_writable(out)
        resolved = api.load_model(cancer, model)
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        result = api.run_patient(resolved, root_seed, index, horizon)
        note = _seed_note(root_seed, seed_drawn)
        if chosen is PatientFormat.text:
            story = narrative.tell(result, resolved, years=horizon, all_events=all_events)
            if out is None:
                _print_story(_console(), story, note)
                return
            lines = [metastasis.DISCLAIMER, *([note] if note else []), *story.lines()]
            output.write_text(out, "\n".join(lines) + "\n")
        else:
            _patient_machine(result, resolved, chosen, out, seed_drawn)
        if note:
            typer.echo(note, err=True)
        if out is not None:
            typer.echo(f"Wrote {out}", err=True)


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


@app.command()
def cohort(
    cancer: CancerOption = "colorectal",
    patients: Annotated[
        str, typer.Option("--patients", "-n", metavar="N",
                          help="Number of virtual patients (>= 1).")
    ] = "1000",
    seed: SeedOption = None,
    years: YearsOption = "10",
    model: ModelOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the cohort (.parquet, .csv or .json)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="[text|json]",
                          help="text: tables; json: the summary as data.")
    ] = "text",
    lesions: Annotated[
        bool, typer.Option("--lesions/--no-lesions",
                           help="Write the lesions table with --out (large for long horizons).")
    ] = True,
) -> None:
    """Simulate a cohort and summarise where and when cancer spread."""
    from metastasis.cohort import run_cohort
    from metastasis.results.export import COHORT_FORMATS, write_cohort

    with _user_errors():
        horizon = _years(years)
        n_patients = _integer("patients", patients, 1)
        chosen = _choice(SummaryFormat, "--format", fmt)
        given_seed = _integer("seed", seed, 0)
        _check_suffix(out, COHORT_FORMATS)
        if out is not None:
            output.check_writable(out)
        resolved = api.load_model(cancer, model)
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = _seed_note(root_seed, seed_drawn)
        err = _console(stderr=True)
        with Progress(
            TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
        ) as bar:
            task = bar.add_task("patients", total=n_patients)
            # the summary reads only the patients table: lesions are kept only to be written
            result = run_cohort(resolved, n_patients, root_seed, horizon,
                                progress=lambda k: bar.advance(task, k),
                                keep_lesions=out is not None and lesions)
        if out is not None:
            write_cohort(result, out)  # atomic, with its side files for CSV
        summary = result.summary()
        labels = dict(zip(resolved.site_names, resolved.site_labels, strict=True))
        if chosen is SummaryFormat.json:
            data = {"disclaimer": metastasis.DISCLAIMER, "seed_drawn": seed_drawn,
                    "version": metastasis.__version__, **summary}
            sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
            if note:
                typer.echo(note, err=True)
        else:
            console = _console()
            _disclaimer(console)
            _print_cohort(console, summary, labels, resolved.label, note)
        if out is not None:
            typer.echo(f"Wrote {out}", err=True)


# ---------------------------------------------------------------- model


@model_app.command("list")
def model_list(model: ModelOption = None) -> None:
    """List the cancer types of the knowledge base."""
    with _user_errors():
        kb = load_knowledge(model)
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
        resolved = api.load_model(cancer, model)
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
        kb = load_knowledge(model)
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
