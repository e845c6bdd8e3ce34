"""Cohorts written straight to disk as Parquet datasets: whole parts, resumable, identical.

A dataset run writes one part per chunk as each finishes; a run killed at any moment
(``kill -9`` included) is resumed by running only the missing chunks, and the result must
be identical to an uninterrupted run and to the cohort computed in memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from metastasis.api import load_model
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.cohort import run_clinical_cohort
from metastasis.clinical.course import Arm
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.cohort import run_cohort
from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.errors import ModelError
from metastasis.results.dataset import (
    MANIFEST,
    part_name,
    read_dataset_table,
    read_manifest,
)
from metastasis.results.tables import build_tables, site_state_counts
from metastasis.runs import ClinicalSetting, run_dataset, site_counts

SEED = 7
YEARS = 10.0
runner = CliRunner()


@cache
def _model() -> Any:
    return load_model("colorectal")


def _tables(directory: Path) -> dict[str, pd.DataFrame]:
    names = read_manifest(directory)["tables"]
    return {name: read_dataset_table(directory, name) for name in names}


def test_a_dataset_holds_the_cohort_computed_in_memory(tmp_path: Path) -> None:
    model = _model()
    run_dataset(tmp_path / "d", model, 23, SEED, YEARS, lesions=True, chunk_size=5)
    memory = run_cohort(model, 23, SEED, YEARS)
    tables = _tables(tmp_path / "d")
    pd.testing.assert_frame_equal(tables["patients"], memory.patients)
    pd.testing.assert_frame_equal(tables["lesions"], memory.lesions)
    assert sorted(os.listdir(tmp_path / "d" / "patients")) == [part_name(k) for k in range(5)]
    # the counts per site and state add up to the lesions, patient by patient
    counts = tables["site_counts"].groupby("patient_index")["lesions"].sum()
    per_patient = memory.lesions.groupby("patient_index").size()
    pd.testing.assert_series_equal(counts, per_patient, check_names=False)
    manifest = read_manifest(tmp_path / "d")
    assert manifest["complete"] and manifest["parts"] == 5
    assert manifest["provenance"]["root_seed"] == SEED
    assert not list((tmp_path / "d").rglob(".metastasis-*"))  # no temporary left


@pytest.mark.parametrize("cancer", ["colorectal", "nsclc", "prostate"])
def test_site_counts_without_a_lesions_table_equal_the_readable_definition(
        cancer: str) -> None:
    """The dataset's counts (numpy, from the lesion columns) equal site_counts of the lesions
    table, row for row and dtype for dtype, whatever order the patients come in."""
    model = load_model(cancer)
    results = [simulate_patient(model, patient_generator(SEED, i), 12 * 365.25,
                                patient_index=i, root_seed=SEED) for i in range(40)]
    states = set()
    for order in (results, results[::-1]):
        _, lesions = build_tables(order, model.site_names)
        readable = site_counts(lesions.sort_values(["patient_index", "lesion"], kind="stable"))
        counted = site_state_counts(order, model.site_names)
        pd.testing.assert_frame_equal(counted, readable)
        states |= set(counted["state"])
    assert len(states) >= 3  # the cohort reaches several states, so their order is tested


def test_a_dataset_without_lesion_rows_counts_the_same_lesions(tmp_path: Path) -> None:
    model = _model()
    run_dataset(tmp_path / "rows", model, 12, SEED, YEARS, lesions=True, chunk_size=5)
    run_dataset(tmp_path / "counts", model, 12, SEED, YEARS, chunk_size=5)
    with_rows, counts_only = _tables(tmp_path / "rows"), _tables(tmp_path / "counts")
    assert "lesions" not in counts_only
    for name in ("patients", "site_counts"):
        pd.testing.assert_frame_equal(counts_only[name], with_rows[name])


def test_a_dataset_with_the_clinical_course_holds_the_clinical_cohort(tmp_path: Path) -> None:
    model, clinical, treatments = _model(), load_clinical(), load_treatments()
    setting = ClinicalSetting(clinical, treatments, Arm())
    run_dataset(tmp_path / "d", model, 9, SEED, 8.0, clinical=setting, chunk_size=4,
                workers=2)
    memory = run_clinical_cohort(model, clinical, treatments, 9, SEED, 8.0, Arm())
    pd.testing.assert_frame_equal(read_dataset_table(tmp_path / "d", "clinical"),
                                  memory.patients)


def _dead_process_id() -> int:
    """The id of a process that has ended (as a killed writer's has)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_resumed_run_writes_only_missing_parts_and_ends_identical(tmp_path: Path) -> None:
    model = _model()
    whole = tmp_path / "whole"
    run_dataset(whole, model, 20, SEED, YEARS, lesions=True, chunk_size=4)
    broken = tmp_path / "broken"
    run_dataset(broken, model, 20, SEED, YEARS, lesions=True, chunk_size=4)
    # what a kill leaves: a chunk without its patients part, another whose lesions part is
    # there without it, a patients part with the wrong rows (never made by the writer, but
    # refused all the same), debris in the staging area and an unfinished manifest
    (broken / "patients" / part_name(1)).unlink()
    (broken / "patients" / part_name(3)).unlink()
    (broken / "lesions" / part_name(3)).unlink()
    (broken / "patients" / part_name(4)).write_bytes(
        (broken / "patients" / part_name(0)).read_bytes())  # 4 rows of other patients
    dead = _dead_process_id()
    debris = [broken / "patients" / f".metastasis-{dead}-{'d' * 12}.partial.parquet",
              broken / f".metastasis-{dead}-{'e' * 12}.partial.json"]
    for path in debris:
        path.write_bytes(b"partial")
    manifest = json.loads((broken / MANIFEST).read_text())
    manifest["complete"] = False
    (broken / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not finished"):
        read_dataset_table(broken)
    before = {k: (broken / "patients" / part_name(k)).stat().st_mtime_ns for k in (0, 2)}
    done: list[int] = []
    run_dataset(broken, model, 20, SEED, YEARS, lesions=True, chunk_size=4, resume=True,
                progress=done.append)
    assert done[0] == 8 and sum(done) == 20  # two parts on disk, three run again
    after = {k: (broken / "patients" / part_name(k)).stat().st_mtime_ns for k in (0, 2)}
    assert before == after  # complete parts are not rewritten
    for name, table in _tables(whole).items():
        pd.testing.assert_frame_equal(read_dataset_table(broken, name), table)
    assert not any(path.exists() for path in debris)  # a killed writer's temporaries


def test_a_dataset_is_not_overwritten_nor_mixed_with_another_run(tmp_path: Path) -> None:
    model = _model()
    run_dataset(tmp_path / "d", model, 3, SEED, 2.0, chunk_size=2)
    with pytest.raises(ModelError) as caught:
        run_dataset(tmp_path / "d", model, 3, SEED, 2.0, chunk_size=2)
    assert caught.value.field == "out" and "--resume" in caught.value.allowed
    with pytest.raises(ModelError) as caught:
        run_dataset(tmp_path / "d", model, 3, SEED + 1, 2.0, chunk_size=2, resume=True)
    assert caught.value.field == "--resume" and "root_seed" in caught.value.allowed
    with pytest.raises(ModelError) as caught:
        run_dataset(tmp_path / "d", model, 3, None, 2.0, chunk_size=2, resume=True)
    assert caught.value.field == "--resume"
    with pytest.raises(ModelError) as caught:
        run_dataset(tmp_path / "e", model, 3, SEED, 2.0, chunk_size=0)
    assert caught.value.field == "chunk_size"
    assert not (tmp_path / "e").exists()  # bad input found before anything is written


def test_duckdb_reads_the_dataset(tmp_path: Path) -> None:
    """The README's kind of query: metastases by site straight from the Parquet parts."""
    run_dataset(tmp_path / "d", _model(), 12, SEED, YEARS, chunk_size=5)
    patients = read_dataset_table(tmp_path / "d")
    glob = str(tmp_path / "d" / "patients" / "*.parquet")
    count, liver = duckdb.connect().execute(
        f"select count(*), avg(met_liver::int) from read_parquet('{glob}')").fetchall()[0]
    assert count == 12
    assert liver == pytest.approx(patients["met_liver"].mean())


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "metastasis.cli.app", *args]


@pytest.mark.slow
def test_kill_9_then_resume_is_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """A real command killed with SIGKILL while it writes parts, then resumed."""
    args = ["cohort", "--untreated", "--patients", "60", "--seed", str(SEED), "--years", "10",
            "--chunk-size", "3", "--lesions", "--format", "json"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli(*args, "--out", f"{killed}/"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    parts = killed / "patients"
    while time.monotonic() < deadline and process.poll() is None:
        if parts.is_dir() and len(os.listdir(parts)) >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not read_manifest(killed)["complete"]
    written = len(os.listdir(parts))
    assert 2 <= written < 20
    resumed = subprocess.run(_cli(*args, "--out", f"{killed}/", "--resume"),
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    plain = tmp_path / "plain"
    whole = subprocess.run(_cli(*args, "--out", f"{plain}/"), capture_output=True, text=True,
                           timeout=300, check=False)
    assert whole.returncode == 0, whole.stderr
    assert resumed.stdout == whole.stdout  # the same report
    for name in ("patients", "lesions", "site_counts"):
        pd.testing.assert_frame_equal(read_dataset_table(killed, name),
                                      read_dataset_table(plain, name))


@pytest.mark.parametrize(("extra", "field"), [
    (["--resume"], "--resume"),
    (["--chunk-size", "5"], "--chunk-size"),
])
def test_cli_dataset_options_need_a_dataset(tmp_path: Path, extra: list[str], field: str
                                            ) -> None:
    out = tmp_path / "c.parquet"
    result = runner.invoke(app, ["cohort", "--untreated", "--patients", "2", "--seed", "1",
                                 "--out", str(out), *extra])
    assert result.exit_code == USAGE_ERROR
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"metastasis: error: {field}: got ")
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-3", "x", "100001"])
def test_cli_bad_chunk_size_is_one_line(tmp_path: Path, value: str) -> None:
    result = runner.invoke(app, ["cohort", "--untreated", "--patients", "2", "--seed", "1",
                                 "--out", f"{tmp_path / 'd'}/", "--chunk-size", value])
    assert result.exit_code == USAGE_ERROR, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "chunk-size" in lines[0]
    assert not (tmp_path / "d").exists()


def test_cli_resume_needs_a_seed_and_an_existing_run_refuses_overwrite(tmp_path: Path
                                                                       ) -> None:
    target = f"{tmp_path / 'd'}/"
    result = runner.invoke(app, ["cohort", "--untreated", "--patients", "2", "--out", target,
                                 "--resume"])
    assert result.exit_code == USAGE_ERROR and "--seed" in result.stderr
    ok = runner.invoke(app, ["cohort", "--untreated", "--patients", "2", "--seed", "1",
                             "--years", "2", "--out", target])
    assert ok.exit_code == 0, ok.stderr
    again = runner.invoke(app, ["cohort", "--untreated", "--patients", "2", "--seed", "1",
                                "--years", "2", "--out", target])
    assert again.exit_code == USAGE_ERROR and "--resume" in again.stderr
    assert len([line for line in again.stderr.splitlines() if line.strip()]) == 1


@pytest.mark.slow
def test_scale_benchmark_script_runs() -> None:
    """A smoke run of benchmarks/bench_scale.py (no timing is asserted, only that it works
    and reports every part)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    for heading in ("## Colorectal, 10 years", "## Every cancer type", "## Cost against the "
                    "horizon", "## Engine against its random draws"):
        assert heading in done.stdout
