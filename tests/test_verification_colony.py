"""Verification: colony establishment as a linear birth-death process.

A founding cell divides at rate b and dies at rate d; the colony survives (never dies out)
with probability 1 - d/b, and a survivor grows like W exp((b - d) t) with W exponential of
mean b/(b - d).  The engine uses both results in closed form: 1 - d/b inside its fate
probabilities, and the law of W for the time a surviving colony needs to reach the
micrometastasis size M, log(M / W) / (b - d).

Here a plain Gillespie simulation, written in this file and sharing nothing with the engine,
checks both, and seeded engine runs are compared with it.  Every statistical comparison is
at alpha = 0.001 (Bonferroni within a test), with fixed seeds.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from metastasis.api import load_model
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import FATES, resolve
from metastasis.results.patient import Accounting

pytestmark = pytest.mark.verification  # statistical agreement: the slow tier

ALPHA = 1e-3
"""Significance level of every statistical comparison in this module."""

RATES = ((1.0, 0.5), (0.5, 0.45), (1.0, 0.2))
"""(b, d) pairs: even odds, the default's 10 % survival, and a mostly surviving colony."""


def gillespie_colonies(
    b: float, d: float, stop_size: int, replicates: int, rng: np.random.Generator,
    *, with_times: bool,
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Run ``replicates`` independent linear birth-death colonies from one cell.

    Each step of a live colony of n cells waits Exp((b + d) n) and then gains a cell with
    probability b / (b + d), else loses one; a colony stops at 0 (extinct) or at
    ``stop_size``.  Returns whether each colony reached ``stop_size`` and the time it did
    (the waiting times are skipped when ``with_times`` is false: survival needs only the
    jump chain).  Replicates are advanced side by side, which is the same as running them
    one after another.
    """
    size = np.ones(replicates, dtype=np.int64)
    time = np.zeros(replicates)
    live = np.arange(replicates)
    up = b / (b + d)
    while live.size:
        if with_times:
            time[live] += rng.exponential(1.0 / ((b + d) * size[live]))
        size[live] += np.where(rng.random(live.size) < up, 1, -1)
        live = live[(size[live] > 0) & (size[live] < stop_size)]
    return size >= stop_size, time


def _stop_size_for_survival(b: float, d: float) -> int:
    """Size beyond which extinction is negligible: (d/b)^M < 1e-9.

    A colony of M cells dies out with probability (d/b)^M, so reaching M and surviving
    differ by less than 1e-9, far below the binomial test's resolution.
    """
    return max(int(np.ceil(np.log(1e-9) / np.log(d / b))), 1) if d > 0 else 1


@pytest.mark.parametrize(("b", "d"), RATES)
def test_gillespie_colony_survives_with_probability_one_minus_d_over_b(b: float, d: float) -> None:
    """Claim: a one-cell colony with rates (b, d) survives with probability 1 - d/b.

    Statistic: survivors among 20,000 Gillespie colonies, exact two-sided binomial test
    against 1 - d/b at alpha = 0.001 (one test per (b, d))."""
    replicates = 20_000
    rng = np.random.default_rng(20_000 + int(100 * b) + int(1000 * d))
    survived, _ = gillespie_colonies(
        b, d, _stop_size_for_survival(b, d), replicates, rng, with_times=False
    )
    k = int(survived.sum())
    result = stats.binomtest(k, replicates, 1.0 - d / b)
    assert result.pvalue > ALPHA, f"{k / replicates:.4f} survived, expected {1 - d / b:.4f}"


def _colony_raw(iwata_raw: dict[str, Any], b: float, d: float, micro: float) -> dict[str, Any]:
    """Iwata's configuration (every shed cell founds a colony) with a birth-death colony.

    Founding colonies go extinct with probability d/b; survivors grow to ``micro`` cells and
    then wait so long before outgrowth (1e9 days) that they never seed further lesions, so
    a run is cheap however many colonies it founds.  Shedding is 100 times Iwata's so a
    handful of patients found thousands of colonies.
    """
    raw = copy.deepcopy(iwata_raw)
    cancer = raw["cancers"]["hcc_iwata"]
    colonisation = cancer["colonisation"]
    colonisation["colony_birth_rate"]["value"] = b
    colonisation["colony_death_rate"]["value"] = d
    colonisation["micrometastasis_cells"]["value"] = micro
    colonisation["mean_outgrowth_delay_days"]["value"] = 1e9
    cancer["shedding"]["rate"]["value"] = 100 * cancer["shedding"]["rate"]["value"]
    return raw


def _extinct_and_established(accounting: Accounting) -> tuple[int, int]:
    totals = accounting.totals()
    established = totals["micrometastasis"] + totals["outgrowth"]
    return totals["colony_extinct"], established


def test_engine_accounting_loses_d_over_b_of_colonies_default_colorectal() -> None:
    """Claim: in the default colorectal model (b = 0.5, d = 0.45) the engine's accounting
    shows colony_extinct / (colony_extinct + micrometastasis + outgrowth) = d/b = 0.9.

    Statistic: given the number of founded colonies, the extinct ones are binomial with
    p = d/b (Poisson splitting); exact two-sided binomial test over 8 seeded 10-year
    patients (about 88,000 colonies), alpha = 0.001."""
    model = load_model("colorectal")
    extinct = established = 0
    for i in range(8):
        accounting = simulate_patient(model, patient_generator(31, i), 3652.5).accounting
        e, s = _extinct_and_established(accounting)
        extinct, established = extinct + e, established + s
    p_dead = model.colony_death_rate / model.colony_birth_rate
    founded = extinct + established
    assert founded > 10_000, "too few colonies for the test to bite"
    result = stats.binomtest(extinct, founded, p_dead)
    assert result.pvalue > ALPHA, f"{extinct}/{founded} = {extinct / founded:.4f} vs {p_dead}"


@pytest.mark.parametrize(("b", "d"), RATES)
def test_engine_accounting_loses_d_over_b_of_colonies(
    b: float, d: float, iwata_raw: dict[str, Any]
) -> None:
    """Claim: with every shed cell founding a colony, the engine's accounting shows
    colony_extinct / (all founded colonies) = d/b, and the tracked lesions (the outgrowth
    fate) are exactly the established colonies.

    Statistic: exact two-sided binomial test of the extinct count against d/b, 4 seeded
    patients over 700 days (about 4,300 colonies), alpha = 0.001 per (b, d)."""
    model = resolve(from_dict(_colony_raw(iwata_raw, b, d, 1e3)), "hcc_iwata")
    extinct = established = tracked = 0
    for i in range(4):
        result = simulate_patient(model, patient_generator(41, i), 700.0)
        e, s = _extinct_and_established(result.accounting)
        extinct, established = extinct + e, established + s
        tracked += len(result.lesions) - 1
        assert result.accounting.totals()["micrometastasis"] == 0  # outgrowth probability 1
    assert tracked == established
    founded = extinct + established
    assert founded > 2_000, "too few colonies for the test to bite"
    test = stats.binomtest(extinct, founded, d / b)
    assert test.pvalue > ALPHA, f"{extinct}/{founded} = {extinct / founded:.4f} vs {d / b}"


MICRO_SIZE = 1000
"""Micrometastasis size M for the timing test: large enough for the asymptotic law.

With M = 1e3 the exact hitting time of M differs from log(M / W) / (b - d) by much less than
the test resolves: measured once on 1e4 Gillespie survivors (b = 1, d = 0.5), the KS
distance from the law was 0.009 (p = 0.44), against a critical distance of about 0.06 for
the sample sizes used here.  So the tolerance of this test is the KS critical value at
alpha = 0.001; no further allowance is added."""


@pytest.mark.parametrize(("b", "d"), [(1.0, 0.5), (1.0, 0.2)])
def test_engine_time_to_micrometastasis_matches_gillespie(
    b: float, d: float, iwata_raw: dict[str, Any]
) -> None:
    """Claim: the engine's time from founding to micrometastasis (M = 1e3 cells) has the
    law of a surviving birth-death colony's hitting time of M.

    Statistic: two-sample Kolmogorov-Smirnov between the engine's founders (seeded run) and
    the survivors of a plain Gillespie simulation (4,000 colonies), alpha = 0.001 per (b, d);
    and each against the closed-form CDF exp(-M (b - d)/b e^{-(b - d) t}), Bonferroni over the
    three KS tests."""
    model = resolve(from_dict(_colony_raw(iwata_raw, b, d, float(MICRO_SIZE))), "hcc_iwata")
    waits: list[NDArray[np.float64]] = []
    for i in range(4):
        lesions = simulate_patient(model, patient_generator(51, i), 700.0).lesions
        waits.append((lesions.micrometastasis - lesions.awakening)[1:])
    engine = np.concatenate(waits)
    assert engine.size > 1_500, "too few founders for the test to bite"

    rng = np.random.default_rng(52 + int(10 * d))
    reached, hitting = gillespie_colonies(b, d, MICRO_SIZE, 4_000, rng, with_times=True)
    reference = hitting[reached]

    r = b - d

    def law(t: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.exp(-MICRO_SIZE * r / b * np.exp(-r * np.asarray(t)))

    level = ALPHA / 3
    two_sample = stats.ks_2samp(engine, reference)
    engine_vs_law = stats.kstest(engine, law)
    gillespie_vs_law = stats.kstest(reference, law)
    summary = (
        f"engine vs Gillespie D={two_sample.statistic:.4f} p={two_sample.pvalue:.3g}; "
        f"engine vs law D={engine_vs_law.statistic:.4f} p={engine_vs_law.pvalue:.3g}; "
        f"Gillespie vs law D={gillespie_vs_law.statistic:.4f} p={gillespie_vs_law.pvalue:.3g}"
    )
    assert two_sample.pvalue > level, summary
    assert engine_vs_law.pvalue > level, summary
    assert gillespie_vs_law.pvalue > level, summary


def test_fate_probabilities_use_one_minus_d_over_b(iwata_raw: dict[str, Any]) -> None:
    """The resolved fate table splits founded colonies d/b : (1 - d/b) (to 1e-15)."""
    b, d = 0.8, 0.3
    model = resolve(from_dict(_colony_raw(iwata_raw, b, d, 1e3)), "hcc_iwata")
    fate = model.fate[model.primary_site]
    extinct = fate[FATES.index("colony_extinct")]
    survived = fate[FATES.index("micrometastasis")] + fate[FATES.index("outgrowth")]
    assert extinct / (extinct + survived) == pytest.approx(d / b, rel=1e-15)
    assert model.colony_survival == pytest.approx(1 - d / b, rel=1e-15)
