"""What one web request may ask for, stated once and used by validation, schema and pages.

A local explorer still needs limits: a slider or a typo must not start a simulation that
runs for an hour, and a page must answer within a time a person will wait.  The defaults
below keep every request under a few seconds on a laptop; :func:`metastasis.web.create_app`
accepts other values (a shared server may want smaller ones, a test tiny ones).
"""

from __future__ import annotations

from dataclasses import dataclass

from metastasis.limits import MAX_SEED  # one seed range for the command line, API and web

MAX_INDEX = 2**32 - 1
"""Largest patient index accepted: far beyond any cohort, and it catches typos."""


@dataclass(frozen=True)
class Limits:
    """Limits on one request to the web explorer or its JSON API."""

    max_patients: int = 2000
    """Patients per cohort request (summed over cancer types on the cohort page).  2000
    colorectal patients over 10 years take about 2 s; the time limit catches longer runs."""

    max_clinical_patients: int = 200
    """Patients per clinical cohort request (summed over cancer types).  A whole clinical
    course (symptoms, scans, treatment, outcome) costs about 50-100 ms per patient, some
    twenty times an untreated history, so 200 keep a request well inside the time limit."""

    max_years: float = 60.0
    """Longest horizon in years.  The Python API accepts 150; past 60 years almost every
    untreated virtual patient has reached the lethal burden, and long horizons make each
    patient slower (thousands of lesions), so the web stops at 60."""

    request_seconds: float = 20.0
    """Wall-clock time one simulation request may take, queueing included.  A cohort is run
    in chunks and stops at the first chunk boundary past the limit; the request then gets a
    503 that says so, and the worker is free again."""

    max_running: int = 2
    """Simulations running at once (worker threads)."""

    max_waiting: int = 8
    """Simulation requests allowed to wait for a worker; more get an immediate 503."""

    max_events_shown: int = 400
    """Events listed on the patient page (the JSON API always returns them all)."""

    max_lesions_drawn_per_site: int = 12
    """Lesions drawn as circles in one organ of the body map; the rest are grouped under a
    count beside the organ and counted in the map's table.  Forty piled into an unreadable
    heap; a dozen keep each circle visible."""

    max_rows_per_answer: int = 5000
    """Lesions, and events, in one JSON answer about a patient; each list is paged
    (``lesions_from``, ``events_from``).  The longest clinical histories hold 20,000-30,000
    of each, a 14 MB answer; 5,000 of each keep one near 4 MB."""

    def __post_init__(self) -> None:
        if (self.max_patients < 1 or self.max_clinical_patients < 1 or self.max_running < 1
                or self.max_waiting < 0 or self.max_rows_per_answer < 1):
            raise ValueError("limits: patients and workers must be positive")
        if not (0.0 < self.max_years <= 150.0) or not self.request_seconds > 0.0:
            raise ValueError("limits: years must be in (0, 150] and the time limit positive")

    def as_dict(self) -> dict[str, float | int]:
        """The limits as plain data, for ``GET /api/limits`` and the pages."""
        return {
            "max_patients": self.max_patients,
            "max_clinical_patients": self.max_clinical_patients,
            "max_years": self.max_years,
            "request_seconds": self.request_seconds,
            "max_running": self.max_running,
            "max_waiting": self.max_waiting,
            "max_rows_per_answer": self.max_rows_per_answer,
            "max_seed": MAX_SEED,
            "max_index": MAX_INDEX,
        }
