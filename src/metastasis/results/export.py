"""Write and read cohorts and single patients, always with their provenance.

Formats, chosen by the file's suffix:

* ``.parquet``: one file; the patients table with each patient's lesions nested in a
  ``lesions`` column (list of structs) and the provenance as JSON under the key
  ``metastasis.provenance`` of the file's key-value metadata.  DuckDB and pandas read it
  directly.
* ``.csv``: the patients table, with ``<name>.lesions.csv`` and ``<name>.provenance.json``
  beside it.
* ``.json``: one document ``{"provenance": ..., "patients": [...], "lesions": [...]}``.

Missing values (NaN) are nulls in every format.  Nothing is ever half-written: each file
is written to a temporary file in the same directory and renamed into place only once all
files of the result are complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metastasis import atomic, jsondata
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import PatientResult
from metastasis.results.provenance import make_provenance
from metastasis.results.tables import LESION_COLUMNS, CohortResult, conform
from metastasis.units import DAYS_PER_YEAR

__all__ = ["COHORT_FORMATS", "PROVENANCE_KEY", "read_cohort", "write_cohort", "write_patient"]

PROVENANCE_KEY = b"metastasis.provenance"
"""Key of the provenance JSON in a Parquet file's key-value metadata."""

COHORT_FORMATS = (".parquet", ".csv", ".json")
PATIENT_FORMATS = ("json", "csv")
EVENT_COLUMNS = ("time", "step", "step_name", "kind", "site", "lesion", "parent", "route",
                 "counts")

_CSV_READ_FLOATS: dict[str, str] = (
    {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
)
"""pandas before 3 parses CSV floats approximately unless asked; from 3 on exact parsing is
the default and the option is deprecated."""

_NESTED = [c for c in LESION_COLUMNS if c != "patient_index"]
"""Fields of a nested lesion in Parquet: its patient is the row it is nested in."""


# --------------------------------------------------------------------------- helpers


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in COHORT_FORMATS:
        raise ModelError("out", str(path), "a file name ending in " + ", ".join(COHORT_FORMATS))
    return suffix


def _sidecars(path: Path) -> tuple[Path, Path]:
    """Lesions table and provenance beside a CSV patients table."""
    stem = path.with_suffix("")
    return (stem.with_name(stem.name + ".lesions.csv"),
            stem.with_name(stem.name + ".provenance.json"))


def _check_directory(path: Path) -> None:
    if not path.parent.is_dir():
        raise ModelError("out", str(path), "a path inside an existing directory")


@contextlib.contextmanager
def _atomic(paths: list[Path]) -> Iterator[list[Path]]:
    """:func:`metastasis.atomic.staged` with a failure to write reported against ``--out``."""
    try:
        with atomic.staged(*paths) as temporaries:
            yield temporaries
    except OSError as exc:
        raise ModelError("out", str(paths[-1]), f"a writable file ({exc})") from None


def _dumps(value: Any, *, indent: int | None = None) -> str:
    return jsondata.dumps(value, indent=indent)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, missing values as None."""
    columns = []
    for name in frame.columns:
        values = frame[name].tolist()
        if frame[name].dtype.kind not in "iub":
            values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        columns.append(values)
    names = list(frame.columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _provenance_of(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or "root_seed" not in raw:
        raise ModelError("provenance", where, "a metastasis cohort file with its provenance")
    return raw


# --------------------------------------------------------------------------- cohorts


def _contiguous(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array: a column concatenated from several blocks comes back chunked."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _lesions_column(patients: pd.DataFrame, lesions: pd.DataFrame) -> pa.Array:
    """Each patient's lesions as one list of structs, aligned with the patients' rows."""
    owner = lesions["patient_index"].to_numpy()
    index = patients["patient_index"].to_numpy()
    if np.any(np.diff(owner) < 0) or np.any(np.diff(index) <= 0):
        raise ModelError("cohort", "unsorted tables",
                         "patients and lesions sorted by patient index, as run_cohort makes them")
    offsets = np.concatenate((
        np.searchsorted(owner, index, side="left"), [np.searchsorted(owner, index[-1], "right")]
    ))
    if offsets[-1] != len(owner) or offsets[0] != 0:
        raise ModelError("cohort", "orphan lesions", "every lesion belonging to a listed patient")
    fields = [_contiguous(pa.array(lesions[name], from_pandas=True)) for name in _NESTED]
    struct = pa.StructArray.from_arrays(fields, names=_NESTED)
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), struct)


def _write_parquet(result: CohortResult, target: Path) -> None:
    table = pa.Table.from_pandas(result.patients, preserve_index=False)
    table = table.append_column("lesions", _lesions_column(result.patients, result.lesions))
    # only our own metadata: pandas' would describe a table without the nested column
    table = table.replace_schema_metadata({PROVENANCE_KEY: _dumps(result.provenance).encode()})
    pq.write_table(table, target)


def _read_parquet(path: Path) -> CohortResult:
    table = pq.read_table(path)
    metadata = table.schema.metadata or {}
    if PROVENANCE_KEY not in metadata or "lesions" not in table.column_names:
        raise ModelError("in", str(path), "a Parquet file written by metastasis")
    provenance = _provenance_of(json.loads(metadata[PROVENANCE_KEY]), str(path))
    nested = table.column("lesions").combine_chunks()
    patients = conform(table.drop_columns(["lesions"]).to_pandas())
    flat = pa.Table.from_struct_array(pc.list_flatten(nested)).to_pandas()
    owner = patients["patient_index"].to_numpy()[pc.list_parent_indices(nested).to_numpy()]
    flat.insert(0, "patient_index", owner)
    return CohortResult(patients, conform(flat[list(LESION_COLUMNS)]), provenance)


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    # pandas writes floats with repr, the shortest text that reads back to the same double
    frame.to_csv(target, index=False, na_rep="")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], **_CSV_READ_FLOATS)
    except (OSError, pd.errors.ParserError) as exc:
        raise ModelError("in", str(path), f"a readable CSV file ({exc})") from None
    return conform(frame)


def write_cohort(result: CohortResult, path: str | Path, *,
                 beside: Mapping[Path, str | Callable[[Path], object]] | None = None) -> Path:
    """Write ``result`` in the format its suffix names; returns the main file's path.

    ``beside``: more files that belong to the same output, such as a clinical table or a
    figure (path: its text, or a function that writes the file at the path it is given);
    the whole set is written aside and moved in together, the main file last, so that a
    failure leaves none of it and the main file's presence means the set is complete.
    """
    path = Path(path)
    suffix = _format_of(path)
    _check_directory(path)
    extra = dict(beside or {})
    lesions_path, provenance_path = _sidecars(path)
    own = [provenance_path, lesions_path] if suffix == ".csv" else []
    with _atomic([*extra, *own, path]) as temporaries:
        for temporary, content in zip(temporaries, extra.values(), strict=False):
            if callable(content):
                content(temporary)
            else:
                temporary.write_text(content, encoding="utf-8")
        main = temporaries[-1]
        if suffix == ".parquet":
            _write_parquet(result, main)
        elif suffix == ".csv":
            provenance, lesions = temporaries[len(extra):len(extra) + 2]
            provenance.write_text(_dumps(result.provenance, indent=1), encoding="utf-8")
            _write_csv(result.lesions, lesions)
            _write_csv(result.patients, main)
        else:
            document = {
                "provenance": result.provenance,
                "patients": _records(result.patients),
                "lesions": _records(result.lesions),
            }
            main.write_text(_dumps(document), encoding="utf-8")
    return path


def read_cohort(path: str | Path) -> CohortResult:
    """Read back a cohort written by :func:`write_cohort` (tables, dtypes and provenance)."""
    path = Path(path)
    suffix = _format_of(path)
    if not path.is_file():
        raise ModelError("in", str(path), "an existing file")
    if suffix == ".parquet":
        try:
            return _read_parquet(path)
        except pa.ArrowException as exc:
            raise ModelError("in", str(path), f"a readable Parquet file ({exc})") from None
    if suffix == ".csv":
        lesions_path, provenance_path = _sidecars(path)
        try:
            provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError("in", str(provenance_path),
                             f"the provenance written beside the CSV ({exc})") from None
        return CohortResult(_read_csv(path), _read_csv(lesions_path),
                            _provenance_of(provenance, str(provenance_path)))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError("in", str(path), f"a readable JSON document ({exc})") from None
    if not isinstance(document, dict) or not {"patients", "lesions"} <= document.keys():
        raise ModelError("in", str(path), "a JSON cohort written by metastasis")
    provenance = _provenance_of(document.get("provenance"), str(path))
    patients = pd.DataFrame.from_records(document["patients"])
    lesions = pd.DataFrame.from_records(document["lesions"], columns=list(LESION_COLUMNS))
    return CohortResult(conform(patients), conform(lesions), provenance)


# --------------------------------------------------------------------------- one patient


def patient_provenance(
    patient: PatientResult, model: ResolvedModel | None = None
) -> dict[str, Any]:
    """Provenance of one patient: that of the one-patient cohort range it is.

    Without ``model`` the knowledge base is not recorded (``model`` is null), and a re-run
    must supply the same model by other means.
    """
    if patient.root_seed is None:
        raise ModelError("root_seed", None, "a patient run with a recorded root seed")
    return make_provenance(
        patient.cancer, None if model is None else model.knowledge, patient.root_seed,
        patient.patient_index, 1, patient.horizon_days / DAYS_PER_YEAR,
    )


def _event_rows(patient: PatientResult) -> Iterator[list[Any]]:
    for e in patient.events():
        yield [e.time, e.step, e.step_name, e.kind, e.site, e.lesion, e.parent, e.route,
               json.dumps(e.counts, separators=(",", ":"), sort_keys=True) if e.counts else ""]


def _patient_text(patient: PatientResult, fmt: str, provenance: dict[str, Any]) -> str:
    if fmt == "json":
        return _dumps({"provenance": provenance, **patient.to_dict()}, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    writer.writerows(_event_rows(patient))
    return buffer.getvalue()


def write_patient(
    patient: PatientResult,
    destination: str | Path | IO[str],
    fmt: str,
    *,
    model: ResolvedModel | None = None,
) -> None:
    """Write one patient as JSON (its data plus provenance) or CSV (its event log).

    ``destination`` is a path or an open text stream (such as ``sys.stdout``).  Written to a
    path, a CSV gets its provenance in ``<name>.provenance.json`` beside it; to a stream, the
    CSV is the event log alone.  Pass the ``model`` so that the provenance records it.
    """
    if fmt not in PATIENT_FORMATS:
        raise ModelError("format", fmt, " or ".join(PATIENT_FORMATS))
    provenance = patient_provenance(patient, model)
    text = _patient_text(patient, fmt, provenance)
    if not isinstance(destination, str | os.PathLike):
        destination.write(text)
        return
    path = Path(destination)
    _check_directory(path)
    if fmt == "json":
        with _atomic([path]) as (temp,):
            temp.write_text(text, encoding="utf-8")
        return
    _, provenance_path = _sidecars(path)
    with _atomic([provenance_path, path]) as (prov, main):
        prov.write_text(_dumps(provenance, indent=1), encoding="utf-8")
        main.write_text(text, encoding="utf-8")
