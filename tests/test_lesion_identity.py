"""A lesion keeps one identity for its whole life: across treatment and across reads.

``LesionTable.id`` numbers the lesions of one table (the story's numbers); ``lesion`` is the
disease process's own id, which the clinic uses to know a lesion again in a table read on
another day.  The clinic reads the disease only through tables (never the engine's rows).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from metastasis.api import load_model
from metastasis.engine.process import MUTATION_ROUTE, Change, DiseaseProcess
from metastasis.engine.seeds import patient_generator

YEARS = 10.0
DAY = 3200.0
"""Late enough that most of these patients have lesions founded before it, early enough that
more are founded after."""


@pytest.fixture(scope="module")
def model():
    return load_model("colorectal")


def _founding(table, rows):
    return [(float(table.arrival[r]), int(table.site[r]), int(table.route[r])) for r in rows]


def test_one_id_across_reads(model) -> None:
    """Tables read through different days agree on each lesion's id, and each id names one
    founding; the tables' own numbers may differ, the process's ids do not."""
    checked = 0
    for index in range(12):
        process = DiseaseProcess(model, patient_generator(5, index), YEARS * 365.25)
        early = process.lesion_table(through=DAY)
        late = process.lesion_table()
        by_lesion = {int(v): k for k, v in enumerate(late.lesion.tolist())}
        rows = [by_lesion[int(v)] for v in early.lesion.tolist()]
        assert _founding(late, rows) == _founding(early, range(len(early)))
        assert np.unique(late.lesion).size == len(late)  # untreated: one row per lesion
        checked += len(early)
    assert checked > 100


def test_one_id_across_treatment(model) -> None:
    """A kill closes a lesion's row and opens a new one: both rows carry the same ``lesion``
    (and the same table ``id``); a clone added by a change is a new lesion."""
    treated = 0
    for index in range(12):
        process = DiseaseProcess(model, patient_generator(9, index), YEARS * 365.25)
        before = process.lesion_table(through=DAY)
        if process.known_end <= DAY:  # this history ended before the treatment day
            continue
        treated += 1
        present = np.flatnonzero(before.valid_at(DAY) & (before.arrival <= DAY))
        changes = [Change(int(before.lesion[r]), surviving_fraction=0.5) for r in present]
        changes.append(Change(0, clone_cells=10.0, clone_resistance=1))
        process.intervene(DAY, changes)
        after = process.lesion_table()
        for r in present:
            lesion = int(before.lesion[r])
            rows = np.flatnonzero(after.lesion == lesion)
            assert rows.size >= 1
            assert np.unique(after.id[rows]).size == 1
            assert _founding(after, rows[:1]) == _founding(before, [r])
        clone = np.flatnonzero((after.route == MUTATION_ROUTE) & (after.arrival == DAY))
        assert clone.size == 1
        assert int(after.lesion[clone[0]]) not in set(before.lesion.tolist())
    assert treated >= 4


def test_the_clinic_never_reads_the_engine_rows() -> None:
    """The narrow door: no module of the clinical layer touches ``.rows`` of anything."""
    clinical = Path(__file__).resolve().parents[1] / "src" / "metastasis" / "clinical"
    reached = []
    for path in sorted(clinical.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "rows":
                reached.append(f"{path.name}:{node.lineno}")
    assert not reached, reached
