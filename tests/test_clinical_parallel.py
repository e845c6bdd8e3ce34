"""Clinical cohorts on several processes give exactly the serial cohort.

Patient ``i`` depends only on (seed, ``i``), so the table joined from chunks run by worker
processes must equal, value for value and dtype for dtype, the table one process builds.
The cohorts are small and short so that each test takes a few seconds; the horizon (8 years)
is chosen so that some patients are diagnosed and some are not, which puts both missing and
present values in the text columns that the chunks' tables must join without a change of
dtype (at 5 years none of these patients is diagnosed yet, and the check would be weaker).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from metastasis.api import load_model
from metastasis.backends import plan_chunks
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.cohort import ClinicalJob, run_clinical_cohort
from metastasis.clinical.course import Arm
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.errors import ModelError

PATIENTS = 12
SEED = 3
YEARS = 8.0

runner = CliRunner()


@cache
def _knowledge() -> tuple[Any, Any, Any]:
    return load_model("colorectal"), load_clinical(), load_treatments()


def _both(arm: Arm) -> None:
    """Serial and two-worker runs of the same cohort: equal tables, progress for everyone."""
    model, clinical, treatments = _knowledge()
    serial = run_clinical_cohort(model, clinical, treatments, PATIENTS, SEED, YEARS, arm)
    done: list[int] = []
    parallel = run_clinical_cohort(model, clinical, treatments, PATIENTS, SEED, YEARS, arm,
                                   workers=2, progress=done.append)
    pd.testing.assert_frame_equal(serial.patients, parallel.patients)
    assert (parallel.cancer, parallel.arm, parallel.seed, parallel.years) == (
        serial.cancer, serial.arm, serial.seed, serial.years)
    assert sum(done) == PATIENTS and len(done) > 1  # per chunk, not once at the end
    diagnosed = serial.patients["diagnosed"]
    assert diagnosed.any() and not diagnosed.all()  # the case the module docstring names


def test_two_workers_give_the_serial_cohort() -> None:
    _both(Arm())


def test_two_workers_give_the_serial_cohort_with_screening() -> None:
    _both(Arm(name="screening", screening=True))


def test_chunks_cover_the_range_once_in_order() -> None:
    """Contiguous, never empty, all of the given size but the last, numbered in order."""
    for start, n, size in [(0, 12, 5), (5, 7, 3), (0, 3, 8), (2, 1, 4), (0, 200, 8)]:
        chunks = plan_chunks(start, n, size)
        indices = [i for c in chunks for i in range(c.start, c.stop)]
        assert indices == list(range(start, start + n))
        assert [c.number for c in chunks] == list(range(len(chunks)))
        assert all(c.count == size for c in chunks[:-1]) and 1 <= chunks[-1].count <= size


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2", True, None])
def test_bad_workers_is_refused(workers: Any) -> None:
    model, clinical, treatments = _knowledge()
    with pytest.raises(ModelError) as caught:
        run_clinical_cohort(model, clinical, treatments, 2, SEED, YEARS, workers=workers)
    assert caught.value.field == "workers"
    assert caught.value.allowed == "an integer >= 1"


def test_a_workers_bad_input_crosses_the_process_boundary() -> None:
    """An error raised in a worker reaches the caller as the same ModelError: it pickles by
    its three parts (field, value, allowed)."""
    model, clinical, treatments = _knowledge()
    job = ClinicalJob(model, clinical, treatments, SEED, YEARS, Arm())
    error = ModelError("patients", 0, "an integer >= 1")
    back = pickle.loads(pickle.dumps(error))
    assert (back.field, back.value, back.allowed, str(back)) == (
        error.field, error.value, error.allowed, str(error))
    # what a worker receives: the job unpickled tells the same stories
    chunk = plan_chunks(0, 2, 2)[0]
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(job))(chunk), job(chunk))


def test_cli_cohort_with_workers_matches_one_process() -> None:
    """``--workers 2`` prints the same clinical report as one process."""
    args = ["cohort", "--patients", str(PATIENTS), "--seed", str(SEED), "--years", "8",
            "--format", "json"]
    reports = []
    for workers in ("1", "2"):
        result = runner.invoke(app, [*args, "--workers", workers])
        assert result.exit_code == 0, result.stderr + result.stdout
        reports.append(result.stdout)
    assert reports[0] == reports[1]
    assert '"clinical"' in reports[0]


@pytest.mark.parametrize(("command", "value"), [("cohort", "0"), ("cohort", "-1"),
                                                ("compare", "0"), ("cohort", "two")])
def test_cli_bad_workers_is_one_line_and_exit_2(command: str, value: str) -> None:
    result = runner.invoke(app, [command, "--patients", "2", "--seed", "1", "--years", "1",
                                 "--workers", value])
    assert result.exit_code == USAGE_ERROR, result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("metastasis: error: workers: got ")
    assert value in lines[0] and "an integer >= 1" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_untreated_cohort_with_workers_matches_one_process() -> None:
    """The untreated natural history is shared out too, with the same report."""
    args = ["cohort", "--untreated", "--patients", "10", "--seed", "1", "--format", "json"]
    reports = []
    for workers in ("1", "2"):
        result = runner.invoke(app, [*args, "--workers", workers])
        assert result.exit_code == 0, result.stderr + result.stdout
        reports.append(result.stdout)
    assert reports[0] == reports[1]


@pytest.mark.slow
def test_installed_command_runs_workers_in_a_real_process() -> None:
    """The console script as a user runs it: worker processes started from a real
    ``__main__`` (the pool's start method imports it), same report as one process."""
    args = [sys.executable, "-m", "metastasis.cli.app", "compare", "--patients", "6",
            "--seed", str(SEED), "--years", "8", "--format", "json"]
    outputs = []
    for workers in ("1", "2"):
        done = subprocess.run([*args, "--workers", workers], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]


@pytest.mark.slow
def test_benchmark_script_runs() -> None:
    """A smoke run of benchmarks/bench_clinical_parallel.py (no timing is asserted: the
    script itself checks that every parallel table equals the serial one)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_clinical_parallel.py"
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| 2 | again |" in done.stdout
