"""The clinical statistics that calibration targets name, measured on a clinical cohort.

Shares are among diagnosed patients (a patient not diagnosed by the horizon has no stage),
with a Wilson 95 % interval: the model's own sampling error, to set beside the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from metastasis.calibration.targets import Target
from metastasis.errors import ModelError


@dataclass(frozen=True)
class Estimate:
    """A share measured on a cohort: successes of trials, with its 95 % Wilson interval."""

    successes: int
    trials: int

    @property
    def share(self) -> float:
        return self.successes / self.trials if self.trials else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson score interval: keeps its coverage near 0 and 1, where the normal one
        does not, and shares of rare spread are often near 0."""
        from metastasis.results.statistics import wilson_interval

        return wilson_interval(self.successes, self.trials)  # (nan, nan) with no trials

    def agrees_with(self, target: Target) -> bool:
        """Whether the 95 % interval meets the target's published band."""
        low, high = self.interval
        band_low, band_high = target.band
        return low <= band_high and high >= band_low


def _sites(cell: object) -> set[str]:
    return set(str(cell).split(";")) - {""} if isinstance(cell, str) else set()


GROUPS = ("I", "II", "III", "IV")


def stage_column(stage: str) -> str:
    """The patients table's column a stage name is read from (group I-IV or summary)."""
    return "stage_group" if stage in GROUPS else "summary_stage"


def measure(patients: pd.DataFrame, target: Target) -> Estimate:
    """The target's statistic on a clinical cohort's patient table (statistics of the
    diagnosis only: survival needs :mod:`metastasis.calibration.validation`)."""
    if not target.at_diagnosis:
        raise ModelError(f"{target.cancer}.{target.name}.statistic", target.statistic,
                         "a statistic of the diagnosis (survival needs follow-up: validate)")
    diagnosed = patients[patients["diagnosed"]]
    distant = diagnosed["summary_stage"] == "distant"
    if target.statistic == "distant_share":
        return Estimate(int(distant.sum()), len(diagnosed))
    if target.statistic == "stage_share":
        assert target.stage is not None
        chosen = diagnosed[stage_column(target.stage)] == target.stage
        return Estimate(int(chosen.sum()), len(diagnosed))
    has_site = diagnosed["distant_sites_found"].map(lambda cell: target.site in _sites(cell))
    if target.statistic == "site_share":
        return Estimate(int(has_site.sum()), len(diagnosed))
    return Estimate(int((has_site & distant).sum()), int(distant.sum()))
