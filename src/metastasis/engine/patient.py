"""The disease process of one virtual patient: an exact event-driven simulation.

The cascade is a branching process of lesions.  Every lesion grows deterministically
(Gompertz) once it is established, and sheds cells as a non-homogeneous Poisson process of
rate ``sigma * x(t) ** alpha``.  Each shed cell independently takes one journey (route,
death in transit, arrest in a site) and one eventual fate at the site (failed extravasation,
death, dormancy, an extinct colony, a micrometastasis that never grows out, or outgrowth).
By Poisson thinning the cells that found growing metastases form their own Poisson process
with rate ``sigma * x(t)**alpha * q`` (q: founder probability), sampled exactly by
time-rescaling with the closed-form cumulative emission; the cells with every other fate are
independent Poisson counts, drawn in aggregate at the end.  The cost is therefore set by the
number of lesions, not by the number of days or cells.

The natural history ends at the horizon or when the total burden of growing lesions reaches
the lethal burden, whichever comes first.  Sources are expanded in order of the time they
start to shed; the lethal time can only move earlier as lesions are added, so offspring are
sampled up to the current upper bound and those beyond the final end are dropped, which is
exact (a Poisson process restricted to a sub-interval).
"""

from __future__ import annotations

import numpy as np

from metastasis.engine.process import DiseaseProcess
from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import PatientResult


def simulate_patient(
    model: ResolvedModel,
    rng: np.random.Generator,
    horizon_days: float,
    *,
    patient_index: int = 0,
    root_seed: int | None = None,
    reference: bool = False,
) -> PatientResult:
    """Simulate the untreated natural history of one patient over ``horizon_days``
    (``reference``: with the readable Python sampler, not its compiled copy)."""
    process = DiseaseProcess(model, rng, horizon_days, reference=reference)
    return process.finish(patient_index=patient_index, root_seed=root_seed)
