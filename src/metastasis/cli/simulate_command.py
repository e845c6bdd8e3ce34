"""`metastasis simulate`: one virtual patient's whole story, told or written as data.

The untreated natural history is told from the engine's events
(:mod:`metastasis.cli.narrative`); the clinical course, from symptoms to outcome, by
:mod:`metastasis.cli.clinical_story`.  Text is for a reader; JSON and CSV carry the
provenance a rerun needs, and the disclaimer goes with every output.
"""

from __future__ import annotations

import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

import metastasis
from metastasis.cli.common import (
    CLINICAL_YEARS,
    UNTREATED_YEARS,
    CancerOption,
    ClinicalOption,
    FollowUpOption,
    HorizonOption,
    ModelOption,
    ProtocolNameOption,
    ProtocolOption,
    ScreeningOption,
    SeedOption,
    TreatmentsOption,
    UntreatedOption,
    check_suffix,
    drawn_seed_note,
    dumps,
    load_model,
    new_console,
    parse_choice,
    parse_follow_up,
    parse_integer,
    parse_years,
    print_disclaimer,
    refuse_with_untreated,
    user_errors,
)
from metastasis.lazy import lazy_module

# the engine, pandas and SciPy load only when a command needs them: --help and a bad option
# answer without them
if TYPE_CHECKING:  # the modules themselves load on first use (lazy_module below)
    from metastasis.cli.clinical_report import ClinicalSetup
    from metastasis.cli.clinical_story import ClinicalStory
    from metastasis.cli.narrative import Story

api = lazy_module("metastasis.api")
clinical_report = lazy_module("metastasis.cli.clinical_report")
clinical_story = lazy_module("metastasis.cli.clinical_story")
narrative = lazy_module("metastasis.cli.narrative")
numbers = lazy_module("metastasis.results.numbers")
output = lazy_module("metastasis.cli.output")


class PatientFormat(StrEnum):
    """Output of ``simulate``: the story, or the patient's data."""

    text = "text"
    json = "json"
    csv = "csv"


PATIENT_SUFFIXES = {PatientFormat.text: (".txt", ".md"), PatientFormat.json: (".json",),
                    PatientFormat.csv: (".csv",)}
"""What ``simulate --out`` may be called in each format: a file's content matches its
suffix (text written into ``o.parquet`` would mislead whoever opens it)."""


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


def _print_heading(console: Console, story: Story | ClinicalStory,
                   seed_note: str | None) -> None:
    """The disclaimer, title, header lines and seed note that open both kinds of story."""
    print_disclaimer(console)
    console.print(Text(story.title, style="bold"))
    for heading in story.header:
        console.print(heading, markup=False, soft_wrap=True)
    if seed_note:
        console.print(Text(seed_note, style="cyan"), soft_wrap=True)
    console.print()


def _print_story(console: Console, story: Story, seed_note: str | None) -> None:
    _print_heading(console, story, seed_note)
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
    _print_heading(console, story, seed_note)
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


def simulate(
    cancer: CancerOption = "colorectal",
    years: HorizonOption = None,
    follow_up: FollowUpOption = None,
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
    with user_errors():
        refuse_with_untreated(untreated, screening=screening, protocol=protocol,
                              protocol_name=protocol_name, clinical=clinical,
                              treatments=treatments, follow_up=follow_up)
        horizon = parse_years(years if years is not None
                              else UNTREATED_YEARS if untreated else CLINICAL_YEARS)
        follow = None if untreated else parse_follow_up(follow_up)
        chosen = parse_choice(PatientFormat, "--format", fmt)
        index = parse_integer("patient index", patient, 0)
        given_seed = parse_integer("seed", seed, 0)
        if out is not None:
            output.check_writable(out)
            check_suffix(out, PATIENT_SUFFIXES[chosen])
        resolved = load_model(cancer, model)
        if not untreated:
            setup = clinical_report.load_setup(resolved, model, clinical, treatments, protocol)
            picked = clinical_report.choose_protocol(setup, protocol_name)
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = drawn_seed_note(root_seed, seed_drawn)
        if untreated:
            result = api.run_patient(resolved, root_seed, index, horizon)
            if chosen is PatientFormat.text:
                story = narrative.tell(result, resolved, years=horizon, all_events=all_events)
                if out is None:
                    _print_story(new_console(), story, note)
                    return
                lines = [metastasis.DISCLAIMER, *([note] if note else []), *story.lines()]
                output.write_text(out, "\n".join(lines) + "\n")
            else:
                _patient_machine(result, resolved, chosen, out, seed_drawn)
        else:
            _simulate_clinical(resolved, setup, picked, screening, root_seed, index, horizon,
                               chosen, out, note, seed_drawn, all_events, follow)
            if out is None and chosen is PatientFormat.text:
                return
        if note:
            typer.echo(note, err=True)
        if out is not None:
            typer.echo(f"Wrote {out}", err=True)


def _simulate_clinical(
    resolved: Any, setup: ClinicalSetup, picked: Any, screening: bool,
    root_seed: int, index: int, horizon: float, chosen: PatientFormat, out: Path | None,
    note: str | None, seed_drawn: bool, all_events: bool, follow_up: float | None,
) -> None:
    """Run and tell (or write) one patient's whole clinical course."""
    from metastasis.clinical.course import simulate_course

    arm = clinical_report.make_arm(screening, picked, follow_up)
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
            _print_clinical_story(new_console(), story, note)
            return
        lines = [metastasis.DISCLAIMER, *([note] if note else []), *story.lines()]
        output.write_text(out, "\n".join(lines) + "\n")
        return
    document = _clinical_document(result, resolved, setup, arm,
                                  None if picked is None else picked[0], seed_drawn)
    if chosen is PatientFormat.json:
        text = dumps(document)
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
    output.write_texts({provenance: dumps(document["provenance"]), out: text})

