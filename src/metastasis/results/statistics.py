"""The package's one implementation of its two interval statistics.

* :func:`wilson_interval`, the Wilson score interval for a binomial share (shares of patients
  with a metastasis at a site, calibration targets);
* :func:`kaplan_meier`, the product-limit survival estimate for right-censored times (time to
  the first distant metastasis, survival from diagnosis) with Greenwood confidence bands.

Every report, the web API, the charts and the calibration call these, so a number printed by
the CLI and the same number served by the web come from the same arithmetic.  The estimator
follows lifelines' ``KaplanMeierFitter`` (the same timeline starting at 0, the same
log-space product, the same exponential-Greenwood bands on the log(-log) scale, the same
reading of quantiles and their limits off the curve and the bands), and
``tests/test_statistics.py`` checks it against lifelines; lifelines itself is only a test
dependency.

Only numpy and the standard library are used: the normal quantile comes from
:class:`statistics.NormalDist`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

CONFIDENCE = 0.95
"""Default coverage of every interval here (the usual reporting level)."""

QUANTILE_SLACK = 1e-12
"""Slack when asking whether a curve has fallen to a level: a product-limit survival is a
product of many factors and carries rounding, so a curve that is exactly 0.5 in exact
arithmetic (say 5 deaths of 10 without censoring) may be stored as 0.5 + 1e-16; it must
still count as having reached 0.5, or the median would jump to the next death."""


def normal_quantile(confidence: float) -> float:
    """Two-sided standard normal quantile for a central interval of ``confidence``
    (1.95996... at 95 %), computed as lifelines does, from ``1 - alpha / 2``."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence!r}")


# --------------------------------------------------------------------------- Wilson


def wilson_interval(
    successes: int, trials: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval for a binomial share ``successes / trials``.

    Chosen over the normal (Wald) interval because shares near 0 or 1 (brain metastases,
    cells dying in transit, rare sites in calibration) are common here, where Wald collapses
    to a point or leaves [0, 1] while Wilson keeps close to its nominal coverage.  The bounds
    are clipped to [0, 1] (they lie inside it in exact arithmetic; clipping removes
    rounding), and the closed ends are exact: 0 for no successes, 1 for all (the formula
    leaves them a rounding error away, 2.8e-17 for 0 of 10).  With no trials there is no
    share to bound: ``(nan, nan)``.
    """
    _check_confidence(confidence)
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(
            f"need 0 <= successes <= trials, got {successes!r} of {trials!r}")
    if trials == 0:
        return (math.nan, math.nan)
    z = normal_quantile(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / trials + z2n / (4.0 * trials))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


# --------------------------------------------------------------------------- Kaplan-Meier


class Band(NamedTuple):
    """A point estimate with its confidence limits (``lower <= estimate <= upper``)."""

    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """A product-limit survival curve with its pointwise confidence band.

    Row ``i`` describes the instant ``times[i]``: ``at_risk[i]`` subjects still followed just
    before it, ``events[i]`` events and ``censored[i]`` censorings at it, and the survival
    and band just after it.  ``times`` is lifelines' timeline: 0 (where everyone enters) and
    then every distinct observed time, censorings included, so the arrays can be drawn and
    served as they are.  Between two times the curve is flat (a right-continuous step
    function); :meth:`survival_at` reads it so.
    """

    times: NDArray[np.float64]
    at_risk: NDArray[np.int64]
    events: NDArray[np.int64]
    censored: NDArray[np.int64]
    survival: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    confidence: float

    @property
    def subjects(self) -> int:
        """Number of subjects the curve was estimated from."""
        return int(self.at_risk[0])

    @property
    def n_events(self) -> int:
        """Number of events observed (the rest were censored)."""
        return int(self.events.sum())

    @property
    def follow_up(self) -> float:
        """The longest observed time: beyond it the curve is only carried forward, not
        estimated."""
        return float(self.times[-1])

    def survival_at(self, t: float) -> Band:
        """Survival at time ``t`` with its confidence limits.

        The step function's value at the last time ``<= t`` (lifelines'
        ``survival_function_at_times`` and ``confidence_interval_`` read the same way); past
        :attr:`follow_up` the last value is carried forward, so callers that must not
        extrapolate compare ``t`` with :attr:`follow_up` first.  Before 0 everyone is alive.
        """
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return Band(1.0, 1.0, 1.0)
        return Band(float(self.survival[i]), float(self.lower[i]), float(self.upper[i]))

    def known_at(self, t: float) -> Band | None:
        """:meth:`survival_at`, or None where ``t`` lies beyond the follow-up: what a report
        shows, so that no figure is read off a value merely carried forward.  A curve that
        fell to zero is known to stay there (everyone had the event), however short the
        follow-up."""
        known = t <= self.follow_up or float(self.survival[-1]) == 0.0
        return self.survival_at(t) if known else None

    def quantile(self, p: float) -> Band:
        """The time by which a share ``p`` of subjects had the event, with its limits.

        The estimate is the first time the curve falls to ``1 - p`` or below; the limits are
        the first times the lower and the upper band do (Brookmeyer-Crowley style, as
        lifelines' ``median_survival_times`` reads its confidence interval frame).  ``inf``
        where a curve never falls that far within follow-up ("not reached").  A curve within
        :data:`QUANTILE_SLACK` of ``1 - p`` counts as having reached it.
        """
        if not 0.0 < p < 1.0:
            raise ValueError(f"p must lie strictly between 0 and 1, not {p!r}")
        level = 1.0 - p + QUANTILE_SLACK
        return Band(*(self._first_time_at_or_below(curve, level)
                      for curve in (self.survival, self.lower, self.upper)))

    def median(self) -> Band:
        """Median time to the event (the time half the subjects had it), with its limits."""
        return self.quantile(0.5)

    def _first_time_at_or_below(self, curve: NDArray[np.float64], level: float) -> float:
        reached = np.flatnonzero(curve <= level)
        return float(self.times[reached[0]]) if reached.size else math.inf

    def steps(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The curve's corners for a chart: ``(0, 1)`` and then each time with an event and
        the survival after it (censorings leave the curve flat, so they add no corner)."""
        drop = self.events > 0
        return (np.concatenate(([0.0], self.times[drop])),
                np.concatenate(([1.0], self.survival[drop])))


def kaplan_meier(
    durations: ArrayLike, events: ArrayLike, confidence: float = CONFIDENCE
) -> KaplanMeier:
    """Kaplan-Meier estimate of survival from right-censored times.

    ``durations`` are non-negative times from a common origin (diagnosis, first cancer
    cell); ``events`` says for each whether the event was seen at that time (true) or the
    subject was censored then (false: still event-free when follow-up ended).  Plain
    quantiles of the observed times would be biased early when many are censored; the
    product-limit estimate is not.

    At a time with both events and censorings, the censored subjects count as at risk for
    those events (the usual convention).  The survival is accumulated as a sum of logs and
    exponentiated, as lifelines does, so the curves match lifelines' to the last bit.  The
    band is the exponential Greenwood interval (on the log(-log) scale, Kalbfleisch and
    Prentice), which always lies in [0, 1] unlike the plain Greenwood one; where the
    survival is 1 the band is [1, 1] and where it is 0 the band is [0, 0].
    """
    _check_confidence(confidence)
    t = np.asarray(durations, dtype=np.float64).ravel()
    seen = np.asarray(events, dtype=bool).ravel()
    if t.size == 0:
        raise ValueError("need at least one subject for a survival curve")
    if seen.shape != t.shape:
        raise ValueError(f"{t.size} durations but {seen.size} event flags")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("durations must be finite and non-negative")

    times, row = np.unique(t, return_inverse=True)
    if times[0] > 0.0:  # everyone enters at 0, which starts the timeline
        times = np.concatenate(([0.0], times))
        row = row + 1
    removed = np.bincount(row, minlength=times.size)
    deaths = np.bincount(row[seen], minlength=times.size)
    at_risk = t.size - np.concatenate(([0], np.cumsum(removed)[:-1]))

    n = at_risk.astype(np.float64)
    d = deaths.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.exp(np.cumsum(np.log(n - d) - np.log(n)))
        # Greenwood's sum; a step where everyone left died adds nothing (the curve is 0 and
        # so is its band from there on)
        greenwood = np.cumsum(np.where(n > d, d / (n * (n - d)), 0.0))
        v = np.log(survival)
        spread = normal_quantile(confidence) * np.sqrt(greenwood) / v
        lower = np.exp(-np.exp(np.log(-v) - spread))
        upper = np.exp(-np.exp(np.log(-v) + spread))
    # survival exactly 1 gives 0/0 above: nothing has happened, so nothing is uncertain
    lower = np.where(np.isnan(lower), 1.0, lower)
    upper = np.where(np.isnan(upper), 1.0, upper)
    return KaplanMeier(
        times=times,
        at_risk=at_risk.astype(np.int64),
        events=deaths.astype(np.int64),
        censored=(removed - deaths).astype(np.int64),
        survival=survival,
        lower=lower,
        upper=upper,
        confidence=confidence,
    )
