"""Limits on the numbers every surface accepts, stated once (a leaf module: the command
line checks them before loading anything heavy, and the web and the API share them)."""

from __future__ import annotations

MAX_SEED = 2**63 - 1
"""Largest root seed accepted: the range :func:`metastasis.engine.seeds.draw_root_seed`
draws from, and small enough to be an exact integer in every JSON reader that uses 64-bit
integers."""

MAX_PATIENTS = 10**9
"""Largest cohort accepted: a billion patients, a thousand times the largest run this
project benchmarks; anything beyond is a typo (and would overflow counters and progress
bars long before it finished)."""
