"""``metastasis calibrate --method abc`` on the command line: read the options, run the
ABC-SMC fit (:mod:`metastasis.calibration.abc`), word its posterior and write the fitted
knowledge files.

A fitted value is the posterior median, and its ``source`` says how to reproduce it: the whole
command with every option that changes the result (defaults included), the posterior median
and 90 % interval, the particles, generations, seed and final tolerance, and the targets.
Disease parameters are written to ``--out FILE.toml``; clinical and treatment parameters, when
fitted, to ``FILE.clinical.toml`` and ``FILE.treatments.toml`` beside it (each a whole file, to
use with ``--model``, ``--clinical`` and ``--treatments``), because the three files are loaded
separately everywhere else.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from rich.table import Table
from rich.text import Text

from metastasis.calibration.abc import Fit
from metastasis.calibration.parameters import PARAMETERS, File, Knowledge, parameter
from metastasis.calibration.targets import Target, load_targets
from metastasis.calibration.validation import Check
from metastasis.cli.usage import file_option
from metastasis.errors import ModelError
from metastasis.knowledge.loader import raw_knowledge, read_raw

DEFAULT_POPULATION = "20"
"""Particles per generation: enough for a median and a 90 % interval of a few parameters."""
DEFAULT_GENERATIONS = "3"
"""Generations after the prior sample: each shrinks the tolerance to the median distance."""
DEFAULT_PATIENTS = 200
"""Patients per evaluation: a validation cohort (every target, both arms) of 200 patients
costs about 20 s on two busy cores, and a fit runs about a hundred of them."""

PACKAGED: dict[File, str] = {"clinical": "clinical.toml", "treatments": "treatments.toml"}


def parse_parameters(text: str | None) -> list[str]:
    """``a,b,c`` into checked parameter names (in order, each once)."""
    names = [] if text is None else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ModelError("--parameters", text, "names separated by commas, from: "
                         + ", ".join(sorted(PARAMETERS)))
    for name in names:
        if name not in PARAMETERS:
            raise ModelError("--parameters", name, "one of " + ", ".join(sorted(PARAMETERS)))
        parameter(name).bounds  # noqa: B018 - a parameter without a prior cannot be fitted
    return list(dict.fromkeys(names))


def parse_prior_width(text: str) -> float:
    """``--prior-width K``: a finite factor > 1."""
    try:
        width = float(text)
    except ValueError:
        width = math.nan
    if not (math.isfinite(width) and width > 1.0):
        raise ModelError("--prior-width", text, "a factor > 1 (for example 3)")
    return width


def targets_to_fit(cancer: str, path: Path | None, names: str | None) -> list[Target]:
    """Every target of the cancer type (at diagnosis and survival), or the named ones."""
    with file_option("--targets"):
        every = load_targets(path)
    if cancer not in every:
        raise ModelError("--cancer", cancer, "a cancer type with calibration targets: "
                         + ", ".join(sorted(every)))
    own = every[cancer]
    if names is None:
        return list(own.values())
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen:
        raise ModelError("--target", names, "target names separated by commas")
    for name in chosen:
        if name not in own:
            raise ModelError("--target", name, ", ".join(own))
    return [own[name] for name in dict.fromkeys(chosen)]


def base_knowledge(model: Path | None, clinical: Path | None,
                   treatments: Path | None) -> Knowledge:
    """The three knowledge files as plain data: the user's, else the packaged ones."""

    def packaged(name: str) -> dict[str, Any]:
        text = resources.files("metastasis.knowledge.data").joinpath(name).read_bytes()
        return tomllib.loads(text.decode("utf-8"))

    return Knowledge(
        raw_knowledge(model),
        read_raw(clinical) if clinical is not None else packaged(PACKAGED["clinical"]),
        read_raw(treatments) if treatments is not None else packaged(PACKAGED["treatments"]),
    )


def command_line(cancer: str, names: list[str], targets: str | None, *, patients: int,
                 seed: int, years: float, population: int, generations: int,
                 files: dict[str, Path | None], prior_width: float | None = None) -> str:
    """The command that reproduces the fit: every option that changes the result, defaults
    included (``--workers`` does not change it and is left out)."""
    parts = ["metastasis calibrate", f"--cancer {cancer}", "--method abc",
             f"--parameters {','.join(names)}"]
    if targets is not None:
        parts.append(f"--target {','.join(n.strip() for n in targets.split(',') if n.strip())}")
    parts += [f"--patients {patients}", f"--seed {seed}", f"--years {years:g}",
              f"--population {population}", f"--generations {generations}"]
    if prior_width is not None:
        parts.append(f"--prior-width {prior_width:g}")
    parts += [f"{option} {path}" for option, path in files.items() if path is not None]
    return " ".join(parts)


def posterior_source(fit: Fit, name: str, command: str) -> str:
    """The ``source`` of one fitted value."""
    s = fit.summaries[name]
    targets = ", ".join(f"{t.name} {t.value:g}" for t in fit.targets)
    return (f"calibrated: `{command}`; posterior median {s.median:.4g} (90 % interval "
            f"{s.low:.3g}-{s.high:.3g}; prior log10-uniform {s.prior[0]:.4g}-"
            f"{s.prior[1]:.4g}) from {len(fit.posterior)} particles, "
            f"{_generations(len(fit.generations) - 1)} after the prior sample, final tolerance "
            f"{fit.epsilon:.3g} half-widths, {fit.patients} patients, seed {fit.seed}; "
            f"targets: {targets}")


def _generations(n: int) -> str:
    return f"{n} generation" + ("" if n == 1 else "s")


def fitted_knowledge(fit: Fit, command: str) -> Knowledge:
    """The knowledge files with every fitted value at its posterior median."""
    sources = {name: posterior_source(fit, name, command) for name in fit.summaries}
    return fit.base.with_values(fit.cancer, fit.values(), sources)


def toml_text(raw: dict[str, Any]) -> str:
    """A knowledge file as TOML (read back once, so what is written parses)."""
    text = tomli_w.dumps(raw)
    tomllib.loads(text)
    return text


def out_paths(out: Path, files: set[File]) -> dict[File, Path]:
    """Where each fitted file goes: the disease file at ``out``, the others beside it."""
    paths: dict[File, Path] = {"model": out}
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    for file in ("clinical", "treatments"):
        if file in files:
            paths[file] = out.with_name(f"{stem}.{file}.toml")
    return paths


def fitted_files(names: list[str]) -> set[File]:
    return {parameter(name).file for name in names}


# ---------------------------------------------------------------- words


def _figure(target: Target, value: float) -> str:
    if value != value:  # NaN
        return "no data"
    if target.statistic == "median_survival_months":
        return f"{value:.1f} mo"
    return f"{100 * value:.1f} %"


def _check_row(check: Check) -> list[str]:
    t = check.target
    low, high = t.acceptable
    model = _figure(t, check.estimate)
    if check.lower == check.lower and check.estimate == check.estimate:
        model += f" ({_figure(t, check.lower)}-{_figure(t, check.upper)})"
    return [t.name, model, _figure(t, t.value), f"{_figure(t, low)}-{_figure(t, high)}",
            check.verdict, f"{check.patients:,}"]


def print_abc(console: Console, fit: Fit, paths: dict[File, Path] | None = None) -> None:
    table = Table(title=f"Posterior ({len(fit.posterior)} particles, final tolerance "
                        f"{fit.epsilon:.3g} half-widths)", title_style="bold")
    for header in ("parameter", "before", "posterior median", "90 % interval", "prior"):
        table.add_column(header)
    for name, s in fit.summaries.items():
        table.add_row(name, f"{s.start:.4g}", f"{s.median:.4g}", f"{s.low:.3g}-{s.high:.3g}",
                      f"{s.prior[0]:.4g}-{s.prior[1]:.4g}")
    console.print(table)
    rounds = Table(title="Generations", title_style="bold")
    for header in ("generation", "tolerance", "evaluations", "accepted", "acceptance"):
        rounds.add_column(header)
    for g in fit.generations:
        rounds.add_row("prior" if g.t == 0 else str(g.t), f"{g.epsilon:.3g}",
                       str(g.simulations), str(g.particles), f"{100 * g.acceptance:.0f} %")
    console.print(rounds)
    checks = Table(title=f"Every target at the posterior median (distance "
                         f"{fit.at_median.distance:.3g}; best particle {fit.best.distance:.3g})",
                   title_style="bold")
    for header in ("target", "model (95 % CI)", "published", "acceptable", "verdict",
                   "patients"):
        checks.add_column(header)
    for check in fit.at_median.checks:
        checks.add_row(*_check_row(check))
    console.print(checks)
    console.print(Text(
        f"Cost: {fit.simulations} evaluations of {fit.patients} patients in "
        f"{fit.seconds:.0f} s ({fit.seconds / fit.simulations:.1f} s each).",
        style="bold"), soft_wrap=True)


def abc_data(fit: Fit, command: str) -> dict[str, Any]:
    return {
        "method": "abc", "cancer": fit.cancer, "command": command,
        "patients": fit.patients, "seed": fit.seed, "years": fit.years,
        "population": fit.population,
        "parameters": [{"name": name, "file": s.parameter.file,
                        "path": s.parameter.path(fit.cancer), "before": s.start,
                        "median": s.median, "q05": s.low, "q95": s.high,
                        "prior": list(s.prior),
                        "prior_reason": fit.prior_reason(name)}
                       for name, s in fit.summaries.items()],
        "posterior": fit.posterior.to_dict(orient="records"),
        "generations": [{"t": g.t, "epsilon": g.epsilon, "evaluations": g.simulations,
                         "accepted": g.particles} for g in fit.generations],
        "at_median": {"distance": fit.at_median.distance,
                      "targets": [_check_data(c) for c in fit.at_median.checks]},
        "best": {"values": fit.best.values, "distance": fit.best.distance,
                 "targets": [_check_data(c) for c in fit.best.checks]},
        "evaluations": fit.simulations, "seconds": fit.seconds,
    }


def _check_data(check: Check) -> dict[str, Any]:
    t = check.target
    return {"target": t.name, "label": t.label, "statistic": t.statistic,
            "published": t.value, "acceptable": list(t.acceptable), "model": check.estimate,
            "ci95": [check.lower, check.upper], "patients": check.patients,
            "verdict": check.verdict, "note": check.note}
