"""``metastasis validate`` on the command line: every published target of each cancer type set
beside the model's own figure, with its 95 % interval and a verdict.

:mod:`metastasis.cli.calibration_command` parses the options; this module checks what they
name before any patient is simulated (:func:`prepare`), runs
:func:`metastasis.calibration.validation.validate` for each cancer type on one backend
(:func:`run`), and words what it returns as tables (:func:`print_validations`) or data
(:func:`document`).  :mod:`metastasis.cli.validation_html` draws the same checks as a report
with figures, reusing the wording here, so the terminal, the JSON and the HTML page say the
same thing about every target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from metastasis.backends import Backend
from metastasis.calibration.targets import (
    MEDIAN_RELATIVE_TOLERANCE,
    SHARE_TOLERANCE,
    Target,
    load_targets,
)
from metastasis.calibration.validation import Check, Validation, validate
from metastasis.cli.clinical_report import ClinicalSetup, load_setup
from metastasis.cli.usage import file_option
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel

NET_SURVIVAL_NOTE = (
    "Survival is net survival: the model has no deaths from other causes, so its survival "
    "from diagnosis compares with the registries' net (relative) survival; the median "
    "survivals of metastatic patients are crude overall survival in their sources, where "
    "deaths from other causes are few beside those of the cancer."
)
VERDICT_NOTE = (
    "A target is met when the model's estimate (not its interval) lies within the published "
    "figure or band widened by the target's tolerance; 'no data' when the cohort holds no "
    "patient the figure is about, or follows them too briefly."
)
COHORT_NOTE = (
    "Patients are diagnosed from symptoms (no screening) and given the default plan for the "
    "stage found (standard care); targets about untreated patients are measured on the same "
    "virtual patients left untreated (common random numbers)."
)
NOTES = (NET_SURVIVAL_NOTE, VERDICT_NOTE, COHORT_NOTE)

VERDICT_STYLES = {"meets": "green", "misses": "red", "no data": "yellow"}


# ---------------------------------------------------------------- before simulating


@dataclass(frozen=True)
class Plan:
    """One cancer type checked and ready to validate."""

    model: ResolvedModel
    setup: ClinicalSetup
    targets: list[Target]

    @property
    def cancer(self) -> str:
        return self.model.cancer

    @property
    def arms(self) -> list[str]:
        """The arms :func:`validate` runs for these targets, in its order."""
        return ["standard care"] + (["untreated"] if any(t.arm == "untreated"
                                                         for t in self.targets) else [])


def chosen_cancers(cancer: str | None, every: dict[str, dict[str, Target]]) -> list[str]:
    """The cancer types named by ``--cancer`` (one, or several separated by commas), else
    every type with targets in the targets file's order."""
    if cancer is None:
        if not every:
            raise ModelError("--targets", "no targets", "a file with targets for at least one "
                             "cancer type")
        return list(every)
    names = [name.strip() for name in cancer.split(",")]
    allowed = "a cancer type with calibration targets: " + ", ".join(every)
    chosen: list[str] = []
    for name in names:
        if name not in every:
            raise ModelError("--cancer", name if name else cancer, allowed)
        if name not in chosen:
            chosen.append(name)
    return chosen


def prepare(
    cancer: str | None, targets_path: Path | None, model_path: Path | None,
    clinical_path: Path | None, treatments_path: Path | None,
) -> list[Plan]:
    """Load and check everything each chosen cancer type needs, before any simulation."""
    from metastasis import api

    with file_option("--targets"):
        every = load_targets(targets_path)
    plans = []
    for name in chosen_cancers(cancer, every):
        with file_option("--model"):
            model = api.load_model(name, model_path)
        setup = load_setup(model, model_path, clinical_path, treatments_path, None)
        plans.append(Plan(model, setup, list(every[name].values())))
    return plans


# ---------------------------------------------------------------- running


def run(
    plans: list[Plan], *, patients: int, seed: int, years: float, backend: Backend,
    bar: Progress | None = None,
) -> list[Validation]:
    """Validate each plan on ``backend``; ``bar`` gets one task per cancer type and arm."""
    tasks: dict[tuple[str, str], Any] = {}
    if bar is not None:
        for plan in plans:
            for arm in plan.arms:
                tasks[plan.cancer, arm] = bar.add_task(f"{plan.cancer}: {arm}", total=patients)
    done = []
    for plan in plans:
        def advance(arm: str, k: int, cancer: str = plan.cancer) -> None:
            if bar is not None:
                bar.advance(tasks[cancer, arm], k)

        done.append(validate(plan.model, plan.setup.clinical, plan.setup.treatments,
                             plan.targets, patients=patients, seed=seed, years=years,
                             backend=backend, progress=advance))
    return done


# ---------------------------------------------------------------- words


def is_median(target: Target) -> bool:
    return target.statistic == "median_survival_months"


def number(target: Target, value: float, unit: bool = True) -> str:
    """A figure of the target's kind: a percentage, or months for a median."""
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "not reached"
    if is_median(target):
        return f"{value:.1f} months" if unit else f"{value:.1f}"
    return f"{100 * value:.1f} %" if unit else f"{100 * value:.1f}"


def estimate_text(check: Check) -> str:
    """The model's figure with its 95 % interval: ``14.0 % (8.5-22.1)``."""
    target = check.target
    if math.isnan(check.estimate):
        return "—"
    if math.isnan(check.lower) or math.isnan(check.upper):
        return number(target, check.estimate)
    low = number(target, check.lower, unit=False)
    high = ("not reached" if math.isinf(check.upper)
            else number(target, check.upper, unit=False))
    return f"{number(target, check.estimate)} ({low}-{high})"


def tolerance_text(target: Target) -> str:
    """How far outside its band the model may sit: ``± 5 pts`` or ``± 25 %``."""
    if target.tolerance is not None:
        return f"± {100 * target.tolerance:g} pts"
    relative = target.relative_tolerance
    if relative is None and is_median(target):
        relative = MEDIAN_RELATIVE_TOLERANCE
    if relative is not None:
        return f"± {100 * relative:g} %"
    return f"± {100 * SHARE_TOLERANCE:g} pts"


def published_text(target: Target) -> str:
    """The published figure, its band where it has one, and its tolerance."""
    low, high = target.band
    text = number(target, target.value)
    if low != high:
        text += f" ({number(target, low, unit=False)}-{number(target, high, unit=False)})"
    return f"{text} {tolerance_text(target)}"


def acceptable_text(target: Target) -> str:
    """Where the model meets the target."""
    low, high = target.acceptable
    if not is_median(target):
        high = min(high, 1.0)  # a tolerance may reach past 100 %; no share does
    return f"{number(target, low, unit=False)}-{number(target, high)}"


def verdict_text(check: Check) -> str:
    return f"{check.verdict}: {check.note}" if check.note else check.verdict


def summary_line(validation: Validation, label: str) -> str:
    """``colorectal cancer: 7 of 18 targets met (2 no data)``."""
    return f"{label}: {_counts(list(validation.checks))}"


def overall_line(validations: list[Validation]) -> str:
    checks = [c for v in validations for c in v.checks]
    kinds = len(validations)
    return f"All {kinds} cancer types: {_counts(checks)}"


def _counts(checks: list[Check]) -> str:
    met = sum(c.verdict == "meets" for c in checks)
    missing = sum(c.verdict == "no data" for c in checks)
    text = f"{met} of {len(checks)} targets met"
    return text + (f" ({missing} with no data)" if missing else "")


def settings_line(patients: int, seed: int, years: float) -> str:
    return (f"{patients:,} virtual patients per cancer type, root seed {seed}, followed "
            f"{years:g} years from the first cancer cell.")


class Sources:
    """Each distinct source numbered once, in the order the tables first cite it."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def cite(self, source: str) -> int:
        return self.numbers.setdefault(source, len(self.numbers) + 1)


def checks_table(validation: Validation, label: str, sources: Sources) -> Table:
    table = Table(title=f"{label}: model beside registry figures", title_style="bold")
    for header, justify in (("target", "left"), ("model (95 % CI)", "right"),
                            ("published (band) ± tolerance", "right"),
                            ("meets within", "right"), ("verdict", "left"), ("n", "right"),
                            ("src", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for check in validation.checks:
        target = check.target
        table.add_row(target.label, estimate_text(check), published_text(target),
                      acceptable_text(target),
                      Text(verdict_text(check), style=VERDICT_STYLES[check.verdict]),
                      f"{check.patients:,}", f"[{sources.cite(target.source)}]")
    return table


def print_validations(
    console: Console, validations: list[Validation], labels: dict[str, str], *,
    patients: int, seed: int, years: float,
) -> None:
    """Tables, the count of targets met, the notes and the sources (the disclaimer is the
    caller's, printed first)."""
    console.print(Text("Validation against registry figures: " +
                       settings_line(patients, seed, years), style="bold"), soft_wrap=True)
    for note in NOTES:
        console.print(note, markup=False, soft_wrap=True, style="dim")
    sources = Sources()
    for validation in validations:
        label = labels[validation.cancer]
        console.print()
        console.print(checks_table(validation, label, sources))
        console.print(Text(summary_line(validation, label), style="bold"), soft_wrap=True)
    if len(validations) > 1:
        console.print()
        console.print(Text(overall_line(validations), style="bold"), soft_wrap=True)
    console.print()
    console.print(Text("Sources:", style="bold"))
    for source, index in sources.numbers.items():
        console.print(f"  [{index}] {source}", markup=False, soft_wrap=True)


# ---------------------------------------------------------------- data


def check_data(check: Check) -> dict[str, Any]:
    """Every field of the check and of its target (shares as fractions, medians in months;
    a median not reached or a figure with no data is null, with the reason in ``note``)."""
    target = check.target
    return {
        "target": target.name, "label": target.label, "statistic": target.statistic,
        "site": target.site, "stage": target.stage, "years": target.years, "arm": target.arm,
        "unit": "months" if is_median(target) else "fraction",
        "value": target.value, "band": list(target.band),
        "tolerance": target.tolerance, "relative_tolerance": target.relative_tolerance,
        "acceptable": list(target.acceptable),
        "estimate": check.estimate, "lower": check.lower, "upper": check.upper,
        "patients": check.patients, "verdict": check.verdict, "note": check.note,
        "population": target.population, "definition": target.definition,
        "source": target.source,
    }


def document(
    validations: list[Validation], labels: dict[str, str], *, patients: int, seed: int,
    years: float,
) -> dict[str, Any]:
    """The whole validation as data (the caller adds the disclaimer and version)."""
    checks = [c for v in validations for c in v.checks]
    return {
        "patients": patients, "root_seed": seed, "years": years,
        "notes": list(NOTES),
        "met": sum(c.verdict == "meets" for c in checks), "targets": len(checks),
        "cancers": [{
            "cancer": v.cancer, "label": labels[v.cancer], "met": v.met,
            "targets": len(v.checks), "checks": [check_data(c) for c in v.checks],
        } for v in validations],
    }
