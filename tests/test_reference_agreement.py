"""The fast engine agrees in distribution with the slow reference engine (practice 4).

The reference (:mod:`metastasis.reference.gillespie`) simulates every shed cell: thinning for
every non-homogeneous Poisson process, a step-by-step walk through the anatomy, Bernoulli
fates and a cell-by-cell Gillespie colony.  The fast engine samples only the founders of
growing metastases (time-rescaling of closed-form emissions), solves the journey as an
absorbing chain and draws every other fate as an aggregate Poisson count.  Agreement of the
two, on configurations small enough for the reference, is evidence that the shortcuts are
exact.

Configurations (the default anatomy with altered cancer parameters, so that about a thousand
cells are shed per patient and several metastases form; every patient sheds at the same rate,
the between-patient spread being tested on its own in ``test_shedding_spread``):

* PORTAL: colorectal primary (portal vein -> liver; lymph -> regional -> distant nodes ->
  thoracic duct -> venae cavae; a cavity route to the peritoneum), invasion on (motility and
  breach are random), a lethal burden that about half of the patients reach; b = 1, d = 0.5,
  M = 100.
* CAVAL: prostate primary (venae cavae -> lungs -> arterial tree, and the vertebral plexus
  straight to bone), invasion off (shedding from day 0), b = 0.6, d = 0.2, M = 300.

Each runs ``N_REFERENCE`` reference patients and ``N_FAST`` fast patients from different root
seeds (independent samplers, so independent samples).  Per configuration the comparisons are:
growing metastases per patient (Mann-Whitney and a binned chi-square), secondary metastases
per patient (Mann-Whitney) and the share of patients with one (Fisher), sites of the growing
metastases founded by the primary (chi-square 2 x K), day of the first growing metastasis,
of the end and (PORTAL) of motility and breach (two-sample KS), the share reaching the lethal
burden (Fisher), cells shed, died in transit per route and each fate total per patient
(Welch t), the first founder's arrival, dormancy, colony and outgrowth delays (KS, Fisher),
and two goodness-of-fit tests of the reference's pooled per-cell outcomes (cells shed by the
primary; cells shed by metastases) against the fast engine's resolved probabilities
(``route_weights x arrest x fate``, ``route_weights x died_in_transit``).

Why these samples are valid: sites are compared for primary-founded metastases only, which
are i.i.d. given their number (secondary metastases cluster within a patient, which would
make a pooled chi-square anti-conservative; they are compared per patient instead).  Founder
delays are compared for the *first* founder of each patient (one draw per patient, whose
inclusion cannot depend on its own delays).  The pooled per-cell goodness of fit is valid
although the end (hence the number of cells) depends on earlier cells' fates: each cell's
outcome is drawn independently of the past, so the residuals form a stopped martingale and
the statistic is asymptotically chi-square.

Significance: family-wise alpha = 0.001 for this module, split by Bonferroni, 0.0005 per
configuration divided evenly among its comparisons (about 2e-5 each).  The runs are seeded,
so the tests never flake: with correct engines a fresh pair of seeds would fail with
probability at most 0.001.  The battery can fail: ``test_the_battery_detects_*`` runs it
against fast engines whose model is slightly wrong and demands a rejection.

Approximations of the fast engine, kept below the tests' power by the choice of M, b, d:

* time to M: the fast engine uses log(M / W) / (b - d), W ~ Exp(mean b / (b - d)), the
  supercritical limit; the reference runs the colony to M.  Measured offline on 20 000
  colonies each: PORTAL (b = 1, d = 0.5, M = 100) means 8.93 vs 8.96 days, KS distance 0.014;
  CAVAL (0.6, 0.2, 300) 14.68 vs 14.67 days, KS 0.009.  The critical KS distance of the
  colony-time comparison here is about 0.16, and in whole-patient quantities the difference
  is buried under a 60-80 day mean outgrowth delay.  (At M = 10 the KS distance is 0.094.)
* establishment: the fast engine uses 1 - d/b (survive forever); reaching M before dying out
  has probability (1 - d/b) / (1 - (d/b)^M), a relative difference of (d/b)^M: 8e-31 and
  1e-143 here, but 100 % at M = 1.
"""

from __future__ import annotations

import ast
import copy
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.knowledge.loader import from_dict
from metastasis.knowledge.schema import KnowledgeBase
from metastasis.model.resolve import FATES, ResolvedModel, resolve
from metastasis.model.routing import ROUTE_NAMES
from metastasis.reference import gillespie
from metastasis.reference.gillespie import simulate_reference_patient
from metastasis.results.patient import PatientResult

pytestmark = pytest.mark.verification  # statistical agreement: the slow tier

ALPHA = 1e-3
"""Family-wise significance level of the agreement tests of this module."""

N_REFERENCE = 300
N_FAST = 1000
REFERENCE_SEED = 1_000_003
FAST_SEED = 2_000_003
MIN_EXPECTED = 5.0
"""Smallest expected count of a chi-square category; smaller ones are pooled."""


def _s(value: float) -> dict[str, Any]:
    return {"value": value, "source": "assumption: small test configuration for the reference"}


@dataclass(frozen=True)
class Config:
    """One small configuration: a cancer type of the default anatomy with new parameters."""

    name: str
    cancer: str
    horizon: float
    lethal: float
    growth: dict[str, float]
    invasion: dict[str, Any]
    shedding: dict[str, float]
    travel: dict[str, float]
    colonisation: dict[str, float]
    affinity: dict[str, float]

    def raw(self, default_raw: dict[str, Any], **changes: float) -> dict[str, Any]:
        """The knowledge base as plain data; ``changes`` override any cancer parameter."""
        raw = copy.deepcopy(default_raw)
        sections = (self.growth, self.shedding, self.travel, self.colonisation)
        unknown = set(changes) - {k for section in sections for k in section}
        assert not unknown, f"no such parameter in the configuration: {sorted(unknown)}"
        raw["circulation"]["lethal_burden_cells"] = _s(self.lethal)
        spec = raw["cancers"][self.cancer]
        for section in ("growth", "shedding", "travel", "colonisation"):
            values = dict(getattr(self, section))
            values.update({k: v for k, v in changes.items() if k in values})
            spec[section] = {k: _s(v) for k, v in values.items()}
        spec["invasion"] = {
            k: (v if isinstance(v, bool) else _s(v)) for k, v in self.invasion.items()
        }
        spec.setdefault("affinity", {}).update({k: _s(v) for k, v in self.affinity.items()})
        return raw

    @property
    def comparisons(self) -> int:
        """Number of comparisons of the battery for this configuration (for Bonferroni)."""
        return len(BATTERY_NAMES) + len(self.routes) + (2 if self.invasion["enabled"] else 0)

    @property
    def routes(self) -> list[int]:
        """Routes that carry cells in this configuration."""
        used = [0, 1] + ([2] if self.shedding["cavity_fraction"] > 0.0 else [])
        return used

    @property
    def alpha_each(self) -> float:
        return ALPHA / len(CONFIGS) / self.comparisons


PORTAL = Config(
    name="portal",
    cancer="colorectal",
    horizon=600.0,
    lethal=2e6,
    growth={"doubling_time_days": 20.0, "reference_size_cells": 1e4, "capacity_cells": 1e6,
            "metastasis_speedup": 1.5, "metastasis_capacity_cells": 1e6,
            "metastasis_rate_log10_sd": 0.0},
    invasion={"enabled": True, "motility_per_new_cell": 1e-3, "breach_rate": 1e-3},
    # metastases shed 0.7 of what the primary does (shedding.metastasis_factor)
    shedding={"rate": 5e-4, "exponent": 0.6667, "lymph_fraction": 0.3, "cavity_fraction": 0.1,
              "rate_log10_sd": 0.0, "metastasis_factor": 0.7},
    travel={"blood_entry_survival": 0.5, "lymph_entry_survival": 0.8, "blood_leg_survival": 0.7,
            "lymph_leg_survival": 0.7, "cavity_survival": 0.5},
    colonisation={"extravasation": 0.5, "death_at_site": 0.5, "dormancy": 0.3, "awakening": 0.5,
                  "mean_dormancy_days": 60.0, "colony_birth_rate": 1.0,
                  "colony_death_rate": 0.5, "micrometastasis_cells": 100.0, "outgrowth": 0.5,
                  "mean_outgrowth_delay_days": 60.0},
    affinity={},
)

CAVAL = Config(
    name="caval",
    cancer="prostate",
    horizon=500.0,
    lethal=6.5e5,
    growth={"doubling_time_days": 25.0, "reference_size_cells": 1e4, "capacity_cells": 5e5,
            "metastasis_speedup": 1.3, "metastasis_capacity_cells": 1e6,
            "metastasis_rate_log10_sd": 0.0},
    # metastases on their own, larger capacity than the primary's: both engines must
    # agree on that part of the law too
    invasion={"enabled": False, "motility_per_new_cell": 1e-3, "breach_rate": 1e-3},
    shedding={"rate": 8e-4, "exponent": 0.6667, "lymph_fraction": 0.3, "cavity_fraction": 0.0,
              "rate_log10_sd": 0.0},
    travel={"blood_entry_survival": 0.6, "lymph_entry_survival": 0.8, "blood_leg_survival": 0.8,
            "lymph_leg_survival": 0.6, "cavity_survival": 0.5},
    colonisation={"extravasation": 0.6, "death_at_site": 0.4, "dormancy": 0.4, "awakening": 0.4,
                  "mean_dormancy_days": 100.0, "colony_birth_rate": 0.6,
                  "colony_death_rate": 0.2, "micrometastasis_cells": 300.0, "outgrowth": 0.3,
                  "mean_outgrowth_delay_days": 80.0},
    affinity={"bone": 1.0, "lungs": 0.2, "liver": 0.4, "brain": 0.5, "adrenal_glands": 0.5,
              "kidney": 0.3, "other_tissues": 0.1},
)

CONFIGS = {c.name: c for c in (PORTAL, CAVAL)}


# --------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """Per-patient features of one engine's run, in a common layout."""

    n_growing: NDArray[np.int64]
    n_secondary: NDArray[np.int64]
    primary_sites: NDArray[np.int64]  # pooled sites of growing primary-founded metastases
    first_growing: NDArray[np.float64]  # patients with a growing metastasis
    end: NDArray[np.float64]
    lethal: NDArray[np.bool_]
    motility: NDArray[np.float64]  # capped at the horizon
    breach: NDArray[np.float64]
    shed: NDArray[np.int64]
    died: NDArray[np.int64]  # [patient, route]
    fates: NDArray[np.int64]  # [patient, fate]
    first_founder: NDArray[np.float64]  # [patient with a founder, (arrival, awake, micro, out)]


def _sample(rows: list[dict[str, Any]]) -> Sample:
    def column(key: str, dtype: Any = float) -> NDArray[Any]:
        return np.array([r[key] for r in rows if r[key] is not None], dtype=dtype)

    return Sample(
        n_growing=column("n_growing", np.int64),
        n_secondary=column("n_secondary", np.int64),
        primary_sites=np.concatenate([r["primary_sites"] for r in rows]).astype(np.int64),
        first_growing=column("first_growing"),
        end=column("end"),
        lethal=column("lethal", bool),
        motility=column("motility"),
        breach=column("breach"),
        shed=column("shed", np.int64),
        died=np.array([r["died"] for r in rows], dtype=np.int64),
        fates=np.array([r["fates"] for r in rows], dtype=np.int64),
        first_founder=np.array(
            [r["first_founder"] for r in rows if r["first_founder"] is not None], dtype=float
        ).reshape(-1, 4),
    )


def _features(
    *, end: float, reason: str, horizon: float, motility: float, breach: float,
    site: NDArray[np.int64], parent: NDArray[np.int64], times: NDArray[np.float64],
    shed: int, died: NDArray[np.int64], fates: NDArray[np.int64],
) -> dict[str, Any]:
    """Features of one patient from its founders (``times`` columns: arrival, awakening,
    micrometastasis, outgrowth) and its accounting."""
    growing = times[:, 3] <= end
    first = int(np.argmin(times[:, 0])) if len(times) else None
    return {
        "n_growing": int(growing.sum()),
        "n_secondary": int((growing & (parent != 0)).sum()),
        "primary_sites": site[growing & (parent == 0)],
        "first_growing": float(times[growing, 3].min()) if growing.any() else None,
        "end": end,
        "lethal": reason == "lethal_burden",
        "motility": min(motility, horizon),
        "breach": min(breach, horizon),
        "shed": shed,
        "died": died,
        "fates": fates.sum(axis=(0, 1)),
        "first_founder": None if first is None else times[first],
    }


def _fast_features(p: PatientResult, horizon: float) -> dict[str, Any]:
    table = p.lesions.metastases()
    times = np.column_stack(
        [table.arrival, table.awakening, table.micrometastasis, table.outgrowth]
    ).reshape(-1, 4)
    return _features(
        end=p.end_time, reason=p.end_reason, horizon=horizon, motility=p.motility_time,
        breach=p.breach_time, site=table.site, parent=table.parent, times=times,
        shed=p.accounting.shed, died=p.accounting.died_in_transit, fates=p.accounting.fates,
    )


def _reference_features(p: gillespie.ReferencePatient, horizon: float) -> dict[str, Any]:
    times = np.column_stack([p.arrival, p.awakening, p.micrometastasis, p.outgrowth])
    return _features(
        end=p.end_time, reason=p.end_reason, horizon=horizon, motility=p.motility_time,
        breach=p.breach_time, site=p.founder_site, parent=p.founder_parent,
        times=times.reshape(-1, 4), shed=p.shed, died=p.died_in_transit, fates=p.fates,
    )


@cache
def _default_raw() -> dict[str, Any]:
    import tomllib
    from importlib import resources

    text = resources.files("metastasis.knowledge.data").joinpath("default.toml").read_text(
        encoding="utf-8"
    )
    return tomllib.loads(text)


@cache
def knowledge(name: str, changes: tuple[tuple[str, float], ...] = ()) -> KnowledgeBase:
    return from_dict(CONFIGS[name].raw(_default_raw(), **dict(changes)))


@cache
def fast_model(name: str, changes: tuple[tuple[str, float], ...] = ()) -> ResolvedModel:
    return resolve(knowledge(name, changes), CONFIGS[name].cancer)


@cache
def reference_run(name: str) -> tuple[list[gillespie.ReferencePatient], Sample]:
    config = CONFIGS[name]
    kb = knowledge(name)
    patients = [
        simulate_reference_patient(
            kb, config.cancer, patient_generator(REFERENCE_SEED, i), config.horizon
        )
        for i in range(N_REFERENCE)
    ]
    return patients, _sample([_reference_features(p, config.horizon) for p in patients])


@cache
def fast_sample(
    name: str, changes: tuple[tuple[str, float], ...] = (), patients: int = N_FAST
) -> Sample:
    config = CONFIGS[name]
    model = fast_model(name, changes)
    return _sample([
        _fast_features(
            simulate_patient(model, patient_generator(FAST_SEED, i), config.horizon),
            config.horizon,
        )
        for i in range(patients)
    ])


# --------------------------------------------------------------------------- statistics


def _pool_small(observed: NDArray[Any], expected: NDArray[Any]) -> tuple[NDArray, NDArray]:
    """Merge categories with expected counts under MIN_EXPECTED into one pooled category
    (growing the pool with the smallest remaining categories until it reaches it too)."""
    order = np.argsort(expected)
    pooled = np.zeros(expected.size, dtype=bool)
    pooled[expected < MIN_EXPECTED] = True
    for k in order:
        if expected[pooled].sum() >= MIN_EXPECTED or expected[pooled].sum() == 0.0:
            break
        pooled[k] = True
    obs = np.append(observed[~pooled], observed[pooled].sum())
    exp = np.append(expected[~pooled], expected[pooled].sum())
    keep = exp > 0.0
    return obs[keep], exp[keep]


def _chi2_contingency(a: NDArray[np.int64], b: NDArray[np.int64], minlength: int) -> float:
    """Chi-square test that two samples of categories share one distribution (categories
    with fewer than 10 observations in both together are pooled)."""
    table = np.array([np.bincount(a, minlength=minlength), np.bincount(b, minlength=minlength)])
    total = table.sum(axis=0)
    small = total < 10
    table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table).pvalue)


def _binned_counts(a: NDArray[np.int64], b: NDArray[np.int64]) -> float:
    """Chi-square test of two count distributions, bins of at least 20 pooled patients."""
    values = np.concatenate([a, b])
    edges: list[int] = []
    running = 0
    for v in range(int(values.max()) + 1):
        running += int((values == v).sum())
        if running >= 20:
            edges.append(v)
            running = 0
    if running and edges:
        edges.pop()
    bins = np.searchsorted(np.array(edges), values, side="left")
    return _chi2_contingency(bins[: a.size], bins[a.size:], len(edges) + 1)


def _welch(a: NDArray[Any], b: NDArray[Any]) -> float:
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _fisher(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    table = [[int(a.sum()), int((~a).sum())], [int(b.sum()), int((~b).sum())]]
    return float(stats.fisher_exact(table).pvalue)


def _ks(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(stats.ks_2samp(a, b).pvalue)


def cell_outcome_probabilities(model: ResolvedModel, source: int) -> NDArray[np.float64]:
    """The fast engine's law of one cell shed by ``source``: died on each route, then every
    (route, site, fate), in the layout of :func:`cell_outcome_counts`."""
    died = model.route_weights[source] * model.died_in_transit[source]
    paths = (
        model.route_weights[source][:, None, None]
        * model.arrest[source][:, :, None]
        * model.fate[None, :, :]
    )
    return np.concatenate([died, paths.ravel()])


def cell_outcome_counts(patients: list[gillespie.ReferencePatient], source: int) -> NDArray:
    died = sum(p.died_by_source[source] for p in patients)
    fates = sum(p.fates_by_source[source] for p in patients)
    return np.concatenate([died, fates.ravel()])


def goodness_of_fit(
    patients: list[gillespie.ReferencePatient], model: ResolvedModel, sources: list[int]
) -> float:
    """Chi-square test of the reference's pooled per-cell outcomes against the fast engine's
    resolved probabilities, summed over ``sources``.  An outcome of probability zero that
    occurs is a hard failure, not a p-value."""
    statistic, dof = 0.0, 0
    for o in sources:
        observed = cell_outcome_counts(patients, o)
        n = observed.sum()
        if n == 0:
            continue
        probability = cell_outcome_probabilities(model, o)
        impossible = observed[probability <= 0.0].sum()
        assert impossible == 0, f"{impossible} cells from site {o} took a path of probability 0"
        obs, exp = _pool_small(observed, n * probability / probability.sum())
        statistic += float(((obs - exp) ** 2 / exp).sum())
        dof += obs.size - 1
    return float(stats.chi2.sf(statistic, dof)) if dof else 1.0


BATTERY_NAMES = (
    "growing per patient (Mann-Whitney)",
    "growing per patient (binned chi-square)",
    "secondary per patient (Mann-Whitney)",
    "patients with a secondary metastasis (Fisher)",
    "sites of primary-founded metastases (chi-square)",
    "first growing metastasis day (KS)",
    "end day (KS)",
    "reached the lethal burden (Fisher)",
    "cells shed (Welch)",
    *(f"{fate} (Welch)" for fate in FATES),
    "first founder: arrival (KS)",
    "first founder: slept (Fisher)",
    "first founder: dormancy days (KS)",
    "first founder: days to micrometastasis (KS)",
    "first founder: outgrowth delay (KS)",
    "cells from the primary vs closed form (chi-square)",
    "cells from metastases vs closed form (chi-square)",
)


def battery(config: Config, fast: Sample, model: ResolvedModel) -> dict[str, float]:
    """Every comparison of the reference sample with a fast sample: name -> p-value."""
    patients, ref = reference_run(config.name)
    n_sites = model.n_sites
    r_first, f_first = ref.first_founder, fast.first_founder
    r_slept = r_first[:, 1] > r_first[:, 0]
    f_slept = f_first[:, 1] > f_first[:, 0]
    values = [
        float(stats.mannwhitneyu(ref.n_growing, fast.n_growing).pvalue),
        _binned_counts(ref.n_growing, fast.n_growing),
        float(stats.mannwhitneyu(ref.n_secondary, fast.n_secondary).pvalue),
        _fisher(ref.n_secondary > 0, fast.n_secondary > 0),
        _chi2_contingency(ref.primary_sites, fast.primary_sites, n_sites),
        _ks(ref.first_growing, fast.first_growing),
        _ks(ref.end, fast.end),
        _fisher(ref.lethal, fast.lethal),
        _welch(ref.shed, fast.shed),
        *(_welch(ref.fates[:, k], fast.fates[:, k]) for k in range(len(FATES))),
        _ks(r_first[:, 0], f_first[:, 0]),
        _fisher(r_slept, f_slept),
        _ks(r_first[r_slept, 1] - r_first[r_slept, 0], f_first[f_slept, 1] - f_first[f_slept, 0]),
        _ks(r_first[:, 2] - r_first[:, 1], f_first[:, 2] - f_first[:, 1]),
        _ks(r_first[:, 3] - r_first[:, 2], f_first[:, 3] - f_first[:, 2]),
        goodness_of_fit(patients, model, [model.primary_site]),
        goodness_of_fit(
            patients, model, [o for o in range(n_sites) if o != model.primary_site]
        ),
    ]
    result = dict(zip(BATTERY_NAMES, values, strict=True))
    for route in config.routes:
        result[f"died in transit, {ROUTE_NAMES[route]} (Welch)"] = _welch(
            ref.died[:, route], fast.died[:, route]
        )
    if config.invasion["enabled"]:
        result["motility day (KS)"] = _ks(ref.motility, fast.motility)
        result["breach day (KS)"] = _ks(ref.breach, fast.breach)
    assert len(result) == config.comparisons
    return result


def _report(pvalues: dict[str, float], alpha: float) -> str:
    return "\n".join(
        f"  {'REJECT' if p < alpha else 'ok    '} p = {p:.3g}  {name}"
        for name, p in sorted(pvalues.items(), key=lambda item: item[1])
    )


# --------------------------------------------------------------------------- tests


def test_the_reference_shares_no_code_with_the_fast_engine() -> None:
    """Independence is the point: the reference may read the validated knowledge base but
    must import nothing from the fast engine's model or engine packages."""
    tree = ast.parse(Path(gillespie.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
         for alias in node.names}
    assert {m for m in imported if m and m.startswith("metastasis")} == {
        "metastasis.knowledge.schema"
    }


def test_the_reference_uses_the_fast_engines_layout() -> None:
    """Fate and route arrays are compared index by index, so their orders must match."""
    assert gillespie.FATES == FATES
    assert gillespie.ROUTES == ROUTE_NAMES


@pytest.mark.parametrize("name", list(CONFIGS))
def test_configuration_is_in_the_reference_regime(name: str) -> None:
    """The configurations are what the docstring claims: a few hundred to a few thousand
    shed cells and several growing metastases per patient, the lethal burden reached by some
    but not all patients, secondary seeding present, and M large enough for the W law."""
    _, ref = reference_run(name)
    config = CONFIGS[name]
    assert 300 < ref.shed.mean() < 5000
    assert 1.0 < ref.n_growing.mean() < 20.0
    assert 0.1 < ref.lethal.mean() < 0.9
    assert (ref.n_secondary > 0).mean() > 0.1
    b, d = config.colonisation["colony_birth_rate"], config.colonisation["colony_death_rate"]
    assert (d / b) ** config.colonisation["micrometastasis_cells"] < 1e-20


@pytest.mark.parametrize("name", list(CONFIGS))
def test_reference_and_fast_engine_agree_in_distribution(name: str) -> None:
    config = CONFIGS[name]
    pvalues = battery(config, fast_sample(name), fast_model(name))
    alpha = config.alpha_each
    rejected = {k: p for k, p in pvalues.items() if p < alpha}
    assert not rejected, f"{name}: engines disagree at alpha {alpha:.2g}\n" + _report(
        pvalues, alpha
    )


PERTURBATIONS = [  # configuration, parameter, wrong value, fast patients needed
    ("portal", "mean_outgrowth_delay_days", 90.0, N_FAST),  # 60: timing of outgrowth
    ("portal", "lymph_leg_survival", 0.63, 300),  # 0.7: the law of the journey
    ("portal", "rate", 6e-4, 300),  # 5e-4: shedding
    ("caval", "metastasis_speedup", 1.6, 600),  # 1.3: growth of metastases, the lethal end
    ("caval", "colony_death_rate", 0.25, 300),  # 0.2: establishment 2/3 -> 7/12
    ("portal", "metastasis_factor", 1.0, 600),  # 0.7: how much metastases shed
]


@pytest.mark.parametrize(("name", "parameter", "value", "patients"), PERTURBATIONS)
def test_the_battery_detects_a_slightly_wrong_fast_engine(
    name: str, parameter: str, value: float, patients: int
) -> None:
    """The agreement tests can fail: a fast engine run on a model with one parameter off by
    10-50 % must be rejected by at least one comparison at the same per-comparison level.
    (Per-cell probabilities are caught by the goodness of fit with a huge margin; timings
    are the weak spot of a few hundred reference patients, hence the larger delay change.)"""
    config = CONFIGS[name]
    changes = ((parameter, value),)
    pvalues = battery(config, fast_sample(name, changes, patients), fast_model(name, changes))
    assert min(pvalues.values()) < config.alpha_each, _report(pvalues, config.alpha_each)


def test_reference_is_reproducible_and_conserves_cells() -> None:
    """One generator, one history; every shed cell is counted exactly once; founders are
    exactly the cells counted under outgrowth; lineage points to real lesions."""
    config = PORTAL
    kb = knowledge(config.name)
    a = simulate_reference_patient(kb, config.cancer, patient_generator(7, 3), config.horizon)
    b = simulate_reference_patient(kb, config.cancer, patient_generator(7, 3), config.horizon)
    np.testing.assert_array_equal(a.fates_by_source, b.fates_by_source)
    np.testing.assert_array_equal(a.outgrowth, b.outgrowth)
    assert a.end_time == b.end_time
    patients, _ = reference_run(config.name)
    for p in patients[:50]:
        assert p.shed == int(p.shed_by_site.sum())
        assert p.fates[:, :, FATES.index("outgrowth")].sum() == p.founder_site.size
        ids = np.arange(1, p.founder_site.size + 1)
        assert np.all(p.founder_parent < ids)  # a parent was founded before its child
        assert np.all(p.arrival < p.end_time)
        grown_out = p.founder_parent[p.founder_parent > 0]
        assert np.all(p.outgrowth[grown_out - 1] <= p.arrival[p.founder_parent > 0])
        assert np.all((p.arrival <= p.awakening) & (p.awakening <= p.micrometastasis))
        assert np.all(p.micrometastasis <= p.outgrowth)
        assert math.isfinite(p.end_time) and p.end_time <= config.horizon
