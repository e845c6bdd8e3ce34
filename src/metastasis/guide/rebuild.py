"""Rebuild the guide's shipped cohorts: ``python -m metastasis.guide.rebuild``.

Run it whenever the engine, the model, the results or the default disease knowledge change
(a test fails until then: see :mod:`metastasis.guide.store`).
"""

from __future__ import annotations

import json
from pathlib import Path

from metastasis import atomic
from metastasis.guide import figures, store
from metastasis.guide.settings import EXPLAIN_PATIENTS, GUIDE_PATIENTS, GUIDE_SEED, GUIDE_YEARS
from metastasis.knowledge.loader import load as load_knowledge


def rebuild(path: Path = store.PACKAGED) -> dict[str, int]:
    """Compute the cohorts of the guide's own settings for every cancer type and write them
    as the package's data; returns the patients per cohort written."""
    cohorts: dict[str, store.Rows] = {}
    for cancer in load_knowledge().cancers:
        for patients in sorted({GUIDE_PATIENTS, EXPLAIN_PATIENTS}):
            name = store.key(cancer, patients, GUIDE_SEED, GUIDE_YEARS)
            cohorts[name] = figures.simulate_digest_rows(cancer, patients, GUIDE_SEED,
                                                         GUIDE_YEARS)
    document = {"fingerprint": store.fingerprint(), "cohorts": cohorts}
    atomic.write_text(path, json.dumps(document, separators=(",", ":")) + "\n")
    store.forget_packaged()
    return {name: len(rows) for name, rows in cohorts.items()}


if __name__ == "__main__":
    written = rebuild()
    print(f"wrote {len(written)} cohorts to {store.PACKAGED}")
