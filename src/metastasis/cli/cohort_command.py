"""`metastasis cohort` and `metastasis compare`: many virtual patients, summarised.

``cohort`` runs the untreated natural history and, unless ``--untreated``, the clinical
course of the same patients, and prints or writes both (a file, or a Parquet dataset
directory written a part at a time).  ``compare`` lives the same patients in two arms
(common random numbers) so that the differences are the arms', not the draws'.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table
from rich.text import Text

import metastasis
from metastasis.cli.common import (
    CLINICAL_PATIENTS,
    CLINICAL_YEARS,
    DATASET_CHUNK,
    UNTREATED_PATIENTS,
    UNTREATED_YEARS,
    CancerOption,
    ClinicalOption,
    FollowUpOption,
    HorizonOption,
    ModelOption,
    ProtocolNameOption,
    ProtocolOption,
    SchedulerOption,
    ScreeningOption,
    SeedOption,
    SummaryFormat,
    TreatmentsOption,
    UntreatedOption,
    WorkersOption,
    check_suffix,
    drawn_seed_note,
    dumps,
    load_model,
    new_console,
    parse_choice,
    parse_follow_up,
    parse_integer,
    parse_scheduler,
    parse_years,
    print_disclaimer,
    progress_bar,
    refuse_with_untreated,
    user_errors,
)
from metastasis.errors import ModelError
from metastasis.lazy import lazy_module

# the engine, pandas and SciPy load only when a command needs them: --help and a bad option
# answer without them
api = lazy_module("metastasis.api")
clinical_report = lazy_module("metastasis.cli.clinical_report")
numbers = lazy_module("metastasis.results.numbers")
output = lazy_module("metastasis.cli.output")
registry = lazy_module("metastasis.cli.registry")


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


DISEASE_NOTE = (
    "(The same patients left untreated: each history is the clinical course's own natural "
    "history up to the day of diagnosis, lesion for lesion, and goes on untreated from "
    "there.)"
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


def cohort(
    cancer: CancerOption = "colorectal",
    patients: Annotated[
        str | None,
        typer.Option("--patients", "-n", metavar="N",
                     help=f"Number of virtual patients (>= 1); default {CLINICAL_PATIENTS} "
                          f"({UNTREATED_PATIENTS} with --untreated)."),
    ] = None,
    seed: SeedOption = None,
    years: HorizonOption = None,
    follow_up: FollowUpOption = None,
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
    with user_errors():
        refuse_with_untreated(untreated, screening=screening, protocol=protocol,
                              protocol_name=protocol_name, clinical=clinical,
                              treatments=treatments, figure=figure, follow_up=follow_up)
        horizon = parse_years(years if years is not None
                              else UNTREATED_YEARS if untreated else CLINICAL_YEARS)
        follow = None if untreated else parse_follow_up(follow_up)
        n_patients = parse_integer(
            "patients", patients if patients is not None
            else UNTREATED_PATIENTS if untreated else CLINICAL_PATIENTS, 1)
        chosen = parse_choice(SummaryFormat, "--format", fmt)
        given_seed = parse_integer("seed", seed, 0)
        processes = parse_integer("workers", workers, 1)
        dask = parse_scheduler(scheduler)
    from metastasis.backends import opened
    from metastasis.calibration.registry import compare as compare_with_registries
    from metastasis.clinical.cohort import ClinicalCohort, run_clinical_cohort, survival_figure
    from metastasis.cohort import run_cohort
    from metastasis.results.dataset import check_target, read_dataset_table
    from metastasis.results.export import COHORT_FORMATS, write_cohort
    from metastasis.results.tables import CohortResult, empty_lesions
    from metastasis.runs import ClinicalSetting, check_chunk_size, run_dataset

    with user_errors():
        dataset = out is not None and _is_directory(out)
        target = None if out is None else Path(out)
        if dataset:
            assert target is not None
            check_target(target, resume=resume)
        else:
            check_suffix(target, COHORT_FORMATS)
            if target is not None:
                output.check_writable(target)
            if resume:
                raise ModelError("--resume", "given", "only with --out DIR/ (a dataset "
                                 "directory, written a part at a time)")
            if chunk_size is not None:
                raise ModelError("--chunk-size", chunk_size, "only with --out DIR/")
        part_size = check_chunk_size(
            parse_integer("chunk-size", chunk_size or DATASET_CHUNK, 1), "--chunk-size")
        if resume and seed is None:
            raise ModelError("--resume", "no --seed", "a run with its seed given (--seed): a "
                             "drawn seed would make the resumed parts another cohort")
        keep_lesions = (not dataset) if lesions is None else lesions
        _check_figure(figure)
        resolved = load_model(cancer, model)
        if not untreated:
            setup = clinical_report.load_setup(resolved, model, clinical, treatments, protocol)
            arm = clinical_report.make_arm(
                screening, clinical_report.choose_protocol(setup, protocol_name), follow)
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = drawn_seed_note(root_seed, seed_drawn)
        started = time.perf_counter()
        # the pool or cluster is started (or reached) before any work, and serves both runs
        with opened(processes, dask) as backend, progress_bar(new_console(stderr=True)) as bar:
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
                                            resolved.cancer, arm.name, root_seed, horizon,
                                            arm.years_after_diagnosis)
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
                    "years_after_diagnosis": arm.years_after_diagnosis,
                    "protocol": None if arm.protocol is None
                    else arm.protocol.model_dump(mode="json"), **setup.provenance()}}
                beside = {provenance: dumps(details), table: course.patients.to_csv(index=False)}
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
            sys.stdout.write(dumps(data, indent=2))
            if note:
                typer.echo(note, err=True)
        else:
            console = new_console()
            print_disclaimer(console)
            # the clinical results first: what a learner asks (stage, survival); the
            # untreated natural history after, as what the disease would do unchecked
            if clinical_summary is not None:
                clinical_report.print_clinical(
                    console, clinical_summary, horizon,
                    care=clinical_report.describe_arm(arm, setup.clinical, resolved),
                    note=clinical_report.screening_note(screening, setup.clinical, resolved))
                assert course is not None
                registry.print_registry(console, compare_with_registries(course, arm))
                console.print()
                console.print(Text("Disease: the natural history, untreated", style="bold "
                                   "underline"))
                console.print(DISEASE_NOTE, markup=False, soft_wrap=True, style="dim")
            _print_cohort(console, summary, labels, resolved.label, note)
        if figure is not None:
            typer.echo(f"Wrote {figure}", err=True)
        if target is not None:
            typer.echo(f"Wrote {target}{'/ (a Parquet dataset)' if dataset else ''}", err=True)
        typer.echo(f"{n_patients:,} patients in {elapsed:.1f} s", err=True)


# ---------------------------------------------------------------- compare


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
    with user_errors():  # what needs nothing loaded first: a typo answers at once
        horizon = parse_years(years)
        n_patients = parse_integer("patients", patients, 1)
        chosen = parse_choice(SummaryFormat, "--format", fmt)
        given_seed = parse_integer("seed", seed, 0)
        processes = parse_integer("workers", workers, 1)
        dask = parse_scheduler(scheduler)
    from metastasis.backends import opened
    from metastasis.clinical.cohort import compare as compare_arms
    from metastasis.clinical.cohort import run_clinical_cohort

    with user_errors():
        resolved = load_model(cancer, model)
        setup = clinical_report.load_setup(resolved, model, clinical, treatments, protocol)
        arms = (clinical_report.parse_arm("--arm-a", arm_a, setup),
                clinical_report.parse_arm("--arm-b", arm_b, setup))
        seed_drawn = given_seed is None
        root_seed = api.check_seed(given_seed)
        note = drawn_seed_note(root_seed, seed_drawn)
        cohorts = []
        with opened(processes, dask) as backend, progress_bar(new_console(stderr=True)) as bar:
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
            sys.stdout.write(dumps(data, indent=2))
            if note:
                typer.echo(note, err=True)
            return
        console = new_console()
        print_disclaimer(console)
        console.print(Text(
            f"Comparison: {n_patients:,} virtual patients with {resolved.label}, each lived "
            f"in both arms over {horizon:g} years (root seed {root_seed}).", style="bold"),
            soft_wrap=True)
        if note:
            console.print(Text(note, style="cyan"), soft_wrap=True)
        clinical_report.print_compare(console, differences, names, words)

