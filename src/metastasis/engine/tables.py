"""The lesion table a reader gets, cut from the engine's row buffers in a few array calls.

:meth:`metastasis.results.patient.LesionTable.from_columns` is the readable definition: keep
the rows founded before the end (and the primary), and number the lesions 0, 1, ... in order
of appearance, with each row's parent in the same numbering.  The clinic reads a patient's
lesions dozens of times (each year of the search for symptoms, each treatment day), and that
generic path selects nineteen columns one by one and numbers the lesions with two sorts,
about a tenth of a clinical course's time (issue 8).  Here the columns are selected as two
blocks (one per buffer) and the numbering is one compiled pass; the table is the same, which
``tests/test_lesion_tables.py`` checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis.engine.sampling import (
    F_ARRIVAL,
    FLOAT_COLUMNS,
    I_LESION,
    I_PARENT,
    INTEGER_COLUMNS,
)
from metastasis.results.patient import LesionTable

if TYPE_CHECKING:  # the rows' module imports this one
    from metastasis.engine.process import LesionRows


@numba.njit(cache=True, nogil=True)
def _number_lesions(lesion: NDArray[np.int64], parent: NDArray[np.int64]
                    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Lesion ids 0, 1, ... in order of first appearance, and each parent's (-1 if the
    parent has no row here)."""
    top = 0
    for row in range(lesion.size):
        top = max(top, lesion[row])
    number = np.full(top + 1, -1, dtype=np.int64)
    count = 0
    ids = np.empty(lesion.size, dtype=np.int64)
    for row in range(lesion.size):
        if number[lesion[row]] < 0:
            number[lesion[row]] = count
            count += 1
        ids[row] = number[lesion[row]]
    parents = np.empty(lesion.size, dtype=np.int64)
    for row in range(lesion.size):
        p = parent[row]
        parents[row] = number[p] if 0 <= p <= top else -1
    return ids, parents


def table_of_rows(rows: LesionRows, end: float) -> LesionTable:
    """The rows founded before ``end`` (and the primary's first row) as a read-only table."""
    size = rows.size
    founded = rows.floats[F_ARRIVAL, :size] < end
    founded[0] = True
    keep = np.flatnonzero(founded)
    floats = rows.floats[:, keep]
    ints = rows.ints[:, keep]
    floats.flags.writeable = False
    ids, parents = _number_lesions(ints[I_LESION], ints[I_PARENT])
    ints[I_PARENT] = parents
    ints.flags.writeable = False
    ids.flags.writeable = False
    columns = {name: floats[k] for k, name in enumerate(FLOAT_COLUMNS)}
    columns.update({name: ints[k] for k, name in enumerate(INTEGER_COLUMNS)})
    wanted = {name: columns[name] for name in _TABLE_FIELDS}
    return LesionTable(id=ids, **wanted)


_TABLE_FIELDS = tuple(name for name in LesionTable.__dataclass_fields__ if name != "id")
