"""The event log of a patient, derived from its lesions and cell accounting.

Below :mod:`metastasis.results.patient`, which calls it: the patient's type is needed here
for annotations only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from metastasis.model.resolve import FATES
from metastasis.model.routing import MUTATION_ROUTE, ROUTE_NAMES

if TYPE_CHECKING:
    from metastasis.results.patient import PatientResult

STEPS = {
    1: "tumour growth",
    2: "local invasion",
    3: "entering blood or lymph",
    4: "travelling through the body",
    5: "leaving circulation",
    6: "new tumour growth",
}
"""The six steps of the metastatic cascade, as the guide numbers them."""


@dataclass(frozen=True)
class Event:
    """One entry of a patient's story, tied to a step of the cascade."""

    time: float
    step: int
    kind: str
    site: str
    lesion: int
    parent: int
    counts: dict[str, int] = field(default_factory=dict)
    route: str = ""

    @property
    def step_name(self) -> str:
        return STEPS[self.step]




CLONE = "resistant_clone"
"""Event kind of a clone that survived a drug by mutation and grows on as its own lesion."""


def lesion_events(patient: PatientResult) -> list[Event]:
    """The disease's events, each lesion told once, in time order: the one story of what the
    disease did, whether or not treatment changed it.

    Treatment closes a lesion's row and opens a new one (a *segment*) that repeats the
    founding columns; an event is kept only when the row that describes the lesion at that
    time says it happened then (``valid_from <= t < valid_to``), so a lesion removed or
    killed is never told to grow out afterwards, and each kind of event is told once per
    lesion (a colony knocked back by a drug that re-forms a micrometastasis is not a new step
    of the cascade).  Founding and sleep come from the lesion's first row; a clone that arose
    by mutation inside a lesion is told as such.  Untreated, every lesion has one row and
    each founder's columns are told as they are.
    """
    table = patient.lesions
    names = patient.site_names
    end = patient.end_time
    primary = names[int(table.site[0])]
    events: list[Event] = [Event(0.0, 1, "primary_founded", primary, 0, -1)]

    def add(time: float, step: int, kind: str, row: int, route: str = "") -> None:
        if math.isfinite(time) and time <= end:
            events.append(Event(float(time), step, kind, names[int(table.site[row])],
                                int(table.id[row]), int(table.parent[row]), route=route))

    add(patient.motility_time, 1, "motility_acquired", 0)
    add(patient.breach_time, 2, "local_invasion", 0)
    add(patient.breach_time, 3, "shedding_began", 0)
    clinical = table.time_to_size(patient.clinical_size_cells)
    rows_of: dict[int, list[int]] = {}
    for row in np.argsort(table.valid_from, kind="stable").tolist():
        rows_of.setdefault(int(table.id[row]), []).append(row)
    for lesion, rows in rows_of.items():
        told: set[str] = set()
        first = rows[0]
        if lesion != 0:
            route = int(table.route[first])
            if route == MUTATION_ROUTE:
                parent_step = 1 if int(table.parent[first]) == 0 else 6
                add(table.arrival[first], parent_step, CLONE, first)
            elif route >= 0:
                add(table.arrival[first], 5, "extravasated", first, route=ROUTE_NAMES[route])
            if table.awakening[first] > table.arrival[first]:
                add(table.arrival[first], 6, "dormant", first)
                if table.awakening[first] < table.valid_to[first]:
                    add(table.awakening[first], 6, "awakened", first)
        step = 1 if lesion == 0 else 6
        for row in rows:
            kinds = [("clinical_size", float(clinical[row]))]
            if lesion != 0:
                kinds = [("micrometastasis", float(table.micrometastasis[row])),
                         ("outgrowth", float(table.outgrowth[row])), *kinds]
            for kind, time in kinds:
                name = "primary_clinical_size" if lesion == 0 and kind == "clinical_size" else kind
                valid = table.valid_from[row] <= time < table.valid_to[row]
                if kind == "micrometastasis" and not table.micrometastasis[row] > max(
                        table.awakening[row], table.arrival[row]):
                    valid = False  # a colony that skipped the plateau: no micrometastasis step
                if valid and name not in told:
                    told.add(name)
                    add(time, step, name, row)
    order = sorted(range(len(events)), key=lambda i: (events[i].time, i))
    return [events[i] for i in order]


def build_events(patient: PatientResult) -> list[Event]:
    """Every event of the history up to its end, in time order: the lesions' events
    (:func:`lesion_events`), then the cell accounting's totals and the end."""
    names = patient.site_names
    end = patient.end_time
    primary = names[int(patient.lesions.site[0])]
    events = lesion_events(patient)
    totals = patient.accounting.totals()
    acc = patient.accounting
    summary_site = "body"
    events.append(
        Event(
            end,
            3,
            "shed_total",
            primary,
            0,
            -1,
            counts={k: totals[k] for k in ("shed", "shed_blood", "shed_lymph", "shed_cavity")},
        )
    )
    events.append(
        Event(
            end,
            4,
            "transit_total",
            summary_site,
            -1,
            -1,
            counts={
                "died_in_circulation": totals["died_in_circulation"],
                "arrested": totals["arrested"],
            },
        )
    )
    arrested = acc.arrested_by_site
    extravasated = acc.extravasated_by_site
    for j in np.flatnonzero(arrested):
        events.append(
            Event(end, 4, "arrested_total", names[j], -1, -1, counts={"arrested": int(arrested[j])})
        )
    for j in np.flatnonzero(extravasated):
        counts = {fate: int(acc.fate_by_site(fate)[j]) for fate in FATES[1:]}
        counts["extravasated"] = int(extravasated[j])
        events.append(Event(end, 5, "extravasated_total", names[j], -1, -1, counts=counts))
    events.append(Event(end, 6, patient.end_reason, summary_site, -1, -1))
    order = sorted(range(len(events)), key=lambda i: (events[i].time, i))
    return [events[i] for i in order]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def patient_to_dict(patient: PatientResult) -> dict[str, Any]:
    """Plain, JSON-ready data of one patient (infinite times become null)."""
    names = patient.site_names
    lesions = patient.lesions
    sizes_at_end = lesions.size_at(patient.end_time)
    return {
        "patient_index": patient.patient_index,
        "root_seed": patient.root_seed,
        "cancer": patient.cancer,
        "horizon_days": patient.horizon_days,
        "end_time": patient.end_time,
        "end_reason": patient.end_reason,
        "motility_time": _finite(patient.motility_time),
        "breach_time": _finite(patient.breach_time),
        "lesions": [
            {
                "id": int(lesions.id[i]),
                "site": names[int(lesions.site[i])],
                "parent": int(lesions.parent[i]),
                "route": ROUTE_NAMES[int(lesions.route[i])] if lesions.route[i] >= 0 else None,
                "arrival": float(lesions.arrival[i]),
                "awakening": float(lesions.awakening[i]),
                "micrometastasis": float(lesions.micrometastasis[i]),
                "outgrowth": float(lesions.outgrowth[i]),
                "size_at_end": float(sizes_at_end[i]),
            }
            for i in range(len(lesions))
        ],
        "accounting": {
            "totals": patient.accounting.totals(),
            "by_site": {
                names[j]: {
                    "arrested": int(patient.accounting.arrested_by_site[j]),
                    **{f: int(patient.accounting.fate_by_site(f)[j]) for f in FATES},
                }
                for j in np.flatnonzero(patient.accounting.arrested_by_site)
            },
        },
        "events": [
            {
                "time": e.time,
                "step": e.step,
                "step_name": e.step_name,
                "kind": e.kind,
                "site": e.site,
                "lesion": e.lesion,
                "parent": e.parent,
                "route": e.route,
                "counts": e.counts,
            }
            for e in patient.events()
        ],
    }
