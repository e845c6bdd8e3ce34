"""``metastasis validate``: the command reports what the validation core measured, for every
target, as text, as JSON and as an HTML report with figures; bad input is one line and exit 2
with nothing written.

This is the fast form that runs in CI: one cancer type, 30 patients, 25 years (about 5 s a
run).  Whether the model *meets* its targets is not asked here (that is the calibration's
test); only that every target is measured and reported faithfully.
"""

from __future__ import annotations

import html
import json
import math
import re

import pytest
from typer.testing import CliRunner

import metastasis
from metastasis.api import load_model
from metastasis.calibration.targets import load_targets
from metastasis.calibration.validation import validate
from metastasis.cli import validation_html
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.errors import ModelError

runner = CliRunner()

CANCER = "colorectal"
FAST = ["--cancer", CANCER, "--patients", "30", "--years", "25"]
SEED = 2026  # the command's default seed
VERDICTS = {"meets", "misses", "no data"}
TARGETS = list(load_targets()[CANCER].values())


def _invoke(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def direct():
    """The validation core called directly with the command's settings."""
    return validate(load_model(CANCER), load_clinical(), load_treatments(), TARGETS,
                    patients=30, seed=SEED, years=25.0)


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    """One JSON run that also writes the report."""
    report = tmp_path_factory.mktemp("validate") / "report"
    code, out, err = _invoke([*FAST, "--format", "json", "--report", str(report)])
    assert code == 0, err + out
    return json.loads(out), report, err


def _same(reported, measured: float) -> bool:
    """JSON has no NaN or infinity: the command writes them as null."""
    if not math.isfinite(measured):
        return reported is None
    return reported == pytest.approx(measured, rel=1e-12, abs=0.0)


def test_json_reports_every_target_as_the_core_measured_it(json_run, direct):
    data, _, _ = json_run
    assert data["disclaimer"] == metastasis.DISCLAIMER
    assert any("net survival" in note for note in data["notes"])
    assert (data["patients"], data["root_seed"], data["years"]) == (30, SEED, 25.0)
    [cancer] = data["cancers"]
    assert cancer["cancer"] == CANCER
    checks = cancer["checks"]
    assert [c["target"] for c in checks] == [t.name for t in TARGETS]
    assert cancer["targets"] == len(TARGETS) == data["targets"]
    assert cancer["met"] == direct.met == data["met"]
    for reported, measured in zip(checks, direct.checks, strict=True):
        assert reported["verdict"] in VERDICTS
        assert reported["verdict"] == measured.verdict, reported["target"]
        assert reported["patients"] == measured.patients
        assert reported["note"] == measured.note
        for key in ("estimate", "lower", "upper"):
            assert _same(reported[key], getattr(measured, key)), (reported["target"], key)
        target = measured.target
        assert reported["value"] == target.value
        assert reported["acceptable"] == list(target.acceptable)
        assert reported["source"] == target.source
        assert reported["label"] == target.label


def test_text_shows_every_target_once_with_a_verdict():
    code, out, err = _invoke(FAST)
    assert code == 0, err + out
    assert metastasis.DISCLAIMER in out
    assert "net survival" in out
    assert "Traceback" not in out + err
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 6:
            rows.setdefault(cells[1], []).append(cells)
    for target in TARGETS:
        assert len(rows.get(target.label, [])) == 1, target.label
        verdict = rows[target.label][0][5].split(":")[0]
        assert verdict in VERDICTS, (target.label, verdict)
    assert re.search(rf"\d+ of {len(TARGETS)} targets met", out)
    assert "Sources:" in out
    for target in TARGETS:
        assert target.source in out


def test_report_has_every_target_and_its_figures(json_run):
    _, report, err = json_run
    page = (report / "index.html").read_text(encoding="utf-8")
    assert f"Wrote {report / 'index.html'}" in err
    assert html.escape(metastasis.DISCLAIMER) in page
    assert "net survival" in page
    for target in TARGETS:
        assert html.escape(target.label) in page, target.label
    images = re.findall(r'<img src="([^"]+)"', page)
    assert {f"{CANCER}-survival.svg", f"{CANCER}-stages.svg", f"{CANCER}-shares.svg"} <= set(
        images)
    for name in images:
        figure = report / html.unescape(name)
        assert figure.is_file(), name
        assert figure.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert not list(report.parent.glob(".metastasis-*"))


def test_report_into_an_existing_directory_keeps_its_files(tmp_path, direct):
    (tmp_path / "notes.txt").write_text("mine")
    labels = {CANCER: "colorectal cancer"}
    page = validation_html.write_report(tmp_path, [direct], labels, patients=30, seed=SEED,
                                        years=25.0)
    assert page == tmp_path / "index.html" and page.is_file()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".metastasis-*"))


def test_a_report_that_fails_half_way_leaves_nothing(tmp_path, direct, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(validation_html, "page_html", broken)
    with pytest.raises(ModelError):
        validation_html.write_report(tmp_path / "report", [direct], {CANCER: "c"},
                                     patients=30, seed=SEED, years=25.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "word"), [
    (["--cancer", "nonsense"], "--cancer"),
    (["--cancer", "colorectal", "--patients", "0"], "patients"),
    (["--cancer", "colorectal", "--format", "xml"], "--format"),
    (["--cancer", "colorectal", "--report", "{file}"], "--report"),
    (["--cancer", "colorectal", "--report", "{missing}/report"], "--report"),
    (["--cancer", "colorectal", "--report", "{long}"], "--report"),
], ids=["cancer", "patients", "format", "report-is-a-file", "report-in-missing-folder",
        "report-name-too-long"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, word):
    existing = tmp_path / "existing.html"
    existing.write_text("keep")
    args = [a.format(file=existing, missing=tmp_path / "missing",
                     long=tmp_path / ("y" * 300 + ".json"))  # found by the fuzzer
            for a in args]
    if "--report" not in args:
        args += ["--report", str(tmp_path / "report")]
    code, out, err = _invoke(args)
    assert code == USAGE_ERROR, err + out
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("metastasis: error: ")
    assert word in lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["existing.html"]
    assert existing.read_text() == "keep"
