"""A day of treatment as arrays: the same law as one change at a time.

The clinic hands the disease process its changes as columns (:class:`Changes`) and keeps
per-row notes of what a day's earlier actions did; the process builds one read-only table
per state of its rows.  These are cost settings: each is checked here against the plain
form it replaced, exactly (same rows, same numbers).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from metastasis.api import load_model
from metastasis.clinical.observe import physical_lesions_reference
from metastasis.clinical.treatment import _Lesions
from metastasis.engine.process import MUTATION_ROUTE, Change, Changes, DiseaseProcess
from metastasis.engine.seeds import patient_generator

HORIZON = 12 * 365.25
DAY = 3300.0


@pytest.fixture(scope="module")
def model():
    return load_model("colorectal")


def _changes(table, rng: np.random.Generator) -> list[Change]:
    """Kills, removals, clones and a lesion changed twice in one day (a new run)."""
    present = np.flatnonzero(table.valid_at(DAY) & (table.arrival <= DAY))
    out = []
    for r in present:
        kind = rng.integers(4)
        lesion = int(table.lesion[r])
        if kind == 0:
            out.append(Change(lesion, surviving_fraction=float(rng.uniform(0.01, 0.9))))
        elif kind == 1:
            out.append(Change(lesion, surviving_fraction=0.0))
        elif kind == 2:
            out.append(Change(lesion, 0.5, spare_resistance=1, clone_cells=3.0,
                              clone_resistance=1))
        else:
            out.append(Change(lesion))
    if present.size:
        out.append(Change(int(table.lesion[present[0]]), surviving_fraction=0.5))
    return out


def test_changes_as_columns_are_changes_one_by_one(model) -> None:
    """The same changes given as a list of Change and as Changes give the same rows."""
    compared = 0
    for index in range(25):
        a = DiseaseProcess(model, patient_generator(4, index), HORIZON)
        b = DiseaseProcess(model, patient_generator(4, index), HORIZON)
        changes = _changes(a.lesion_table(through=DAY), np.random.default_rng(index))
        b.lesion_table(through=DAY)
        a.intervene(DAY, changes)
        b.intervene(DAY, Changes.of(changes))
        ta, tb = a.lesion_table(), b.lesion_table()
        for field in dataclasses.fields(ta):
            assert np.array_equal(getattr(ta, field.name), getattr(tb, field.name)), field.name
        compared += len(changes)
    assert compared > 50


def test_compiled_changes_are_the_reference_s(model) -> None:
    """A day's changes applied by the compiled kernel (``engine/intervention.py``) and by the
    readable runs of array operations give the same rows, column for column: kills of
    growing lesions, colonies and micrometastases, removals, clones, a lesion changed twice,
    dormant cells spared, and a change naming no live lesion skipped."""
    compared = 0
    for index in range(25):
        fast = DiseaseProcess(model, patient_generator(4, index), HORIZON)
        slow = DiseaseProcess(model, patient_generator(4, index), HORIZON, reference=True)
        table = fast.lesion_table(through=DAY)
        slow.lesion_table(through=DAY)
        changes = [*_changes(table, np.random.default_rng(index)), Change(10**9, 0.5)]
        fast.intervene(DAY, changes)
        slow.intervene(DAY, changes)
        assert fast.rows.size == slow.rows.size and fast.rows.next_lesion == slow.rows.next_lesion
        for name in type(fast.rows).COLUMNS:
            mine, theirs = getattr(fast.rows, name)[: fast.rows.size], getattr(slow.rows, name)[
                : slow.rows.size]
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, err_msg=name)
        compared += len(changes)
    assert compared > 50


def test_the_engine_s_tables_are_the_readable_tables(model) -> None:
    """The table cut from the row buffers in one pass (``engine/tables.py``) is
    ``LesionTable.from_columns`` of the same rows, untreated (ids in order) and after cuts,
    clones and removals (ids renumbered, parents followed), on days before and after."""
    from metastasis.engine.tables import table_of_rows
    from metastasis.results.patient import LesionTable

    checked = 0
    for index in range(20):
        process = DiseaseProcess(model, patient_generator(8, index), HORIZON)
        table = process.lesion_table(through=DAY)
        if process.known_end > DAY:
            process.intervene(DAY, _changes(table, np.random.default_rng(index)))
        for end in (DAY / 2, DAY, DAY + 200.0, process.end):
            mine = table_of_rows(process.rows, end)
            theirs = LesionTable.from_columns(process.rows.view(), end)
            for field in dataclasses.fields(theirs):
                np.testing.assert_array_equal(getattr(mine, field.name),
                                              getattr(theirs, field.name), err_msg=field.name)
                assert getattr(mine, field.name).dtype == getattr(theirs, field.name).dtype
                assert not getattr(mine, field.name).flags.writeable
            checked += len(mine)
    assert checked > 500


def test_changes_build_broadcasts_and_concatenates() -> None:
    built = Changes.build(np.array([3, 5]), surviving_fraction=0.25,
                          clone_cells=np.array([0.0, 2.0]))
    assert built.spare_resistance.tolist() == [0, 0]
    assert built.surviving_fraction.tolist() == [0.25, 0.25]
    joined = Changes.concat([built, Changes.of([Change(7, 0.5)])])
    assert joined.lesion.tolist() == [3, 5, 7]
    assert joined.clone_cells.tolist() == [0.0, 2.0, 0.0]
    assert len(Changes.concat([])) == 0


def test_tumour_roots_follow_clones_of_clones(model) -> None:
    """Each row's tumour (the lesion a clone arose in, through clones of clones) as the
    clinic computes it with arrays is the plain walk of ``physical_lesions_reference``."""
    checked = 0
    for index in range(15):
        process = DiseaseProcess(model, patient_generator(6, index), HORIZON)
        if process.end <= DAY + 60.0:
            continue  # the history ended before the changes: nothing to change
        table = process.lesion_table(through=DAY)
        present = np.flatnonzero(table.valid_at(DAY) & (table.arrival <= DAY))
        process.intervene(DAY, [Change(int(table.lesion[r]), 0.5, clone_cells=2.0,
                                       clone_resistance=1) for r in present])
        later = process.lesion_table(through=DAY + 30.0)
        present = np.flatnonzero(later.valid_at(DAY + 30.0) & (later.arrival <= DAY + 30.0))
        process.intervene(DAY + 30.0, [Change(int(later.lesion[r]), 0.5, clone_cells=2.0,
                                              clone_resistance=2) for r in present])
        lesions = _Lesions(process, DAY + 60.0)
        table = lesions.table
        assert np.any(table.route == MUTATION_ROUTE)
        pid_of = dict(zip(table.id.tolist(), table.lesion.tolist(), strict=True))
        expected = [pid_of[i] for i in physical_lesions_reference(table).tolist()]
        assert lesions.root.tolist() == expected
        checked += len(table)
    assert checked > 100


def test_one_table_per_state_of_the_rows(model) -> None:
    """Reading twice gives the same read-only table; any change to the rows, even one that
    only closes rows (an eradication), gives a new one."""
    process = DiseaseProcess(model, patient_generator(2, 1), HORIZON)
    first = process.lesion_table(through=DAY)
    assert process.lesion_table(through=DAY) is first
    with pytest.raises(ValueError):
        first.x0[0] = 2.0
    process.intervene(DAY, [Change(0, surviving_fraction=0.0)])
    after = process.lesion_table(through=DAY)
    assert after is not first
    assert after.valid_to[0] == DAY and first.valid_to[0] == np.inf


def test_the_rows_declare_exactly_the_columns_they_create() -> None:
    """LesionRows creates its columns from COLUMNS at run time and declares them for readers
    and the type checker; a column added to one list and not the other fails here."""
    from metastasis.engine.process import LesionRows

    declared = list(LesionRows.__annotations__)
    assert sorted(declared) == sorted(LesionRows.COLUMNS)
    rows = LesionRows()
    for name in declared:
        assert getattr(rows, name).dtype == (
            np.int64 if name in LesionRows.INTEGER_COLUMNS else np.float64), name


def test_a_drug_kill_without_a_table_is_the_clinic_s_kill_with_one(model) -> None:
    """``kill_dividing`` (no lesion table) picks the rows the clinic's table path picks
    (present, dividing, without the spared bit), names the same tumours for them, counts the
    same dormant cells, and leaves the same rows behind; after the end of the history it
    changes nothing."""
    compared = 0
    for index in range(40):
        a = DiseaseProcess(model, patient_generator(6, index), HORIZON)
        b = DiseaseProcess(model, patient_generator(6, index), HORIZON)
        table = a.lesion_table(through=DAY)
        if a.known_end <= DAY:
            continue
        present = np.flatnonzero(table.valid_at(DAY) & (table.arrival <= DAY))
        if present.size < 2:
            continue
        # give some tumours resistant clones first, so that the bit spares some rows
        first = [Change(int(table.lesion[r]), 0.5, clone_cells=5.0, clone_resistance=2)
                 for r in present[::2]]
        a.intervene(DAY, first)
        b.lesion_table(through=DAY)
        b.intervene(DAY, first)
        day = DAY + 21.0
        lesions = _Lesions(a, day)
        if a.known_end <= day:
            continue
        alive = np.flatnonzero(lesions.present)
        asleep = lesions.dormant[alive]
        awake = alive[~asleep]
        bit = (lesions.table.resistance[awake] & 2) != 0
        rows = awake[~bit]
        a.intervene(day, Changes.build(lesions.pid[rows], surviving_fraction=0.3,
                                       spare_resistance=2))
        kill = b.kill_dividing(day, 0.3, 2)
        assert kill is not None
        assert kill.treated_tumours.tolist() == lesions.root[rows].tolist()
        assert kill.spared_tumours.tolist() == lesions.root[awake[bit]].tolist()
        assert kill.dormant == int(asleep.sum())
        size = a.rows.size
        assert b.rows.size == size
        np.testing.assert_array_equal(a.rows.floats[:, :size], b.rows.floats[:, :size])
        np.testing.assert_array_equal(a.rows.ints[:, :size], b.rows.ints[:, :size])
        compared += bool(kill.spared_tumours.size) and kill.treated_tumours.size > 0
        end = b.end  # samples the rest of the history
        if end < b.horizon:
            version = b.rows.version
            assert b.kill_dividing(end + 1.0, 0.3, 2) is None
            assert b.rows.version == version
    assert compared >= 5
