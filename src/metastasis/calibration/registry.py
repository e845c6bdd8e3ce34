"""A clinical cohort's survival beside the registries' figures: what every report shows.

A learner reads a survival table as fact.  So wherever a report shows the model's survival
(the ``cohort`` command, its JSON, the web cohort page), it also shows each registry
survival figure of the cancer type (1- and 5-year survival by stage, median survival of
metastatic patients; ``calibration.toml``) measured on the same cohort, with its verdict.
The comparison is like for like only for the registries' usual patients: standard care,
no screening, the default plan; any other arm gets the reason there is no comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from metastasis.calibration.targets import Target, load_targets
from metastasis.calibration.validation import STANDARD_CARE, TREATED, Check, measure
from metastasis.clinical.cohort import ClinicalCohort
from metastasis.clinical.course import Arm

SURVIVAL_STATISTICS = ("survival", "median_survival_months")


@dataclass(frozen=True)
class RegistryComparison:
    """The cohort's survival figures beside the registries', or why there are none."""

    checks: tuple[Check, ...]
    why_not: str | None = None

    @property
    def compared(self) -> bool:
        return self.why_not is None

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)


def not_comparable(arm: Arm) -> str | None:
    """Why this arm's survival is not the registries' kind of survival (None if it is)."""
    if arm.screening:
        return "these patients were screened; registries count everyone, mostly unscreened"
    if arm.protocol is not None:
        return "these patients followed a chosen protocol, not the default plan"
    if not (arm.treat and arm.follow_up):
        return "these patients were not treated and followed as in standard care"
    return None


def survival_targets(cancer: str) -> list[Target]:
    """The registry survival figures of a cancer type about patients in standard care (all
    of them, or those of them given anti-tumour treatment)."""
    own = load_targets().get(cancer, {})
    return [t for t in own.values()
            if t.statistic in SURVIVAL_STATISTICS and t.arm in (STANDARD_CARE.name, TREATED)]


def compare(cohort: ClinicalCohort, arm: Arm) -> RegistryComparison:
    """Each survival target of the cohort's type measured on its patients, if comparable."""
    why = not_comparable(arm)
    if why is not None:
        return RegistryComparison((), why)
    targets = survival_targets(cohort.cancer)
    if not targets:
        return RegistryComparison((), "no registry survival figure for this cancer type in "
                                      "calibration.toml")
    cohorts = {STANDARD_CARE.name: cohort.patients}
    return RegistryComparison(tuple(measure(cohorts, target) for target in targets))


def verdict_sentence(comparison: RegistryComparison) -> str:
    """What the comparison means, plainly."""
    if not comparison.compared:
        return f"Registry survival figures are not shown: {comparison.why_not}."
    met, missed, none = (comparison.count(v) for v in ("meets", "misses", "no data"))
    text = f"{met} of {len(comparison.checks)} registry survival figures met"
    if none:
        text += f" ({none} with no data in this cohort)"
    if missed:
        return (text + ". Where the verdict is 'misses', the model's survival is not the "
                "registries': read it as an illustration of the mechanisms, not as a "
                "statistic (`metastasis validate` sets every target of every type).")
    return text + "."
