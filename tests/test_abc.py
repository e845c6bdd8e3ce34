"""The ABC-SMC fit (``metastasis calibrate --method abc``): parameters in all three knowledge
files, the distance, recovery of known parameters on a closed-form stand-in, reproducibility,
and one tiny real fit through the command line.

The stand-in replaces :func:`metastasis.calibration.abc.evaluate` (one validation cohort) by
an exact, monotone function of two parameters with a little seeded noise, so the true values
are known: after nine generations of 40 particles the posterior median must lie within 0.1
in log10 (a factor 1.26) of each true value and the 90 % interval must cover it (seeds 1-10
all did, the medians within 0.05).  Fewer generations leave a wider tolerance, and at a wide
tolerance the median is biased where a statistic responds asymmetrically (a median survival
bounded below by zero): that is ABC at that tolerance, not an error of the fit.
"""

from __future__ import annotations

import copy
import math
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from metastasis.calibration import abc
from metastasis.calibration.parameters import PARAMETERS, Knowledge, current_value, with_value
from metastasis.calibration.targets import targets_from_dict
from metastasis.calibration.validation import Check
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.loader import clinical_from_dict
from metastasis.clinical.treatment_schema import treatments_from_dict
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict, load

pytest.importorskip("pyabc")

runner = CliRunner()
CANCER_TYPES = ("colorectal", "pancreatic", "gastric", "breast", "nsclc", "prostate",
                "melanoma", "renal_cell")


def _packaged(name: str) -> dict:
    return tomllib.loads(resources.files("metastasis.knowledge.data").joinpath(name)
                         .read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return Knowledge(_packaged("default.toml"), _packaged("clinical.toml"),
                     _packaged("treatments.toml"))


# ---------------------------------------------------------------- parameters


def test_every_parameter_has_a_prior_with_a_reason_around_the_shipped_values(knowledge):
    for name, p in PARAMETERS.items():
        low, high = p.bounds
        assert p.prior, name
        for cancer in CANCER_TYPES:
            assert low <= knowledge.value(cancer, name) <= high, (name, cancer)


def test_a_clinical_parameter_gets_its_own_entry_copied_from_the_default(knowledge):
    clinical = copy.deepcopy(knowledge.clinical)
    del clinical["outcomes"]["cachexia"]["breast"]  # every shipped type has its own entry
    out = with_value(clinical, "breast", "cachexia_threshold", 2e11, "test source")
    assert "breast" not in clinical["outcomes"]["cachexia"]  # the input is left alone
    entry = out["outcomes"]["cachexia"]["breast"]
    default = clinical["outcomes"]["cachexia"]["default"]
    assert entry["label"] == default["label"]
    assert entry["log10_spread"] == default["log10_spread"]
    assert entry["median_threshold_cells"] == {"value": 2e11, "source": "test source"}
    rule = clinical_from_dict(out).outcomes.cachexia_rule("breast")
    assert rule.median_threshold_cells.value == 2e11
    assert current_value(clinical, "breast", "cachexia_threshold") == \
        default["median_threshold_cells"]["value"]
    # a cancer type with its own entry keeps its label, only the threshold changes
    own = with_value(clinical, "pancreatic", "cachexia_threshold", 5e10, "s")
    assert own["outcomes"]["cachexia"]["pancreatic"]["median_threshold_cells"]["value"] == 5e10


def test_values_in_three_files_at_once(knowledge):
    out = knowledge.with_values("gastric", {"metastasis_speedup": 2.5,
                                            "cachexia_threshold": 4e11,
                                            "folfox_surviving_fraction": 0.2}, "test")
    assert from_dict(out.model).cancer("gastric").growth.metastasis_speedup.value == 2.5
    assert clinical_from_dict(out.clinical).outcomes.cachexia_rule("gastric") \
        .median_threshold_cells.value == 4e11
    assert treatments_from_dict(out.treatments).therapies["folfox"].surviving_fraction \
        .value == 0.2
    assert knowledge.value("gastric", "metastasis_speedup") != 2.5  # the input is left alone


# ---------------------------------------------------------------- distance


def _targets():
    return list(targets_from_dict({"colorectal": {
        "spread": {"label": "distant", "statistic": "distant_share", "value": 0.3,
                   "tolerance": 0.05, "source": "test figure"},
        "median": {"label": "median IV", "statistic": "median_survival_months", "stage": "IV",
                   "value": 12.0, "source": "test figure"},
    }})["colorectal"].values())


def _check(target, estimate) -> Check:
    return Check(target, estimate, estimate, estimate, 100, "meets")


def test_distance_is_the_miss_in_half_widths():
    spread, median = _targets()
    assert abc.distance([_check(spread, 0.3), _check(median, 12.0)]) == 0.0
    # 0.35 is the edge of the acceptable band 0.25-0.35: one half-width; 9 months is the low
    # edge of 9-15 (25 % relative): one half-width
    assert abc.distance([_check(spread, 0.35), _check(median, 9.0)]) == pytest.approx(1.0)
    assert abc.distance([_check(spread, math.nan)]) == abc.PENALTY
    assert abc.distance([_check(median, math.inf)]) == abc.PENALTY
    assert abc.distance([_check(spread, 1.0)]) == abc.PENALTY  # 14 half-widths, capped
    with pytest.raises(ModelError):
        abc.distance([])


# ---------------------------------------------------------------- closed-form stand-in

TRUE = {"shedding_rate": 0.1, "cachexia_threshold": 1e11}


def _stand_in(knowledge, cancer, targets, *, patients, seed, years, backend):
    """A distant share rising with shedding and a median survival rising with the cachexia
    threshold (and a little with shedding), at the targets' values exactly at ``TRUE``, plus
    noise fixed by the seed and the values (common random numbers: the same values give the
    same figures)."""
    x = math.log10(knowledge.value(cancer, "shedding_rate") / TRUE["shedding_rate"])
    y = math.log10(knowledge.value(cancer, "cachexia_threshold") / TRUE["cachexia_threshold"])
    rng = np.random.default_rng([seed, round(abs(x) * 1e6), round(abs(y) * 1e6)])
    share = 0.6 / (1.0 + math.exp(-2.0 * math.log(10.0) * x)) + rng.normal(0.0, 0.005)
    months = 12.0 * 10.0 ** (0.8 * y + 0.2 * x) * (1.0 + rng.normal(0.0, 0.01))
    spread, median = targets
    return (_check(spread, share), _check(median, months))


def _fit(knowledge, seed, population=40, generations=9):
    return abc.fit("colorectal", list(TRUE), _targets(), knowledge=knowledge, patients=50,
                   seed=seed, population=population, generations=generations)


def test_a_particle_past_the_row_budget_is_a_miss_not_the_end_of_the_fit(monkeypatch,
                                                                          knowledge):
    """Values that seed more metastases than a history can hold (the engine refuses them)
    count as the largest distance; any other error still stops the fit."""
    def explosive(knowledge, cancer, targets, **kwargs):
        if knowledge.value(cancer, "shedding_rate") > 1.0:
            raise ModelError("lesions", 3_000_000, "at most 2,000,000 lesion segments")
        return _stand_in(knowledge, cancer, targets, **kwargs)

    monkeypatch.setattr(abc, "evaluate", explosive)
    fit = _fit(knowledge, seed=5, population=10, generations=1)
    assert fit.simulations > 10  # the fit went on past the refused particles
    assert (fit.posterior["shedding_rate"] <= 1.0).all()
    assert fit.summaries["shedding_rate"].median <= 1.0

    def broken(*args, **kwargs):
        raise ModelError("model", "x", "something else")

    monkeypatch.setattr(abc, "evaluate", broken)
    with pytest.raises(ModelError, match="something else"):
        _fit(knowledge, seed=5, population=4, generations=1)


@pytest.mark.slow
def test_the_posterior_recovers_known_parameters(monkeypatch, knowledge):
    monkeypatch.setattr(abc, "evaluate", _stand_in)
    fit = _fit(knowledge, seed=3)
    assert len(fit.generations) == 10 and fit.generations[0].epsilon == math.inf
    assert [g.epsilon for g in fit.generations[1:]] == sorted(
        (g.epsilon for g in fit.generations[1:]), reverse=True)
    assert fit.posterior["weight"].sum() == pytest.approx(1.0)
    for name, truth in TRUE.items():
        s = fit.summaries[name]
        assert abs(math.log10(s.median / truth)) < 0.1, (name, s)
        assert s.low <= truth <= s.high, (name, s)
        low, high = s.parameter.bounds
        # the targets narrowed the prior to under a fifth of its width (in log10)
        assert math.log10(s.high / s.low) < math.log10(high / low) / 5.0, (name, s)
    assert fit.at_median.values == fit.values()
    assert fit.best.distance <= fit.posterior["distance"].min() + 1e-12
    assert fit.simulations == sum(g.simulations for g in fit.generations) + 1


def test_the_fit_is_reproducible_and_leaves_numpy_alone(monkeypatch, knowledge):
    monkeypatch.setattr(abc, "evaluate", _stand_in)
    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    first = _fit(knowledge, seed=7, population=15, generations=2)
    assert np.array_equal(np.random.get_state()[1], before)
    again = _fit(knowledge, seed=7, population=15, generations=2)
    other = _fit(knowledge, seed=8, population=15, generations=2)
    assert first.posterior.equals(again.posterior)
    assert first.summaries == again.summaries
    assert not first.posterior.equals(other.posterior)


def test_a_prior_width_narrows_each_prior_around_the_value_before_the_fit(monkeypatch,
                                                                          knowledge):
    """``prior_width`` K: log10-uniform from value/K to value*K, clipped to the parameter's
    own bounds; every particle of the fit lies inside, and the summary and the source say
    which prior was used."""
    speedup = PARAMETERS["metastasis_speedup"]
    assert abc.prior_bounds(speedup, 2.0, None) == speedup.bounds
    assert abc.prior_bounds(speedup, 2.0, 3.0) == pytest.approx((2.0 / 3.0, 6.0))
    assert abc.prior_bounds(speedup, 8.0, 3.0) == pytest.approx((8.0 / 3.0, 10.0))  # clipped
    for bad in (1.0, 0.5, math.nan, math.inf, -3.0):
        with pytest.raises(ModelError, match="prior-width"):
            abc.prior_bounds(speedup, 2.0, bad)
    with pytest.raises(ModelError, match="within its prior bounds"):
        abc.prior_bounds(speedup, 50.0, 3.0)

    monkeypatch.setattr(abc, "evaluate", _stand_in)
    fit = abc.fit("colorectal", list(TRUE), _targets(), knowledge=knowledge, patients=50,
                  seed=4, population=10, generations=1, prior_width=2.0)
    for name in TRUE:
        start = knowledge.value("colorectal", name)
        low, high = fit.summaries[name].prior
        assert (low, high) == pytest.approx((start / 2.0, start * 2.0))
        assert fit.posterior[name].between(low, high).all()
        assert "a factor 2 either side" in fit.prior_reason(name)
    from metastasis.cli import abc_report

    command = abc_report.command_line("colorectal", list(TRUE), None, patients=50, seed=4,
                                      years=30, population=10, generations=1, files={},
                                      prior_width=2.0)
    assert command.endswith("--generations 1 --prior-width 2")
    source = abc_report.posterior_source(fit, "shedding_rate", command)
    start = knowledge.value("colorectal", "shedding_rate")
    assert f"prior log10-uniform {start / 2:.4g}-{start * 2:.4g})" in source


def test_bad_fit_settings_are_refused(knowledge):
    with pytest.raises(ModelError):
        abc.fit("colorectal", [], _targets(), knowledge=knowledge, patients=10, seed=1)
    with pytest.raises(ModelError):
        abc.fit("colorectal", ["shedding_rate"], _targets(), knowledge=knowledge, patients=10,
                seed=1, population=0)
    with pytest.raises(ModelError):
        abc.fit("colorectal", ["speed"], _targets(), knowledge=knowledge, patients=10, seed=1)


# ---------------------------------------------------------------- command line


@pytest.mark.parametrize("arguments", [
    ["--method", "bayes"],
    ["--method", "abc"],  # no --parameters
    ["--method", "abc", "--parameters", "speed"],
    ["--method", "abc", "--parameters", "outgrowth", "--check"],
    ["--method", "abc", "--parameters", "outgrowth", "--parameter", "outgrowth"],
    ["--method", "abc", "--parameters", "outgrowth", "--target", "nonsense"],
    ["--method", "abc", "--parameters", "outgrowth", "--population", "0"],
    ["--method", "abc", "--parameters", "outgrowth", "--prior-width", "1"],
    ["--method", "abc", "--parameters", "outgrowth", "--prior-width", "nan"],
    ["--method", "abc", "--parameters", "outgrowth", "--prior-width", "wide"],
    ["--prior-width", "3"],  # search
    ["--parameters", "outgrowth"],  # search
    ["--population", "4"],  # search
    ["--parameter", "cachexia_threshold"],  # the search moves disease parameters only
])
def test_bad_abc_input_is_one_line_and_exit_2(arguments):
    result = runner.invoke(app, ["calibrate", "--cancer", "colorectal", *arguments])
    assert result.exit_code == USAGE_ERROR, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.slow
def test_a_tiny_real_fit_writes_a_knowledge_base_that_names_its_command(tmp_path: Path):
    out = tmp_path / "fitted.toml"
    result = runner.invoke(app, [
        "calibrate", "--cancer", "colorectal", "--method", "abc",
        "--parameters", "metastasis_speedup", "--target",
        "distant_at_diagnosis,survival_5y_IV,median_untreated_IV",
        "--population", "4", "--generations", "1", "--patients", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "fitted.clinical.toml").exists()  # no clinical parameter fitted
    growth = load(out).cancer("colorectal").growth
    source = growth.metastasis_speedup.source
    command = ("metastasis calibrate --cancer colorectal --method abc --parameters "
               "metastasis_speedup --target distant_at_diagnosis,survival_5y_IV,"
               "median_untreated_IV --patients 20 --seed 1 --years 30 --population 4 "
               "--generations 1")
    assert source.startswith(f"calibrated: `{command}`; posterior median "), source
    assert "from 4 particles, 1 generation after the prior sample" in source
    assert "targets: distant_at_diagnosis 0.225" in source
    median = float(source.split("posterior median ")[1].split(" ")[0])
    assert growth.metastasis_speedup.value == pytest.approx(median, rel=1e-3)
    low, high = PARAMETERS["metastasis_speedup"].bounds
    assert low <= growth.metastasis_speedup.value <= high
    assert "Cost:" in result.output
