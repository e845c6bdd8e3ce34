"""Every backend gives the one-process cohort, bit for bit: local processes and Dask.

Patient ``i`` depends only on (root seed, ``i``), so chunks run anywhere join into exactly
the serial tables.  The Dask checks start a real ``LocalCluster`` of two worker processes
(the issue's CI requirement), and a scheduler that is not there is one clear error.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from metastasis.api import load_model
from metastasis.backends import (
    Chunk,
    ProcessBackend,
    SerialBackend,
    check_scheduler,
    make_backend,
)
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.cohort import run_clinical_cohort
from metastasis.clinical.course import Arm
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.cohort import run_cohort
from metastasis.errors import ModelError

PATIENTS = 24
SEED = 11
YEARS = 10.0
"""Ten untreated colorectal years: most patients carry lesions, some thousands, so the
lesions table is a real test of joining chunks."""

runner = CliRunner()


@cache
def _model() -> Any:
    return load_model("colorectal")


@cache
def _serial() -> Any:
    return run_cohort(_model(), PATIENTS, SEED, YEARS)


def _same_cohort(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.lesions, b.lesions)
    assert a.provenance["model"] == b.provenance["model"]
    assert a.provenance["root_seed"] == b.provenance["root_seed"]


def test_processes_give_the_serial_cohort() -> None:
    done: list[int] = []
    parallel = run_cohort(_model(), PATIENTS, SEED, YEARS, workers=2, progress=done.append)
    _same_cohort(_serial(), parallel)
    assert len(_serial().lesions) > PATIENTS  # the lesions table is not trivially empty
    assert sum(done) == PATIENTS and len(done) > 1


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_cohort() -> None:
    """A real LocalCluster with two single-threaded worker processes."""
    done: list[int] = []
    distributed = run_cohort(_model(), PATIENTS, SEED, YEARS, workers=2, scheduler="local",
                             progress=done.append)
    _same_cohort(_serial(), distributed)
    assert sum(done) == PATIENTS


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_clinical_cohort() -> None:
    model, clinical, treatments = _model(), load_clinical(), load_treatments()
    serial = run_clinical_cohort(model, clinical, treatments, 8, SEED, 8.0, Arm())
    distributed = run_clinical_cohort(model, clinical, treatments, 8, SEED, 8.0, Arm(),
                                      workers=2, scheduler="local")
    pd.testing.assert_frame_equal(serial.patients, distributed.patients)


def test_an_error_in_a_worker_reaches_the_caller_as_itself() -> None:
    def job(chunk: Chunk) -> None:
        raise ModelError("field", chunk.number, "something else")

    with pytest.raises(ModelError) as caught:
        list(SerialBackend().run(job, [Chunk(0, 0, 1)]))
    assert caught.value.field == "field"
    backend = ProcessBackend(2)
    try:
        with pytest.raises(ModelError) as caught:
            list(backend.run(_failing_job, [Chunk(k, k, 1) for k in range(3)]))
    finally:
        backend.close()
    assert caught.value.field == "patients" and caught.value.allowed == "an integer >= 1"


def _failing_job(chunk: Chunk) -> None:
    """Module level, so that worker processes can unpickle it."""
    raise ModelError("patients", chunk.number, "an integer >= 1")


@pytest.mark.parametrize("scheduler", ["", "remote", "tcp://", "http://host:1", 8786, True,
                                       "tcp://a b:1"])
def test_bad_scheduler_is_refused(scheduler: Any) -> None:
    with pytest.raises(ModelError) as caught:
        check_scheduler(scheduler)
    assert caught.value.field == "scheduler"
    assert "tcp://HOST:PORT" in caught.value.allowed


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


@pytest.mark.slow
def test_unreachable_scheduler_is_one_error() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(ModelError) as caught:
        make_backend(2, address)
    assert caught.value.field == "scheduler" and caught.value.value == address


@pytest.mark.slow
def test_cli_unreachable_scheduler_is_one_line_and_exit_2() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    result = runner.invoke(app, ["cohort", "--untreated", "--patients", "4", "--seed", "1",
                                 "--scheduler", address])
    assert result.exit_code == USAGE_ERROR, result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("metastasis: error: scheduler: got ")
    assert address in lines[0] and "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("value", ["remote", "tcp:/x", ""])
def test_cli_bad_scheduler_is_one_line_and_exit_2(value: str) -> None:
    result = runner.invoke(app, ["cohort", "--untreated", "--patients", "2", "--seed", "1",
                                 "--scheduler", value])
    assert result.exit_code == USAGE_ERROR, result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("metastasis: error: --scheduler: got ")


@pytest.mark.slow
def test_cli_dask_local_matches_one_process() -> None:
    args = ["cohort", "--untreated", "--patients", "12", "--seed", "2", "--format", "json"]
    plain = runner.invoke(app, args)
    dask = runner.invoke(app, [*args, "--workers", "2", "--scheduler", "local"])
    assert plain.exit_code == 0 and dask.exit_code == 0, dask.stderr
    assert plain.stdout == dask.stdout


@pytest.mark.slow
def test_a_script_without_a_main_guard_gets_a_clear_error(tmp_path: Path) -> None:
    """Worker processes import the calling script again; an unguarded parallel run there is
    refused with a message saying what to add, not a hang or a broken pool."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        from metastasis.api import load_model
        from metastasis.cohort import run_cohort
        result = run_cohort(load_model("colorectal"), 4, 1, 2.0, workers=2)
        print("patients", len(result))
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr
