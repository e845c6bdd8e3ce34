"""Cohort results as DataFrames: one row per patient, one row per lesion, and a summary.

The tables are built column by column from the patients' lesion and accounting arrays, all
patients of a block at once, so the per-patient cost of a cohort is the simulation itself
and not the bookkeeping around it (no event log, no per-patient dicts).

Conventions shared by every table and every export format:

* times are days since the first cancer cell; a time is NaN when the event did not happen by
  the end of that patient's natural history (``end_time``), so a time is never infinite and
  every table round-trips exactly through JSON, CSV and Parquet;
* a metastasis "at a site" means a *growing* one (it began outgrowth by ``end_time``);
  dormant cells, colonies and micrometastases are in the lesions table but do not count;
* "distant" means outside the regional lymph nodes (stage M1), as in
  :meth:`metastasis.results.patient.PatientResult.distant_rows`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from metastasis.errors import ModelError
from metastasis.model.resolve import FATES
from metastasis.model.routing import ROUTE_NAMES
from metastasis.results import statistics
from metastasis.results.patient import LesionTable, PatientResult

REGIONAL_NODES = "regional_lymph_nodes"
"""The one site whose metastases are not distant spread (N rather than M in staging)."""

MET_PREFIX = "met_"
CELLS_PREFIX = "cells_"

CONFIDENCE = 0.95
"""Coverage of the intervals in :meth:`CohortResult.summary` (the usual reporting level)."""

PATIENT_HEAD = (
    "patient_index", "end_time", "end_reason", "motility_time", "breach_time",
    "shedding_rate", "metastasis_growth_factor", "primary_cells_at_end", "n_lesions_founded",
    "n_metastases", "n_distant_sites", "first_distant_day", "first_distant_site",
    "node_involvement_day",
)
"""Leading columns of the patients table; ``met_<site>`` and ``cells_<total>`` follow."""

LESION_COLUMNS = (
    "patient_index", "lesion", "site", "parent", "route", "arrival", "awakening",
    "micrometastasis", "outgrowth", "size_at_end",
)

ACCOUNTING_TOTALS = (
    "shed", *(f"shed_{route}" for route in ROUTE_NAMES), "died_in_circulation", "arrested",
    "extravasated", *FATES,
)
"""Keys of :meth:`metastasis.results.patient.Accounting.totals`, in its order."""

_INT_COLUMNS = frozenset(
    {"patient_index", "n_lesions_founded", "n_metastases", "n_distant_sites", "lesion", "parent"}
)
_STR_COLUMNS = frozenset({"end_reason", "first_distant_site", "site", "route"})
_STRING_DTYPE = pd.Series(["text"]).dtype
"""pandas' own default for text (``str`` from pandas 3, ``object`` before): what every
reader (Parquet, CSV, JSON) yields, so tables compare equal whichever way they came."""


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast every known column to its canonical dtype (readers lose or guess dtypes).

    Integer columns become int64, ``met_*`` bool, ``cells_*`` int64, text columns pandas'
    default string dtype with NaN for missing, everything else float64.
    """
    out = {}
    for name in frame.columns:
        column = frame[name]
        if name in _INT_COLUMNS or name.startswith(CELLS_PREFIX):
            out[name] = column.astype(np.int64)
        elif name.startswith(MET_PREFIX):
            out[name] = column.astype(bool)
        elif name in _STR_COLUMNS:
            values = column.astype(object).where(column.notna(), None)
            out[name] = pd.Series(values.to_numpy(dtype=object), dtype=_STRING_DTYPE)
        else:
            out[name] = pd.to_numeric(column, errors="raise").astype(np.float64)
    return pd.DataFrame(out, columns=list(frame.columns))


def _strings(names: Sequence[str], codes: NDArray[np.int64]) -> pd.Series:
    """Text column from integer codes into ``names``; a negative code is missing."""
    lookup = np.array([*names, None], dtype=object)
    return pd.Series(lookup[np.where(codes >= 0, codes, len(names))], dtype=_STRING_DTYPE)


def _happened_by(times: NDArray[np.float64], end: NDArray[np.float64]) -> NDArray[np.float64]:
    """The times that fall within the natural history; NaN for those after it (or never)."""
    return np.where(times <= end, times, np.nan)


def _first_per_patient(
    position: NDArray[np.int64], time: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Patients with at least one row, and the row of each with the earliest time.

    lexsort is stable, so ties go to the earlier row, as ``np.argmin`` does in
    :meth:`PatientResult.first_distant_metastasis`.
    """
    order = np.lexsort((time, position))
    patients, first = np.unique(position[order], return_index=True)
    return patients, order[first]


def _concat_lesions(tables: Sequence[LesionTable]) -> LesionTable:
    """All patients' lesion tables stacked into one (every column, whatever the engine adds)."""
    return LesionTable(**{
        f.name: np.concatenate([getattr(t, f.name) for t in tables])
        for f in dataclasses.fields(LesionTable)
    })


@dataclass(frozen=True)
class _Founders:
    """The three columns of all patients' lesions that the patients table reads."""

    id: NDArray[np.int64]
    site: NDArray[np.int64]
    outgrowth: NDArray[np.float64]

    @classmethod
    def of(cls, tables: Sequence[LesionTable]) -> _Founders:
        return cls(*(np.concatenate([getattr(t, name) for t in tables])
                     for name in ("id", "site", "outgrowth")))


def _first_rows(tables: Sequence[LesionTable]) -> LesionTable:
    """Each patient's first row (its primary), stacked: all a patients table needs of the
    sizes, without stacking every lesion (most of a cohort's rows are founders that never
    grew, and copying all their columns was most of an untreated cohort's tabulation)."""
    return LesionTable(**{
        f.name: np.array([getattr(t, f.name)[0] for t in tables],
                         dtype=getattr(tables[0], f.name).dtype)
        for f in dataclasses.fields(LesionTable)
    })


def _sizes_at_end(stacked: LesionTable, end: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cells in each lesion at its patient's end (``end``: one day per row), by the engine's
    own ``size_at``, all rows in one pass."""
    return stacked.size_at(end)


def build_tables(
    results: Sequence[PatientResult], site_names: Sequence[str], *, keep_lesions: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The patients and lesions tables of a block of patients, in the order given.

    With ``keep_lesions=False`` the lesions table is returned empty (its columns and dtypes
    kept): long horizons found thousands of lesions per patient, and a summary needs none.
    """
    if not results:
        raise ModelError("patients", 0, "at least one patient result to tabulate")
    n = len(results)
    n_sites = len(site_names)
    index = np.fromiter((r.patient_index for r in results), np.int64, n)
    end = np.fromiter((r.end_time for r in results), float, n)
    lengths = np.fromiter((len(r.lesions) for r in results), np.int64, n)
    tables = [r.lesions for r in results]
    position = np.repeat(np.arange(n), lengths)
    row_end = end[position]
    stacked: LesionTable | _Founders
    if keep_lesions:
        stacked = _concat_lesions(tables)
        size_at_end = _sizes_at_end(stacked, row_end)
        primary_cells = size_at_end[np.concatenate(([0], np.cumsum(lengths)[:-1]))]
    else:
        stacked = _Founders.of(tables)
        primary_cells = _sizes_at_end(_first_rows(tables), end)

    is_met = stacked.id > 0
    growing = is_met & (stacked.outgrowth <= row_end)
    regional = site_names.index(REGIONAL_NODES) if REGIONAL_NODES in site_names else -1
    distant = growing & (stacked.site != regional)
    nodes = growing & (stacked.site == regional)

    met = np.zeros((n, n_sites), dtype=bool)
    met[position[growing], stacked.site[growing]] = True
    distant_sites = np.zeros((n, n_sites), dtype=bool)
    distant_sites[position[distant], stacked.site[distant]] = True

    first_day = np.full(n, np.nan)
    first_site = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(distant)
    who, first = _first_per_patient(position[rows], stacked.outgrowth[rows])
    first_day[who] = stacked.outgrowth[rows[first]]
    first_site[who] = stacked.site[rows[first]]
    node_day = np.full(n, np.nan)
    rows = np.flatnonzero(nodes)
    who, first = _first_per_patient(position[rows], stacked.outgrowth[rows])
    node_day[who] = stacked.outgrowth[rows[first]]

    patients: dict[str, Any] = {
        "patient_index": index,
        "end_time": end,
        "end_reason": pd.Series([r.end_reason for r in results], dtype=_STRING_DTYPE),
        "motility_time": _happened_by(np.fromiter((r.motility_time for r in results), float, n),
                                      end),
        "breach_time": _happened_by(np.fromiter((r.breach_time for r in results), float, n), end),
        "shedding_rate": np.fromiter((r.shedding_rate for r in results), float, n),
        "metastasis_growth_factor": np.fromiter((r.metastasis_growth_factor for r in results),
                                                float, n),
        "primary_cells_at_end": primary_cells,
        "n_lesions_founded": np.bincount(position[is_met], minlength=n).astype(np.int64),
        "n_metastases": np.bincount(position[growing], minlength=n).astype(np.int64),
        "n_distant_sites": distant_sites.sum(axis=1).astype(np.int64),
        "first_distant_day": first_day,
        "first_distant_site": _strings(site_names, first_site),
        "node_involvement_day": node_day,
    }
    for j, name in enumerate(site_names):
        patients[f"{MET_PREFIX}{name}"] = met[:, j]
    patients.update(_accounting_columns(results))

    if not isinstance(stacked, LesionTable):
        return pd.DataFrame(patients), empty_lesions()
    lesions = {
        "patient_index": index[position],
        "lesion": stacked.id.astype(np.int64),
        "site": _strings(site_names, stacked.site),
        "parent": stacked.parent.astype(np.int64),
        "route": _strings(ROUTE_NAMES, stacked.route),
        "arrival": _happened_by(stacked.arrival, row_end),
        "awakening": _happened_by(stacked.awakening, row_end),
        "micrometastasis": _happened_by(stacked.micrometastasis, row_end),
        "outgrowth": _happened_by(stacked.outgrowth, row_end),
        "size_at_end": size_at_end,
    }
    return pd.DataFrame(patients), pd.DataFrame(lesions, columns=list(LESION_COLUMNS))


LESION_STATES = ("dormant", "colony", "micrometastasis", "growing")
"""A lesion's state at the end of its history: the last of these steps it reached by then."""


def site_state_counts(results: Sequence[PatientResult], site_names: Sequence[str]
                      ) -> pd.DataFrame:
    """Lesions per (patient, site, state at the end), sorted by patient, site name and
    state name: the counts a dataset writes for the lesions when it does not write their
    rows.  Read from the patients' lesion columns directly (numpy, no lesions table): the
    same table as :func:`metastasis.runs.site_counts` of the lesions table, which is the
    readable definition a test holds this to."""
    n = len(results)
    lengths = np.fromiter((len(r.lesions) for r in results), np.int64, n)
    end = np.repeat(np.fromiter((r.end_time for r in results), float, n), lengths)
    position = np.repeat(np.arange(n), lengths)
    tables = [r.lesions for r in results]

    def column(name: str) -> NDArray[Any]:
        return np.concatenate([getattr(t, name) for t in tables])

    state = np.select([column("outgrowth") <= end, column("micrometastasis") <= end,
                       column("awakening") <= end], [3, 2, 1], default=0)
    # rank sites and states by name, as a sort of the text columns would order them
    site_rank = np.argsort(np.argsort(np.array(site_names, dtype=object)))
    state_rank = np.argsort(np.argsort(np.array(LESION_STATES, dtype=object)))
    site = column("site")
    n_sites, n_states = len(site_names), len(LESION_STATES)
    index = np.fromiter((r.patient_index for r in results), np.int64, n)
    patient_rank = np.argsort(np.argsort(index, kind="stable"), kind="stable")
    key = (patient_rank[position] * n_sites + site_rank[site]) * n_states + state_rank[state]
    keys, counts = np.unique(key, return_counts=True)
    by_site_rank = np.argsort(site_rank)
    by_state_rank = np.argsort(state_rank)
    sites = np.array(site_names, dtype=object)[by_site_rank[(keys // n_states) % n_sites]]
    states = np.array(LESION_STATES, dtype=object)[by_state_rank[keys % n_states]]
    by_patient_rank = np.argsort(patient_rank)
    return pd.DataFrame({"patient_index": index[by_patient_rank[keys // (n_states * n_sites)]],
                         "site": sites, "state": states,
                         "lesions": counts.astype(np.int64)})


def _accounting_columns(results: Sequence[PatientResult]) -> dict[str, NDArray[np.int64]]:
    """``cells_<total>`` columns equal to ``Accounting.totals()``, computed for all at once."""
    died = np.stack([r.accounting.died_in_transit for r in results])  # [patient, route]
    fates = np.stack([r.accounting.fates.sum(axis=1) for r in results])  # [patient, route, fate]
    shed_by_route = died + fates.sum(axis=2)
    totals: dict[str, NDArray[np.int64]] = {"shed": shed_by_route.sum(axis=1)}
    for r, route in enumerate(ROUTE_NAMES):
        totals[f"shed_{route}"] = shed_by_route[:, r]
    totals["died_in_circulation"] = died.sum(axis=1)
    totals["arrested"] = fates.sum(axis=(1, 2))
    totals["extravasated"] = fates[:, :, 1:].sum(axis=(1, 2))
    for k, fate in enumerate(FATES):
        totals[fate] = fates[:, :, k].sum(axis=1)
    return {f"{CELLS_PREFIX}{k}": totals[k].astype(np.int64) for k in ACCOUNTING_TOTALS}


def empty_lesions() -> pd.DataFrame:
    """A lesions table with no rows, with the columns and dtypes of a full one."""
    return conform(pd.DataFrame({name: [] for name in LESION_COLUMNS}))


# --------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[
    float, float
]:
    """Wilson score interval for a share of a cohort's patients
    (:func:`metastasis.results.statistics.wilson_interval`).

    A cohort always has patients, so no trials here is an error in the caller rather than a
    share without an interval.
    """
    if trials <= 0:
        raise ModelError("trials", trials, "a positive number of patients")
    return statistics.wilson_interval(successes, trials, confidence)


def kaplan_meier_quantiles(
    times: NDArray[np.float64], observed: NDArray[np.bool_], quantiles: Sequence[float]
) -> list[float | None]:
    """Times by which a share ``q`` of patients had the event, allowing for censoring.

    Patients without the event are censored at the end of their natural history (horizon or
    death), so the plain quantiles of observed times would be biased early; the product-limit
    estimate (:func:`metastasis.results.statistics.kaplan_meier`) is not.  ``None`` where the
    curve never falls that far within follow-up.
    """
    curve = statistics.kaplan_meier(times, observed)
    out: list[float | None] = []
    for q in quantiles:
        time = curve.quantile(q).estimate
        out.append(None if math.isinf(time) else time)
    return out


def _plain(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class CohortResult:
    """A simulated cohort: a patients table, a lesions table and their provenance.

    ``provenance`` records everything needed to re-run the same patients (package version,
    cancer, the whole resolved knowledge base, root seed, patient index range, years) and
    when it was made; see :func:`metastasis.cohort.rerun`.
    """

    patients: pd.DataFrame
    lesions: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.patients)

    @property
    def site_names(self) -> tuple[str, ...]:
        """Sites of the model, in the order of the ``met_<site>`` columns."""
        return tuple(
            c.removeprefix(MET_PREFIX) for c in self.patients.columns if c.startswith(MET_PREFIX)
        )

    @classmethod
    def concat(cls, parts: Sequence[CohortResult]) -> CohortResult:
        """Join cohorts run over adjacent patient index ranges of one run into one.

        The parts must share version, cancer, model, seed and years, and their index ranges
        must tile one range without gaps or overlaps (in any order): then the result is
        identical to running the whole range at once.
        """
        if not parts:
            raise ModelError("parts", 0, "at least one cohort result")
        ordered = sorted(parts, key=lambda p: p.provenance.get("patient_index_start", 0))
        first = ordered[0].provenance
        same = ("version", "cancer", "root_seed", "years", "model", "lesions_kept")
        for part in ordered[1:]:
            for key in same:
                if part.provenance.get(key) != first.get(key):
                    raise ModelError(
                        f"provenance.{key}", part.provenance.get(key),
                        f"the same value in every part ({first.get(key)!r})" if key != "model"
                        else "the same model in every part",
                    )
        for before, after in itertools.pairwise(ordered):
            stop = before.provenance.get("patient_index_stop")
            start = after.provenance.get("patient_index_start")
            if stop != start:
                raise ModelError(
                    "patient_index_start", start,
                    f"{stop}: parts must cover adjacent index ranges with no gap or overlap",
                )
        provenance = dict(first)
        provenance["patient_index_stop"] = ordered[-1].provenance.get("patient_index_stop")
        provenance["n_patients"] = sum(len(p) for p in ordered)
        provenance["created_at"] = min(str(p.provenance.get("created_at", "")) for p in ordered)
        provenance["seed_drawn"] = any(p.provenance.get("seed_drawn", False) for p in ordered)
        return cls(
            patients=pd.concat([p.patients for p in ordered], ignore_index=True),
            lesions=pd.concat([p.lesions for p in ordered], ignore_index=True),
            provenance=provenance,
        )

    def summary(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for a cohort report.

        Shares carry a Wilson interval at :data:`CONFIDENCE`; the time to the first distant
        metastasis is given both among the patients who had one and as a Kaplan-Meier
        estimate over all patients (censored at the end of their natural history).
        """
        p = self.patients
        n = len(p)

        def share(k: int) -> dict[str, Any]:
            low, high = wilson_interval(k, n)
            return {"patients": k, "share": k / n, "ci_low": low, "ci_high": high}

        sites = [
            {"site": name, **share(int(p[f"{MET_PREFIX}{name}"].sum()))}
            for name in self.site_names
        ]
        sites.sort(key=lambda s: (-s["patients"], s["site"]))

        days = p["first_distant_day"].to_numpy(dtype=float)
        had = ~np.isnan(days)
        quartiles = (0.25, 0.5, 0.75)
        observed = (
            [float(q) for q in np.quantile(days[had], quartiles)] if had.any()
            else [None, None, None]
        )
        km = kaplan_meier_quantiles(np.where(had, days, p["end_time"].to_numpy()), had, quartiles)

        counts = np.bincount(p["n_distant_sites"].to_numpy(dtype=np.int64))
        shed = p[f"{CELLS_PREFIX}shed"].to_numpy(dtype=float)
        shedding = shed > 0
        fractions = {}
        for key in ACCOUNTING_TOTALS[1:]:
            cells = p[f"{CELLS_PREFIX}{key}"].to_numpy(dtype=float)
            fractions[key] = {
                "mean_per_patient": _plain(float(np.mean(cells[shedding] / shed[shedding])))
                if shedding.any() else None,
                "pooled": _plain(cells.sum() / shed.sum()) if shed.sum() > 0 else None,
            }
        prov = self.provenance
        return {
            "cancer": prov.get("cancer"),
            "years": prov.get("years"),
            "root_seed": prov.get("root_seed"),
            "n_patients": n,
            "confidence": CONFIDENCE,
            "end_reasons": {str(k): int(v) for k, v in p["end_reason"].value_counts().items()},
            "any_metastasis": share(int((p["n_metastases"] > 0).sum())),
            "any_distant": share(int(had.sum())),
            "node_involvement": share(int(p["node_involvement_day"].notna().sum())),
            "sites": sites,
            "first_distant_metastasis": {
                **share(int(had.sum())),
                "among_patients_with_one": dict(zip(("q1_days", "median_days", "q3_days"),
                                                    observed, strict=True)),
                "kaplan_meier": dict(zip(("q1_days", "median_days", "q3_days"), km,
                                         strict=True)),
            },
            "distant_sites_per_patient": {
                "mean": float(p["n_distant_sites"].mean()),
                "distribution": [
                    {"sites": k, "patients": int(c), "share": float(c) / n}
                    for k, c in enumerate(counts)
                ],
            },
            "accounting_fraction_of_shed": fractions,
        }
