"""A patient's result as the patient page tells it: events in words, the cell accounting.

The engine names events with short codes (``extravasated``, ``outgrowth``); a learner needs
a sentence.  The sentences live here rather than in the templates so that the JSON API can
return them too.  Each event keeps its step of the cascade, and the step links to the
guide's page about it (``guide_urls``), which is how a reader goes from "what happened" to
"why".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import Event, PatientResult
from metastasis.results.words import EventWords
from metastasis.web.bodymap import DAYS_PER_YEAR, format_cells

EVENT_WORDS = {
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
"""One sentence per kind of event the page tells beyond the lesions' own: the cell
accounting's totals and the end; ``{site}`` and the event's counts are filled in, each count
also as ``{<count>_cells}`` ("1 cell", "2 cells").  The lesions' events are worded by
:class:`metastasis.results.words.EventWords`, as the command line words them.  An unknown
kind (a newer engine) is shown by its code, never dropped."""

END_KINDS = frozenset({"lethal_burden", "horizon"})
TOTAL_KINDS = frozenset({"shed_total", "transit_total", "arrested_total", "extravasated_total"})


def describe_event(event: dict[str, Any], site_labels: dict[str, str]) -> str:
    """The sentence for a total or the end (:data:`EVENT_WORDS`), from an event of
    :meth:`PatientResult.to_dict`."""
    template = EVENT_WORDS.get(event["kind"])
    if template is None:
        return event["kind"].replace("_", " ").capitalize() + "."
    values: dict[str, Any] = {"site": site_labels.get(event["site"], event["site"])}
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


def sentences(patient: PatientResult, model: ResolvedModel, site_labels: dict[str, str],
              events: Sequence[Event]) -> list[str]:
    """The sentence of each of ``events`` (the patient's, or a page of them), in order: a
    lesion's event in the words every surface uses
    (:class:`~metastasis.results.words.EventWords`), a total or the end in
    :data:`EVENT_WORDS`."""
    told = EventWords(patient, model)
    out = []
    for event in events:
        if event.kind in EVENT_WORDS or event.lesion < 0:  # a total or the end
            out.append(describe_event({"kind": event.kind, "site": event.site,
                                       "counts": event.counts}, site_labels))
        else:
            text = told.sentence(event)
            out.append(text[:1].upper() + text[1:])
    return out


def timeline(
    patient: PatientResult, model: ResolvedModel, site_labels: dict[str, str],
    guide_urls: dict[int, str],
) -> list[TimelineEntry]:
    """Events as the page lists them, each with its step's guide page."""
    events = patient.events()
    return [
        TimelineEntry(
            time=e.time,
            years=e.time / DAYS_PER_YEAR,
            step=e.step,
            step_name=e.step_name,
            kind=e.kind,
            site=e.site,
            text=text,
            guide_url=guide_urls.get(e.step),
            summary=e.kind in TOTAL_KINDS,
        )
        for e, text in zip(events, sentences(patient, model, site_labels, events),
                           strict=True)
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
