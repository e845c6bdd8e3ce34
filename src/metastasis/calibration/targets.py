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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from metastasis.errors import ModelError
from metastasis.knowledge.loader import _first_error, read_raw

DEFAULT_TARGETS = "calibration.toml"

Statistic = Literal["distant_share", "site_share", "site_share_of_distant"]
"""``distant_share``: diagnosed patients staged distant (M1); ``site_share``: diagnosed
patients with a metastasis found in ``site`` at diagnosis; ``site_share_of_distant``: the
same among distant-stage patients only."""


class Target(BaseModel):
    """One published figure for one cancer type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    cancer: str = ""
    label: str = Field(min_length=1)
    statistic: Statistic
    site: str | None = None
    value: float = Field(ge=0.0, le=1.0)
    low: float | None = Field(default=None, ge=0.0, le=1.0)
    high: float | None = Field(default=None, ge=0.0, le=1.0)
    source: str = Field(min_length=3)
    fit: bool = False
    """The target ``metastasis calibrate`` fits by default for this cancer type."""

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        needs_site = self.statistic != "distant_share"
        if needs_site and not self.site:
            raise ModelError("site", self.site, f"a site name for statistic {self.statistic}")
        if not needs_site and self.site:
            raise ModelError("site", self.site, "no site for statistic distant_share")
        low = self.value if self.low is None else self.low
        high = self.value if self.high is None else self.high
        if not low <= self.value <= high:
            raise ModelError("value", self.value, f"within the band [{low:g}, {high:g}]")
        return self

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
    return targets_from_dict(read_raw(path))
