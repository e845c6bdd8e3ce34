"""`metastasis calibrate` and `metastasis validate`: the model set beside published figures.

``calibrate`` fits the model to the stage-at-diagnosis targets, by a search over one
parameter or, with ``--method abc``, by ABC-SMC over several
(:mod:`metastasis.cli.calibration_report`, :mod:`metastasis.cli.abc_report`); ``validate``
checks every published registry figure on patients no calibration saw
(:mod:`metastasis.cli.validation_report`).  Every option is checked before a cohort runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

import metastasis
from metastasis.cli.common import (
    CLINICAL_YEARS,
    VALIDATE_PATIENTS,
    VALIDATE_SEED,
    CancerOption,
    ClinicalOption,
    ModelOption,
    SchedulerOption,
    SummaryFormat,
    TargetsOption,
    TreatmentsOption,
    WorkersOption,
    check_suffix,
    dumps,
    load_model,
    new_console,
    parse_choice,
    parse_integer,
    parse_scheduler,
    parse_years,
    print_disclaimer,
    progress_bar,
    user_errors,
)
from metastasis.errors import ModelError
from metastasis.lazy import lazy_module

# the engine, pandas and SciPy load only when a command needs them: --help and a bad option
# answer without them
api = lazy_module("metastasis.api")
calibration_report = lazy_module("metastasis.cli.calibration_report")
clinical_report = lazy_module("metastasis.cli.clinical_report")
knowledge_loader = lazy_module("metastasis.knowledge.loader")
output = lazy_module("metastasis.cli.output")
validation_report = lazy_module("metastasis.cli.validation_report")


def _write_summary(data: dict[str, Any]) -> None:
    """A command's JSON summary on stdout, led by the disclaimer and the version."""
    sys.stdout.write(dumps({"disclaimer": metastasis.DISCLAIMER,
                            "version": metastasis.__version__, **data}, indent=2))


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
                                      "<chemotherapy>_surviving_fraction, "
                                      "<chemotherapy>_resistance).")
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
                                 help="Years from the first cancer cell, in (0, 150]: the "
                                      "horizon (search, default 20), or within which a "
                                      "diagnosis can come (abc, default 30; each is then "
                                      "followed six years).")
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
    prior_width: Annotated[
        str | None, typer.Option("--prior-width", metavar="K",
                                 help="With --method abc: each prior log10-uniform within a "
                                      "factor K (> 1) either side of the present value, not "
                                      "over the parameter's whole range: refines values set "
                                      "by hand.")
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

    with user_errors():
        if method.strip().lower() not in ("search", "abc"):
            raise ModelError("--method", method, "search, abc")
        if method.strip().lower() == "abc":
            _calibrate_abc(cancer, target, parameter, parameters, patients, seed, years,
                           population, generations, prior_width, only_check, model, clinical,
                           treatments, targets, out, fmt, workers)
            return
        for option, given in (("--parameters", parameters), ("--population", population),
                              ("--generations", generations), ("--prior-width", prior_width)):
            if given is not None:
                raise ModelError(option, given, "to be left out with --method search (it is "
                                 "an option of --method abc)")
        parameter = calibration_report.DEFAULT_PARAMETER if parameter is None else parameter
        horizon = parse_years(CLINICAL_YEARS if years is None else years)
        n_patients = parse_integer("patients", "400" if patients is None else patients, 1)
        root_seed = parse_integer("seed", seed, 0)
        n_steps = parse_integer("steps", steps, 1)
        processes = parse_integer("workers", workers, 1)
        chosen = parse_choice(SummaryFormat, "--format", fmt)
        if out is not None:
            if only_check:
                raise ModelError("--out", str(out), "to be left out with --check (nothing is "
                                 "calibrated)")
            check_suffix(out, (".toml",))
            output.check_writable(out)
        resolved = load_model(cancer, model)
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
            console = new_console()
            print_disclaimer(console)
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
        err = new_console(stderr=True)

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
            console = new_console()
            print_disclaimer(console)
            calibration_report.print_fit(console, result)
            calibration_report.print_sources(console, result.checks)
        if out is not None:
            typer.echo(f"Wrote {out} (use it with --model)", err=True)


def _calibrate_abc(
    cancer: str, target: str | None, parameter: str | None, parameters: str | None,
    patients: str | None, seed: str, years: str | None, population: str | None,
    generations: str | None, prior_width: str | None, only_check: bool, model: Path | None,
    clinical: Path | None,
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
    horizon = parse_years(f"{DEFAULT_YEARS:g}" if years is None else years)
    n_patients = parse_integer("patients", str(abc_report.DEFAULT_PATIENTS)
                               if patients is None else patients, 1)
    root_seed = api.check_seed(parse_integer("seed", seed, 0))
    n_population = parse_integer("population", population or abc_report.DEFAULT_POPULATION, 1)
    n_generations = parse_integer("generations", generations or abc_report.DEFAULT_GENERATIONS, 1)
    width = None if prior_width is None else abc_report.parse_prior_width(prior_width)
    processes = parse_integer("workers", workers, 1)
    chosen = parse_choice(SummaryFormat, "--format", fmt)
    paths = None
    if out is not None:
        check_suffix(out, (".toml",))
        paths = abc_report.out_paths(out, abc_report.fitted_files(names))
        for path in paths.values():
            output.check_writable(path)
    resolved = load_model(cancer, model)
    clinical_report.load_setup(resolved, model, clinical, treatments, None)  # checks the files
    wanted = abc_report.targets_to_fit(resolved.cancer, targets, target)
    base = abc_report.base_knowledge(model, clinical, treatments)
    command = abc_report.command_line(
        resolved.cancer, names, target, patients=n_patients, seed=root_seed, years=horizon,
        population=n_population, generations=n_generations, prior_width=width,
        files={"--model": model, "--clinical": clinical, "--treatments": treatments,
               "--targets": targets})
    err = new_console(stderr=True)

    def report(k: int, values: dict[str, float], distance: float, seconds: float) -> None:
        shown = ", ".join(f"{name} = {value:.4g}" for name, value in values.items())
        err.print(f"evaluation {k}: {shown}: distance {distance:.3g} ({seconds:.1f} s)",
                  markup=False)

    result = abc.fit(resolved.cancer, names, wanted, knowledge=base, patients=n_patients,
                     seed=root_seed, years=horizon, population=n_population,
                     generations=n_generations, workers=processes, prior_width=width,
                     progress=report)
    fitted = abc_report.fitted_knowledge(result, command)
    if paths is not None:
        # the fitted files are one output: all or none, the disease file (--out) last
        ordered = sorted(paths.items(), key=lambda item: item[0] == "model")
        output.write_texts({path: abc_report.toml_text(fitted.raw(file))
                            for file, path in ordered})
    if chosen is SummaryFormat.json:
        _write_summary(abc_report.abc_data(result, command))
    else:
        console = new_console()
        print_disclaimer(console)
        console.print(Text(command, style="bold"), soft_wrap=True)
        abc_report.print_abc(console, result)
    if paths is not None:
        options = {"model": "--model", "clinical": "--clinical", "treatments": "--treatments"}
        typer.echo("Wrote " + ", ".join(f"{path} (use it with {options[file]})"
                                        for file, path in paths.items()), err=True)

# ---------------------------------------------------------------- validate


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
                     help="Years from the first cancer cell within which a diagnosis can "
                          "come, in (0, 150]; default 30. Each diagnosed patient is then "
                          "followed six years."),
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

    with user_errors():
        horizon = parse_years(years if years is not None else f"{DEFAULT_YEARS:g}")
        n_patients = parse_integer("patients", patients, 1)
        root_seed = api.check_seed(parse_integer("seed", seed, 0))
        chosen = parse_choice(SummaryFormat, "--format", fmt)
        processes = parse_integer("workers", workers, 1)
        dask = parse_scheduler(scheduler)
        if report is not None:
            validation_html.check_directory(report)
        plans = validation_report.prepare(cancer, targets, model, clinical, treatments)
        labels = {plan.cancer: plan.model.label for plan in plans}
        settings = {"patients": n_patients, "seed": root_seed, "years": horizon}
        started = time.perf_counter()
        with opened(processes, dask) as backend, progress_bar(new_console(stderr=True)) as bar:
            done = validation_report.run(plans, backend=backend, bar=bar, **settings)
        elapsed = time.perf_counter() - started
        page = (None if report is None
                else validation_html.write_report(report, done, labels, **settings))
        if chosen is SummaryFormat.json:
            _write_summary(validation_report.document(done, labels, **settings))
        else:
            console = new_console()
            print_disclaimer(console)
            validation_report.print_validations(console, done, labels, **settings)
        if page is not None:
            typer.echo(f"Wrote {page}", err=True)
        typer.echo(f"{len(plans)} cancer type(s) x {n_patients:,} patients in {elapsed:.1f} s",
                   err=True)

