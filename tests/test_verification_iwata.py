"""Verification: Iwata, Kawasaki & Shigesada 2000 as a special case of the engine.

With ``iwata2000.toml`` every shed cell founds a colony at once, so the engine's lesions are
a branching process whose mean colony-size density solves Iwata's equation

    d rho/dt + d(g(x) rho)/dx = 0,   g(x) = a x ln(K/x),
    g(1) rho(1, t) = beta(x_p(t)) + int beta(x) rho(x, t) dx,   beta(x) = m x^alpha.

Because every colony starts from one cell and grows like the primary, the expected number
N(t) of colonies founded by day t solves the renewal equation

    N'(t) = beta(x_p(t)) + int_0^t beta(x_p(t - s)) N'(s) ds,

and the expected number of colonies of at least x cells on day t is N(t - tau(x)), tau(x)
being the Gompertz time from 1 to x cells.  These tests solve that equation here, by the
trapezoid rule, with their own Gompertz curve (nothing from ``metastasis.model``), and
compare it with seeded cohorts of the engine.

Significance: every statistical comparison uses a family-wise alpha = 0.001 (Bonferroni
within a test), with fixed seeds, so the tests are reproducible and a failure is a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import integrate, stats

from metastasis.api import load_model
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.model.resolve import OUTGROWTH, ResolvedModel
from metastasis.results.patient import PatientResult

pytestmark = pytest.mark.verification  # statistical agreement: the slow tier

# Iwata et al. 2000 as in reference-figures section 1.
A_RATE = 0.00286  # per day
K_CAPACITY = 7.3e10  # cells
M_EMISSION = 5.3e-8  # colonies per day per cell^alpha
ALPHA = 2.0 / 3.0

ALPHA_FAMILY = 1e-3
"""Family-wise significance level of every statistical comparison in this module."""

COMPARE_DAYS = (900.0, 1200.0)
HORIZON_DAYS = 1250.0
"""Beyond both compared days: colonies founded later must not change what came before."""

N_SIZE_PATIENTS = 300
"""Patients for the size distribution: about 10 s, per-bin standard error about 1-3 %."""

N_COUNT_PATIENTS = 2000
"""Patients for the day-616 count: Poisson standard error about 1 % of 5.03."""

SIZE_EDGES = {900.0: (1e2, 1e4, 1e6, 1e8), 1200.0: (1e2, 1e4, 1e6, 1e8, 1e9)}
"""Bin edges in cells per compared day: bins [1, 1e2), [1e2, 1e4), ..., [last edge, K).
The top bin starts where at least about 0.4 colonies per patient are expected."""

N_BIN_TESTS = sum(len(edges) + 1 for edges in SIZE_EDGES.values())


# ------------------------------------------------------------------ independent solution


def primary_size(t: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Iwata's primary from one cell: x_p(t) = K^(1 - exp(-a t))."""
    return np.exp(math.log(K_CAPACITY) * (1.0 - np.exp(-A_RATE * np.asarray(t, dtype=float))))


def beta(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Iwata's colonisation rate of a tumour of x cells, m x^alpha colonies per day."""
    return M_EMISSION * np.asarray(x, dtype=float) ** ALPHA


def age_at_size(x: float) -> float:
    """tau(x): days for a one-cell colony to reach x cells (inverse of ``primary_size``)."""
    return -math.log(1.0 - math.log(x) / math.log(K_CAPACITY)) / A_RATE


@dataclass(frozen=True)
class RenewalSolution:
    """N(t), the expected number of colonies founded by day t, on a uniform grid."""

    t: NDArray[np.float64]
    founded: NDArray[np.float64]

    def __call__(self, t: NDArray[np.float64] | float) -> NDArray[np.float64]:
        return np.interp(t, self.t, self.founded, left=0.0)


def solve_renewal(horizon: float, step: float) -> RenewalSolution:
    """Solve N' = f + f * N' (convolution) with f = beta(x_p) by the trapezoid rule.

    n_i = f_i + h (f_i n_0 / 2 + sum_{k=1}^{i-1} f_{i-k} n_k + f_0 n_i / 2), solved for n_i;
    then N is the trapezoid integral of n.  The error is O(h^2); the test checks it by
    halving h.
    """
    t = np.arange(0.0, horizon + 0.5 * step, step)
    f = beta(primary_size(t))
    n = np.zeros_like(t)
    n[0] = f[0]
    for i in range(1, t.size):
        memory = 0.5 * f[i] * n[0] + float(np.dot(f[i - 1 : 0 : -1], n[1:i]))
        n[i] = (f[i] + step * memory) / (1.0 - 0.5 * step * f[0])
    founded = np.concatenate([[0.0], np.cumsum(0.5 * step * (n[1:] + n[:-1]))])
    return RenewalSolution(t=t, founded=founded)


@pytest.fixture(scope="module")
def renewal() -> RenewalSolution:
    return solve_renewal(HORIZON_DAYS, 0.25)


def expected_bins(solution: RenewalSolution, day: float) -> NDArray[np.float64]:
    """Expected colonies per patient in each size bin on ``day``: differences of N(t - tau)."""
    edges = SIZE_EDGES[day]
    at_least = np.array([solution(day), *(solution(day - age_at_size(x)) for x in edges)])
    return np.append(at_least[:-1] - at_least[1:], at_least[-1])


def observed_bins(result: PatientResult, day: float) -> NDArray[np.int64]:
    """Colonies (every lesion but the primary) founded by ``day``, counted by size bin."""
    lesions = result.lesions
    colonies = np.arange(len(lesions)) > 0
    founded = colonies & (lesions.arrival <= day)
    size = lesions.size_at(day)
    edges = SIZE_EDGES[day]
    at_least = [int(founded.sum())] + [int((founded & (size >= x)).sum()) for x in edges]
    counts = np.array(at_least)
    return np.append(counts[:-1] - counts[1:], counts[-1])


# ------------------------------------------------------------------ the engine's side


@pytest.fixture(scope="module")
def model(iwata_path: Path) -> ResolvedModel:
    return load_model("hcc_iwata", iwata_path)


@pytest.fixture(scope="module")
def size_cohort(model: ResolvedModel) -> list[PatientResult]:
    return [
        simulate_patient(model, patient_generator(2000, i), HORIZON_DAYS, patient_index=i)
        for i in range(N_SIZE_PATIENTS)
    ]


def test_solver_is_converged_and_matches_closed_form(renewal: RenewalSolution) -> None:
    """The reference solution itself: halving the step changes N(t) by < 1e-5 (relative),
    far below the sampling error it is compared with; its primary-only part at day 616
    equals the quadrature of m x_p^alpha (5.025, 'about 5.0' in reference-figures s1)."""
    finer = solve_renewal(HORIZON_DAYS, 0.125)
    for day in (616.0, *COMPARE_DAYS):
        assert renewal(day) == pytest.approx(float(finer(day)), rel=1e-5)
    primary_only, _ = integrate.quad(lambda s: float(beta(primary_size(s))), 0.0, 616.0)
    assert primary_only == pytest.approx(5.025, abs=1e-3)
    assert 1e9 * 0.95 < float(primary_size(616.0)) < 1e9 * 1.05  # 1e9 cells near day 616
    # secondary seeding adds a little by day 616, a lot later on
    assert primary_only < float(renewal(616.0)) < primary_only * 1.01


def test_iwata_parameters_reduce_the_engine(model: ResolvedModel, iwata_raw: dict) -> None:
    """The shipped parameters make the engine Iwata's model: a = 0.00286/day (from the
    doubling time, to 1e-15), colonies grow like the primary with capacity K everywhere,
    emission m x^(2/3) from day 0, and every shed cell founds a growing colony: the founder
    probability sums to 1 (to 1e-12) from every source a colony can sit in."""
    assert model.primary_rate == pytest.approx(A_RATE, rel=1e-15)
    assert model.metastasis_rate == model.primary_rate
    assert model.primary_capacity == K_CAPACITY
    assert np.all(model.site_capacity == K_CAPACITY)
    assert model.shedding_rate == M_EMISSION
    assert model.shedding_exponent == pytest.approx(ALPHA, rel=1e-15)
    assert not model.invasion_enabled
    assert model.colony_survival == 1.0
    assert model.micrometastasis_cells == 1.0
    assert model.mean_outgrowth_delay_days == 0.0
    assert model.dormant_share_of_outgrowth == 0.0
    assert model.lethal_burden_cells > 1e6 * K_CAPACITY
    primary = model.primary_site
    assert model.site_names[primary] == "liver"
    np.testing.assert_allclose(model.founder_probability[primary].sum(), 1.0, atol=1e-12)
    # every site a shed cell can reach is itself a source whose cells all found colonies
    reachable = np.einsum("or,orj->j", model.route_weights, model.arrest) > 0.0
    reachable[primary] = True
    np.testing.assert_allclose(model.founder_probability[reachable].sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(model.fate[reachable, OUTGROWTH], 1.0, atol=1e-15)
    assert model.route_weights[primary].tolist() == [1.0, 0.0, 0.0]

    cancer = iwata_raw["cancers"]["hcc_iwata"]
    sources = [
        value["source"]
        for section in cancer.values()
        if isinstance(section, dict)
        for value in section.values()
        if isinstance(value, dict)
    ]
    assert len(sources) > 20
    for source in sources:
        assert source.startswith("assumption:") or "Iwata" in source, source
    doubling = cancer["growth"]["doubling_time_days"]
    assert "double precision" in doubling["source"]
    reference = cancer["growth"]["reference_size_cells"]["value"]
    exact = math.log(2.0) / (A_RATE * math.log(K_CAPACITY / reference))
    assert doubling["value"] == exact  # full double precision, not a rounded figure


def _poisson_two_sided_p(total: int, mean: float) -> float:
    """Exact two-sided p-value (twice the smaller tail) of a Poisson count."""
    lower = stats.poisson.cdf(total, mean)
    upper = stats.poisson.sf(total - 1, mean)
    return float(min(1.0, 2.0 * min(lower, upper)))


def test_primary_founds_about_five_colonies_by_day_616(
    model: ResolvedModel, size_cohort: list[PatientResult]
) -> None:
    """Claim: colonies founded by the primary (parent == 0) by day 616 number Poisson with
    mean int_0^616 m x_p^alpha = 5.025 (reference-figures s1: about 5.0).

    Statistic: the cohort total is Poisson(N * 5.025); exact two-sided Poisson test, at
    alpha = 0.001 split (Bonferroni) between two cohorts: 2000 patients whose horizon *is*
    day 616 and the 300-patient cohort whose horizon is day 1250 (the horizon must not
    change what happened before it)."""
    expected, _ = integrate.quad(lambda s: float(beta(primary_size(s))), 0.0, 616.0)
    at_horizon = 0
    for i in range(N_COUNT_PATIENTS):
        result = simulate_patient(model, patient_generator(616, i), 616.0)
        assert result.end_time == 616.0 and result.end_reason == "horizon"
        at_horizon += int(np.count_nonzero(result.lesions.parent == 0))
    beyond = sum(
        int(np.count_nonzero((r.lesions.parent == 0) & (r.lesions.arrival <= 616.0)))
        for r in size_cohort
    )
    p_at = _poisson_two_sided_p(at_horizon, N_COUNT_PATIENTS * expected)
    p_beyond = _poisson_two_sided_p(beyond, N_SIZE_PATIENTS * expected)
    summary = (
        f"mean {at_horizon / N_COUNT_PATIENTS:.4f} (p={p_at:.3g}) and "
        f"{beyond / N_SIZE_PATIENTS:.4f} (p={p_beyond:.3g}) against {expected:.4f}"
    )
    assert p_at > ALPHA_FAMILY / 2, summary
    assert p_beyond > ALPHA_FAMILY / 2, summary


def test_horizon_ends_the_history_and_keeps_everything_before(
    size_cohort: list[PatientResult],
) -> None:
    """With no lethal burden, every history ends exactly at the horizon and every colony
    in the table was founded before it (none is lost or invented at the boundary)."""
    for result in size_cohort:
        assert result.end_reason == "horizon"
        assert result.end_time == HORIZON_DAYS
        assert np.all(result.lesions.arrival[1:] < HORIZON_DAYS)
        parents = result.lesions.parent[1:]
        assert np.all((parents >= 0) & (parents < np.arange(1, len(result.lesions))))


@pytest.mark.parametrize("day", COMPARE_DAYS)
def test_colony_size_distribution_matches_iwata_equation(
    day: float, renewal: RenewalSolution, size_cohort: list[PatientResult]
) -> None:
    """Claim: the engine's mean number of colonies per size bin on ``day`` (secondary
    seeding included) equals N(t - tau(x_lo)) - N(t - tau(x_hi)) from the renewal equation.

    Statistic: per bin, z = (cohort mean - expected) / (sample sd / sqrt(N)); colony counts
    are overdispersed (whole sub-trees of colonies), so the sd is estimated, not Poisson.
    Level: alpha = 0.001 over both days and all 11 bins, Bonferroni: |z| < 3.91 for each
    two-sided test (normal approximation: 300 patients, >= 100 colonies in every bin)."""
    z_limit = stats.norm.isf(ALPHA_FAMILY / N_BIN_TESTS / 2.0)
    counts = np.array([observed_bins(result, day) for result in size_cohort])
    expected = expected_bins(renewal, day)
    mean = counts.mean(axis=0)
    error = counts.std(axis=0, ddof=1) / math.sqrt(len(size_cohort))
    assert np.all(counts.sum(axis=0) >= 100), "every bin must hold colonies for the test to bite"
    z = (mean - expected) / error
    report = "\n".join(
        f"  [{lo:8.0e}, {hi:8.0e}): engine {m:9.4f} +- {e:.4f}, Iwata {x:9.4f}, z = {s:+.2f}"
        for lo, hi, m, e, x, s in zip(
            (1.0, *SIZE_EDGES[day]), (*SIZE_EDGES[day], K_CAPACITY), mean, error, expected, z,
            strict=True,
        )
    )
    assert np.all(np.abs(z) < z_limit), f"day {day:g}, |z| limit {z_limit:.2f}:\n{report}"

