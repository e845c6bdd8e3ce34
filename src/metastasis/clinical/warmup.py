"""Compile the engine's and the clinic's kernels ahead of the first request.

numba compiles a kernel the first time it is called and caches the machine code on disk; on
a fresh install that first call costs tens of seconds (about 25 s on a busy 2-core
machine), which a web request must not pay.  Simulating a few whole clinical courses calls
every kernel the engine and the clinic use, so a server (or a test) that runs this first
answers its first request as fast as its later ones; on later starts it only loads the
cache (about a second).
"""

from __future__ import annotations

import time

import numpy as np

from metastasis.api import load_model
from metastasis.clinical.course import simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.engine.burden import BISECTION_STEPS, _first_lethal_day

WARMUP_CANCER = "colorectal"
WARMUP_SEED = 0
WARMUP_YEARS = 12.0
"""Long enough that a patient is diagnosed and treated (the first one is, at this seed)."""
MAX_WARMUP_PATIENTS = 40


def compile_kernels() -> float:
    """Run whole clinical courses until one has been treated (at most
    :data:`MAX_WARMUP_PATIENTS`); return the seconds it took."""
    start = time.perf_counter()
    model, clinical, treatments = (load_model(WARMUP_CANCER), load_clinical(),
                                   load_treatments())
    for index in range(MAX_WARMUP_PATIENTS):
        result = simulate_course(model, clinical, treatments, WARMUP_SEED, index,
                                 WARMUP_YEARS)
        if result.treatment:
            break
    # the lethal-burden bisection runs only in a history that reaches the lethal burden,
    # which the first treated patient's need not: compile it on a one-lesion example
    one = np.ones(1)
    _first_lethal_day(0.0, 1.0, 0.0 * one, one, one, 10.0 * one, -np.inf * one,
                      np.inf * one, 5.0, BISECTION_STEPS)
    return time.perf_counter() - start
