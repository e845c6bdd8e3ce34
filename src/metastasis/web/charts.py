"""Cohort results as JSON-ready data and as plotly figure specifications.

Figures are built here as plain dictionaries (plotly's JSON schema), not with the plotly
Python API: the page only needs the JSON, the same data serves the API, and the server
never imports plotly at all (the package is needed only for its copy of plotly.js, which
the app serves locally).  Every figure has a data table next to it on the page, so nothing
is conveyed by the picture alone.

Colours are the Okabe-Ito palette, distinguishable with the common colour-vision
deficiencies; the yellow comes last because it is faint on white.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metastasis.cohort import CohortResult
from metastasis.jsondata import plain
from metastasis.results.statistics import kaplan_meier as product_limit
from metastasis.web.bodymap import DAYS_PER_YEAR

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
             "#F0E442")
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 14,
        "color": "#1a1a1a"}

STAGE_COLUMN = "stage_group"
SURVIVAL_COLUMNS = ("survival_days", "died")
"""Columns of a clinical cohort table (as :mod:`metastasis.clinical.cohort` writes them) that
switch on the stage and survival charts.  Seam for the clinical layer: the untreated cohort
of :func:`metastasis.cohort.run_cohort` has neither, so those charts stay hidden."""


def cumulative_incidence(days: np.ndarray, n_patients: int, horizon: float
                         ) -> dict[str, list[float]]:
    """Share of all patients with a first distant metastasis by each day (a step curve).

    Every patient is followed to the same horizon or to death; death without distant
    spread is a competing event, not censoring, so the plain proportion over all patients
    is the cumulative incidence function and needs no Kaplan-Meier correction.
    """
    days = np.sort(days[np.isfinite(days)])
    x = [0.0, *days.tolist(), float(horizon)]
    y = [0.0, *(np.arange(1, days.size + 1) / n_patients).tolist(),
         float(days.size / n_patients)]
    return {"days": x, "share": y}


def clinical_data(patients: pd.DataFrame) -> dict[str, Any] | None:
    """Stage shares and a survival curve, when the cohort table has the clinical columns."""
    out: dict[str, Any] = {}
    if STAGE_COLUMN in patients:
        stages = patients[STAGE_COLUMN].dropna().astype(str)  # undiagnosed: no stage
        if len(stages):
            counts = stages.value_counts().sort_index()
            out["stage_shares"] = {str(k): float(v) / len(stages) for k, v in counts.items()}
    if all(c in patients for c in SURVIVAL_COLUMNS):
        time = patients[SURVIVAL_COLUMNS[0]].to_numpy(dtype=float)
        died = patients[SURVIVAL_COLUMNS[1]].to_numpy(dtype=bool)
        known = np.isfinite(time)  # survival is counted from diagnosis
        if known.any():
            out["survival"] = kaplan_meier(time[known], died[known])
    return out or None


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> dict[str, list[float]]:
    """Product-limit survival curve (days, survival) with right censoring: the corners of
    :func:`metastasis.results.statistics.kaplan_meier`'s step function, from (0, 1)."""
    days, survival = product_limit(time, event).steps()
    return {"days": days.tolist(), "survival": survival.tolist()}


def cohort_data(result: CohortResult, label: str, *, seed_drawn: bool = False
                ) -> dict[str, Any]:
    """What the API returns for one cohort and what the charts are drawn from."""
    patients = result.patients
    first = patients["first_distant_day"].to_numpy(dtype=float)
    provenance = {k: v for k, v in result.provenance.items() if k != "model"}
    provenance["seed_drawn"] = seed_drawn
    provenance["model"] = "omitted here; metastasis.cohort.rerun needs the full provenance"
    return plain({
        "cancer": result.provenance.get("cancer"),
        "label": label,
        "provenance": provenance,
        "summary": result.summary(),
        "first_distant_days": np.sort(first[np.isfinite(first)]),
        "cumulative_incidence": cumulative_incidence(
            first, len(patients), float(result.provenance.get("horizon_days", 0.0))
        ),
        "clinical": clinical_data(patients),
    })


PERCENT = " (%)"
"""How a y title says its axis is a percentage; the ticks then carry the unit too."""


def _layout(title: str, xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    """A chart's layout: the legend sits above the plot, where it cannot cover the x axis's
    labels (long organ names are drawn slanted below it), and a percentage axis says % on
    every tick as well as in its title."""
    yaxis: dict[str, Any] = {"title": {"text": ytitle}, "automargin": True,
                             "rangemode": "tozero"}
    if ytitle.endswith(PERCENT):
        yaxis["ticksuffix"] = " %"
    return {
        "title": {"text": title, "y": 0.97, "yanchor": "top"},
        "font": FONT,
        "xaxis": {"title": {"text": xtitle}, "automargin": True},
        "yaxis": yaxis,
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0,
                   "yanchor": "bottom"},
        "margin": {"t": 90, "r": 20, "b": 40, "l": 60},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        **extra,
    }


def sites_figure(cohorts: list[dict[str, Any]], site_labels: dict[str, str]
                 ) -> dict[str, Any]:
    """Share of patients with a growing metastasis in each site, one bar group per site."""
    shares: dict[str, float] = {}
    for c in cohorts:
        for s in c["summary"]["sites"]:
            shares[s["site"]] = max(shares.get(s["site"], 0.0), s["share"])
    sites = [s for s in sorted(shares, key=lambda s: -shares[s]) if shares[s] > 0]
    data = []
    for i, c in enumerate(cohorts):
        by_site = {s["site"]: s for s in c["summary"]["sites"]}
        rows = [by_site.get(s, {"share": 0.0, "ci_low": 0.0, "ci_high": 0.0}) for s in sites]
        data.append({
            "type": "bar",
            "name": c["label"],
            "x": [site_labels.get(s, s) for s in sites],
            "y": [100 * r["share"] for r in rows],
            "error_y": {
                "type": "data", "symmetric": False,
                "array": [100 * (r["ci_high"] - r["share"]) for r in rows],
                "arrayminus": [100 * (r["share"] - r["ci_low"]) for r in rows],
                "color": "#444444", "thickness": 1,
            },
            "marker": {"color": OKABE_ITO[i % len(OKABE_ITO)],
                       "line": {"color": "#1a1a1a", "width": 0.5}},
            "hovertemplate": "%{x}: %{y:.1f} %<extra>" + c["label"] + "</extra>",
        })
    return {
        "data": data,
        "layout": _layout(
            "Where metastases grow, by cancer type", "site",
            "patients with one there (%)", barmode="group",
        ),
    }


def incidence_figure(cohorts: list[dict[str, Any]]) -> dict[str, Any]:
    """Cumulative incidence of the first distant metastasis, one step curve per cancer."""
    data = []
    for i, c in enumerate(cohorts):
        curve = c["cumulative_incidence"]
        data.append({
            "type": "scatter", "mode": "lines", "name": c["label"],
            "x": [d / DAYS_PER_YEAR for d in curve["days"]],
            "y": [100 * s for s in curve["share"]],
            "line": {"shape": "hv", "width": 2.5, "color": OKABE_ITO[i % len(OKABE_ITO)],
                     "dash": ("solid", "dash", "dot", "dashdot")[i % 4]},
            "hovertemplate": "%{x:.1f} years: %{y:.1f} %<extra>" + c["label"] + "</extra>",
        })
    return {
        "data": data,
        "layout": _layout(
            "Time to the first distant metastasis", "years since the first cancer cell",
            "patients with a distant metastasis (%)",
        ),
    }


def histogram_figure(cohorts: list[dict[str, Any]]) -> dict[str, Any]:
    """When the first distant metastasis started to grow, among patients who had one."""
    data = [
        {
            "type": "histogram", "name": c["label"], "opacity": 0.65,
            "x": [d / DAYS_PER_YEAR for d in c["first_distant_days"]],
            "xbins": {"start": 0, "size": 0.5},
            "marker": {"color": OKABE_ITO[i % len(OKABE_ITO)],
                       "line": {"color": "#1a1a1a", "width": 0.5}},
            "hovertemplate": "%{x} years: %{y} patients<extra>" + c["label"] + "</extra>",
        }
        for i, c in enumerate(cohorts)
    ]
    return {
        "data": data,
        "layout": _layout(
            "First distant metastasis: when (patients who had one)",
            "years since the first cancer cell", "patients", barmode="overlay",
        ),
    }


STAGE_ORDER = ("localized", "regional", "distant")
STAGE_COLOURS = {"localized": "#0072B2", "regional": "#E69F00", "distant": "#D55E00"}
"""Okabe-Ito blue, orange and vermillion for the summary stages; cancer types are told
apart by the line's dash, so colour alone never carries a distinction."""

DASHES = ("solid", "dash", "dot", "dashdot")


def stage_groups(cohorts: list[dict[str, Any]]) -> list[str]:
    """Stage groups (I to IV) found in any of the cohorts, in order."""
    found: set[str] = set()
    for c in cohorts:
        block = c.get("clinical") or {}
        found |= set(block.get("stage_group") or {}) | set(block.get("stage_shares") or {})
    return sorted(found)


def clinical_figures(cohorts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stage at diagnosis and Kaplan-Meier survival by summary stage (clinical cohorts only).

    The survival curves are the Kaplan-Meier curves as :mod:`clinical_view` returns
    them (``survival_by_stage``), drawn as step lines; their numbers are in the page's
    table beside the figure.
    """
    figures = []
    with_stage = [c for c in cohorts if (c.get("clinical") or {}).get("stage_shares")]
    if with_stage:
        stages = stage_groups(with_stage)
        figures.append({
            "id": "stage",
            "data": [{
                "type": "bar", "name": c["label"], "x": [f"stage {s}" for s in stages],
                "y": [100 * c["clinical"]["stage_shares"].get(s, 0.0) for s in stages],
                "marker": {"color": OKABE_ITO[i % len(OKABE_ITO)],
                           "line": {"color": "#1a1a1a", "width": 0.5}},
                "hovertemplate": "%{x}: %{y:.1f} %<extra>" + c["label"] + "</extra>",
            } for i, c in enumerate(with_stage)],
            "layout": _layout("Stage at diagnosis", "stage group",
                              "diagnosed patients (%)", barmode="group"),
        })
    data = []
    for i, c in enumerate(cohorts):
        curves = (c.get("clinical") or {}).get("survival_by_stage") or {}
        for stage in STAGE_ORDER:
            curve = curves.get(stage)
            if not curve:
                continue
            name = f"{c['label']}, {stage} (n={curve['patients']})"
            data.append({
                "type": "scatter", "mode": "lines", "name": name,
                "x": curve["years"], "y": [100 * s for s in curve["survival"]],
                "line": {"shape": "hv", "width": 2.5, "color": STAGE_COLOURS[stage],
                         "dash": DASHES[i % len(DASHES)]},
                "hovertemplate": "%{x:.1f} years: %{y:.1f} % alive<extra>" + name
                + "</extra>",
            })
    if data:
        layout = _layout("Survival after diagnosis by stage (Kaplan-Meier)",
                         "years from diagnosis", "alive (%)")
        layout["yaxis"]["range"] = [0, 102]
        figures.append({"id": "survival", "data": data, "layout": layout})
    return figures
