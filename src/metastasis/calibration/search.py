"""Move one parameter until one statistic meets its target: bracketing, then bisection.

Every evaluation runs the same patients (same root seed, so the same per-patient
generators: common random numbers), so two evaluations differ by the parameter, not by
which patients were drawn, and the statistic is close to monotone in the parameter even on
a few hundred patients.  The search works on log10 of the parameter, as all the calibratable
parameters are positive and uncertain by orders of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from metastasis.calibration.parameters import Parameter
from metastasis.calibration.statistics import Estimate
from metastasis.calibration.targets import Target
from metastasis.errors import ModelError

SIGNIFICANT_DIGITS = 4
"""Values tried are rounded to this many significant figures: a calibrated knowledge base
should read 0.2, not 0.19999999999999998, and the value written must be one evaluated."""

Evaluate = Callable[[float], Estimate]
"""Runs the cohort with the parameter at a value and measures the target's statistic."""


@dataclass(frozen=True)
class Calibration:
    """A finished search: every value tried with its estimate, and the one chosen."""

    parameter: Parameter
    target: Target
    start: float
    evaluations: tuple[tuple[float, Estimate], ...]
    value: float
    estimate: Estimate
    bracketed: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def calibrate(
    parameter: Parameter,
    target: Target,
    start: float,
    evaluate: Evaluate,
    *,
    steps: int = 8,
    factor: float = 4.0,
    max_bracket_steps: int = 5,
    progress: Callable[[float, Estimate], object] | None = None,
) -> Calibration:
    """Find the value of ``parameter`` at which the statistic equals ``target.value``.

    From ``start`` the value is multiplied or divided by ``factor`` until the statistic
    crosses the target (at most ``max_bracket_steps`` times), then the bracket is halved in
    log space for the remaining evaluations; the value whose estimate lies nearest the
    target is returned.  Stops early once an estimate is within half its own 95 % interval
    of the target, where more evaluations could not tell values apart.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ModelError("steps", steps, "an integer >= 1")
    if not (math.isfinite(start) and start > 0.0):
        raise ModelError(parameter.name, start, "a positive starting value")
    if not (math.isfinite(factor) and factor > 1.0):
        raise ModelError("factor", factor, "a number > 1")
    tried: list[tuple[float, Estimate]] = []

    def run(value: float) -> float:
        value = float(f"{value:.{SIGNIFICANT_DIGITS}g}")  # the value tried is the one written
        estimate = evaluate(value)
        tried.append((value, estimate))
        if progress is not None:
            progress(value, estimate)
        return (estimate.share - target.value) * parameter.direction

    def settled(estimate: Estimate) -> bool:
        low, high = estimate.interval
        return abs(estimate.share - target.value) <= (high - low) / 4.0

    notes: list[str] = []
    gap = run(start)
    low_log = high_log = math.log10(start)
    bracketed = gap == 0.0
    # grow the bracket towards the target: up when too little spread, down when too much
    step = math.log10(factor) * (1.0 if gap < 0.0 else -1.0)
    moves = 0
    while not bracketed and not settled(tried[-1][1]) and moves < max_bracket_steps \
            and len(tried) < steps:
        moves += 1
        trial_log = (high_log if step > 0 else low_log) + step
        trial_gap = run(10.0**trial_log)
        if step > 0:
            low_log, high_log = high_log, trial_log
        else:
            low_log, high_log = trial_log, low_log
        bracketed = (trial_gap >= 0.0) == (step > 0)
    if not bracketed and not settled(tried[-1][1]):
        notes.append(
            f"the target was not reached between {10**min(low_log, high_log):.3g} and "
            f"{10**max(low_log, high_log):.3g}: another parameter must move"
        )
    # bisect the bracket (low_log gives too little spread, high_log too much)
    while bracketed and len(tried) < steps and not settled(min(
            (e for _, e in tried), key=lambda e: abs(e.share - target.value))):
        middle = (low_log + high_log) / 2.0
        if run(10.0**middle) < 0.0:
            low_log = middle
        else:
            high_log = middle
    value, estimate = min(tried, key=lambda pair: abs(pair[1].share - target.value))
    return Calibration(parameter, target, start, tuple(tried), value, estimate, bracketed,
                       tuple(notes))
