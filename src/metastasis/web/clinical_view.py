"""A clinical course and a clinical cohort as the explorer shows them: plain data and words.

The clinical layer (:mod:`metastasis.clinical`) has decided everything; this module only
turns a :class:`~metastasis.clinical.course.ClinicalResult` into JSON-ready data that the
patient page and ``/api/patient`` share, and a
:class:`~metastasis.clinical.cohort.ClinicalCohort` into stage counts, Kaplan-Meier curves
and causes of death for the cohort page and ``/api/cohort``.  The CLI has its own, richer
story (:mod:`metastasis.cli.clinical_story`); the web does not import CLI code, and the
sentences both say are written once, in :mod:`metastasis.clinical.words`.

The page keeps the true state and the observed state side by side (metastases present at
diagnosis against those the scans found), because that gap is what early detection is about.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from metastasis.calibration.registry import compare, verdict_sentence
from metastasis.clinical import words
from metastasis.clinical.cohort import STAGE_ORDER, ClinicalCohort
from metastasis.clinical.course import SUPPORTIVE_CARE, SUPPORTIVE_CARE_MEANING, Arm, ClinicalResult
from metastasis.jsondata import plain
from metastasis.results.statistics import kaplan_meier
from metastasis.web.bodymap import DAYS_PER_YEAR

STAGE_COLOURS = {"localized": "#0072B2", "regional": "#E69F00", "distant": "#D55E00"}
"""Okabe-Ito blue, orange and vermillion: the summary stages, as the CLI's PNG draws them."""

EVENT_KINDS = ("symptom", "screening", "fracture", "death")
"""Kinds of :class:`~metastasis.clinical.course.ClinicalEvent` the course writes; an unknown
kind from a newer clinical layer is shown by its code, never dropped."""


def _years(day: float | None) -> float | None:
    return None if day is None or not math.isfinite(day) else day / DAYS_PER_YEAR


def _alive_on(result: ClinicalResult, day: float) -> bool:
    """Treatment planned after death is kept in the data but marked: it was never given."""
    return result.death_day is None or day <= result.death_day


def outcome_text(result: ClinicalResult) -> str:
    """How the story ends, in one sentence (:mod:`metastasis.clinical.words`, as the
    command line says it)."""
    return words.ending_sentence(result)


def summary_text(result: ClinicalResult, site_labels: dict[str, str] | None = None) -> str:
    """The story's opening lines in one paragraph: found, care, ending, and for a survivor
    what is still hidden in the body."""
    return " ".join(words.in_short(result, labels=site_labels))


def course_payload(result: ClinicalResult, site_labels: dict[str, str], *, screening: bool
                   ) -> dict[str, Any]:
    """The clinical course as data: what ``/api/patient`` returns and the page shows."""
    dx = result.diagnosis
    diagnosis = None
    if dx is not None:
        diagnosis = {
            "day": dx.day,
            "years": _years(dx.day),
            "age_years": dx.age_years,
            "pathway": dx.pathway,
            "pathway_words": words.pathway_phrase(dx.pathway),
            "trigger": dx.trigger,
            "name": dx.name,
            "stage": {"t": dx.stage.t, "n": dx.stage.n, "m": dx.stage.m, "tnm": dx.stage.tnm,
                      "group": str(dx.stage.group), "summary": str(dx.stage.summary)},
            "biopsies": dx.biopsies,
            "confirmed": dx.confirmed,
            "distant_sites_found": [site_labels.get(s, s) for s in dx.distant_sites_found],
            "metastases_present": dx.metastases_present,
            "metastases_found": dx.metastases_found,
            "metastases_hidden": dx.metastases_hidden,
            "present_by_site": words.present_by_site(result, site_labels),
            "nodes_by_pathology": dx.nodes_by_pathology,
            "findings": [
                {"lesion": f.lesion, "site": f.site, "site_label": site_labels.get(f.site, f.site),
                 "diameter_mm": f.diameter_mm, "modality": f.modality, "day": f.day}
                for f in dx.findings
            ],
        }
    survival = result.survival_from_diagnosis_days
    return plain({
        "arm": result.arm,
        "screening": screening,
        "onset_age_years": result.onset_age_years,
        "summary": summary_text(result, site_labels),
        "events": [
            {"day": e.day, "years": _years(e.day), "kind": e.kind, "label": e.label,
             "detail": e.detail}
            for e in result.events
        ],
        "diagnosis": diagnosis,
        "protocol": result.protocol,
        "protocol_meaning": (SUPPORTIVE_CARE_MEANING if result.protocol == SUPPORTIVE_CARE
                             else None),
        "treatment": [
            {"day": e.day, "years": _years(e.day), "modality": e.modality,
             "therapy": e.therapy, "description": e.description, "outcome": e.outcome,
             "given": _alive_on(result, e.day)}
            for e in result.treatment
        ],
        "outcome": {
            "died": result.died,
            "death_day": result.death_day,
            "cause_of_death": result.cause_of_death,
            "censored": not result.died,
            "horizon_days": result.horizon_days,
            "survival_from_diagnosis_days": survival,
            "text": outcome_text(result),
        },
    })


# ---------------------------------------------------------------- cohorts


FIVE_YEARS = 5.0


def survival_curve(part: pd.DataFrame) -> dict[str, Any]:
    """Kaplan-Meier survival from diagnosis with its 95 % band, in years.

    :func:`metastasis.results.statistics.kaplan_meier`, the estimator behind
    :func:`metastasis.clinical.cohort.kaplan_meier` (whose summary numbers are returned next
    to the curve) and the CLI's figure, so the page draws exactly what the CLI draws.  The
    curve is given at every time of its timeline (0, then each distinct follow-up time).
    """
    curve = kaplan_meier(part["survival_days"].to_numpy(dtype=float) / DAYS_PER_YEAR,
                         part["died"].to_numpy(dtype=bool))
    median = curve.median().estimate
    five = curve.known_at(FIVE_YEARS)
    return {
        "patients": len(part),
        "deaths": int(part["died"].sum()),
        "median_years": None if math.isinf(median) else median,
        # as the CLI: none where five years lie beyond every patient's follow-up
        "five_year_survival": None if five is None else five.estimate,
        "years": curve.times.tolist(),
        "survival": curve.survival.tolist(),
        "ci_low": curve.lower.tolist(),
        "ci_high": curve.upper.tolist(),
    }


def registry_rows(cohort: ClinicalCohort, arm: Arm) -> dict[str, Any]:
    """The cohort's survival beside the registries' figures, for the page: each figure's
    label, this cohort's value and the published one (a share, or months), the verdict,
    and the plain sentence (:mod:`metastasis.calibration.registry`)."""
    comparison = compare(cohort, arm)
    rows = []
    for check in comparison.checks:
        target = check.target
        median = target.statistic == "median_survival_months"
        rows.append({"label": target.label, "unit": "months" if median else "share",
                     "model": check.estimate, "published": target.value,
                     "verdict": check.verdict, "note": check.note,
                     "patients": check.patients})
    return {"compared": comparison.compared, "rows": rows,
            "sentence": verdict_sentence(comparison)}


def cohort_clinical(cohort: ClinicalCohort, *, screening: bool) -> dict[str, Any]:
    """Stage at diagnosis, metastases at diagnosis, survival by stage, causes of death, and
    the survival beside the registries' figures."""
    frame = cohort.patients
    summary = cohort.summary()
    diagnosed = frame[frame["diagnosed"]]
    curves = {}
    for name in STAGE_ORDER:
        part = diagnosed[diagnosed["summary_stage"] == name]
        if len(part):
            curves[name] = survival_curve(part)
    n_diagnosed = max(len(diagnosed), 1)
    return plain({
        "arm": cohort.arm,
        "screening": screening,
        "patients": len(frame),
        "diagnosed": len(diagnosed),
        "stage_group": summary["stage_group"],
        "summary_stage": summary["summary_stage"],
        "stage_shares": {k: v / n_diagnosed for k, v in summary["stage_group"].items()},
        "metastases_at_diagnosis": summary["metastases_at_diagnosis"],
        "survival_by_stage": curves,
        "deaths": int(frame["died"].sum()),
        "causes_of_death": summary["causes_of_death"],
        "registry": registry_rows(cohort, Arm(cohort.arm, screening=screening)),
    })
