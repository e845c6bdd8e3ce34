"""Export: exact round trips with provenance, DuckDB on the Parquet file, atomic writes,
re-runs from a file's provenance, and one patient as JSON or CSV."""

from __future__ import annotations

import copy
import csv
import io
import json
import stat

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from metastasis.api import load_model, run_patient
from metastasis.cohort import CohortResult, model_from_provenance, rerun, run_cohort
from metastasis.errors import ModelError
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import resolve
from metastasis.results import export
from metastasis.results.export import (
    PROVENANCE_KEY,
    read_cohort,
    write_cohort,
    write_patient,
)

SEED = 77
YEARS = 11.0
"""Long enough that most default colorectal patients have node and some distant spread."""

FORMATS = (".parquet", ".csv", ".json")


@pytest.fixture(scope="module")
def colorectal():
    return load_model("colorectal")


@pytest.fixture(scope="module")
def cohort(colorectal) -> CohortResult:
    return run_cohort(colorectal, 25, SEED, YEARS, start=5)


def assert_same(a: CohortResult, b: CohortResult) -> None:
    pd.testing.assert_frame_equal(a.patients, b.patients, check_exact=True)
    pd.testing.assert_frame_equal(a.lesions, b.lesions, check_exact=True)
    assert a.provenance == b.provenance


def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_is_exact_with_provenance(cohort, tmp_path, suffix):
    path = write_cohort(cohort, tmp_path / f"cohort{suffix}")
    assert_same(read_cohort(path), cohort)
    assert not [n for n in _listing(tmp_path) if n.startswith(".metastasis-")]


def test_files_of_each_format(cohort, tmp_path):
    for suffix in FORMATS:
        write_cohort(cohort, tmp_path / f"c{suffix}")
    assert _listing(tmp_path) == [
        "c.csv", "c.json", "c.lesions.csv", "c.parquet", "c.provenance.json"]
    document = json.loads((tmp_path / "c.json").read_text())
    assert set(document) == {"provenance", "patients", "lesions"}
    assert len(document["patients"]) == 25
    sidecar = json.loads((tmp_path / "c.provenance.json").read_text())
    assert sidecar["root_seed"] == SEED and sidecar["patient_index_start"] == 5


def test_parquet_is_one_file_with_nested_lesions_and_provenance(cohort, tmp_path):
    path = write_cohort(cohort, tmp_path / "c.parquet")
    schema = pq.read_schema(path)
    assert "lesions" in schema.names
    assert str(schema.field("lesions").type).startswith("large_list<")
    assert json.loads(schema.metadata[PROVENANCE_KEY]) == cohort.provenance
    assert pq.read_metadata(path).num_rows == len(cohort)


def test_duckdb_queries_the_parquet_file_directly(cohort, tmp_path):
    path = str(write_cohort(cohort, tmp_path / "c.parquet"))
    con = duckdb.connect()
    liver = con.execute("SELECT count(*) FROM read_parquet(?) WHERE met_liver", [path]).fetchone()
    assert liver[0] == int(cohort.patients["met_liver"].sum())
    no_distant = con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE first_distant_day IS NULL", [path]
    ).fetchone()
    assert no_distant[0] == int(cohort.patients["first_distant_day"].isna().sum())
    by_site = con.execute(
        "SELECT l.site, count(*) FROM (SELECT unnest(lesions) AS l FROM read_parquet(?)) "
        "GROUP BY l.site", [path]
    ).fetchall()
    assert dict(by_site) == cohort.lesions["site"].value_counts().to_dict()
    kv = con.execute("SELECT value FROM parquet_kv_metadata(?) WHERE key = ?",
                     [path, PROVENANCE_KEY.decode()]).fetchone()
    assert json.loads(kv[0])["root_seed"] == SEED


@pytest.mark.parametrize("name", ["c.xlsx", "c", "c.parquet.gz"])
def test_unknown_suffix_is_refused_and_nothing_written(cohort, tmp_path, name):
    with pytest.raises(ModelError) as err:
        write_cohort(cohort, tmp_path / name)
    assert err.value.field == "out"
    assert ".parquet" in err.value.allowed
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("suffix", FORMATS)
def test_files_get_the_usual_permissions(cohort, tmp_path, suffix):
    """Written like any other file the user makes, not private to the writing process."""
    reference = tmp_path / "reference.txt"
    reference.write_text("x")
    path = write_cohort(cohort, tmp_path / f"c{suffix}")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_missing_folder_is_refused(cohort, tmp_path):
    with pytest.raises(ModelError) as err:
        write_cohort(cohort, tmp_path / "no" / "c.parquet")
    assert err.value.field == "out"


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_failed_write_leaves_nothing_behind(cohort, tmp_path, monkeypatch, suffix):
    """A failure half-way leaves no partial file and an earlier result untouched."""
    target = tmp_path / f"c{suffix}"
    write_cohort(cohort, target)
    before = {n: (tmp_path / n).read_bytes() for n in _listing(tmp_path)}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_parquet", broken)
    monkeypatch.setattr(export, "_write_csv", broken)
    monkeypatch.setattr(export, "_records", broken)
    with pytest.raises(RuntimeError):
        write_cohort(cohort, target)
    assert {n: (tmp_path / n).read_bytes() for n in _listing(tmp_path)} == before


def test_reading_something_else_is_a_clear_error(tmp_path):
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(plain)
    with pytest.raises(ModelError):
        read_cohort(plain)
    with pytest.raises(ModelError):
        read_cohort(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError):
        read_cohort(tmp_path / "bad.json")


# --------------------------------------------------------------------------- re-runs


@pytest.mark.parametrize("suffix", FORMATS)
def test_rerun_from_a_files_provenance_reproduces_it(cohort, tmp_path, suffix):
    path = write_cohort(cohort, tmp_path / f"c{suffix}")
    again = rerun(read_cohort(path).provenance)
    pd.testing.assert_frame_equal(again.patients, cohort.patients, check_exact=True)
    pd.testing.assert_frame_equal(again.lesions, cohort.lesions, check_exact=True)


def test_rerun_uses_the_recorded_model_not_the_default(colorectal, tmp_path):
    """A modified model travels inside the file: its re-run differs from the default's."""
    knowledge = copy.deepcopy(colorectal.knowledge)
    knowledge["cancers"]["colorectal"]["shedding"]["rate"]["value"] *= 4
    modified = resolve(from_dict(knowledge), "colorectal")
    result = run_cohort(modified, 6, SEED, YEARS)
    path = write_cohort(result, tmp_path / "modified.parquet")
    provenance = read_cohort(path).provenance
    assert model_from_provenance(provenance).shedding_rate == modified.shedding_rate
    pd.testing.assert_frame_equal(rerun(provenance).patients, result.patients,
                                  check_exact=True)
    default = run_cohort(colorectal, 6, SEED, YEARS)
    assert not default.patients["cells_shed"].equals(result.patients["cells_shed"])


def test_rerun_needs_a_complete_provenance(cohort):
    partial = {k: v for k, v in cohort.provenance.items() if k != "root_seed"}
    with pytest.raises(ModelError) as err:
        rerun(partial)
    assert err.value.field == "provenance.root_seed"


# --------------------------------------------------------------------------- one patient


@pytest.fixture(scope="module")
def patient(colorectal):
    return run_patient(colorectal, SEED, 3, YEARS)


def test_patient_json_to_a_stream_has_data_and_provenance(colorectal, patient):
    stream = io.StringIO()
    write_patient(patient, stream, "json", model=colorectal)
    document = json.loads(stream.getvalue())
    prov = document["provenance"]
    assert (prov["root_seed"], prov["patient_index_start"], prov["patient_index_stop"]) == (
        SEED, 3, 4)
    assert prov["years"] == pytest.approx(YEARS, rel=1e-15)
    assert prov["model"] == colorectal.knowledge
    assert document["patient_index"] == 3
    assert len(document["events"]) == len(patient.events())
    # the provenance re-runs this very patient
    again = rerun(prov)
    assert again.patients["end_time"].iloc[0] == patient.end_time
    assert again.patients["n_lesions_founded"].iloc[0] == len(patient.lesions) - 1


def test_patient_json_without_a_model_says_so(patient, tmp_path):
    path = tmp_path / "p.json"
    write_patient(patient, path, "json")
    assert json.loads(path.read_text())["provenance"]["model"] is None
    assert _listing(tmp_path) == ["p.json"]


def test_patient_csv_is_the_event_log(colorectal, patient, tmp_path):
    path = tmp_path / "p.csv"
    write_patient(patient, path, "csv", model=colorectal)
    assert _listing(tmp_path) == ["p.csv", "p.provenance.json"]
    rows = list(csv.DictReader(path.open()))
    events = patient.events()
    assert len(rows) == len(events)
    assert [float(r["time"]) for r in rows] == [e.time for e in events]
    assert [r["kind"] for r in rows] == [e.kind for e in events]
    with_counts = [(r, e) for r, e in zip(rows, events, strict=True) if e.counts]
    assert with_counts and all(json.loads(r["counts"]) == e.counts for r, e in with_counts)
    provenance = json.loads((tmp_path / "p.provenance.json").read_text())
    assert provenance["patient_index_start"] == 3


def test_patient_unknown_format_is_refused(patient, tmp_path):
    with pytest.raises(ModelError) as err:
        write_patient(patient, tmp_path / "p.xml", "xml")
    assert err.value.field == "format"
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_cohort_without_lesions_round_trips(colorectal, tmp_path, suffix):
    result = run_cohort(colorectal, 6, SEED, YEARS, keep_lesions=False)
    assert result.lesions.empty and result.provenance["lesions_kept"] is False
    assert_same(read_cohort(write_cohort(result, tmp_path / f"c{suffix}")), result)
