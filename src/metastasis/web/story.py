"""A patient's result as the patient page tells it: events in words, the cell accounting.

The engine names events with short codes (``extravasated``, ``outgrowth``); a learner needs
a sentence.  The sentences live here rather than in the templates so that the JSON API can
return them too.  Each event keeps its step of the cascade, and the step links to the
guide's page about it (``guide_urls``), which is how a reader goes from "what happened" to
"why".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metastasis.results.patient import PatientResult
from metastasis.web.bodymap import DAYS_PER_YEAR, format_cells

EVENT_WORDS = {
    "primary_founded": "The first cancer cell of the primary tumour in the {site}.",
    "motility_acquired": "The primary now holds a cell able to move.",
    "local_invasion": "The primary breaks through its basement membrane (local invasion).",
    "shedding_began": "Cells start to enter the blood and lymph vessels.",
    "primary_clinical_size": "The primary reaches about 1 cm (10⁹ cells), a size a scan can "
    "show.",
    "extravasated": "A cell that travelled by {route} leaves the vessel in the {site} "
    "(lesion {lesion}).",
    "dormant": "That cell in the {site} stays dormant (lesion {lesion}).",
    "awakened": "The dormant cell in the {site} wakes and starts dividing (lesion {lesion}).",
    "micrometastasis": "A micrometastasis forms in the {site} (lesion {lesion}).",
    "outgrowth": "The micrometastasis in the {site} recruits blood vessels and grows out "
    "(lesion {lesion}).",
    "clinical_size": "The metastasis in the {site} reaches about 1 cm (lesion {lesion}).",
    "resistant_clone": "A drug-resistant clone of lesion {parent} survives and grows on in the "
    "{site} (lesion {lesion}).",
    "shed_total": "Over the whole course the primary shed {shed} cells: {shed_blood} into the "
    "blood, {shed_lymph} into the lymph, {shed_cavity} into a body cavity.",
    "transit_total": "Of them, {died_in_circulation} died on the way and {arrested} stopped "
    "in a small vessel or node.",
    "arrested_total": "{arrested_cells} stopped in the {site}.",
    "extravasated_total": "{extravasated_cells} left the vessels of the {site}; {outgrowth} of "
    "them founded a growing metastasis.",
    "lethal_burden": "The total tumour burden reaches a lethal level: the untreated natural "
    "history ends here.",
    "horizon": "The end of the simulated years.",
}
"""One sentence per event kind; ``{site}``, ``{route}``, ``{lesion}`` and the event's counts
are filled in, each count also as ``{<count>_cells}`` ("1 cell", "2 cells").  An unknown
kind (a newer engine) is shown by its code, never dropped."""

END_KINDS = frozenset({"lethal_burden", "horizon"})
TOTAL_KINDS = frozenset({"shed_total", "transit_total", "arrested_total", "extravasated_total"})


def describe_event(event: dict[str, Any], site_labels: dict[str, str]) -> str:
    """The sentence for one event of :meth:`PatientResult.to_dict`."""
    template = EVENT_WORDS.get(event["kind"])
    if template is None:
        return event["kind"].replace("_", " ").capitalize() + "."
    values: dict[str, Any] = {
        "site": site_labels.get(event["site"], event["site"]),
        "route": event.get("route") or "an unknown route",
        "lesion": event.get("lesion"),
        "parent": event.get("parent"),
    }
    counts = event.get("counts") or {}
    values.update({k: f"{v:,}" for k, v in counts.items()})
    values.update({f"{k}_cells": f"{v:,} cell" + ("" if v == 1 else "s")
                   for k, v in counts.items()})
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return event["kind"].replace("_", " ").capitalize() + "."


@dataclass(frozen=True)
class TimelineEntry:
    time: float
    years: float
    step: int
    step_name: str
    kind: str
    site: str
    text: str
    guide_url: str | None
    summary: bool  # an end-of-course total rather than a moment


def timeline(
    events: list[dict[str, Any]], site_labels: dict[str, str], guide_urls: dict[int, str]
) -> list[TimelineEntry]:
    """Events as the page lists them, each with its step's guide page."""
    return [
        TimelineEntry(
            time=e["time"],
            years=e["time"] / DAYS_PER_YEAR,
            step=e["step"],
            step_name=e["step_name"],
            kind=e["kind"],
            site=e["site"],
            text=describe_event(e, site_labels),
            guide_url=guide_urls.get(e["step"]),
            summary=e["kind"] in TOTAL_KINDS,
        )
        for e in events
    ]


ACCOUNTING_ROWS = (
    ("shed", "shed by the primary", 3),
    ("shed_blood", "… into the blood", 3),
    ("shed_lymph", "… into the lymph", 3),
    ("shed_cavity", "… into a body cavity", 3),
    ("died_in_circulation", "died in the blood, lymph or cavity", 4),
    ("arrested", "stopped in a small vessel or lymph node", 4),
    ("failed_extravasation", "never left the vessel", 5),
    ("extravasated", "left the vessel", 5),
    ("died_at_site", "died in the new tissue", 6),
    ("dormant", "stayed dormant", 6),
    ("colony_extinct", "started a colony that died out", 6),
    ("micrometastasis", "formed a micrometastasis that stayed small", 6),
    ("outgrowth", "founded a growing metastasis", 6),
)
"""The cascade as a funnel: key of :meth:`Accounting.totals`, words, step of the guide."""


@dataclass(frozen=True)
class AccountingRow:
    key: str
    words: str
    step: int
    cells: int
    share: str
    guide_url: str | None


def share_text(part: float, whole: float) -> str:
    """A share of the shed cells with enough digits for tiny fractions (0.000039 %)."""
    if whole <= 0:
        return "–"
    p = 100.0 * part / whole
    if p == 0.0 or p == 100.0:
        return f"{p:.0f} %"
    if p < 1.0:
        return f"{p:.2g} %"
    return f"{p:.1f} %"


def accounting(totals: dict[str, int], guide_urls: dict[int, str]) -> list[AccountingRow]:
    """The accounting totals in the order a cell meets them, with shares of all shed."""
    shed = float(totals.get("shed", 0))
    return [
        AccountingRow(key, words, step, int(totals[key]), share_text(totals[key], shed),
                      guide_urls.get(step))
        for key, words, step in ACCOUNTING_ROWS
        if key in totals
    ]


def clinical(patient: PatientResult) -> dict[str, Any] | None:
    """The clinical story (symptoms, diagnosis, stage, treatment), when the result has one.

    Seam for the clinical layer: today's :class:`PatientResult` is the untreated natural
    history and has none, so the page hides the section.  A result that carries a
    ``clinical`` attribute or a ``"clinical"`` entry in ``to_dict()`` is shown as given.
    """
    value = getattr(patient, "clinical", None)
    if value is None:
        return None
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return value if isinstance(value, dict) else {"summary": str(value)}


def headline(patient: PatientResult, site_labels: dict[str, str]) -> str:
    """One sentence that sums up the natural history."""
    first = patient.first_organ_metastasis()
    end_years = patient.end_time / DAYS_PER_YEAR
    if patient.end_reason == "lethal_burden":
        ending = f"the untreated cancer reached a lethal burden after {end_years:.1f} years"
    else:
        ending = f"the simulation stopped at {end_years:.1f} years"
    if first is None:
        spread = "no metastasis outside the lymph nodes started to grow"
    else:
        day, site = first
        spread = (f"the first metastasis outside the lymph nodes started to grow in the "
                  f"{site_labels.get(site, site)} after {day / DAYS_PER_YEAR:.1f} years")
    primary = patient.lesions.size_at(patient.end_time)[0]
    return (f"{spread.capitalize()}; {ending}, with a primary of "
            f"{format_cells(float(primary))} cells.")
