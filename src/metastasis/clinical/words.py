"""The sentences that open a patient's clinical story, written once for every surface.

The command line (:mod:`metastasis.cli.clinical_story`) and the web
(:mod:`metastasis.web.clinical_view`) tell the same course; they used to word its summary
each in their own way, and the two drifted (issue 11: one story, which surfaces only
format).  The sentences a reader meets first, how the cancer was found, what was done, how the
story ended and, for a survivor, what is still hidden in the body, are built here from a
:class:`~metastasis.clinical.course.ClinicalResult`; each surface decides only how to show
them.  A cause of death may be given in more words by the caller (the command line says which
threshold was crossed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from metastasis.clinical.course import (
    DAYS_PER_YEAR,
    EMERGENCY,
    SCREENING,
    SUPPORTIVE_CARE,
    SYMPTOMS,
    ClinicalResult,
    Diagnosis,
)
from metastasis.results.patient import ABSENT_STATES

PATHWAY_PHRASES = {
    SYMPTOMS: "symptoms",
    SCREENING: "screening",
    EMERGENCY: "an emergency admission (too ill to wait for the work-up)",
}
"""How each pathway to a diagnosis reads after "through" or "after"."""

SHORT_SPAN_DAYS = 2 * DAYS_PER_YEAR
"""Spans shorter than two years are told in days, longer ones in years."""


def pathway_phrase(pathway: str) -> str:
    """The pathway in words (its code where a newer clinical layer adds one)."""
    return PATHWAY_PHRASES.get(pathway, pathway)


def when(day: float) -> str:
    """A day of the story with the years since the first cell: ``day 3,341 (9.1 y)``."""
    return f"day {math.floor(day):,} ({day / DAYS_PER_YEAR:.1f} y)"


def duration(days: float) -> str:
    """A span for people: days when short, years when long."""
    if days < SHORT_SPAN_DAYS:
        return f"{days:,.0f} days"
    return f"{days / DAYS_PER_YEAR:.1f} years"


def name_with_stage(dx: Diagnosis) -> str:
    """The diagnosis's name with its stage said once: a name at M0 already carries it
    (``colon cancer, stage III (regional)``); a metastatic one does not (``metastatic colon
    cancer (liver), stage IV (distant)``)."""
    if "stage" in dx.name:
        return dx.name
    return f"{dx.name}, stage {dx.stage.group} ({dx.stage.summary})"


def found_sentence(result: ClinicalResult) -> str:
    """When and how the cancer was found, with its name and stage, or that it never was
    within the years searched (an undiagnosed story ends there)."""
    dx = result.diagnosis
    if dx is None:
        return f"Not diagnosed in the {result.horizon_days / DAYS_PER_YEAR:g} years of this story."
    return (f"Diagnosed on {when(dx.day)} at age {dx.age_years:.1f}, through "
            f"{pathway_phrase(dx.pathway)}: {name_with_stage(dx)}.")


def care_sentence(result: ClinicalResult) -> str:
    """What was done: the protocol, supportive care only, or nothing."""
    if result.diagnosis is None:
        return "No treatment: nothing was found."
    if result.protocol == SUPPORTIVE_CARE:
        return f"Treatment: {SUPPORTIVE_CARE}, none aimed at the cancer."
    return f"Treatment: {result.protocol or 'none'}."


def ending_sentence(result: ClinicalResult, cause: str | None = None) -> str:
    """How the story ended: a death with its cause and the survival from diagnosis, or
    alive at the end of the follow-up (censored) or of the story."""
    survival = result.survival_from_diagnosis_days
    if result.death_day is not None:
        text = f"Died on {when(result.death_day)} of {cause or result.cause_of_death}"
        if survival is not None:
            text += f", {duration(survival)} after diagnosis"
        return text + "."
    if result.years_after_diagnosis is not None and result.diagnosis is not None:
        return (f"Alive {result.years_after_diagnosis:g} years after diagnosis, at the end of "
                f"follow-up ({when(result.horizon_days)}): censored, so survival is only "
                "known to be longer.")
    text = f"Alive at the end of the story ({when(result.horizon_days)})"
    if survival is not None:
        text += (f": censored, so survival after diagnosis is only known to exceed "
                 f"{duration(survival)}")
    return text + "."


MOST_SITES_NAMED = 3
"""Sites a sentence names before it counts the rest ("and 2 more sites")."""


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _sites(codes: list[str], labels: Mapping[str, str] | None) -> str:
    """``the liver``, ``the liver and lungs``, ``the liver, lungs, peritoneum and 2 more
    sites``."""
    names = [(labels or {}).get(code, code.replace("_", " ")) for code in codes]
    shown = names[:MOST_SITES_NAMED]
    if len(names) > MOST_SITES_NAMED:
        shown.append(_count(len(names) - MOST_SITES_NAMED, "more site"))
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return "the " + listed


def hidden_sentence(result: ClinicalResult, labels: Mapping[str, str] | None = None
                    ) -> str | None:
    """What a diagnosed patient alive at the end still carries, which the story's clinic
    never saw: the true state on the last day (None for a death or an undiagnosed patient,
    whose other sentences already say it).

    A survivor "alive at the end of follow-up" may be cured or may carry metastases that will
    kill later; a learner reading only the ending would take every survivor for cured (issue
    11: the headline must say what is hidden or returns).  Tumours of the clinical size or
    more (about 1 cm) are ones a scan could find; smaller deposits (dormant cells, colonies,
    micrometastases, small tumours) none can."""
    if result.diagnosis is None or result.death_day is not None:
        return None
    patient = result.patient
    day = patient.end_time
    lesions = patient.lesions
    present = np.flatnonzero(~np.isin(lesions.state_at(day), list(ABSENT_STATES)))
    if present.size == 0:
        return "At the end of follow-up no cancer cell was left in the body."
    sizes = lesions.size_at(day)[present]
    sites = lesions.site[present]
    by_cells: dict[str, float] = {}
    for site, cells in zip(sites.tolist(), sizes.tolist(), strict=True):
        name = patient.site_names[site]
        by_cells[name] = by_cells.get(name, 0.0) + cells
    where = _sites(sorted(by_cells, key=lambda s: -by_cells[s]), labels)
    visible = int((sizes >= patient.clinical_size_cells).sum())
    small = present.size - visible
    if visible:
        text = (f"Hidden from the clinic at the end of follow-up: "
                f"{_count(visible, 'tumour')} big enough for a scan to find (about 1 cm or "
                f"more)")
        if small:
            text += f" and {_count(small, 'smaller deposit')}"
        return text + f", in {where}."
    return (f"Hidden at the end of follow-up: {_count(small, 'deposit')} too small for any "
            f"scan, in {where}; they may grow later.")


def in_short(result: ClinicalResult, cause: str | None = None,
             labels: Mapping[str, str] | None = None) -> list[str]:
    """The opening lines of a story: found, care, ending, and for a survivor what is still
    hidden in the body (``labels`` name the sites)."""
    lines = [found_sentence(result), care_sentence(result), ending_sentence(result, cause)]
    hidden = hidden_sentence(result, labels)
    return lines if hidden is None else [*lines, hidden]


STATE_WORDS = {
    "dormant": ("dormant single cell", "dormant single cells"),
    "colony": ("microscopic colony", "microscopic colonies"),
    "micrometastasis": ("micrometastasis", "micrometastases"),
    "growing": ("growing metastasis", "growing metastases"),
}
"""Plain words for the lesion states of the true state at diagnosis."""


def present_by_site(result: ClinicalResult, labels: Mapping[str, str] | None = None
                    ) -> list[str]:
    """One sentence per organ holding distant deposits on the day of diagnosis, the most
    first: what was there, by state, and how many of them the scans found
    (:meth:`ClinicalResult.present_at_diagnosis`; the counts add up to the diagnosis's
    ``metastases_present``)."""
    dx = result.diagnosis
    if dx is None:
        return []
    order = list(STATE_WORDS)
    out = []
    present = result.present_at_diagnosis()
    for site, states in sorted(present.items(), key=lambda kv: -sum(kv[1].values())):
        parts = ", ".join(
            f"{n:,} {STATE_WORDS.get(state, (state, state))[n != 1]}"
            for state, n in sorted(states.items(),
                                   key=lambda kv: order.index(kv[0]) if kv[0] in order else 9))
        found = len({f.lesion for f in dx.findings if f.site == site})
        label = (labels or {}).get(site, site.replace("_", " "))
        out.append(f"{label}: {parts}; found {found:,}.")
    return out
