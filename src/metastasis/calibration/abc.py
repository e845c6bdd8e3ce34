"""Fit several parameters of one cancer type to all its targets at once, with uncertainty:
approximate Bayesian computation by sequential Monte Carlo (ABC-SMC, pyabc).

The prior of every parameter is log10-uniform between the bounds in its
:class:`~metastasis.calibration.parameters.Parameter` definition, or within a stated factor of
its present value (``prior_width``, inside those bounds).  A *particle* is one set of
values; evaluating it builds the three knowledge files with those values and runs
:func:`~metastasis.calibration.validation.validate` on the same root seed every time (common
random numbers: every particle meets the same virtual patients, so two particles differ by
their values, not by which patients were drawn, and the simulator is a deterministic function
of the values).  The distance of a particle to the targets is

    sqrt(mean over targets of ((estimate - target value) / half-width) ** 2)

with half-width = half the target's acceptable band (published band widened by its tolerance),
so a distance of 1 means the targets are missed, in root mean square, by their own tolerance.
A target with no data (no patient in the stage, too short a follow-up, a median not reached)
counts as :data:`PENALTY` half-widths away, and no target counts for more than that.

Generation 0 is a sample of the prior (every particle accepted); each of the ``generations``
after it perturbs the previous one and accepts particles within the weighted median of the
previous distances (pyabc's ``MedianEpsilon``), so the tolerance shrinks generation by
generation.  The posterior is the last generation's weighted particles: the values whose
simulated statistics lie within that final tolerance of the targets, on the fit's patients.
It describes how well the targets pin the parameters down at that tolerance; it is conditional
on the fit's cohort (``patients``, ``seed``), whose own sampling noise it does not include.

Cost: ``population`` evaluations for the prior sample, then about ``population / acceptance``
per generation (acceptance falls from about one half as the tolerance shrinks; a generation
stops, and the fit with it, after ``population / MIN_ACCEPTANCE`` evaluations), and one more
at the posterior median.  Each evaluation is one validation cohort of ``patients`` patients.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metastasis.backends import Backend, opened
from metastasis.calibration.parameters import Knowledge, Parameter, parameter
from metastasis.calibration.search import SIGNIFICANT_DIGITS
from metastasis.calibration.targets import Target
from metastasis.calibration.validation import DEFAULT_YEARS, Check, validate
from metastasis.errors import ModelError

PENALTY = 10.0
"""Half-widths a target with no data counts as, and the most any target counts for: an empty
stage is never better than a poor estimate, and one absurd statistic does not drown the rest."""

MIN_ACCEPTANCE = 0.05
"""A generation gives up (and the fit ends on the generation before) once fewer than this share
of its evaluations were accepted: at most ``population / MIN_ACCEPTANCE`` evaluations each."""

QUANTILES = (0.05, 0.5, 0.95)
"""The posterior summary: weighted 5 % quantile, median, 95 % quantile (a 90 % interval)."""

PROBE_SOURCE = "calibration probe: a value tried by metastasis calibrate --method abc"


@dataclass(frozen=True)
class Summary:
    """One parameter's posterior: weighted median and 90 % interval, with its prior."""

    parameter: Parameter
    median: float
    low: float
    """Weighted 5 % quantile."""
    high: float
    """Weighted 95 % quantile."""
    start: float
    """The value in the knowledge files before the fit."""
    prior: tuple[float, float]
    """The bounds of the log10-uniform prior the fit used."""


@dataclass(frozen=True)
class Evaluation:
    """One particle evaluated: its values, its distance and every target checked."""

    values: dict[str, float]
    distance: float
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Generation:
    """One ABC-SMC generation (0: the prior sample)."""

    t: int
    epsilon: float
    simulations: int
    particles: int

    @property
    def acceptance(self) -> float:
        return self.particles / self.simulations if self.simulations else math.nan


@dataclass(frozen=True)
class Fit:
    """A finished ABC-SMC fit of one cancer type."""

    cancer: str
    parameters: tuple[Parameter, ...]
    targets: tuple[Target, ...]
    posterior: pd.DataFrame
    """The last generation: one column per parameter (its value, not log10), ``weight``
    (summing to 1) and ``distance``."""
    summaries: dict[str, Summary]
    best: Evaluation
    """The posterior particle nearest the targets."""
    at_median: Evaluation
    """The posterior medians (rounded to 4 significant figures: the values written), evaluated
    once more on the same patients."""
    generations: tuple[Generation, ...]
    simulations: int
    """Every evaluation of the fit, the one at the median included."""
    seconds: float
    patients: int
    seed: int
    years: float
    population: int
    base: Knowledge
    """The knowledge files the fit started from."""
    prior_width: float | None = None
    """The factor either side of the starting values the priors were narrowed to, if any."""

    def prior_reason(self, name: str) -> str:
        """Why the prior of ``name`` spans what it does (one line)."""
        s = self.summaries[name]
        if self.prior_width is None:
            return s.parameter.prior
        return (f"a factor {self.prior_width:g} either side of the value before the fit "
                f"({s.start:.4g}), within the parameter's bounds {s.parameter.low:g}-"
                f"{s.parameter.high:g}")

    @property
    def epsilon(self) -> float:
        """The final tolerance (the last generation's distance threshold)."""
        return self.generations[-1].epsilon

    def values(self) -> dict[str, float]:
        return {name: s.median for name, s in self.summaries.items()}


Evaluate = Callable[..., tuple[Check, ...]]
Progress = Callable[[int, dict[str, float], float, float], object]
"""``progress(k, values, distance, seconds)`` after the ``k``-th evaluation (from 1)."""


OVER_BUDGET_FIELD = "lesions"
"""The field of the error a history raises when it would exceed the engine's row budget."""


def evaluate(
    knowledge: Knowledge, cancer: str, targets: list[Target], *, patients: int, seed: int,
    years: float, backend: Backend,
) -> tuple[Check, ...]:
    """Every target checked on one validation cohort of the knowledge files as they are."""
    from metastasis.clinical.loader import clinical_from_dict
    from metastasis.clinical.treatment_schema import treatments_from_dict
    from metastasis.knowledge.loader import from_dict
    from metastasis.model.resolve import resolve

    model = resolve(from_dict(knowledge.model), cancer)
    result = validate(model, clinical_from_dict(knowledge.clinical),
                      treatments_from_dict(knowledge.treatments), targets, patients=patients,
                      seed=seed, years=years, backend=backend)
    return result.checks


def distance(checks: tuple[Check, ...] | list[Check]) -> float:
    """Root mean square of each target's miss in half-widths of its acceptable band (a
    target with no data, or further than :data:`PENALTY`, counts as :data:`PENALTY`)."""
    if not checks:
        raise ModelError("targets", [], "at least one target to fit")
    terms = []
    for check in checks:
        low, high = check.target.acceptable
        half = (high - low) / 2.0
        if half <= 0.0:
            raise ModelError(f"{check.target.cancer}.{check.target.name}", (low, high),
                             "an acceptable band of positive width")
        miss = abs(check.estimate - check.target.value) / half
        terms.append(min(miss, PENALTY) ** 2 if math.isfinite(miss) else PENALTY**2)
    return math.sqrt(sum(terms) / len(terms))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of weighted points (each point's weight centred on it, linear in
    between: pyabc's own definition)."""
    order = np.argsort(values)
    points = np.asarray(values, dtype=float)[order]
    w = np.asarray(weights, dtype=float)[order]
    w = w / w.sum()
    return float(np.interp(q, np.cumsum(w) - 0.5 * w, points))


def prior_bounds(parameter: Parameter, start: float, width: float | None
                 ) -> tuple[float, float]:
    """The prior's bounds: the parameter's own (``width`` None), or a factor ``width`` either
    side of ``start`` within them.

    A narrow prior refines values already set by hand against the targets: with the few dozen
    particles a fit can afford, a prior spanning orders of magnitude leaves the posterior
    wider than the hand-set region it should sharpen."""
    low, high = parameter.bounds
    if width is None:
        return (low, high)
    if isinstance(width, bool) or not (math.isfinite(width) and width > 1.0):
        raise ModelError("--prior-width", width, "a factor > 1")
    if not low <= start <= high:
        raise ModelError(parameter.name, start, f"a value within its prior bounds {low:g}-"
                         f"{high:g} to centre --prior-width on")
    return (max(low, start / width), min(high, start * width))


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _key(name: str) -> str:
    return f"log10_{name}"


@contextlib.contextmanager
def _numpy_seeded(seed: int) -> Iterator[None]:
    """pyabc draws its prior samples, perturbations and resampling from numpy's global random
    state; seed it for the fit and give the caller's state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _import_pyabc():  # type: ignore[no-untyped-def]
    """pyabc, imported only when a fit runs (it takes seconds).  Importing it sets
    OMP_NUM_THREADS=1 when unset; that is pyabc's choice for its own parallel samplers, not
    ours, so the environment is given back as it was."""
    had = os.environ.get("OMP_NUM_THREADS")
    try:
        import pyabc
    except ImportError:
        raise ModelError("--method", "abc", "pyabc installed (pip install "
                         "'metastasis[calibrate]')") from None
    finally:
        if had is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    return pyabc


def fit(
    cancer: str,
    parameter_names: list[str],
    targets: list[Target],
    *,
    knowledge: Knowledge,
    patients: int,
    seed: int,
    years: float = DEFAULT_YEARS,
    population: int = 20,
    generations: int = 3,
    workers: int = 1,
    scheduler: str | None = None,
    backend: Backend | None = None,
    prior_width: float | None = None,
    progress: Progress | None = None,
) -> Fit:
    """Fit ``parameter_names`` of ``cancer`` to ``targets`` by ABC-SMC (see the module).

    ``knowledge`` holds the three knowledge files the particles change.  Every evaluation
    runs ``patients`` patients on root seed ``seed`` (common random numbers) through
    :func:`evaluate`, in the worker processes of ``backend`` (else one opened for
    ``workers``/``scheduler`` for the whole fit); pyabc itself samples in this process
    (``SingleCoreSampler``).  Reproducible: the cohorts are fixed by ``seed`` and pyabc's own
    draws come from numpy's global random state, which is seeded with ``seed`` for the fit and
    restored afterwards (the one place the package touches a global generator).  pyabc keeps
    its database in a temporary sqlite file, removed when the fit ends.  ``prior_width``
    narrows each prior to a factor either side of the value in ``knowledge``
    (:func:`prior_bounds`).
    """
    names = list(dict.fromkeys(parameter_names))
    if not names:
        raise ModelError("--parameters", "", "at least one parameter name")
    chosen = tuple(parameter(name) for name in names)
    starts = {name: knowledge.value(cancer, name) for name in names}
    bounds = {p.name: prior_bounds(p, starts[p.name], prior_width) for p in chosen}
    if not targets:
        raise ModelError("targets", [], "at least one target to fit")
    for name, value in (("population", population), ("generations", generations),
                        ("patients", patients)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(name, value, "an integer >= 1")
    pyabc = _import_pyabc()
    evaluations: list[Evaluation] = []
    began = time.perf_counter()

    with opened(workers, scheduler, backend) as running:

        def run(values: dict[str, float]) -> Evaluation:
            started = time.perf_counter()
            probe = knowledge.with_values(cancer, values, PROBE_SOURCE)
            try:
                checks = evaluate(probe, cancer, targets, patients=patients, seed=seed,
                                  years=years, backend=running)
                evaluation = Evaluation(dict(values), distance(checks), tuple(checks))
            except ModelError as error:
                if error.field != OVER_BUDGET_FIELD:
                    raise
                # values that seed more metastases than a history can hold are as far from
                # every target as a particle can be, not the end of the fit
                evaluation = Evaluation(dict(values), PENALTY, ())
            evaluations.append(evaluation)
            if progress is not None:
                progress(len(evaluations), evaluation.values, evaluation.distance,
                         time.perf_counter() - started)
            return evaluation

        def model(particle: dict[str, float]) -> dict[str, float]:
            done = run({name: 10.0 ** float(particle[_key(name)]) for name in names})
            return {"distance": done.distance, "evaluation": len(evaluations) - 1}

        prior = pyabc.Distribution(**{
            _key(name): pyabc.RV("uniform", math.log10(low), math.log10(high / low))
            for name, (low, high) in bounds.items()})
        with tempfile.TemporaryDirectory(prefix="metastasis-abc-") as folder, \
                _numpy_seeded(seed), _quiet("ABC"):
            smc = pyabc.ABCSMC(
                model, prior, lambda x, _: x["distance"], population_size=population,
                sampler=pyabc.sampler.SingleCoreSampler(check_max_eval=True),
                eps=pyabc.MedianEpsilon(initial_epsilon=math.inf),
            )
            smc.new("sqlite:///" + str(Path(folder) / "abc.db"),
                    {"distance": 0.0, "evaluation": -1})
            with warnings.catch_warnings():
                # pyabc compares the prior sample's infinite tolerance with the one before
                # (inf - inf) when it checks for termination: harmless, and not ours to show
                warnings.filterwarnings("ignore", "invalid value encountered",
                                        RuntimeWarning, "pyabc")
                history = smc.run(max_nr_populations=generations + 1,
                                  min_acceptance_rate=MIN_ACCEPTANCE)
            table = history.get_all_populations()
            rounds = tuple(Generation(int(row.t), float(row.epsilon), int(row.samples),
                                      int(row.particles))
                           for row in table.itertuples() if row.t >= 0)
            last = history.get_population(t=history.max_t)
            rows = []
            for particle in last.particles:
                chosen_one = evaluations[int(particle.sum_stat["evaluation"])]
                rows.append({**chosen_one.values, "weight": float(particle.weight),
                             "distance": float(particle.distance),
                             "evaluation": int(particle.sum_stat["evaluation"])})
        posterior = pd.DataFrame(rows).sort_values("evaluation", kind="stable")
        posterior = posterior.reset_index(drop=True)
        posterior["weight"] = posterior["weight"] / posterior["weight"].sum()
        summaries = {}
        for p in chosen:
            low, median, high = (weighted_quantile(posterior[p.name].to_numpy(),
                                                   posterior["weight"].to_numpy(), q)
                                 for q in QUANTILES)
            summaries[p.name] = Summary(p, _rounded(median), low, high, starts[p.name],
                                     bounds[p.name])
        best = evaluations[int(posterior.loc[posterior["distance"].idxmin(), "evaluation"])]
        at_median = run({name: s.median for name, s in summaries.items()})

    return Fit(cancer, chosen, tuple(targets), posterior.drop(columns="evaluation"),
               summaries, best, at_median, rounds, len(evaluations),
               time.perf_counter() - began, patients, seed, years, population, knowledge,
               prior_width)
