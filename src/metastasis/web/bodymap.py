"""The body map: where each lesion of a virtual patient sits, and how big it is, on any day.

The silhouette and the organ shapes are a hand-drawn schematic (front view; the patient's
right is on the viewer's left, as in medical drawings) in the ``bodymap.svg`` template.
This module holds the layout the drawing and the lesions share (a few anchor points per
site), and turns a :class:`~metastasis.results.patient.PatientResult` and a day into plain
data for the template: one circle per lesion, one curve per route of spread.

Sizes come from :meth:`LesionTable.size_at` and states from :meth:`LesionTable.state_at`,
the public result type, so the map shows exactly what the model says.  A circle's radius
grows with the logarithm of its cells: lesions span one cell to 10^11 cells, and on any
linear scale all but the largest would be invisible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from metastasis.api import DAYS_PER_YEAR
from metastasis.model.routing import ROUTE_NAMES
from metastasis.results.patient import ABSENT_STATES, PatientResult

WIDTH, HEIGHT = 640, 720
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
SPIRAL_STEP = 5.5
"""Distance (px) between lesions packed around one anchor, on a sunflower spiral."""

Point = tuple[float, float]

ANCHORS: dict[str, tuple[Point, ...]] = {
    "brain": ((320, 62), (306, 58), (334, 66)),
    "lungs": ((288, 210), (352, 210), (288, 235), (352, 235)),
    "pleura": ((262, 236), (378, 236)),
    "breast": ((276, 238), (364, 238)),
    "liver": ((290, 285), (318, 282), (270, 283)),
    "stomach": ((356, 285),),
    "other_splanchnic": ((320, 382), (384, 283)),
    "pancreas": ((328, 314),),
    "adrenal_glands": ((281, 322), (359, 322)),
    "kidney": ((282, 347), (358, 347)),
    "colon": ((271, 388), (369, 388), (320, 338)),
    "peritoneum": ((320, 414), (366, 366), (274, 366)),
    "prostate": ((320, 443),),
    "bone": ((320, 252), (290, 545), (265, 433), (350, 545), (229, 232), (320, 170),
             (375, 433), (411, 232)),
    "skin": ((289, 615), (424, 332), (252, 196), (351, 615)),
    "distant_lymph_nodes": ((298, 142), (342, 142)),
    "other_tissues": ((352, 585), (418, 300), (288, 585)),
}
"""Where lesions of each site are drawn: the first anchor takes the first lesion (for the
primary site, the primary), the next lesion goes to the next anchor, and so on round.  The
label's place is computed (:func:`_label_places`)."""

REGIONAL_NODES = "regional_lymph_nodes"
REGIONAL_ANCHORS: dict[str, tuple[Point, ...]] = {
    "colon": ((304, 362), (336, 362)),
    "stomach": ((340, 300), (312, 298)),
    "pancreas": ((340, 300), (312, 298)),
    "other_splanchnic": ((340, 300), (312, 298)),
    "liver": ((306, 302),),
    "breast": ((252, 206), (258, 220)),
    "lungs": ((320, 200), (320, 222)),
    "pleura": ((320, 200), (320, 222)),
    "prostate": ((300, 432), (340, 432)),
    "skin": ((274, 452), (286, 462)),
    "kidney": ((320, 338), (320, 356)),
}
"""Regional nodes are the ones that drain the primary, so they are drawn next to it:
mesenteric for the bowel, axillary for the breast, hilar for the lung, inguinal for a
melanoma of the leg, para-aortic by default."""
DEFAULT_REGIONAL: tuple[Point, ...] = ((320, 338), (320, 356))

LABEL_LEFT_X, LABEL_RIGHT_X = 10.0, 630.0
"""The two label columns: names start at the left one and end at the right one."""
LABEL_GAP = 20.0
"""Least distance (px) between two labels' baselines in one column (12 px text)."""
LABEL_TOP, LABEL_BOTTOM = 40.0, 680.0
LABEL_BASELINE = 4.0
"""A label's baseline sits this far below its anchor, so the text centres on the leader."""
NEIGHBOURHOOD = 60.0
"""Labels within this height of a two-sided site's anchors count as crowding that column."""
CHAR_WIDTH = 6.6
"""Width of one character of the 12 px label font, to end a leader where its text ends."""


def _label_places(targets: dict[str, tuple[Point, ...]]) -> dict[str, tuple[str, float, Point]]:
    """Side, baseline y and leader target of every site's label.

    A site whose anchors lie left of the midline is labelled in the left column, right of it
    in the right column; a site on the midline or on both sides (bone, pleura) goes to the
    column with fewer labels near its height, its leader to its anchor nearest that column.
    Each column is ordered by the height of its targets and spaced at least
    :data:`LABEL_GAP` apart, so the leaders keep their order top to bottom and none crosses
    another (tested for every primary site)."""
    middle = WIDTH / 2.0
    columns: dict[str, list[tuple[float, str, Point]]] = {"left": [], "right": []}
    flexible = []
    for site, anchors in targets.items():
        xs = [x for x, _ in anchors]
        if max(xs) < middle:
            columns["left"].append((min(anchors, key=lambda a: a[0])[1], site,
                                    min(anchors, key=lambda a: a[0])))
        elif min(xs) > middle:
            columns["right"].append((max(anchors, key=lambda a: a[0])[1], site,
                                     max(anchors, key=lambda a: a[0])))
        else:
            flexible.append((min(y for _, y in anchors), site, anchors))
    for anchor_y, site, anchors in sorted(flexible):
        near = {side: sum(abs(y - anchor_y) < NEIGHBOURHOOD for y, _, _ in entries)
                for side, entries in columns.items()}
        side = "left" if near["left"] <= near["right"] else "right"
        pick = min if side == "left" else max
        target = pick(anchors, key=lambda a: (a[0], a[1]))
        columns[side].append((target[1], site, target))
    places: dict[str, tuple[str, float, Point]] = {}
    for side, entries in columns.items():
        entries.sort()
        ys: list[float] = []
        for anchor_y, _, _ in entries:
            y = max(anchor_y + LABEL_BASELINE, LABEL_TOP)
            ys.append(max(y, ys[-1] + LABEL_GAP) if ys else y)
        for k in range(len(ys) - 1, -1, -1):  # push up from the bottom if the column overflows
            limit = LABEL_BOTTOM if k == len(ys) - 1 else ys[k + 1] - LABEL_GAP
            ys[k] = min(ys[k], limit)
        for (_, site, target), y in zip(entries, ys, strict=True):
            places[site] = (side, y, (float(target[0]), float(target[1])))
    return places


SHORT_NAMES = {
    "other_splanchnic": "small bowel, spleen",
    "other_tissues": "muscle, soft tissue",
    REGIONAL_NODES: "regional lymph nodes",
    "distant_lymph_nodes": "distant lymph nodes",
}
"""Names short enough for the map's label columns (the tables use the full labels)."""

EXTRA_ROW_Y = 706
"""Sites the schematic does not know (a user's own knowledge base) get a box in a row at
the bottom, so nothing the model simulates is left off the map."""

ROUTE_BEND = {"blood": 0.18, "lymph": -0.18, "cavity": 0.32}
"""Sideways bend of a route's curve (fraction of its length), so that blood and lymph
routes between the same two sites do not overlap."""


def radius(cells: float) -> float:
    """Circle radius in px: 2 px for one cell, about 13 px for 10^9 cells (1 cm)."""
    return 2.0 + 1.25 * math.log10(max(cells, 1.0))


def format_cells(cells: float) -> str:
    """Cells in words a reader can compare: ``1``, ``4,100``, ``3.2 million``, ``61 billion``."""
    if cells < 1e6:
        return f"{cells:,.0f}"
    for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if cells >= scale:
            value = cells / scale
            return f"{value:,.0f} {word}" if value >= 10 else f"{value:.2g} {word}"
    return f"{cells:,.0f}"  # pragma: no cover - unreachable


@dataclass(frozen=True)
class Circle:
    lesion: int
    site: str
    x: float
    y: float
    r: float
    state: str
    cells: float
    primary: bool
    title: str


@dataclass(frozen=True)
class GroupCount:
    """The lesions of one site beyond the circles drawn: one badge with their number."""

    site: str
    x: float
    y: float
    count: int
    title: str


GROUP_OFFSET = (14.0, -12.0)
"""Where a site's count badge sits from its first anchor (up and to the viewer's right)."""


@dataclass(frozen=True)
class RouteCurve:
    source: str
    target: str
    route: str
    count: int
    path: str
    width: float
    title: str


@dataclass
class SiteAtDay:
    """What one site holds on the day shown (a row of the map's table)."""

    site: str
    label: str
    short: str
    primary: bool = False
    holds_primary: bool = False
    """The primary tumour is there on this day (not yet removed): the row's growing tumour
    that the metastasis counts leave out."""
    growing: int = 0
    micrometastases: int = 0
    colonies: int = 0
    dormant: int = 0
    cells: float = 0.0
    not_drawn: int = 0
    grouped: int = 0
    """Of ``not_drawn``, the lesions that are micrometastases or more at some time: they
    would have a circle but for the cap per site, and the map shows their count instead."""

    @property
    def lesions(self) -> int:
        return self.growing + self.micrometastases + self.colonies + self.dormant


@dataclass(frozen=True)
class SiteShape:
    """Placement of one site on this map: its anchors and its label."""

    site: str
    label: str
    short: str
    anchors: tuple[Point, ...]
    side: str
    label_x: float
    label_y: float
    known: bool
    target: Point = (0.0, 0.0)
    """The anchor the label's leader points at."""

    @property
    def leader(self) -> tuple[float, float, float, float]:
        """Line from the end of the label to its target anchor."""
        width = CHAR_WIDTH * len(self.short)
        x = self.label_x + width + 4 if self.side == "left" else self.label_x - width - 4
        ax, ay = self.target
        return x, self.label_y - LABEL_BASELINE, ax, ay


ORGANS_NOT_DRAWN = {"breast": ("prostate",), "prostate": ("breast",)}
"""Organ shapes left out of the drawing, by the primary's site: a breast-cancer patient is
drawn as a woman and a prostate-cancer patient as a man (a simplification: about 1 % of
breast cancers arise in men).  Other patients are drawn with both shapes.  Only the drawing
changes: a lesion in such a site would still be drawn and counted."""


@dataclass
class MapFrame:
    """Everything the template needs to draw the map on one day."""

    day: float
    end_time: float
    frames: int
    frame: int
    sites: list[SiteShape]
    circles: list[Circle] = field(default_factory=list)
    groups: list[GroupCount] = field(default_factory=list)
    routes: list[RouteCurve] = field(default_factory=list)
    rows: list[SiteAtDay] = field(default_factory=list)
    description: str = ""
    primary_site: str = ""

    @property
    def organs_not_drawn(self) -> tuple[str, ...]:
        return ORGANS_NOT_DRAWN.get(self.primary_site, ())

    @property
    def years(self) -> float:
        return self.day / DAYS_PER_YEAR


def layout(site_names: tuple[str, ...], labels: dict[str, str], primary_site: str
           ) -> list[SiteShape]:
    """Anchors and labels of every site of the model on the schematic."""
    shapes = []
    extra = [s for s in site_names if s not in ANCHORS and s != REGIONAL_NODES]
    anchors_of = {site: REGIONAL_ANCHORS.get(primary_site, DEFAULT_REGIONAL)
                  if site == REGIONAL_NODES else ANCHORS.get(site, ()) for site in site_names}
    places = _label_places({site: a for site, a in anchors_of.items() if a})
    for site in site_names:
        label = labels.get(site, site.replace("_", " "))
        short = SHORT_NAMES.get(site, label)
        anchors = anchors_of[site]
        if anchors:
            side, y, target = places[site]
            x = LABEL_LEFT_X if side == "left" else LABEL_RIGHT_X
            shapes.append(SiteShape(site, label, short, anchors, side, x, y, True, target))
        else:  # a site the drawing does not know: a slot in the bottom row
            slot = extra.index(site)
            x = 40 + (slot % 6) * 100
            y = EXTRA_ROW_Y - 30 * (slot // 6)
            shapes.append(SiteShape(site, label, short, ((x, y - 14),), "below", x, y, False,
                                    (x, y - 14)))
    return shapes


def _place(anchors: tuple[Point, ...], rank: int) -> Point:
    """Position of the ``rank``-th lesion of a site: round the anchors, then outwards."""
    x, y = anchors[rank % len(anchors)]
    turn = rank // len(anchors)
    if turn == 0:
        return float(x), float(y)
    distance = SPIRAL_STEP * math.sqrt(turn)
    angle = turn * GOLDEN_ANGLE
    return x + distance * math.cos(angle), y + distance * math.sin(angle)


def _curve(a: Point, b: Point, bend: float) -> str:
    """A quadratic Bézier from ``a`` to ``b`` bent sideways by ``bend`` of its length."""
    (x1, y1), (x2, y2) = a, b
    cx = (x1 + x2) / 2 - bend * (y2 - y1)
    cy = (y1 + y2) / 2 + bend * (x2 - x1)
    return f"M{x1:.1f},{y1:.1f} Q{cx:.1f},{cy:.1f} {x2:.1f},{y2:.1f}"


HIDDEN_STATES = ABSENT_STATES
"""States with nothing to draw (:data:`metastasis.results.patient.ABSENT_STATES`)."""

STATE_WORDS = {
    "dormant": "dormant cell",
    "colony": "young colony",
    "micrometastasis": "micrometastasis",
    "growing": "growing metastasis",
}


def frame(
    patient: PatientResult,
    day: float,
    labels: dict[str, str],
    *,
    frames: int = 200,
    max_per_site: int = 40,
) -> MapFrame:
    """The map of ``patient`` on ``day`` (0 to the end of its natural history)."""
    names = patient.site_names
    lesions = patient.lesions
    primary_site = patient.primary_site
    shapes = layout(names, labels, primary_site)
    by_site = {s.site: s for s in shapes}
    end = patient.end_time
    day = min(max(day, 0.0), end)
    sizes = lesions.size_at(day)
    states = lesions.state_at(day)
    sites = [names[int(s)] for s in lesions.site]

    rows = {s.site: SiteAtDay(s.site, s.label, s.short) for s in shapes}
    rows[primary_site].primary = True
    # A place on the map is kept for every lesion that becomes at least a micrometastasis
    # within the natural history (and the primary), numbered in founding order: a lesion
    # keeps its place on every day, so moving the slider never makes circles jump.  Cells
    # that stay dormant or colonies that never get that far are counted, not drawn: there
    # can be hundreds, and they are invisible on any scan.  Under treatment a lesion has a
    # row (segment) per stretch of its history; every segment of a lesion shares the place
    # of its first, and a row that is closed ("gone": superseded, or the lesion removed or
    # killed) is not drawn, which is how resected and shrunken lesions leave the map.
    ids = lesions.id
    first = lesions.first_segments()
    reaches = {int(ids[i]) for i in np.flatnonzero(lesions.micrometastasis <= end)}
    reaches.add(0)
    rank: dict[str, int] = {}
    place: dict[int, int] = {}
    for i in np.flatnonzero(first).tolist():
        lesion = int(ids[i])
        if lesion in reaches:
            place[lesion] = rank.get(sites[i], 0)
            rank[sites[i]] = place[lesion] + 1
    circles = []
    for i in range(len(lesions)):
        site = sites[i]
        lesion = int(ids[i])
        k = place.get(lesion, -1)
        if states[i] in HIDDEN_STATES:
            continue
        row = rows[site]
        cells = float(sizes[i])
        row.cells += cells
        is_primary = lesion == 0
        state = "primary" if is_primary else str(states[i])
        if is_primary:
            row.holds_primary = True
        else:
            attribute = {"growing": "growing", "micrometastasis": "micrometastases",
                         "colony": "colonies", "dormant": "dormant"}[state]
            setattr(row, attribute, getattr(row, attribute) + 1)
        if not is_primary and not 0 <= k < max_per_site:
            row.not_drawn += 1
            row.grouped += k >= max_per_site
            continue
        x, y = _place(by_site[site].anchors, max(k, 0))
        what = "primary tumour" if is_primary else STATE_WORDS.get(state, state)
        circles.append(
            Circle(
                lesion=lesion, site=site, x=x, y=y, r=radius(cells), state=state, cells=cells,
                primary=is_primary,
                title=f"{what} in the {row.label}: {format_cells(cells)} cells "
                      f"(lesion {lesion})",
            )
        )
    circles.sort(key=lambda c: -c.r)  # big first, so small ones stay visible on top
    groups = []
    for row in rows.values():
        if row.grouped:
            x, y = by_site[row.site].anchors[0]
            noun = "lesion" if row.grouped == 1 else "lesions"
            groups.append(GroupCount(
                row.site, x + GROUP_OFFSET[0], y + GROUP_OFFSET[1], row.grouped,
                f"{row.grouped:,} more {noun} in the {row.label} than the {max_per_site} "
                "circles drawn (the table below counts them all)"))

    site_of = {int(ids[i]): sites[i] for i in np.flatnonzero(first)}
    counts: dict[tuple[str, str, str], int] = {}
    for i in np.flatnonzero(first).tolist():
        if ids[i] == 0 or lesions.arrival[i] > day or lesions.parent[i] < 0:
            continue
        source = site_of.get(int(lesions.parent[i]))
        if source is None:
            continue
        code = int(lesions.route[i])
        route = ROUTE_NAMES[code] if 0 <= code < len(ROUTE_NAMES) else "unknown"
        counts[(source, sites[i], route)] = counts.get((source, sites[i], route), 0) + 1
    routes = []
    for (source, target, route), count in sorted(counts.items()):
        if source == target or route not in ROUTE_BEND:
            continue
        a, b = by_site[source].anchors[0], by_site[target].anchors[0]
        noun = "cell" if count == 1 else "cells"
        routes.append(
            RouteCurve(
                source, target, route, count, _curve(a, b, ROUTE_BEND[route]),
                width=1.5 + 0.9 * math.log2(count),
                title=(f"{count} founding {noun} travelled by {route} from the "
                       f"{rows[source].label} to the {rows[target].label}"),
            )
        )

    shown = [r for r in rows.values() if r.lesions or r.primary]
    n_frames = max(int(frames), 1)
    return MapFrame(
        day=day,
        end_time=end,
        frames=n_frames,
        frame=round(n_frames * day / end) if end > 0 else 0,
        sites=shapes,
        circles=circles,
        groups=groups,
        routes=routes,
        rows=sorted(shown, key=lambda r: (not r.primary, -r.cells)),
        description=describe(day, shown, rows[primary_site]),
        primary_site=primary_site,
    )


def describe(day: float, shown: list[SiteAtDay], primary: SiteAtDay) -> str:
    """One sentence for screen readers: what the map shows on this day."""
    if primary.cells > 0:
        where = f"primary tumour in the {primary.label}, {format_cells(primary.cells)} cells"
    else:  # removed by surgery (or killed by treatment)
        where = f"no primary tumour in the {primary.label} any more"
    parts = [f"Day {day:,.0f} ({day / DAYS_PER_YEAR:.1f} years): {where}"]
    growing = [r for r in shown if r.growing]
    if growing:
        parts.append("growing metastases in " + ", ".join(
            f"the {r.label} ({r.growing})" for r in growing))
    else:
        parts.append("no growing metastasis")
    hidden = sum(r.micrometastases + r.colonies + r.dormant for r in shown)
    if hidden:
        parts.append(f"{hidden} dormant cells, colonies or micrometastases too small to see "
                     "on a scan")
    return "; ".join(parts) + "."


def frame_at(day: float, end_time: float, frames: int) -> int:
    """The first slider position whose day is ``day`` or later (the end if none is)."""
    if end_time <= 0.0:
        return frames
    index = min(max(math.ceil(frames * day / end_time), 0), frames)
    # the division can round up past an exact step: the step before may already show it
    while index > 0 and frame_day(end_time, index - 1, frames) >= day:
        index -= 1
    return index


def frame_day(end_time: float, index: int, frames: int) -> float:
    """Day shown by slider position ``index`` of ``frames`` (the last one is the end)."""
    index = min(max(int(index), 0), frames)
    return end_time * index / frames if index < frames else end_time


def lesion_rows(patient: PatientResult, day: float) -> list[dict[str, object]]:
    """Every lesion present on ``day`` with its size and state, for the JSON API.

    Under treatment a lesion may have several rows; only the row valid on ``day`` is
    listed, and a lesion removed or killed by then is not listed at all.
    """
    lesions = patient.lesions
    sizes = lesions.size_at(day)
    states = lesions.state_at(day)
    present = np.flatnonzero(~np.isin(states, list(HIDDEN_STATES)))
    return [
        {
            "id": int(lesions.id[i]),
            "site": patient.site_names[int(lesions.site[i])],
            "cells": float(sizes[i]),
            "state": "primary" if lesions.id[i] == 0 else str(states[i]),
        }
        for i in present
    ]
