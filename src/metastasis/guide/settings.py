"""The guide's fixed settings, in a module that imports nothing, so that the command line
can show them as defaults without loading the model."""

from __future__ import annotations

GUIDE_SEED = 2024
"""Root seed of every simulated figure in the guide (stated next to each figure)."""

GUIDE_PATIENTS = 200
"""Virtual patients per cancer type behind a simulated figure: enough that a share is
known to within a few percentage points, few enough that a page renders in seconds."""

GUIDE_YEARS = 10.0
"""Untreated follow-up of the simulated cohorts, in years."""

MAX_PATIENTS = 5000
"""Largest cohort a guide figure or ``explain`` may ask for: keeps a terminal command (or a
web request built on this module) from running for minutes."""

EXPLAIN_PATIENTS = 100
"""Default virtual patients per cancer type for ``explain``: eight cohorts of 100 take a few
seconds (the guide's pages use 200 of a few cancer types); ``--patients`` buys precision."""
