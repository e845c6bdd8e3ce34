"""Screening: when a patient is screened, and when the cancer began in their life.

Days in the model count from the first cancer cell, while programmes are defined by age, so
the patient's age at onset ties the two together: age on day ``t`` is
``onset_age + t / 365.25`` (docs/clinical.md).  Both the onset age and attendance come from
the clinical generator.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from metastasis.api import DAYS_PER_YEAR
from metastasis.clinical.schema import ClinicalKnowledge, ScreeningProgramme


def draw_onset_age(clinical: ClinicalKnowledge, cancer: str, rng: np.random.Generator) -> float:
    """The patient's age in years at the first cancer cell.

    Normal with the cancer type's mean and sd, truncated below at its minimum age, drawn
    by inversion from one uniform number (so the draw costs one number whatever the
    truncation): with ``a`` the standardised minimum, ``z = -Phi^-1((1 - u) Phi(-a))``,
    written through the upper tail so that it stays accurate for any ``a``.
    """
    spec = clinical.onset(cancer)
    mean, sd, low = spec.mean_years.value, spec.sd_years.value, spec.min_years.value
    u = rng.random()
    if sd == 0.0:
        return max(mean, low)
    a = (low - mean) / sd
    z = -float(ndtri((1.0 - u) * ndtr(-a)))
    return mean + sd * max(z, a)


def programmes_for(clinical: ClinicalKnowledge, cancer: str) -> list[ScreeningProgramme]:
    """The screening programmes that look for this cancer type (possibly none)."""
    return [p for p in clinical.screening.values() if p.cancer == cancer]


def screening_days(
    programme: ScreeningProgramme,
    onset_age_years: float,
    horizon_days: float,
    rng: np.random.Generator,
) -> list[float]:
    """Days since the first cancer cell on which the patient attends a screening round.

    Rounds fall at the programme's ages (start, start + interval, ... up to stop); each is
    attended with probability ``adherence``, independently.  One uniform number is drawn
    per scheduled round, whether it falls before onset or after the horizon or not, so the
    draws do not depend on the patient's age.  Rounds before the first cell or after the
    horizon are dropped.
    """
    ages = np.asarray(programme.round_ages(), dtype=float)
    attended = rng.random(ages.size) < programme.adherence.value
    days = (ages - onset_age_years) * DAYS_PER_YEAR
    keep = attended & (days >= 0.0) & (days <= horizon_days)
    return [float(d) for d in days[keep]]
