"""The cohort report's survival beside the registries' figures, as a table
(:mod:`metastasis.calibration.registry` measures it)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from metastasis.calibration.registry import RegistryComparison, verdict_sentence
from metastasis.cli.validation_report import (
    VERDICT_STYLES,
    check_data,
    estimate_text,
    published_text,
    verdict_text,
)


def registry_data(comparison: RegistryComparison) -> dict[str, Any]:
    """The comparison as data: the checks, or why there are none."""
    return {"compared": comparison.compared, "why": comparison.why_not,
            "met": comparison.count("meets"),
            "checks": [check_data(c) for c in comparison.checks],
            "sentence": verdict_sentence(comparison)}


def print_registry(console: Console, comparison: RegistryComparison) -> None:
    """The table of survival figures beside the registries', and the sentence."""
    if comparison.checks:
        table = Table(title="Survival beside registry figures (net survival, standard care)",
                      title_style="bold")
        for header, justify in (("registry figure", "left"),
                                ("this cohort (95 % CI)", "right"),
                                ("published ± tolerance", "right"), ("verdict", "left"),
                                ("patients", "right")):
            table.add_column(header, justify=justify)  # type: ignore[arg-type]
        for check in comparison.checks:
            table.add_row(check.target.label, estimate_text(check),
                          published_text(check.target),
                          Text(verdict_text(check), style=VERDICT_STYLES[check.verdict]),
                          f"{check.patients:,}")
        console.print(table)
    console.print(Text(verdict_sentence(comparison), style="bold" if comparison.checks
                       else ""), soft_wrap=True)
