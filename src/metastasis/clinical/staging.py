"""Staging and naming: T, N, M, the stage group I-IV, the summary stage and the name.

The rule is a simplified, educational TNM (real TNM rules differ by cancer type; colorectal
T, for instance, is depth of invasion, not size).  It is:

* **T** from the primary's largest diameter and whether it has invaded (the disease
  process's breach, step 2 of the cascade): Tis (in situ) if it has not invaded, whatever
  its size; otherwise T1, T2, T3 up to the cancer type's size cut-offs and T4 above.  The
  cut-offs are data, per cancer type, in the clinical knowledge base (``[staging]`` in
  ``clinical.toml``, :class:`~metastasis.clinical.schema.TCutoffs`): the default is T1 up to
  20 mm, T2 up to 50 mm, T3 up to 100 mm, and a cancer whose real T is not size (colorectal)
  has its own, placed to give its real T categories.  Tis N0 M0 is staged with group I.
* **N** from the number of involved regional lymph nodes found: N0 none, N1 one to three,
  N2 four or more.
* **M** M1 when a distant metastasis has been found, else M0.
* **Group** IV with M1; otherwise from the cancer type's table of T and N (data,
  ``[stage_groups]`` in ``clinical.toml``, :class:`~metastasis.clinical.schema.StageGroups`),
  by default the colorectal rule: I (Tis-T2 N0), II (T3-4 N0), III (any T, N1-2).
* **Summary** localized (N0 M0), regional (N1-2 M0), distant (M1), as SEER reports it.

Undetected micrometastases do not enter: staging is what the clinic has found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from metastasis.clinical.schema import StageGroups, TCutoffs
from metastasis.errors import ModelError
from metastasis.knowledge.schema import Sourced

N2_MIN_NODES = Sourced(
    value=4.0,
    source="AJCC Cancer Staging Manual, 8th ed., colorectal and breast: N1 is 1-3 involved "
    "regional nodes, N2 four or more",
)

Group = Literal["I", "II", "III", "IV"]

DEFAULT_GROUPS = StageGroups(
    N0=["I", "I", "I", "II", "II"],
    N1=["III"] * 5,
    N2=["III"] * 5,
    source="AJCC Cancer Staging Manual, 8th ed., colorectal: I is T1-2 N0, II T3-4 N0, III any "
    "N+ (Tis N0, stage 0 there, is counted with I)",
)
Summary = Literal["localized", "regional", "distant"]


@dataclass(frozen=True)
class Stage:
    """A stage: T, N and M categories, the stage group and the summary stage."""

    t: str
    n: str
    m: str
    group: Group
    summary: Summary

    @property
    def tnm(self) -> str:
        """The categories in the usual order, e.g. ``T2 N1 M0``."""
        return f"{self.t} {self.n} {self.m}"


def _t_category(primary_diameter_mm: float, invaded: bool, cutoffs: TCutoffs) -> str:
    if not invaded:
        return "Tis"
    if primary_diameter_mm <= cutoffs.t1_max_mm.value:
        return "T1"
    if primary_diameter_mm <= cutoffs.t2_max_mm.value:
        return "T2"
    if primary_diameter_mm <= cutoffs.t3_max_mm.value:
        return "T3"
    return "T4"


def stage(
    primary_diameter_mm: float,
    invaded: bool,
    involved_nodes: int,
    distant_sites: Sequence[str],
    *,
    cutoffs: TCutoffs,
    groups: StageGroups | None = None,
) -> Stage:
    """Stage a cancer from what has been found (see the module docstring for the rule).

    ``distant_sites``: sites where a distant metastasis has been found (any non-empty list
    means M1; distant lymph nodes count as distant).  ``cutoffs``: the cancer type's T
    cut-offs (:meth:`~metastasis.clinical.schema.ClinicalKnowledge.t_cutoffs`); required, so
    that no caller stages one cancer by another's rule without saying so.  ``groups``: its
    stage groups (:meth:`~metastasis.clinical.schema.ClinicalKnowledge.groups`; None: the
    colorectal rule, :data:`DEFAULT_GROUPS`).
    """
    if not math.isfinite(primary_diameter_mm) or primary_diameter_mm < 0.0:
        raise ModelError("primary_diameter_mm", primary_diameter_mm, "a finite size >= 0 mm")
    if involved_nodes < 0:
        raise ModelError("involved_nodes", involved_nodes, "a count >= 0")
    t = _t_category(primary_diameter_mm, invaded, cutoffs)
    n = "N0" if involved_nodes == 0 else "N1" if involved_nodes < N2_MIN_NODES.value else "N2"
    m = "M1" if len(distant_sites) else "M0"
    if m == "M1":
        return Stage(t, n, m, "IV", "distant")
    group = (groups or DEFAULT_GROUPS).group(t, n)
    return Stage(t, n, m, group, "localized" if n == "N0" else "regional")


def diagnosis_name(naming: str, stage: Stage, distant_site_labels: Sequence[str]) -> str:
    """The diagnosis as a doctor would say it, named after the primary.

    ``metastatic colon cancer (liver, lungs)`` when M1 (sites in the order given, each once),
    else ``colon cancer, stage II (localized)``.
    """
    if stage.m == "M1":
        labels = list(dict.fromkeys(distant_site_labels))
        return f"metastatic {naming} ({', '.join(labels)})" if labels else f"metastatic {naming}"
    return f"{naming}, stage {stage.group} ({stage.summary})"
