"""A virtual patient's natural history, told in plain language.

This module only *words* a :class:`~metastasis.results.patient.PatientResult`: the engine has
already decided everything, and the story reads the public result (events, lesions,
accounting) plus the resolved model's anatomy, so that a learner can follow each event back
to a step of the cascade.  It returns plain strings so the tests can read the story and the
command decides how to style it.

A patient who reaches a lethal burden has thousands of events (every founder of a metastasis
arrives, perhaps sleeps, wakes, stalls and grows out).  Printing them all buries the story,
so by default the timeline keeps the *milestones*: everything the primary does, and the first
event of each kind in each organ; ``all_events=True`` keeps every line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metastasis.model.resolve import ResolvedModel
from metastasis.results import numbers
from metastasis.results.patient import STEPS, Event, PatientResult
from metastasis.results.words import Anatomy, EventWords

TOTAL_KINDS = frozenset(
    {"shed_total", "transit_total", "arrested_total", "extravasated_total"}
)
"""Summary events stamped at the end of the run: told in the accounting, not the timeline."""

END_KINDS = frozenset({"horizon", "lethal_burden"})

HIDDEN_TOP = 3
"""How many organs the 'still hidden' sentence names; the table lists them all."""



@dataclass(frozen=True)
class StoryLine:
    """One line of the timeline: when, which step, what happened."""

    time: float
    step: int
    kind: str
    text: str

    def render(self) -> str:
        return (
            f"{numbers.day(self.time)} ({numbers.years(self.time)}) · step {self.step}, "
            f"{STEPS[self.step]}: {self.text}"
        )


@dataclass(frozen=True)
class SiteRow:
    """Where the cells that arrested in one site ended up (one row of the accounting table)."""

    site: str
    arrested: int
    extravasated: int
    dormant: int
    microscopic: int
    growing: int
    largest_cells: float

    def cells(self) -> list[str]:
        """The row as table cells, in the order of :data:`SITE_HEADERS`."""
        c = numbers.count
        largest = c(self.largest_cells) if self.growing else "-"
        return [self.site, c(self.arrested), c(self.extravasated), c(self.dormant),
                c(self.microscopic), c(self.growing), largest]


SITE_HEADERS = (
    "organ", "arrested", "left vessels", "dormant cells", "microscopic", "growing",
    "largest (cells)",
)
SITE_WIDTHS = (34, 9, 12, 13, 11, 7, 15)


@dataclass
class Story:
    """The whole story of one patient, as plain text pieces in reading order."""

    title: str
    header: list[str]
    timeline: list[StoryLine]
    hidden_events: int
    spread: list[str]
    accounting: list[str]
    site_rows: list[SiteRow]
    ending: list[str]

    def lines(self) -> list[str]:
        """The story as plain lines (what tests and a plain terminal read)."""
        out = [self.title, *self.header, "", "Timeline"]
        out += [line.render() for line in self.timeline]
        if self.hidden_events:
            out.append(hidden_note(self.hidden_events))
        out += ["", "Where it spread", *self.spread, "", "Cell accounting", *self.accounting]
        if self.site_rows:
            out.append("")
            out.append(_row(SITE_HEADERS))
            out += [_row(row.cells()) for row in self.site_rows]
        out += ["", "End", *self.ending]
        return out


def _row(cells: Sequence[str]) -> str:
    """A fixed-width table row: the organ left-aligned, the counts right-aligned."""
    first, *rest = cells
    return "  ".join([f"{first:<{SITE_WIDTHS[0]}}",
                      *(f"{c:>{w}}" for c, w in zip(rest, SITE_WIDTHS[1:], strict=True))])


def hidden_note(n: int) -> str:
    return (
        f"… and {n:,} more events of the same kinds in the same organs "
        "(--all-events shows every one; --format json lists them all)."
    )


def _milestones(events: list[Event]) -> list[bool]:
    """Which events the short timeline keeps.

    Everything the primary does; the first event of each kind in each organ; and the first
    cell each organ receives from a metastasis rather than the primary (spread from spread).
    """
    seen: set[tuple[str, str, bool]] = set()
    keep = []
    for event in events:
        if event.lesion == 0 or event.kind == "primary_founded":
            keep.append(True)
            continue
        key = (event.kind, event.site, event.kind == "extravasated" and event.parent > 0)
        keep.append(key not in seen)
        seen.add(key)
    return keep


def _naming(patient: PatientResult, anatomy: Anatomy, model: ResolvedModel) -> str:
    """Name the disease after the primary, listing where it has spread."""
    end = patient.end_time
    distant = patient.distant_rows(growing_by=end)
    growing = patient.metastasis_rows(growing_by=end)
    sites = patient.site_names
    by_onset = distant[np.argsort(patient.lesions.outgrowth[distant], kind="stable")]
    distant_sites = list(dict.fromkeys(sites[int(s)] for s in patient.lesions.site[by_onset]))
    nodes = any(sites[int(s)] == "regional_lymph_nodes" for s in patient.lesions.site[growing])
    node_note = " with involved regional lymph nodes" if nodes else ""
    if distant_sites:
        where = ", ".join(anatomy.label(s) for s in distant_sites)
        return (
            f"metastatic {model.naming} ({where}){node_note}: named after where it began, "
            f"because every metastasis is made of {model.naming} cells."
        )
    if nodes:
        return f"{model.naming} spread to the regional lymph nodes, with no distant metastasis."
    return f"{model.naming} without any growing metastasis."


def _spread(patient: PatientResult, anatomy: Anatomy, model: ResolvedModel) -> tuple[
    list[str], list[SiteRow]
]:
    """Sites with growing metastases and what is still hidden, per site."""
    end = patient.end_time
    lesions = patient.lesions
    names = patient.site_names
    size = lesions.size_at(end)
    state = lesions.state_at(end)
    acc = patient.accounting
    arrested = acc.arrested_by_site
    extravasated = acc.extravasated_by_site
    never_wake = acc.fate_by_site("dormant")
    stalled = acc.fate_by_site("micrometastasis")
    rows: list[SiteRow] = []
    lines: list[str] = []
    growing_lines: list[str] = []
    hidden: list[tuple[int, int, int, str]] = []
    for j, site in enumerate(names):
        mine = np.flatnonzero((lesions.site == j) & (lesions.id > 0))
        n_growing = int(np.sum(state[mine] == "growing"))
        dormant = int(never_wake[j]) + int(np.sum(state[mine] == "dormant"))
        microscopic = int(stalled[j]) + int(np.sum(np.isin(state[mine],
                                                              ("colony", "micrometastasis"))))
        largest = float(size[mine][state[mine] == "growing"].max()) if n_growing else 0.0
        if arrested[j] or mine.size:
            rows.append(SiteRow(anatomy.label(site), int(arrested[j]), int(extravasated[j]),
                                dormant, microscopic, n_growing, largest))
        label = anatomy.label(site)
        if n_growing:
            growing_lines.append(
                f"  {label}: {n_growing:,} growing metastas{'is' if n_growing == 1 else 'es'}, "
                f"the largest {numbers.volume(largest, model.cells_per_cm3)}"
            )
        if dormant or microscopic:
            hidden.append((dormant + microscopic, dormant, microscopic, label))
    primary = numbers.volume(float(size[0]), model.cells_per_cm3)
    lines.append(f"The primary ({anatomy.label(patient.primary_site)}) holds {primary}.")
    if growing_lines:
        lines.append("Growing metastases at the end:")
        lines += growing_lines
    else:
        lines.append("No metastasis was growing at the end.")
    if hidden:
        dormant_total = sum(h[1] for h in hidden)
        microscopic_total = sum(h[2] for h in hidden)
        top = ", ".join(h[3] for h in sorted(hidden, key=lambda h: -h[0])[:HIDDEN_TOP])
        lines.append(
            f"Still hidden at the end, too small for any scan: {numbers.count(dormant_total)} "
            f"dormant single cells and {numbers.count(microscopic_total)} microscopic colonies "
            f"in {len(hidden)} organ{'s' if len(hidden) > 1 else ''}, most in: {top} "
            "(see the table below)."
        )
    first = patient.first_distant_metastasis()
    if first is not None:
        lines.append(
            f"First distant metastasis: {anatomy.label(first[1])}, growing from "
            f"{numbers.day(first[0]).lower()} ({numbers.years(first[0])})."
        )
    lines.append(f"Diagnosis name: {_naming(patient, anatomy, model)}")
    return lines, rows


def _accounting(patient: PatientResult) -> list[str]:
    """Where every shed cell went, in the order a cell meets each hurdle."""
    t = patient.accounting.totals()
    shed = t["shed"]
    if shed == 0:
        return ["No cell left the primary before the end."]
    c, s = numbers.count, numbers.share
    routes = ", ".join(
        f"{s(t[f'shed_{r}'], shed)} into the {word}"
        for r, word in (("blood", "blood"), ("lymph", "lymph"), ("cavity", "body cavity"))
        if t[f"shed_{r}"]
    )
    settled = t["extravasated"]
    return [
        f"Of {c(shed)} cells shed (step 3: {routes}):",
        f"  step 4: {s(t['died_in_circulation'], shed)} died in circulation "
        f"({c(t['died_in_circulation'])}) and {s(t['arrested'], shed)} arrested in a capillary "
        f"bed or lymph node ({c(t['arrested'])});",
        f"  step 5: {s(settled, shed)} left the vessels ({c(settled)}); "
        f"{c(t['failed_extravasation'])} arrested cells never did;",
        f"  step 6: of those that left, {c(t['died_at_site'])} died in the new tissue, "
        f"{c(t['dormant'])} stayed dormant, {c(t['colony_extinct'])} started colonies that "
        f"died out, {c(t['micrometastasis'])} formed micrometastases that never grew out, and "
        f"{c(t['outgrowth'])} founded growing metastases ({s(t['outgrowth'], shed)} of the "
        "cells shed).",
    ]


def _ending(patient: PatientResult, model: ResolvedModel) -> list[str]:
    total = float(patient.lesions.size_at(patient.end_time).sum())
    burden = numbers.volume(total, model.cells_per_cm3)
    when = f"{numbers.day(patient.end_time)} ({numbers.years(patient.end_time)})"
    if patient.end_reason == "lethal_burden":
        return [
            f"{when}: the total tumour burden reached {numbers.count(model.lethal_burden_cells)} "
            "cells, a burden the model treats as lethal. This untreated natural history "
            "ends here."
        ]
    return [
        f"{when}: the simulated horizon of {numbers.years(patient.horizon_days)} is reached "
        f"with a total tumour burden of {burden}. This untreated natural history ends here."
    ]


def tell(
    patient: PatientResult, model: ResolvedModel, *, years: float, all_events: bool = False
) -> Story:
    """Word one patient's result as a :class:`Story`."""
    anatomy = Anatomy(model)
    told = EventWords(patient, model)
    events = [e for e in patient.events() if e.kind not in TOTAL_KINDS | END_KINDS]
    keep = [True] * len(events) if all_events else _milestones(events)
    timeline = [
        StoryLine(e.time, e.step, e.kind, told.sentence(e))
        for e, k in zip(events, keep, strict=True)
        if k
    ]
    hidden = len(events) - len(timeline)
    spread, rows = _spread(patient, anatomy, model)
    header = [
        f"Cancer type: {model.label} (primary in the {anatomy.label(patient.primary_site)}); "
        f"untreated natural history over {years:g} years.",
        f"Root seed {patient.root_seed}, patient index {patient.patient_index} "
        f"(rerun with --seed {patient.root_seed} --patient {patient.patient_index}).",
    ]
    return Story(
        title=f"The story of virtual patient {patient.patient_index} ({model.label})",
        header=header,
        timeline=timeline,
        hidden_events=hidden,
        spread=spread,
        accounting=_accounting(patient),
        site_rows=rows,
        ending=_ending(patient, model),
    )
