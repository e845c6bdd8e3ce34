"""Typed results of one virtual patient: lesions, cell accounting and the event log.

The engine stores only what it sampled (lesion times and counts); everything a reader wants
(sizes at any time, the event log, summaries) is derived here, so a cohort run that never
looks at an event log never pays for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis.model.gompertz import gompertz_age_at, gompertz_size
from metastasis.model.resolve import FATES
from metastasis.model.routing import ROUTE_NAMES
from metastasis.results.story import STEPS, Event, build_events, patient_to_dict

__all__ = ["NODE_SITES", "STEPS", "Accounting", "Event", "LesionTable", "PatientResult"]

NODE_SITES = frozenset({"regional_lymph_nodes", "distant_lymph_nodes"})


class _LesionColumns(Protocol):
    """What :meth:`LesionTable.from_columns` reads: a column per name (lists, arrays or the
    engine's growable rows; the engine's also carry ``lesion`` and the segment columns)."""

    @property
    def site(self) -> ArrayLike: ...

    @property
    def parent(self) -> ArrayLike: ...

    @property
    def route(self) -> ArrayLike: ...

    @property
    def arrival(self) -> ArrayLike: ...

    @property
    def awakening(self) -> ArrayLike: ...

    @property
    def colony_scale(self) -> ArrayLike: ...

    @property
    def micrometastasis(self) -> ArrayLike: ...

    @property
    def outgrowth(self) -> ArrayLike: ...

    @property
    def x0(self) -> ArrayLike: ...

    @property
    def rate(self) -> ArrayLike: ...

    @property
    def capacity(self) -> ArrayLike: ...


_COLUMNS = (
    "site",
    "parent",
    "route",
    "arrival",
    "awakening",
    "colony_scale",
    "micrometastasis",
    "outgrowth",
    "x0",
    "rate",
    "capacity",
)
_SEGMENT_COLUMNS = ("growth_start", "valid_from", "valid_to", "resistance")


ABSENT_STATES = frozenset({"none", "gone"})
"""States of :meth:`LesionTable.state_at` with nothing in the body on the day asked: not
founded yet, or a row closed by treatment (its lesion removed, killed, or carried on by a
later row)."""


@dataclass(frozen=True)
class LesionTable:
    """Tracked lesions: the primary (lesion 0) and the founders of growing metastases.

    Times are days since the first cancer cell.  ``arrival``: the founding cell extravasated;
    ``awakening``: it left dormancy (equal to arrival if it never slept); ``micrometastasis``:
    the colony reached the micrometastasis size; ``outgrowth``: it began to grow as a
    vascularised metastasis.  ``id`` numbers the lesions of this table in order of appearance
    (the story's lesion numbers) and ``parent`` is the ``id`` of the lesion that shed the
    founding cell.  ``lesion`` is the disease process's own id of the lesion: the same for
    its whole life, across treatment and in every table read from the same patient, so that
    tables read on different days are matched by it.  A row is one *segment* of a lesion,
    valid on [valid_from, valid_to): in the untreated natural history every lesion has one
    row; treatment closes a lesion's row and opens a new one growing from ``x0`` cells at
    ``growth_start``.
    """

    id: NDArray[np.int64]
    site: NDArray[np.int64]
    parent: NDArray[np.int64]
    route: NDArray[np.int64]
    arrival: NDArray[np.float64]
    awakening: NDArray[np.float64]
    colony_scale: NDArray[np.float64]
    micrometastasis: NDArray[np.float64]
    outgrowth: NDArray[np.float64]
    x0: NDArray[np.float64]
    rate: NDArray[np.float64]
    capacity: NDArray[np.float64]
    growth_start: NDArray[np.float64] = None  # type: ignore[assignment]
    valid_from: NDArray[np.float64] = None  # type: ignore[assignment]
    valid_to: NDArray[np.float64] = None  # type: ignore[assignment]
    resistance: NDArray[np.int64] = None  # type: ignore[assignment]
    lesion: NDArray[np.int64] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        defaults = {
            "lesion": self.id,
            "growth_start": self.outgrowth,
            "valid_from": self.arrival,
            "valid_to": np.full(self.arrival.shape, np.inf),
            "resistance": np.zeros(self.arrival.shape, dtype=np.int64),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.asarray(value))

    @classmethod
    def from_columns(cls, lesions: _LesionColumns, end_time: float) -> LesionTable:
        """Keep rows founded before the end; lesion ids renumbered in order of appearance."""
        arrival = np.asarray(lesions.arrival, dtype=float)
        keep = np.flatnonzero((arrival < end_time) | (np.arange(arrival.size) == 0))
        own_ids = getattr(lesions, "lesion", None)  # the engine's rows carry segments
        has_segments = own_ids is not None
        ids = np.asarray(own_ids)[keep] if has_segments else keep
        parent = np.asarray(lesions.parent)[keep].astype(np.int64)
        if np.array_equal(ids, np.arange(ids.size)):  # untreated, nothing dropped
            renumbered, parent_ids = ids.astype(np.int64), parent
        else:
            unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
            rank = np.argsort(np.argsort(first))  # number lesions in order of appearance
            renumbered = rank[inverse].astype(np.int64)
            where = np.clip(np.searchsorted(unique, parent), 0, unique.size - 1)
            parent_ids = np.where(unique[where] == parent, rank[where], -1).astype(np.int64)
        data = {name: np.asarray(getattr(lesions, name))[keep] for name in _COLUMNS}
        extra = (
            {name: np.asarray(getattr(lesions, name))[keep] for name in _SEGMENT_COLUMNS}
            if has_segments
            else {}
        )
        data.pop("parent")
        # the columns were copied by the selection above: no second copy to convert them
        return cls(
            id=renumbered,
            lesion=ids.astype(np.int64, copy=False),
            parent=parent_ids,
            site=data.pop("site").astype(np.int64, copy=False),
            route=data.pop("route").astype(np.int64, copy=False),
            **{k: v.astype(float, copy=False) for k, v in data.items()},
            **{
                k: v.astype(np.int64 if k == "resistance" else float, copy=False)
                for k, v in extra.items()
            },
        )

    def first_segments(self) -> NDArray[np.bool_]:
        """True on the first row of every lesion (its founding)."""
        first = np.zeros(len(self), dtype=bool)
        _, index = np.unique(self.id, return_index=True)
        first[index] = True
        return first

    def valid_at(self, t: float | NDArray[np.float64]) -> NDArray[np.bool_]:
        """Rows that describe their lesion on day ``t``."""
        return (self.valid_from <= t) & (t < self.valid_to)

    def __len__(self) -> int:
        return int(self.id.size)

    def metastases(self) -> LesionTable:
        """All rows but the primary."""
        return self.take(np.arange(1, len(self)))

    def take(self, rows: NDArray[np.int64]) -> LesionTable:
        names = ("id", "lesion", *_COLUMNS, *_SEGMENT_COLUMNS)
        return LesionTable(**{k: getattr(self, k)[rows] for k in names})

    def size_at(self, t: float | NDArray[np.float64]) -> NDArray[np.float64]:
        """Cells in each lesion on day ``t`` (0 before it was founded); ``t`` is one day, or
        one day per row (a cohort's lesions each at its own patient's end, in one pass).

        A dormant founder is one cell; an establishing colony grows as W * exp((b - d) age),
        the supercritical birth-death limit, capped at the micrometastasis size; a
        micrometastasis holds its size until outgrowth; then Gompertz growth.
        """
        day = np.asarray(t, dtype=float)
        per_row = day.ndim > 0

        def at(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
            return day[mask] if per_row else day

        size = np.zeros(len(self))
        founded = (self.arrival <= day) & self.valid_at(day)
        size[founded] = 1.0
        colony = founded & (self.awakening <= day) & (day < self.micrometastasis)
        if colony.any():
            growth = np.log(
                np.maximum(self.x0[colony], 1.0) / self.colony_scale[colony]
            ) / np.maximum(self.micrometastasis[colony] - self.awakening[colony], 1e-300)
            size[colony] = np.clip(
                self.colony_scale[colony] * np.exp(growth * (at(colony) - self.awakening[colony])),
                1.0,
                self.x0[colony],
            )
        plateau = founded & (self.micrometastasis <= day) & (day < self.outgrowth)
        size[plateau] = self.x0[plateau]
        growing = founded & (self.growth_start <= day)
        size[growing] = gompertz_size(
            at(growing) - self.growth_start[growing],
            self.x0[growing],
            self.rate[growing],
            self.capacity[growing],
        )
        return size

    def state_at(self, t: float) -> NDArray[np.str_]:
        """'none', 'dormant', 'colony', 'micrometastasis' or 'growing' on day ``t``."""
        state = np.full(len(self), "none", dtype=object)
        founded = (self.arrival <= t) & self.valid_at(t)
        state[founded] = "dormant"
        state[(self.awakening <= t) & founded] = "colony"
        state[(self.micrometastasis <= t) & founded] = "micrometastasis"
        state[(self.growth_start <= t) & founded] = "growing"
        state[(self.valid_to <= t) & (self.arrival <= t)] = "gone"
        return state.astype(str)

    def time_to_size(self, cells: float) -> NDArray[np.float64]:
        """Day each lesion reaches ``cells`` (infinite if it never does)."""
        days = np.full(len(self), np.inf)
        rows = np.flatnonzero(self.capacity > cells)
        day = self.growth_start[rows] + gompertz_age_at(
            cells, np.maximum(self.x0[rows], 1.0), self.rate[rows], self.capacity[rows])
        days[rows] = np.where(day < self.valid_to[rows], day, np.inf)
        return days


@dataclass(frozen=True)
class Accounting:
    """Where every shed cell went, exactly in distribution.

    ``fates[route, site, fate]`` counts cells that arrested in ``site`` after travelling by
    ``route`` and then met ``fate`` (see :data:`metastasis.model.resolve.FATES`);
    ``died_in_transit[route]`` counts those that died before arresting anywhere.
    """

    died_in_transit: NDArray[np.int64]
    fates: NDArray[np.int64]
    expected_shed_by_site: NDArray[np.float64] = field(repr=False)

    @property
    def shed_by_route(self) -> NDArray[np.int64]:
        return self.died_in_transit + self.fates.sum(axis=(1, 2))

    @property
    def shed(self) -> int:
        return int(self.shed_by_route.sum())

    @property
    def died_in_circulation(self) -> int:
        return int(self.died_in_transit.sum())

    @property
    def arrested_by_site(self) -> NDArray[np.int64]:
        return self.fates.sum(axis=(0, 2))

    @property
    def extravasated_by_site(self) -> NDArray[np.int64]:
        return self.fates[:, :, 1:].sum(axis=(0, 2))

    def fate_by_site(self, fate: str) -> NDArray[np.int64]:
        return self.fates[:, :, FATES.index(fate)].sum(axis=0)

    def totals(self) -> dict[str, int]:
        """Whole-body counts along the cascade, in the order a cell meets them."""
        out = {"shed": self.shed}
        for route, name in enumerate(ROUTE_NAMES):
            out[f"shed_{name}"] = int(self.shed_by_route[route])
        out["died_in_circulation"] = self.died_in_circulation
        out["arrested"] = int(self.fates.sum())
        out["extravasated"] = int(self.fates[:, :, 1:].sum())
        for k, fate in enumerate(FATES):
            out[fate] = int(self.fates[:, :, k].sum())
        return out


@dataclass(frozen=True)
class PatientResult:
    """The untreated natural history of one virtual patient."""

    patient_index: int
    root_seed: int | None
    cancer: str
    horizon_days: float
    end_time: float
    end_reason: str
    motility_time: float
    breach_time: float
    shedding_rate: float
    """This patient's shedding rate (cells per day per cell^exponent), with its own spread."""
    lesions: LesionTable
    accounting: Accounting
    site_names: tuple[str, ...]
    clinical_size_cells: float = 1e9
    metastasis_growth_factor: float = 1.0
    """How many times faster than the cancer type's median patient this patient's metastases
    grow (the factor on their Gompertz rate; 1 without a between-patient spread)."""

    @property
    def primary_site(self) -> str:
        return self.site_names[int(self.lesions.site[0])]

    def metastasis_rows(self, *, growing_by: float | None = None) -> NDArray[np.int64]:
        """Founding rows of metastases (not the primary, not clones that arose inside a
        lesion); optionally only those growing by a day."""
        table = self.lesions
        rows = np.flatnonzero(table.first_segments() & (table.id != 0) & (table.route >= 0))
        if growing_by is not None:
            rows = rows[self.lesions.outgrowth[rows] <= growing_by]
        return rows

    def distant_rows(self, *, growing_by: float | None = None) -> NDArray[np.int64]:
        """Metastases outside the regional lymph nodes (distant spread, stage M1)."""
        rows = self.metastasis_rows(growing_by=growing_by)
        sites = np.array(self.site_names)[self.lesions.site[rows]]
        return rows[sites != "regional_lymph_nodes"]

    def sites_with_metastases(self) -> list[str]:
        """Sites holding a growing metastasis at the end of the natural history."""
        rows = self.metastasis_rows(growing_by=self.end_time)
        return sorted({self.site_names[int(s)] for s in self.lesions.site[rows]})

    def first_distant_metastasis(self) -> tuple[float, str] | None:
        """Day and site of the first distant metastasis to start growing, if any."""
        rows = self.distant_rows(growing_by=self.end_time)
        if not rows.size:
            return None
        first = rows[np.argmin(self.lesions.outgrowth[rows])]
        return float(self.lesions.outgrowth[first]), self.site_names[int(self.lesions.site[first])]

    def first_organ_metastasis(self) -> tuple[float, str] | None:
        """Day and organ of the first metastasis to start growing outside any lymph node."""
        rows = self.metastasis_rows(growing_by=self.end_time)
        sites = np.array(self.site_names)[self.lesions.site[rows]]
        rows = rows[~np.isin(sites, list(NODE_SITES))]
        if not rows.size:
            return None
        first = rows[np.argmin(self.lesions.outgrowth[rows])]
        return float(self.lesions.outgrowth[first]), self.site_names[int(self.lesions.site[first])]

    def events(self) -> list[Event]:
        """The story, in time order."""
        return build_events(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON export."""
        return patient_to_dict(self)
