"""``metastasis calibrate`` on the command line: set the model beside its targets, fit one
parameter to one target, and write the calibrated knowledge base.

:mod:`metastasis.cli.calibration_command` parses the options; this module runs
:mod:`metastasis.calibration` and words what it returns.  Every figure printed is a share
among diagnosed patients with its 95 % Wilson interval, beside the published figure and its
source.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console
from rich.table import Table
from rich.text import Text

from metastasis.calibration.cohorts import CohortSettings, check, evaluator
from metastasis.calibration.parameters import current_value, parameter, with_value
from metastasis.calibration.search import Calibration, calibrate
from metastasis.calibration.statistics import Estimate
from metastasis.calibration.targets import Target, load_targets
from metastasis.cli.usage import file_option
from metastasis.errors import ModelError

DEFAULT_PARAMETER = "shedding_rate"
"""The parameter fitted unless another is named: it scales every founder a tumour makes, so
it moves every spread statistic in the same direction."""


def targets_for(cancer: str, path: Path | None) -> list[Target]:
    """The calibration targets of one cancer type that a cohort stopped at diagnosis
    measures."""
    with file_option("--targets"):
        every = load_targets(path)
    if cancer not in every:
        raise ModelError("--cancer", cancer, "a cancer type with calibration targets: "
                         + ", ".join(sorted(every)))
    # survival needs follow-up: `metastasis validate` measures those; calibrate stops at
    # diagnosis and takes the statistics of the diagnosis
    return [t for t in every[cancer].values() if t.at_diagnosis]


def choose_target(targets: list[Target], name: str | None) -> Target:
    """The named target, else the one marked ``fit = true``."""
    if name is None:
        fits = [t for t in targets if t.fit]
        if not fits:
            raise ModelError("--target", None, "a target name (this cancer type has no default "
                             "fit target): " + ", ".join(t.name for t in targets))
        return fits[0]
    for target in targets:
        if target.name == name:
            return target
    raise ModelError("--target", name, ", ".join(t.name for t in targets))


@dataclass(frozen=True)
class Fit:
    """A finished calibration with the knowledge base it gives and every target measured."""

    calibration: Calibration
    raw: dict[str, Any]
    checks: list[tuple[Target, Estimate]]
    command: str


def calibrated_source(calibration: Calibration, command: str) -> str:
    """The source a calibrated value carries: how to reproduce it, and what it was fitted to."""
    e = calibration.estimate
    low, high = e.interval
    return (f"calibrated: `{command}` gives {e.share:.3f} (95 % CI {low:.3f}-{high:.3f}, "
            f"{e.trials} diagnosed patients) against {calibration.target.value:g}: "
            f"{calibration.target.source}")


def fit(
    raw: dict[str, Any], settings: CohortSettings, targets: list[Target], target: Target,
    parameter_name: str, steps: int, command: str, progress: Any = None,
) -> Fit:
    """Search ``parameter_name`` for ``target``, then measure every target at the value."""
    chosen = parameter(parameter_name)
    start = current_value(raw, settings.cancer, chosen.name)
    result = calibrate(chosen, target, start, evaluator(raw, settings, chosen, target),
                       steps=steps, progress=progress)
    calibrated = with_value(raw, settings.cancer, chosen.name, result.value,
                            calibrated_source(result, command))
    return Fit(result, calibrated, check(calibrated, settings, targets), command)


def knowledge_toml(raw: dict[str, Any]) -> str:
    """The calibrated knowledge base as TOML (read back once, so what is written parses)."""
    text = tomli_w.dumps(raw)
    tomllib.loads(text)
    return text


# ---------------------------------------------------------------- words


def _share(e: Estimate) -> str:
    low, high = e.interval
    return f"{100 * e.share:.1f} % ({100 * low:.1f}-{100 * high:.1f})"


def _band(target: Target) -> str:
    low, high = target.band
    if low == high:
        return f"{100 * target.value:.1f} %"
    return f"{100 * target.value:.1f} % ({100 * low:.0f}-{100 * high:.0f})"


def checks_table(checks: list[tuple[Target, Estimate]], title: str) -> Table:
    table = Table(title=title, title_style="bold", show_lines=False)
    for header in ("target", "model (95 % CI)", "published", "agrees", "of patients"):
        table.add_column(header)
    for target, estimate in checks:
        table.add_row(target.label, _share(estimate), _band(target),
                      "yes" if estimate.agrees_with(target) else "no",
                      f"{estimate.trials:,}")
    return table


def print_sources(console: Console, checks: list[tuple[Target, Estimate]]) -> None:
    console.print(Text("Sources:", style="bold"))
    for target, _ in checks:
        console.print(f"  {target.label}: {target.source}", markup=False, soft_wrap=True)


def print_fit(console: Console, result: Fit) -> None:
    c = result.calibration
    table = Table(title=f"Search: {c.parameter.name} for '{c.target.label}'", title_style="bold")
    table.add_column(c.parameter.name)
    table.add_column("model (95 % CI)")
    for value, estimate in c.evaluations:
        mark = "  <- chosen" if value == c.value else ""
        table.add_row(f"{value:.4g}", _share(estimate) + mark)
    console.print(table)
    console.print(Text(f"{c.parameter.name} ({c.parameter.meaning}): {c.start:.4g} -> "
                       f"{c.value:.4g}", style="bold"), soft_wrap=True)
    for note in c.notes:
        console.print(Text(f"Note: {note}", style="yellow"), soft_wrap=True)
    console.print(checks_table(result.checks, "Every target at the calibrated value"))


def checks_data(checks: list[tuple[Target, Estimate]]) -> list[dict[str, Any]]:
    return [{"target": t.name, "label": t.label, "statistic": t.statistic, "site": t.site,
             "published": t.value, "band": list(t.band), "source": t.source,
             "model": e.share, "ci95": list(e.interval), "diagnosed": e.trials,
             "agrees": e.agrees_with(t)} for t, e in checks]


def fit_data(result: Fit) -> dict[str, Any]:
    c = result.calibration
    return {
        "parameter": c.parameter.name, "path": c.parameter.path(result.checks[0][0].cancer),
        "target": c.target.name, "start": c.start, "value": c.value,
        "bracketed": c.bracketed, "notes": list(c.notes),
        "evaluations": [{"value": v, "model": e.share, "ci95": list(e.interval)}
                        for v, e in c.evaluations],
        "targets": checks_data(result.checks), "command": result.command,
    }
