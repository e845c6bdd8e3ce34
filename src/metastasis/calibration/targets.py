"""Calibration targets: published figures the model's clinical statistics should meet.

Each target names a statistic of a clinical cohort (see :mod:`.statistics`), its published
value, an optional band the figure is quoted as (``low``-``high``), and its source.  Only
figures checked against their paper belong here: reference-figures marks recalled figures
as a starting range, never a target.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from metastasis.errors import ModelError
from metastasis.knowledge.files import errors_named
from metastasis.knowledge.loader import _first_error, read_raw
from metastasis.knowledge.schema import a_number
from metastasis.units import DAYS_PER_YEAR

DEFAULT_TARGETS = "calibration.toml"

Statistic = Literal["distant_share", "site_share", "site_share_of_distant", "stage_share",
                    "survival", "median_survival_months"]
"""``distant_share``: diagnosed patients staged distant (M1); ``site_share``: diagnosed
patients with a metastasis found in ``site`` at diagnosis; ``site_share_of_distant``: the
same among distant-stage patients only; ``stage_share``: diagnosed patients in ``stage``;
``survival``: Kaplan-Meier survival ``years`` after diagnosis of the patients diagnosed in
``stage``; ``median_survival_months``: their median survival from diagnosis, in months."""

AT_DIAGNOSIS: frozenset[str] = frozenset(
    {"distant_share", "site_share", "site_share_of_distant", "stage_share"})
"""Statistics of the diagnosis alone: a cohort stopped at diagnosis measures them."""

SHARE_TOLERANCE = 0.05
"""Default tolerance of a share or a survival (absolute): the calibration issue's 'at most 5
points away', for a target that states none of its own."""
MEDIAN_RELATIVE_TOLERANCE = 0.25
"""Default relative tolerance of a median survival: 'within 25 % of its target'."""
DAYS_PER_MONTH = DAYS_PER_YEAR / 12.0

Number = Annotated[float, BeforeValidator(a_number)]
"""A figure of a target: a number, never ``true``/``false`` or text (pydantic would read
``true`` as 1); its range is stated field by field."""

Stage = Literal["I", "II", "III", "IV", "localized", "regional", "distant"]
Arm = Literal["standard care", "treated", "untreated"]
"""Whose figure: every patient given the default plan (``standard care``, those given
supportive care only included, as in a registry), those of them given anti-tumour treatment
(``treated``), or the same patients left untreated (``untreated``)."""


class Target(BaseModel):
    """One published figure for one cancer type, with what it measures and how near the
    model must come to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    cancer: str = ""
    label: str = Field(min_length=1)
    statistic: Statistic
    site: str | None = None
    stage: Stage | None = None
    years: Number | None = Field(default=None, gt=0.0, le=30.0)
    """Years after diagnosis at which a ``survival`` target is read."""
    arm: Arm = "standard care"
    """Whose survival (see :data:`Arm`)."""
    value: Number = Field(ge=0.0, le=1200.0)
    low: Number | None = Field(default=None, ge=0.0, le=1200.0)
    high: Number | None = Field(default=None, ge=0.0, le=1200.0)
    population: str = ""
    """Who the figure is about, where and when (for example 'England, diagnosed 2008-2012')."""
    definition: str = ""
    """How the source measured it (net, relative or crude overall survival; among staged)."""
    tolerance: Number | None = Field(default=None, gt=0.0, le=1.0)
    """How far (absolute) the model may sit outside the published band and still meet it."""
    relative_tolerance: Number | None = Field(default=None, gt=0.0, le=1.0)
    """The same as a share of the band's ends (median survival)."""
    source: str = Field(min_length=3)
    fit: StrictBool = False
    """The target ``metastasis calibrate`` fits by default for this cancer type."""

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        needs_site = self.statistic in ("site_share", "site_share_of_distant")
        needs_stage = self.statistic in ("stage_share", "survival", "median_survival_months")
        if needs_site and not self.site:
            raise ModelError("site", self.site, f"a site name for statistic {self.statistic}")
        if not needs_site and self.site:
            raise ModelError("site", self.site, f"no site for statistic {self.statistic}")
        if needs_stage and not self.stage:
            raise ModelError("stage", self.stage, f"a stage for statistic {self.statistic}")
        if not needs_stage and self.stage:
            raise ModelError("stage", self.stage, f"no stage for statistic {self.statistic}")
        if (self.statistic == "survival") != (self.years is not None):
            raise ModelError("years", self.years, "years after diagnosis for statistic "
                             "survival only")
        if self.arm != "standard care" and self.statistic in AT_DIAGNOSIS:
            raise ModelError("arm", self.arm, "standard care for a statistic at diagnosis")
        if self.tolerance is not None and self.relative_tolerance is not None:
            raise ModelError("relative_tolerance", self.relative_tolerance,
                             "absent when tolerance is given (one kind of tolerance)")
        if self.statistic != "median_survival_months":
            for field in ("value", "low", "high"):
                number = getattr(self, field)
                if number is not None and number > 1.0:
                    raise ModelError(field, number, f"a share in [0, 1] for {self.statistic}")
        low = self.value if self.low is None else self.low
        high = self.value if self.high is None else self.high
        if not low <= self.value <= high:
            raise ModelError("value", self.value, f"within the band [{low:g}, {high:g}]")
        return self

    @property
    def at_diagnosis(self) -> bool:
        """Whether a cohort stopped at diagnosis measures it."""
        return self.statistic in AT_DIAGNOSIS

    @property
    def acceptable(self) -> tuple[float, float]:
        """The published band widened by the tolerance: where the model meets the target."""
        low, high = self.band
        if self.tolerance is not None:
            return (max(0.0, low - self.tolerance), high + self.tolerance)
        relative = self.relative_tolerance
        if relative is None and self.statistic == "median_survival_months":
            relative = MEDIAN_RELATIVE_TOLERANCE
        if relative is not None:
            return (low * (1.0 - relative), high * (1.0 + relative))
        return (max(0.0, low - SHARE_TOLERANCE), min(1.0, high + SHARE_TOLERANCE))

    @property
    def band(self) -> tuple[float, float]:
        """The published range (the value itself where the figure is a single number)."""
        return (self.value if self.low is None else self.low,
                self.value if self.high is None else self.high)


def targets_from_dict(raw: dict[str, Any]) -> dict[str, dict[str, Target]]:
    """Validate ``{cancer: {target name: {...}}}`` into targets keyed by cancer and name."""
    out: dict[str, dict[str, Target]] = {}
    for cancer, table in raw.items():
        if cancer in ("name", "description"):
            continue
        if not isinstance(table, dict):
            raise ModelError(cancer, type(table).__name__, "a table of targets")
        out[cancer] = {}
        for name, entry in table.items():
            if not isinstance(entry, dict):
                raise ModelError(f"{cancer}.{name}", type(entry).__name__, "a target table")
            try:
                target = Target.model_validate({**entry, "name": name, "cancer": cancer})
            except ValidationError as exc:
                error = exc.errors()[0]
                original = (error.get("ctx") or {}).get("error")
                if isinstance(original, ModelError):
                    raise ModelError(f"{cancer}.{name}.{original.field}", original.value,
                                     original.allowed) from None
                first = _first_error(exc)
                raise ModelError(f"{cancer}.{name}.{first.field}", first.value,
                                 first.allowed) from None
            out[cancer][name] = target
        fits = [t.name for t in out[cancer].values() if t.fit]
        if len(fits) > 1:
            raise ModelError(f"{cancer}.fit", fits, "at most one target with fit = true")
    return out


def load_targets(path: str | Path | None = None) -> dict[str, dict[str, Target]]:
    """The packaged calibration targets, or a user's own file."""
    if path is None:
        data = resources.files("metastasis.knowledge.data").joinpath(DEFAULT_TARGETS)
        return targets_from_dict(tomllib.loads(data.read_text(encoding="utf-8")))
    with errors_named(path):
        return targets_from_dict(read_raw(path))
