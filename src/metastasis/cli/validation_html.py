"""The report ``metastasis validate --report DIR`` writes: one HTML page with the verdict
table of every cancer type and three figures per type (SVG, beside the page).

* survival: Kaplan-Meier curves from diagnosis by stage group I-IV of the standard-care
  cohort, with the registry's 1- and 5-year survival drawn as markers at their years (the
  published band as a thick bar, the band the model must reach as a thin one), and the
  median survival targets of metastatic patients drawn at half survival (the untreated
  stage IV curve dashed where an untreated target asks for it);
* stages: the model's stage distribution at diagnosis beside the registry's shares, where
  the targets give them (stage groups, or summary stages where a target is one);
* shares: every share target of the diagnosis as a dot with its 95 % interval beside the
  published band.

The directory is checked before any simulation (:func:`check_directory`) and written into a
staging folder that is moved into place only once complete (:func:`write_report`): a failure
half-way leaves nothing.  Every text from the targets file is escaped.  matplotlib is
imported inside the functions that draw, with the Agg canvas (no display, no global backend
switch).
"""

from __future__ import annotations

import contextlib
import math
import os
import textwrap
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metastasis import atomic
from metastasis.about import DISCLAIMER, __version__
from metastasis.calibration.statistics import GROUPS
from metastasis.calibration.targets import DAYS_PER_MONTH, Target
from metastasis.calibration.validation import Check, Validation
from metastasis.cli import validation_report as words
from metastasis.cli.output import shown
from metastasis.errors import ModelError
from metastasis.results.statistics import kaplan_meier, wilson_interval
from metastasis.units import DAYS_PER_YEAR

INDEX = "index.html"
STAGE_COLOURS = {"I": "#0072B2", "II": "#009E73", "III": "#E69F00", "IV": "#D55E00"}
UNTREATED_COLOUR = "#555555"
SUMMARY_STAGES = ("localized", "regional", "distant")
VERDICT_COLOURS = {"meets": "#1a7f37", "misses": "#cf222e", "no data": "#9a6700"}
STAGE_OFFSET = {"I": -0.12, "II": -0.04, "III": 0.04, "IV": 0.12}
"""Years each stage's registry survival is drawn beside its year (1 or 5)."""
SURVIVAL_YEARS_SHOWN = 10.0
"""The survival figure's horizon: every survival target is at 1 or 5 years and every median
well inside 10."""


# ---------------------------------------------------------------- the directory


def check_directory(path: Path) -> None:
    """Fail before any work unless ``path`` is a directory, or can be made one (a name
    longer than the file system allows, or a folder that cannot be read, is refused in one
    line, not a traceback)."""
    try:
        if path.exists() and not path.is_dir():
            raise ModelError("--report", shown(path), "a directory for the report (new or "
                             "existing), not a file")
        place = path if path.is_dir() else (path.parent if str(path.parent) else Path("."))
        if not place.is_dir():
            raise ModelError("--report", shown(path), f"a directory in an existing folder "
                             f"({shown(place)} is missing)")
    except OSError as exc:
        raise ModelError("--report", shown(path), f"a directory that can be made "
                         f"({exc.strerror})") from None
    if not os.access(place, os.W_OK | os.X_OK):
        raise ModelError("--report", shown(path), f"a writable place ({shown(place)} is not "
                         "writable)")


def write_report(
    path: Path, validations: list[Validation], labels: dict[str, str], *, patients: int,
    seed: int, years: float,
) -> Path:
    """Draw the figures and write the page into ``path``; return the page's path.

    The files are written into a staging folder: a new ``path`` is that folder renamed; an
    existing one receives the files one by one, the page last.
    """
    check_directory(path)
    try:
        with atomic.staged_folder(path, last=INDEX) as staging:
            figures: dict[str, list[tuple[str, str]]] = {}
            for validation in validations:
                figures[validation.cancer] = draw_figures(
                    staging, validation, labels[validation.cancer])
            page = page_html(validations, labels, figures, patients=patients, seed=seed,
                             years=years)
            (staging / INDEX).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ModelError("--report", str(path), f"a writable directory ({exc.strerror})"
                         ) from None
    return path / INDEX


# ---------------------------------------------------------------- figures


@contextlib.contextmanager
def _svg_settings() -> Any:
    import matplotlib

    # text kept as text (small, searchable files); a fixed salt and no date, so the same
    # validation draws the same file
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "metastasis",
                                "font.size": 9}):
        yield


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, folder: Path, name: str) -> str:
    figure.text(0.01, 0.005, DISCLAIMER, fontsize=6, color="#555555")
    figure.savefig(folder / name, format="svg", metadata={"Date": None})
    return name


def draw_figures(folder: Path, validation: Validation, label: str) -> list[tuple[str, str]]:
    """Every figure of one cancer type, as ``(file name, caption)``."""
    with _svg_settings():
        drawn = [(survival_figure(folder, validation, label),
                  "Kaplan-Meier survival from diagnosis by stage (shaded: 95 % band) and the "
                  "registry's figures: the dot is the published value, the thick bar its "
                  "band, the thin bar where the model meets it.")]
        stages = stage_figure(folder, validation, label)
        if stages is not None:
            drawn.append((stages, "Stage at diagnosis: the model's share with its 95 % "
                          "interval beside the registry's, with the band the model must "
                          "reach."))
        shares = shares_figure(folder, validation, label)
        if shares is not None:
            drawn.append((shares, "Every share target of the diagnosis: the model's "
                          "estimate and 95 % interval (coloured by verdict) against the "
                          "published band (dark) and the band that meets it (light)."))
    return drawn


def _diagnosed(validation: Validation, arm: str = "standard care") -> pd.DataFrame:
    patients = validation.cohorts[arm]
    diagnosed = patients[patients["diagnosed"]]
    return diagnosed[np.isfinite(diagnosed["survival_days"].to_numpy(dtype=float))]


def _curve(axes: Any, part: pd.DataFrame, colour: str, label: str, dashed: bool = False
           ) -> None:
    km = kaplan_meier(part["survival_days"].to_numpy(dtype=float) / DAYS_PER_YEAR,
                      part["died"].to_numpy(dtype=bool))
    style = "--" if dashed else "-"
    axes.step(km.times, km.survival, where="post", color=colour, linestyle=style,
              label=label, linewidth=1.4)
    if not dashed:
        axes.fill_between(km.times, km.lower, km.upper, step="post", color=colour,
                          alpha=0.15, linewidth=0)


def _target_colour(target: Target) -> str:
    if target.arm == "untreated":
        return UNTREATED_COLOUR
    return STAGE_COLOURS.get(target.stage or "", "#000000")


def survival_figure(folder: Path, validation: Validation, label: str) -> str:
    figure = _figure(8.5, 4.6)
    axes = figure.add_subplot()
    treated = _diagnosed(validation)
    for group in GROUPS:
        part = treated[treated["stage_group"] == group]
        if len(part):
            _curve(axes, part, STAGE_COLOURS[group], f"stage {group} (n={len(part)})")
    if "untreated" in validation.cohorts and any(
            c.target.arm == "untreated" for c in validation.checks):
        untreated = _diagnosed(validation, "untreated")
        part = untreated[untreated["stage_group"] == "IV"]
        if len(part):
            _curve(axes, part, UNTREATED_COLOUR, f"stage IV untreated (n={len(part)})",
                   dashed=True)
    marked = False
    for check in validation.checks:
        target = check.target
        colour = _target_colour(target)
        low, high = target.band
        accept_low, accept_high = target.acceptable
        if target.statistic == "survival":
            assert target.years is not None
            # side by side, so that the bands of the four stages at one year do not overlap
            x = target.years + STAGE_OFFSET.get(target.stage or "", 0.0)
            axes.plot([x, x], [accept_low, min(accept_high, 1.0)], color=colour,
                      linewidth=1, alpha=0.8)
            axes.plot([x, x], [low, high], color=colour, linewidth=4, alpha=0.8)
            axes.plot([x], [target.value], marker="D", color=colour, markeredgecolor="black",
                      markersize=6, linestyle="none")
            if not marked:  # one legend entry for all, in no stage's colour
                axes.plot([], [], marker="D", color="white", markeredgecolor="black",
                          linestyle="none", label="registry survival at 1 and 5 years")
                marked = True
        elif target.statistic == "median_survival_months":
            to_years = DAYS_PER_MONTH / DAYS_PER_YEAR
            axes.plot([accept_low * to_years, accept_high * to_years], [0.5, 0.5],
                      color=colour, linewidth=1, alpha=0.8)
            axes.plot([low * to_years, high * to_years], [0.5, 0.5], color=colour,
                      linewidth=4, alpha=0.8)
            axes.plot([target.value * to_years], [0.5], marker="o", color=colour,
                      markeredgecolor="black", markersize=6, linestyle="none",
                      label=f"registry median, {target.arm} stage {target.stage}")
    axes.axhline(0.5, color="#bbbbbb", linewidth=0.6, zorder=0)
    follow = max(1.0, min(SURVIVAL_YEARS_SHOWN, validation.years))
    axes.set_xlim(0, follow)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("years from diagnosis")
    axes.set_ylabel("share alive (net survival)")
    axes.set_title(f"{label}: survival by stage, model and registry", fontsize=10)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(figure, folder, f"{validation.cancer}-survival.svg")


def _stage_targets(validation: Validation) -> tuple[tuple[str, ...], str, dict[str, Check]]:
    """The stage axis the targets ask for and the target checked at each of its stages."""
    checks = [c for c in validation.checks
              if c.target.statistic in ("stage_share", "distant_share")]
    summary = any(c.target.stage in SUMMARY_STAGES for c in checks)
    stages, column = ((SUMMARY_STAGES, "summary_stage") if summary
                      else (GROUPS, "stage_group"))
    at: dict[str, Check] = {}
    for check in checks:
        stage: str | None = check.target.stage
        if check.target.statistic == "distant_share":
            stage = "distant" if summary else "IV"  # stage IV is M1, distant
        if stage is not None and stage in stages:
            at.setdefault(stage, check)
    return stages, column, at


def stage_figure(folder: Path, validation: Validation, label: str) -> str | None:
    stages, column, at = _stage_targets(validation)
    if not at:
        return None
    patients = validation.cohorts["standard care"]
    diagnosed = patients[patients["diagnosed"]]
    figure = _figure(6.5, 3.8)
    axes = figure.add_subplot()
    x = np.arange(len(stages))
    width = 0.38
    total = len(diagnosed)
    shares: list[float] = []
    errors: list[list[float]] = [[], []]
    for stage in stages:
        count = int((diagnosed[column] == stage).sum())
        share = count / total if total else math.nan
        low, high = wilson_interval(count, total) if total else (math.nan, math.nan)
        shares.append(share)
        errors[0].append(share - low)
        errors[1].append(high - share)
    axes.bar(x - width / 2, shares, width, yerr=errors, capsize=3, color="#56B4E9",
             label=f"model ({total:,} diagnosed; 95 % CI)")
    positions, values, below, above = [], [], [], []
    for i, stage in enumerate(stages):
        if stage in at:
            target = at[stage].target
            accept_low, accept_high = target.acceptable
            positions.append(i + width / 2)
            values.append(target.value)
            below.append(target.value - accept_low)
            above.append(accept_high - target.value)
    axes.bar(positions, values, width, yerr=[below, above], capsize=3, color="#999999",
             label="registry (bar: meets within)")
    axes.set_xticks(x, [s if column == "summary_stage" else f"stage {s}" for s in stages])
    axes.set_ylabel("share of diagnosed patients")
    axes.set_ylim(0, max(1e-9, *(s + e for s, e in zip(shares, errors[1], strict=True)
                                 if math.isfinite(s + e)), *(v + a for v, a in
                                                             zip(values, above, strict=True))
                         ) * 1.15)
    axes.set_title(f"{label}: stage at diagnosis", fontsize=10)
    axes.legend(fontsize=7)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(figure, folder, f"{validation.cancer}-stages.svg")


def shares_figure(folder: Path, validation: Validation, label: str) -> str | None:
    checks = [c for c in validation.checks if c.target.at_diagnosis]
    if not checks:
        return None
    figure = _figure(8.0, 1.3 + 0.5 * len(checks))
    axes = figure.add_subplot()
    for row, check in enumerate(reversed(checks)):
        target = check.target
        low, high = target.band
        accept_low, accept_high = target.acceptable
        axes.plot([100 * accept_low, 100 * accept_high], [row, row], color="#cccccc",
                  linewidth=9, solid_capstyle="butt")
        axes.plot([100 * low, 100 * high], [row, row], color="#777777", linewidth=9,
                  solid_capstyle="butt")
        axes.plot([100 * target.value], [row], marker="|", color="black", markersize=12)
        if math.isfinite(check.estimate):
            colour = VERDICT_COLOURS[check.verdict]
            axes.plot([100 * check.lower, 100 * check.upper], [row, row], color=colour,
                      linewidth=1.5)
            axes.plot([100 * check.estimate], [row], marker="o", color=colour, markersize=5)
        else:
            axes.text(1, row, f"no data: {check.note}", va="center", fontsize=7,
                      color=VERDICT_COLOURS["no data"])
    axes.set_yticks(range(len(checks)),
                    [textwrap.fill(c.target.label, 42) for c in reversed(checks)], fontsize=7)
    axes.set_ylim(-0.7, len(checks) - 0.3)
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of diagnosed patients (of the metastatic, where the label says so)")
    axes.set_title(f"{label}: shares at diagnosis", fontsize=10)
    axes.grid(axis="x", color="#eeeeee")
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(figure, folder, f"{validation.cancer}-shares.svg")


# ---------------------------------------------------------------- the page


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 76rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; line-height: 1.45; }
.disclaimer { background: #fff8c5; border: 1px solid #d4a72c; padding: .6rem .9rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .88rem; }
th, td { border-bottom: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left;
         vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
.meets { color: #1a7f37; font-weight: 600; } .misses { color: #cf222e; font-weight: 600; }
.no-data { color: #9a6700; font-weight: 600; }
.small { color: #57606a; font-size: .8rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; }
"""


def _verdict_cell(check: Check) -> str:
    css = check.verdict.replace(" ", "-")
    note = f'<div class="small">{escape(check.note)}</div>' if check.note else ""
    return f'<td class="{css}">{escape(check.verdict)}{note}</td>'


def _row(check: Check) -> str:
    target = check.target
    detail = "; ".join(part for part in (target.population, target.definition) if part)
    about = f'<div class="small">{escape(detail)}</div>' if detail else ""
    cells = [
        f"<td>{escape(target.label)}{about}</td>",
        f'<td class="num">{escape(words.estimate_text(check))}</td>',
        f'<td class="num">{escape(words.published_text(target))}</td>',
        f'<td class="num">{escape(words.acceptable_text(target))}</td>',
        _verdict_cell(check),
        f'<td class="num">{check.patients:,}</td>',
        f'<td class="small">{escape(target.source)}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _section(validation: Validation, label: str, figures: list[tuple[str, str]]) -> str:
    headers = ("target", "model (95 % CI)", "published (band) ± tolerance", "meets within",
               "verdict", "n", "source")
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    rows = "\n".join(_row(c) for c in validation.checks)
    drawn = "\n".join(
        f'<figure><img src="{escape(name)}" alt="{escape(caption)}">'
        f"<figcaption class=\"small\">{escape(caption)}</figcaption></figure>"
        for name, caption in figures)
    anchor = escape(validation.cancer)
    return (f'<section id="{anchor}"><h2>{escape(label)}</h2>\n'
            f"<p><strong>{escape(words.summary_line(validation, label))}</strong></p>\n"
            f"<table><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>\n"
            f"{drawn}</section>")


def page_html(
    validations: list[Validation], labels: dict[str, str],
    figures: dict[str, list[tuple[str, str]]], *, patients: int, seed: int, years: float,
) -> str:
    """The whole page (figures referenced by their file names, beside it)."""
    overview = "\n".join(
        f'<tr><td><a href="#{escape(v.cancer)}">{escape(labels[v.cancer])}</a></td>'
        f'<td class="num">{v.met}</td>'
        f'<td class="num">{sum(c.verdict == "misses" for c in v.checks)}</td>'
        f'<td class="num">{sum(c.verdict == "no data" for c in v.checks)}</td>'
        f'<td class="num">{len(v.checks)}</td></tr>'
        for v in validations)
    total = (f"<p><strong>{escape(words.overall_line(validations))}</strong></p>"
             if len(validations) > 1 else "")
    notes = "\n".join(f"<p>{escape(note)}</p>" for note in words.NOTES)
    sections = "\n".join(_section(v, labels[v.cancer], figures[v.cancer])
                         for v in validations)
    command = (f"metastasis validate --cancer {','.join(v.cancer for v in validations)} "
               f"--patients {patients} --seed {seed} --years {years:g}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metastasis: validation against registry figures</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Validation against registry figures</h1>
<p class="disclaimer"><strong>{escape(DISCLAIMER)}</strong></p>
<p>Settings: {escape(words.settings_line(patients, seed, years))}
metastasis {escape(__version__)}; rerun with <code>{escape(command)}</code>.</p>
{notes}
<table><thead><tr><th>cancer type</th><th>meets</th><th>misses</th><th>no data</th>
<th>targets</th></tr></thead><tbody>
{overview}
</tbody></table>
{total}
{sections}
<p class="disclaimer">{escape(DISCLAIMER)}</p>
</body>
</html>
"""
