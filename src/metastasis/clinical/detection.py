"""Detection: how big a lesion is, how likely a modality finds it, a scan and a biopsy.

Imaging sees lesions, not cells: a lesion's cells become a volume (``cells_per_cm3``) and a
diameter (a sphere of that volume), and each modality finds a lesion of diameter ``d`` in a
site with a logistic sensitivity ``1 / (1 + exp(-(d - d50) / width))`` whose ``d50`` and
``width`` are data per modality and site (docs/clinical.md).  Below the modality's
``min_diameter_mm`` nothing is found: micrometastases stay in the true state only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from metastasis.clinical.observe import lesion_sizes
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import LesionTable

MM_PER_CM = 10.0


def diameter_mm(cells: ArrayLike, cells_per_cm3: float) -> NDArray[np.float64]:
    """Diameter in mm of a sphere holding ``cells``: ``d = (6 V / pi)^(1/3)``, V in cm^3."""
    volume_cm3 = np.asarray(cells, dtype=float) / cells_per_cm3
    return MM_PER_CM * np.cbrt(6.0 * volume_cm3 / math.pi)


def sensitivity(
    clinical: ClinicalKnowledge, modality: str, site_name: str, diameter_mm: ArrayLike
) -> NDArray[np.float64]:
    """Chance that ``modality`` finds one lesion of ``diameter_mm`` in ``site_name``.

    Zero in sites the modality cannot see and below its minimum diameter; otherwise the
    logistic curve of that site (or the modality's default curve).
    """
    spec = clinical.modality(modality)
    d = np.asarray(diameter_mm, dtype=float)
    if not spec.sees(site_name):
        return np.zeros_like(d)
    curve = spec.curve(site_name)
    p = expit((d - curve.d50_mm.value) / curve.width_mm.value)
    return np.where(d >= spec.min_diameter_mm.value, p, 0.0)


@dataclass(frozen=True)
class Finding:
    """A lesion found by a scan: which, where (site name), how big, by what and when."""

    lesion: int
    site: str
    diameter_mm: float
    modality: str
    day: float


def scan(
    clinical: ClinicalKnowledge,
    model: ResolvedModel,
    table: LesionTable,
    day: float,
    modality: str,
    rng: np.random.Generator,
    sites: Iterable[str] | None = None,
) -> list[Finding]:
    """Scan the patient on ``day``: every lesion present is found independently.

    ``sites`` limits the scan to those sites (a brain MRI); the modality's own limits apply
    on top (a colonoscopy sees only the colon).  One uniform number is drawn per lesion the
    scan covers, in lesion order, so a scan's randomness depends only on what it looks at.
    Returns the lesions found, by lesion id.
    """
    spec = clinical.modality(modality)
    wanted = None
    if sites is not None:
        wanted = set(sites)
        unknown = sorted(wanted - set(model.site_names))
        if unknown:
            raise ModelError("sites", unknown[0], ", ".join(model.site_names))
    ids, site_index, cells = lesion_sizes(table, day)
    names = [model.site_names[int(s)] for s in site_index]
    covered = np.array(
        [spec.sees(n) and (wanted is None or n in wanted) for n in names], dtype=bool
    )
    ids, names_arr, cells = ids[covered], np.array(names, dtype=object)[covered], cells[covered]
    if not ids.size:
        return []
    diameters = diameter_mm(cells, model.cells_per_cm3)
    p = np.zeros(ids.size)
    for name in set(names_arr.tolist()):  # one vectorised call per site
        here = names_arr == name
        p[here] = sensitivity(clinical, modality, name, diameters[here])
    found = rng.random(ids.size) < p
    return [
        Finding(
            lesion=int(ids[k]),
            site=str(names_arr[k]),
            diameter_mm=float(diameters[k]),
            modality=modality,
            day=float(day),
        )
        for k in np.flatnonzero(found)
    ]


def biopsy(clinical: ClinicalKnowledge, rng: np.random.Generator) -> bool:
    """Whether a biopsy is diagnostic (its tissue names the cancer type)."""
    return bool(rng.random() < clinical.biopsy.diagnostic_yield.value)
