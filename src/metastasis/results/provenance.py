"""What every result records about how it was made, so that it can be trusted and re-run.

Lives with the results (not with the cohort runner) because every writer of a result needs
it, one patient's export as much as a cohort's, and the results layer must not import the
layers above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from metastasis.about import DISCLAIMER, __version__
from metastasis.units import DAYS_PER_YEAR

PROVENANCE_FORMAT = 1
"""Version of the provenance layout, raised when its keys change meaning."""


def make_provenance(
    cancer: str,
    knowledge: Mapping[str, Any] | None,
    root_seed: int,
    start: int,
    n_patients: int,
    years: float,
    *,
    seed_drawn: bool = False,
    lesions_kept: bool = True,
) -> dict[str, Any]:
    """What a result needs to be trusted and re-run: code, model, seed, indices, horizon.

    ``knowledge`` is the resolved model's whole knowledge base (``ResolvedModel.knowledge``):
    recorded in full, not by name, so that a modified model file is re-run as it was.
    """
    return {
        "format": PROVENANCE_FORMAT,
        "package": "metastasis",
        "version": __version__,
        "disclaimer": DISCLAIMER,
        "cancer": cancer,
        "root_seed": int(root_seed),
        "seed_drawn": bool(seed_drawn),
        "patient_index_start": int(start),
        "patient_index_stop": int(start + n_patients),
        "n_patients": int(n_patients),
        "lesions_kept": bool(lesions_kept),
        "years": float(years),
        "horizon_days": float(years) * DAYS_PER_YEAR,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": None if knowledge is None else dict(knowledge),
    }
