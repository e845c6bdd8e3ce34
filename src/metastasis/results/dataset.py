"""A cohort on disk as a Parquet dataset: one part per chunk, written as each finishes.

Layout of a dataset directory::

    manifest.json              what was run (provenance, chunking, tables) and whether the
                               run is complete
    patients/part-000000.parquet    one row per patient (always)
    site_counts/part-...            lesions per (patient, site, state at the end) (always)
    lesions/part-...                one row per lesion (only when asked for)
    clinical/part-...               one row per patient's clinical course (when run)

Each table is a directory of parts that pandas, pyarrow and DuckDB read as one table
(``read_parquet('DIR/patients/*.parquet')``).  A part is written under a hidden temporary
name beside it and renamed into place (:mod:`metastasis.atomic`); the patients part of a
chunk is renamed
last, so a chunk is complete exactly when its patients part exists (and holds exactly the
chunk's patients, checked again on resume).  A run killed at any moment, ``kill -9``
included, leaves complete parts, possibly other tables' parts of an unfinished chunk (which
the resumed run writes again) and hidden temporaries (removed on resume): no partial part
is ever read as complete.  Parts are numbered by chunk, and the chunk plan depends only on
the patient range and the chunk size, so a resumed run writes exactly the parts an
uninterrupted run would have written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from metastasis import atomic
from metastasis.errors import ModelError
from metastasis.results.tables import conform

__all__ = ["DATASET_FORMAT", "MANIFEST", "DatasetWriter", "check_target", "read_dataset_table",
           "read_manifest"]

DATASET_FORMAT = 1
"""Version of the directory layout and the manifest's keys."""

MANIFEST = "manifest.json"
PATIENTS = "patients"
PART_PATTERN = re.compile(r"^part-(\d{6})\.parquet$")
"""Part files: the chunk's number, zero-padded so that names sort in patient order."""


def part_name(number: int) -> str:
    return f"part-{number:06d}.parquet"


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, allow_nan=False, sort_keys=True)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a dataset directory (what was run, whether it is complete)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError("dataset", str(directory),
                         f"a dataset directory written by metastasis ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise ModelError("dataset", str(directory),
                         f"a dataset directory of format {DATASET_FORMAT}")
    return manifest


def check_target(directory: Path, *, resume: bool) -> bool:
    """Whether ``directory`` holds a run to resume; refuses a file, a folder inside a missing
    one, and a directory with contents unless resuming (a run is never overwritten)."""
    parent = directory.parent if str(directory.parent) else Path(".")
    if not parent.is_dir():
        raise ModelError("out", f"{directory}/", f"a directory in an existing folder "
                         f"({parent} is missing)")
    if not directory.exists():
        return False
    if not directory.is_dir():
        raise ModelError("out", str(directory), "a directory (a dataset is a directory)")
    if not any(directory.iterdir()):
        return False
    if not resume:
        raise ModelError("out", str(directory), "a new or empty directory (or --resume to "
                         "continue the run written there)")
    return True


class DatasetWriter:
    """Writes the parts of one run into a dataset directory, starting it or resuming it.

    ``run`` describes the run in plain JSON data (cancer, seed, range, years, chunk size,
    tables, clinical settings) and ``provenance`` is the cohort's provenance; a resumed run
    must describe itself identically, or it would mix two runs in one dataset.
    """

    def __init__(self, directory: str | Path, run: Mapping[str, Any],
                 provenance: Mapping[str, Any], tables: Sequence[str], *,
                 resume: bool = False) -> None:
        self.directory = Path(directory)
        self.tables = tuple(tables)
        if PATIENTS not in self.tables:
            raise ModelError("tables", self.tables, f"a list that includes '{PATIENTS}'")
        self.run = json.loads(_json(dict(run)))
        self.provenance = json.loads(_json(dict(provenance)))
        self._open(resume)

    # ----------------------------------------------------------------- starting
    def _open(self, resume: bool) -> None:
        directory = self.directory
        if check_target(directory, resume=resume):
            self._check_same_run(read_manifest(directory))
        try:
            directory.mkdir(parents=True, exist_ok=True)
            atomic.remove_stale(directory)  # what a killed run was writing
            for table in self.tables:
                (directory / table).mkdir(exist_ok=True)
                atomic.remove_stale(directory / table)
            if not (directory / MANIFEST).exists():
                self._write_manifest(complete=False)
        except OSError as error:
            raise ModelError("out", str(directory), f"a writable directory ({error})") from None

    def _check_same_run(self, manifest: Mapping[str, Any]) -> None:
        differs = sorted(k for k in set(self.run) | set(manifest.get("run", {}))
                         if self.run.get(k) != manifest.get("run", {}).get(k))
        if manifest.get("provenance", {}).get("model") != self.provenance.get("model"):
            differs.append("model")
        if differs:
            raise ModelError("--resume", str(self.directory), "a directory holding the same "
                             f"run (this one differs in: {', '.join(differs)})")

    def _write_manifest(self, *, complete: bool, parts: int | None = None) -> None:
        manifest = {
            "format": DATASET_FORMAT,
            "package": "metastasis",
            "complete": complete,
            "run": self.run,
            "tables": list(self.tables),
            "parts": parts,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "provenance": self.provenance,
        }
        atomic.write_text(self.directory / MANIFEST, _json(manifest))

    # ----------------------------------------------------------------- parts
    def complete_parts(self, expected: Mapping[int, range]) -> set[int]:
        """Chunks whose parts are all in place: the patients part exists under its final
        name and holds exactly the chunk's patients (``expected[number]``, their indices in
        order), so that no part is taken for another or for a whole one."""
        done = set()
        for path in (self.directory / PATIENTS).iterdir():
            match = PART_PATTERN.match(path.name)
            if match is None or int(match.group(1)) not in expected:
                continue
            number = int(match.group(1))
            try:
                index = pq.read_table(path, columns=["patient_index"]).column(0).to_pylist()
            except (OSError, pa.ArrowException):
                continue
            if index == list(expected[number]):
                done.add(number)
        return done

    def write_part(self, number: int, frames: Mapping[str, pd.DataFrame]) -> None:
        """Write one chunk's tables; the patients part last, so that its presence means the
        chunk is whole."""
        if set(frames) != set(self.tables):
            raise ModelError("tables", sorted(frames), f"exactly {sorted(self.tables)}")
        try:
            order = [t for t in self.tables if t != PATIENTS] + [PATIENTS]
            for table in order:
                target = self.directory / table / part_name(number)
                # the folders were cleared of a killed run's temporaries when the run opened
                with atomic.staged(target, clear_stale=False) as (temporary,):
                    arrow = pa.Table.from_pandas(frames[table], preserve_index=False)
                    pq.write_table(arrow.replace_schema_metadata(None), temporary)
        except OSError as error:
            raise ModelError("out", str(self.directory),
                             f"a writable directory ({error})") from None

    def finish(self, parts: int) -> None:
        """Mark the run complete."""
        self._write_manifest(complete=True, parts=parts)


def _parts(directory: Path, table: str) -> list[Path]:
    folder = directory / table
    if not folder.is_dir():
        raise ModelError("table", table, "a table the dataset holds")
    return sorted(p for p in folder.iterdir() if PART_PATTERN.match(p.name))


def read_dataset_table(directory: str | Path, table: str = PATIENTS, *,
                       columns: Iterable[str] | None = None) -> pd.DataFrame:
    """One table of a complete dataset, parts joined in patient order, canonical dtypes.

    Refuses a dataset whose run has not finished: its parts are whole, but not all there."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if not manifest.get("complete"):
        raise ModelError("dataset", str(directory),
                         "a complete dataset (this run has not finished: --resume it)")
    paths = _parts(directory, table)
    wanted = None if columns is None else list(columns)
    frames = [pq.read_table(p, columns=wanted).to_pandas() for p in paths]
    if not frames:
        return pd.DataFrame(columns=wanted or [])
    frame = pd.concat(frames, ignore_index=True)
    # the disease tables have canonical dtypes; the others keep what Parquet stored
    return conform(frame) if table in (PATIENTS, "lesions") else frame
