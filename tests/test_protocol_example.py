"""`metastasis protocol example`: the documented protocol file, shipped with the package.

A learner is told to start from what this command prints, so the tests hold that exact text
to the real loader (:func:`load_protocols`) and to a real clinical cohort run with
``cohort --protocol``; the commented-out second example in it must load too once its
comment marks are removed.  The file must be package data (a wheel without it would make
the command fail), and bad ``--out`` names answer in one line with exit status 2 and no
file written, like every other command.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import metastasis
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.protocol_example import EXAMPLE_FILE, EXAMPLE_NAME, example_text
from metastasis.clinical.treatment_schema import load_protocols

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _printed() -> str:
    """What `metastasis protocol example` writes to stdout (the disclaimer goes to stderr)."""
    result = runner.invoke(app, ["protocol", "example"])
    assert result.exit_code == 0, result.stderr + result.stdout
    assert metastasis.DISCLAIMER in result.stderr
    return result.stdout


def test_the_command_prints_the_shipped_example_exactly() -> None:
    printed = _printed()
    assert printed == example_text()
    tomllib.loads(printed)  # plain TOML: stdout carries nothing else
    # the file explains itself: every field the loader accepts is named in its comments
    for field in ("label", "description", "cancers", "steps", "modality", "therapy",
                  "start_day", "primary", "regional_nodes", "metastasectomy", "curative_only",
                  "cycles", "interval_days", "sites", "dose_gy", "fractions", "source"):
        assert re.search(rf"^#.*\b{field}\b", printed, re.M), f"{field} is not explained"
    assert "not medical advice" in printed


def test_the_printed_example_runs_a_clinical_cohort(tmp_path: Path) -> None:
    """Printed, saved, loaded by the real loader and followed by every diagnosed patient of a
    small cohort (`cohort --protocol`)."""
    path = tmp_path / "my-protocol.toml"
    path.write_text(_printed(), encoding="utf-8")
    protocols = load_protocols(path)
    assert list(protocols) == [EXAMPLE_NAME]
    label = protocols[EXAMPLE_NAME].label
    out = tmp_path / "cohort.csv"
    result = runner.invoke(app, ["cohort", "--cancer", "colorectal", "--patients", "4",
                                 "--seed", "1", "--years", "20", "--protocol", str(path),
                                 "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.stderr + result.stdout
    clinical = json.loads(result.stdout)["clinical"]
    assert clinical["patients"] == 4
    assert clinical["arm"] == f"no screening, protocol {EXAMPLE_NAME}"
    assert clinical["diagnosed"] >= 1  # someone was treated: the test is not vacuous
    with out.with_name("cohort.clinical.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["diagnosed"] == "True"]
    assert rows and {r["protocol"] for r in rows} == {label}


def test_the_commented_out_example_loads_too(tmp_path: Path) -> None:
    """The second example sits in comments (a protocol for another cancer); with the comment
    marks removed it is a valid protocol, so following its instructions works."""
    text = example_text()
    start = text.index("# [protocols.egfr_drug_only]")
    block = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    path = tmp_path / "both.toml"
    path.write_text(text[:start] + block + "\n", encoding="utf-8")
    protocols = load_protocols(path)
    assert list(protocols) == [EXAMPLE_NAME, "egfr_drug_only"]
    assert protocols["egfr_drug_only"].cancers == ["nsclc"]


def test_out_writes_the_same_file(tmp_path: Path) -> None:
    target = tmp_path / "plan.toml"
    result = runner.invoke(app, ["protocol", "example", "--out", str(target)])
    assert result.exit_code == 0, result.stderr
    assert target.read_text(encoding="utf-8") == example_text()
    assert f"Wrote {target}" in result.stderr
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left beside it


@pytest.mark.parametrize(("name", "expect"), [
    ("plan.json", "a file ending in .toml"),
    ("missing/plan.toml", "a path in an existing folder"),
])
def test_bad_out_is_one_line_and_writes_nothing(tmp_path: Path, name: str, expect: str) -> None:
    result = runner.invoke(app, ["protocol", "example", "--out", str(tmp_path / name)])
    assert result.exit_code == USAGE_ERROR
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metastasis: error: --out: got "), lines
    assert expect in lines[0]
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == ""


def test_the_example_is_package_data() -> None:
    """pyproject's package-data covers the example, so a wheel ships it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["metastasis"]
    shipped = f"clinical/examples/{EXAMPLE_FILE}"
    assert (ROOT / "src" / "metastasis" / shipped).is_file()
    assert any(fnmatch.fnmatch(shipped, p) for p in patterns), patterns


def test_the_command_loads_nothing_heavy() -> None:
    """Printing a text file must not wait for the engine, pandas or SciPy."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from metastasis.cli.app import app\n"
        "result = CliRunner().invoke(app, ['protocol', 'example'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ('numba', 'pandas', 'scipy', 'metastasis.engine.process', 'metastasis.api')\n"
        "print(sorted(m for m in heavy if m in sys.modules\n"
        "             and type(sys.modules[m]).__name__ != '_LazyModule'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
