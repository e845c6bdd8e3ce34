"""The clinical layer on the command line: the whole story, the cohort report, the comparison.

Every check reads what a reader would read and holds it against the public API run on the
same seed: the story names the diagnosis, stage, treatments and outcome that
:func:`simulate_course` returned for that patient; the cohort's figure is a real PNG; two arms
that are the same care give differences of exactly zero (common random numbers).  Patients
are found by a seeded search through the API, so the tests say which case they need and
survive recalibration of the default knowledge.  Bad input of each kind the issue lists gives
one message naming the field, the value and what is allowed, exit status 2 and no file.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

import metastasis
from metastasis.api import load_model
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.cohort import compare, run_clinical_cohort
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_protocols, load_treatments
from metastasis.limits import FOLLOW_UP_YEARS
from metastasis.results import numbers

runner = CliRunner()
YEARS = 20.0
SOURCE = "test: a protocol written for this test"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = invoke(*args)
    assert code == 0, f"exit {code}: {err}{out}"
    return out


@cache
def _knowledge(cancer: str) -> tuple[Any, Any, Any]:
    return load_model(cancer), load_clinical(), load_treatments()


@cache
def course(seed: int, index: int, *, cancer: str = "colorectal", screening: bool = False,
           protocol_file: str | None = None, protocol: str | None = None) -> ClinicalResult:
    """What the API says about one patient, for the CLI's words to be checked against."""
    model, clinical, treatments = _knowledge(cancer)
    chosen = None
    if protocol_file is not None:
        chosen = load_protocols(protocol_file, treatments)[protocol or "mine"]
    arm = Arm(screening=screening, protocol=chosen, years_after_diagnosis=FOLLOW_UP_YEARS)
    return simulate_course(model, clinical, treatments, seed, index, YEARS, arm)


def find_patient(predicate: Callable[[ClinicalResult], bool], *, seed: int = 1,
                 tries: int = 120, **options: Any) -> int:
    """The first patient index of ``seed`` whose course shows what a test needs."""
    for index in range(tries):
        if predicate(course(seed, index, **options)):
            return index
    raise AssertionError(f"no patient among {tries} shows the case under test")


def treated_and_died(r: ClinicalResult) -> bool:
    return r.diagnosis is not None and bool(r.treatment) and r.died and any(
        e.kind == "symptom" for e in r.events)


def timeline(out: str) -> list[str]:
    stamp = re.compile(r"^Day [\d,]+ \([\d.]+ y\) · ")
    return [line for line in out.splitlines() if stamp.match(line)]


# ---------------------------------------------------------------- simulate: the whole story


def test_the_story_tells_symptoms_diagnosis_stage_treatment_and_outcome() -> None:
    index = find_patient(treated_and_died)
    result = course(1, index)
    dx = result.diagnosis
    assert dx is not None and result.death_day is not None
    out = ok("simulate", "--seed", "1", "--patient", str(index))
    lines = out.splitlines()
    assert lines[0] == metastasis.DISCLAIMER
    for heading in ("Timeline", "Diagnosis", "True state at diagnosis vs what was found",
                    "Treatment", "Outcome", "What was really there at the end (true state)",
                    "Cell accounting"):
        assert heading in lines, heading
    # the disease, step by step, then the clinic, in time order
    assert "· step 3, entering blood or lymph" in out
    stamps = [int(re.match(r"Day ([\d,]+)", t).group(1).replace(",", "")) for t in timeline(out)]
    assert stamps == sorted(stamps)
    # symptoms
    first = next(e for e in result.events if e.kind == "symptom")
    assert f"clinic, symptom: new symptom: {first.label}" in out
    # work-up, biopsy, diagnosis name and stage
    assert "clinic, work-up: " in out and "clinic, biopsy: biopsy 1" in out
    assert f"clinic, diagnosis: diagnosed after {dx.pathway}" in out
    assert dx.name in out
    assert f"Stage: {dx.stage.tnm}" in out
    assert f"stage group {dx.stage.group}, summary stage {dx.stage.summary}" in out
    # true vs found
    assert (f"present on the day of diagnosis: {dx.metastases_present:,}; found by imaging: "
            f"{dx.metastases_found:,}; hidden: {dx.metastases_hidden:,}") in out
    # the protocol and every modality given, with the outcome of the first event
    assert f"Protocol: {result.protocol}" in out
    for modality in {e.modality for e in result.treatment if e.day <= result.death_day}:
        assert f"treatment, {modality}: " in out
    assert f"→ {result.treatment[0].outcome}." in out
    # outcome: the day and the cause, with why
    outcome = out.split("\nOutcome\n")[1]
    assert f"Died on {numbers.day(result.death_day).lower()}" in outcome
    assert result.cause_of_death in outcome
    assert "Survival from diagnosis" in outcome
    assert f"clinic, death: death from {result.cause_of_death}" in out
    # the cell accounting of the true disease
    assert "cells shed (step 3:" in out


def test_a_patient_alive_at_the_horizon_is_censored() -> None:
    index = find_patient(lambda r: r.diagnosis is not None and not r.died)
    out = ok("simulate", "--seed", "1", "--patient", str(index))
    outcome = out.split("\nOutcome\n")[1]
    assert "Alive at the end of follow-up" in outcome and "censored" in outcome
    assert (f"clinic, horizon: alive {FOLLOW_UP_YEARS:g} years after diagnosis, at the end of "
            "follow-up (censored)") in out


@pytest.mark.slow
def test_the_story_is_reproducible_and_long_courses_collapse_alike_cycles() -> None:
    index = find_patient(lambda r: sum("cycle" in e.description for e in r.treatment) > 3)
    a = ok("simulate", "--seed", "1", "--patient", str(index))
    assert a == ok("simulate", "--seed", "1", "--patient", str(index))
    full = ok("simulate", "--seed", "1", "--patient", str(index), "--all-events")
    assert re.search(r"cycles \d+ to \d+ of \d+", a)
    assert len(timeline(full)) > len(timeline(a))
    assert not re.search(r"cycles \d+ to \d+ of \d+", full)


def test_json_has_diagnosis_stage_treatment_outcome_and_true_vs_observed() -> None:
    index = find_patient(treated_and_died)
    result = course(1, index)
    dx = result.diagnosis
    assert dx is not None
    data = json.loads(ok("simulate", "--seed", "1", "--patient", str(index), "--format", "json"))
    assert data["disclaimer"] == metastasis.DISCLAIMER
    assert data["provenance"]["root_seed"] == 1
    assert data["provenance"]["patient_index_start"] == index
    assert data["provenance"]["clinical_course"]["screening"] is False
    got = data["diagnosis"]
    assert got["name"] == dx.name and got["pathway"] == dx.pathway
    assert got["stage"]["tnm"] == dx.stage.tnm and got["stage"]["group"] == dx.stage.group
    truth = got["true_vs_observed"]
    assert truth["metastases_present"] == dx.metastases_present
    assert truth["metastases_found"] + truth["metastases_hidden"] == truth["metastases_present"]
    present = sum(sum(s.values()) for s in truth["present_by_site_and_state"].values())
    assert present == dx.metastases_present
    assert len(data["treatment"]) == len(result.treatment)
    assert data["outcome"]["death_day"] == pytest.approx(result.death_day)
    assert data["outcome"]["cause_of_death"] == result.cause_of_death
    assert len(data["true_state"]["lesions"]) == len(result.patient.lesions)


def test_csv_is_one_row_per_event_in_time_order(tmp_path: Path) -> None:
    index = find_patient(treated_and_died)
    result = course(1, index)
    code, out, err = invoke("simulate", "--seed", "1", "--patient", str(index), "--format",
                            "csv")
    assert code == 0, err
    assert metastasis.DISCLAIMER in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [float(r["day"]) for r in rows] == sorted(float(r["day"]) for r in rows)
    assert {r["source"] for r in rows} == {"disease", "clinic", "treatment"}
    kinds = {r["kind"] for r in rows if r["source"] == "clinic"}
    assert {"symptom", "scan", "biopsy", "diagnosis", "death"} <= kinds
    diagnosis = next(r for r in rows if r["kind"] == "diagnosis")
    assert diagnosis["label"] == result.diagnosis.name
    assert sum(r["source"] == "treatment" for r in rows) == sum(
        e.day <= result.death_day for e in result.treatment)
    # written to a file, the provenance goes beside it
    target = tmp_path / "story.csv"
    ok("simulate", "--seed", "1", "--patient", str(index), "--format", "csv", "--out",
       str(target))
    assert target.read_text(encoding="utf-8") == out
    provenance = json.loads((tmp_path / "story.provenance.json").read_text(encoding="utf-8"))
    assert provenance["root_seed"] == 1 and provenance["disclaimer"] == metastasis.DISCLAIMER


def test_screening_can_change_the_diagnosis_pathway() -> None:
    def found_by_screening(seed: int) -> bool:
        plain, screened = course(seed, 0), course(seed, 0, screening=True)
        return (plain.diagnosis is not None and plain.diagnosis.pathway == "symptoms"
                and screened.diagnosis is not None and screened.diagnosis.pathway == "screening")

    seed = next((s for s in range(150) if found_by_screening(s)), None)
    assert seed is not None, "no seed in 150 where screening finds the cancer first"
    plain = ok("simulate", "--seed", str(seed))
    screened = ok("simulate", "--seed", str(seed), "--screening")
    assert "clinic, diagnosis: diagnosed after symptoms" in plain
    assert "clinic, screening: " not in plain
    assert "clinic, diagnosis: diagnosed after screening" in screened
    assert re.search(r"clinic, screening: .*cancer found", screened)
    assert "Pathway: a screening round" in screened
    data = json.loads(ok("simulate", "--seed", str(seed), "--screening", "--format", "json"))
    assert data["diagnosis"]["pathway"] == "screening"
    assert data["provenance"]["clinical_course"]["screening"] is True


def _protocol_file(folder: Path, protocols: dict[str, Any], name: str = "p.toml") -> Path:
    path = folder / name
    path.write_text(tomli_w.dumps({"protocols": protocols}), encoding="utf-8")
    return path


def _sourced(value: float) -> dict[str, Any]:
    return {"value": value, "source": SOURCE}


def _osimertinib(cancers: list[str] | None = None) -> dict[str, Any]:
    return {"label": "osimertinib for everyone", "cancers": cancers or ["nsclc"], "steps": [
        {"modality": "targeted", "therapy": "osimertinib", "start_day": _sourced(0),
         "cycles": _sourced(6), "interval_days": _sourced(28)},
    ]}


def test_a_users_protocol_is_followed_and_says_why_a_drug_did_nothing(tmp_path: Path) -> None:
    path = _protocol_file(tmp_path, {"mine": _osimertinib()})
    index = find_patient(
        lambda r: r.diagnosis is not None and "EGFR" not in r.traits.mutations
        and any(e.outcome.startswith("no effect") for e in r.treatment)
        and (r.death_day is None or r.treatment[0].day <= r.death_day),
        cancer="nsclc", protocol_file=str(path), tries=60)
    out = ok("simulate", "--cancer", "nsclc", "--seed", "1", "--patient", str(index),
             "--protocol", str(path))
    assert "Protocol: osimertinib for everyone ('mine' from" in out
    assert "no effect: no EGFR" in out
    assert "Why some drugs did nothing: osimertinib: no EGFR" in out


def test_protocol_name_picks_one_of_several(tmp_path: Path) -> None:
    other = _osimertinib()
    other["label"] = "the other plan"
    path = _protocol_file(tmp_path, {"mine": _osimertinib(), "other": other})
    index = find_patient(lambda r: r.diagnosis is not None, cancer="nsclc",
                         protocol_file=str(path), tries=20)
    out = ok("simulate", "--cancer", "nsclc", "--seed", "1", "--patient", str(index),
             "--protocol", str(path), "--protocol-name", "other")
    assert "Protocol: the other plan ('other' from" in out


def test_untreated_keeps_the_natural_history_story() -> None:
    out = ok("simulate", "--untreated", "--seed", "3")
    assert "untreated natural history over 10 years" in out
    assert "This untreated natural history ends here." in out
    assert "Diagnosis\n" not in out


# ---------------------------------------------------------------- cohort


def test_cohort_reports_stage_metastases_survival_causes_and_writes_the_figure(
    tmp_path: Path,
) -> None:
    figure, target = tmp_path / "survival.png", tmp_path / "cohort.csv"
    code, out, err = invoke("cohort", "--patients", "16", "--seed", "3", "--figure",
                            str(figure), "--out", str(target))
    assert code == 0, err
    assert out.splitlines()[0] == metastasis.DISCLAIMER
    for words in ("Disease: the natural history, untreated", "Share of patients with a growing",
                  "Clinical course: diagnosis, stage, treatment and survival",
                  "Stage at diagnosis", "Metastases at diagnosis (distant, any size, true "
                  "state)", "Survival from diagnosis by summary stage (Kaplan-Meier, 95 % CI)",
                  "Causes of death", "alive at the end of follow-up"):
        assert words in out, words
    # the clinical results first, the untreated natural history after them
    assert out.index("Clinical course: diagnosis") < out.index("Survival beside registry") \
        < out.index("Disease: the natural history, untreated") \
        < out.index("Share of patients with a growing")
    assert "16/16" in err  # both progress bars ran to the end
    data = figure.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000
    # the clinical table beside the disease files, one row per patient, as the API has it
    clinical = tmp_path / "cohort.clinical.csv"
    rows = list(csv.DictReader(clinical.open(encoding="utf-8")))
    model, knowledge, treatments = _knowledge("colorectal")
    api = run_clinical_cohort(model, knowledge, treatments, 16, 3, YEARS)
    assert len(rows) == 16
    assert [r["stage_group"] for r in rows] == [
        "" if v is None else v for v in api.patients["stage_group"]]
    assert json.loads((tmp_path / "cohort.clinical.provenance.json").read_text())[
        "root_seed"] == 3
    assert target.exists()


def test_cohort_json_has_the_clinical_summary_of_the_api() -> None:
    from metastasis.cli.clinical_report import clinical_summary

    data = json.loads(ok("cohort", "--patients", "8", "--seed", "2", "--format", "json"))
    model, knowledge, treatments = _knowledge("colorectal")
    expected = clinical_summary(run_clinical_cohort(
        model, knowledge, treatments, 8, 2, YEARS, Arm(years_after_diagnosis=FOLLOW_UP_YEARS)))
    got = data["clinical"]
    for key in ("diagnosed", "summary_stage", "stage_group", "metastases_at_diagnosis",
                "causes_of_death", "pathway"):
        assert got[key] == expected[key], key
    assert got["survival_by_stage"].keys() == expected["survival_by_stage"].keys()


@pytest.mark.slow
def test_cohort_sets_its_survival_beside_the_registries() -> None:
    """Every survival figure the report prints is set beside the registry figures of its
    type, with verdicts that agree with the published range, and a plain sentence; the
    JSON carries the same checks.  Screened patients get no comparison, and a sentence why."""
    from metastasis.calibration.registry import survival_targets

    targets = survival_targets("colorectal")
    assert len(targets) >= 8  # 1- and 5-year survival by stage, the median of stage IV
    out = ok("cohort", "--patients", "24", "--seed", "5")
    assert "Survival beside registry figures (net survival, standard care)" in out
    for target in targets:
        assert target.label in out, target.label
    assert "registry survival figures met" in out
    data = json.loads(ok("cohort", "--patients", "24", "--seed", "5", "--format", "json"))
    registry = data["clinical"]["registry_survival"]
    assert registry["compared"] is True
    assert [c["label"] for c in registry["checks"]] == [t.label for t in targets]
    for check in registry["checks"]:
        low, high = check["acceptable"]
        if check["verdict"] == "meets":
            assert low <= check["estimate"] <= high
        elif check["verdict"] == "misses":
            assert not low <= check["estimate"] <= high
    assert registry["met"] == sum(c["verdict"] == "meets" for c in registry["checks"])
    screened = ok("cohort", "--patients", "6", "--seed", "5", "--screening")
    assert "Registry survival figures are not shown: these patients were screened" in screened
    assert "Survival beside registry figures" not in screened


# ---------------------------------------------------------------- compare

MEASURES = ("diagnosed at a distant stage", "metastases present at diagnosis",
            "died of cancer within the horizon", "restricted mean lifetime from onset (years)")


def test_compare_prints_the_four_measures_with_intervals_and_explanations() -> None:
    out = ok("compare", "--patients", "6", "--seed", "2", "--arm-a", "no screening",
             "--arm-b", "screening")
    assert out.splitlines()[0] == metastasis.DISCLAIMER
    for measure in MEASURES:
        assert re.search(rf"{re.escape(measure)}\s+│.*│.*│.*│.* to ", out), measure
    assert "Common random numbers" in out and "lead-time bias" in out
    assert "Arm B (screening): screening: colonoscopy" in out


def test_compare_json_is_the_apis_paired_difference() -> None:
    data = json.loads(ok("compare", "--patients", "6", "--seed", "2", "--format", "json"))
    model, knowledge, treatments = _knowledge("colorectal")
    a = run_clinical_cohort(model, knowledge, treatments, 6, 2, YEARS, Arm("a", False))
    b = run_clinical_cohort(model, knowledge, treatments, 6, 2, YEARS, Arm("b", True))
    expected = compare(a, b)
    assert [d["measure"] for d in data["differences"]] == list(MEASURES)
    for got, want in zip(data["differences"], expected, strict=True):
        assert got["difference"] == pytest.approx(want.difference)
        assert got["arm_a"] == pytest.approx(want.arm_a)


def test_the_same_arm_twice_differs_by_exactly_zero() -> None:
    data = json.loads(ok("compare", "--patients", "6", "--seed", "4", "--arm-a", "screening",
                         "--arm-b", "screening", "--format", "json"))
    for d in data["differences"]:
        assert d["difference"] == 0.0 and d["ci_low"] == 0.0 and d["ci_high"] == 0.0, d
        assert d["arm_a"] == d["arm_b"]


def test_compare_arms_can_name_protocols_of_a_file(tmp_path: Path) -> None:
    path = _protocol_file(tmp_path, {"mine": _osimertinib()})
    data = json.loads(ok("compare", "--cancer", "nsclc", "--patients", "3", "--seed", "1",
                         "--protocol", str(path), "--arm-a", "no screening", "--arm-b",
                         "screening + mine", "--format", "json"))
    assert data["arms"]["b"]["screening"] is True
    assert "osimertinib for everyone" in data["arms"]["b"]["description"]


# ---------------------------------------------------------------- bad input


def _base_protocol() -> dict[str, Any]:
    return {"label": "my plan", "cancers": ["colorectal"], "steps": [
        {"modality": "surgery", "therapy": "resection", "start_day": _sourced(0),
         "primary": True, "regional_nodes": True},
        {"modality": "chemotherapy", "therapy": "folfox", "start_day": _sourced(42),
         "cycles": _sourced(6), "interval_days": _sourced(14)},
    ]}


def _edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    protocol = _base_protocol()
    change(protocol)
    return protocol


RADIATION = {"modality": "radiation", "therapy": "palliative_bone_radiotherapy",
             "start_day": _sourced(200), "sites": ["bone"], "dose_gy": _sourced(-10),
             "fractions": _sourced(5)}
SECOND_COURSE = {"modality": "chemotherapy", "therapy": "folfox", "start_day": _sourced(70),
                 "cycles": _sourced(4), "interval_days": _sourced(14)}

PROTOCOL_CASES = {
    "unknown modality": (
        lambda p: p["steps"][1].update(modality="laser"),
        ("protocols.mine.steps.1.modality", "laser", "allowed", "chemotherapy", "surgery")),
    "unknown drug": (
        lambda p: p["steps"][1].update(therapy="aspirin"),
        ("protocols.mine.steps.1.therapy", "aspirin", "allowed", "folfox")),
    "negative cycle count": (
        lambda p: p["steps"][1].update(cycles=_sourced(-2)),
        ("protocols.mine.steps.1.", "cycles", "-2", "allowed", "whole number")),
    "negative dose": (
        lambda p: p["steps"].append(dict(RADIATION)),
        ("protocols.mine.steps.2.", "dose_gy", "-10", "allowed")),
    "overlapping schedules": (
        lambda p: p["steps"].append(dict(SECOND_COURSE)),
        ("protocols.mine.steps.2.start_day", "70", "allowed", "overlap")),
    "interval of zero": (
        lambda p: p["steps"][1].update(interval_days=_sourced(0)),
        ("protocols.mine.steps.1.", "interval_days", "0", "allowed")),
    "protocol for another cancer": (
        lambda p: p.update(cancers=["nsclc"]),
        ("protocols.mine.cancers", "colorectal", "allowed", "nsclc")),
}


# A step's field is named by its path in the file; pydantic may add the step's modality to it
# ("steps.1.chemotherapy.cycles"), so the cases ask for the step and the field separately.


def _assert_one_clear_message(code: int, out: str, err: str, expect: tuple[str, ...]) -> None:
    assert code == USAGE_ERROR, f"exit {code}: {err}{out}"
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("metastasis: error: ")
    for word in expect:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"


def test_the_base_protocol_is_good(tmp_path: Path) -> None:
    """Guard for the cases below: unedited, the protocol file loads and runs."""
    path = _protocol_file(tmp_path, {"mine": _base_protocol()})
    out = ok("simulate", "--seed", "1", "--protocol", str(path))
    assert "Protocol: my plan ('mine' from" in out


@pytest.mark.parametrize("case", list(PROTOCOL_CASES), ids=str)
@pytest.mark.parametrize("command", ["simulate", "cohort", "compare"])
def test_bad_protocol_file(tmp_path: Path, case: str, command: str) -> None:
    change, expect = PROTOCOL_CASES[case]
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    path = _protocol_file(inputs, {"mine": _edit(change)})
    args = {
        "simulate": ["simulate", "--seed", "1", "--format", "json", "--out",
                     str(outputs / "r.json")],
        "cohort": ["cohort", "--patients", "2", "--seed", "1", "--out",
                   str(outputs / "c.parquet"), "--figure", str(outputs / "s.png")],
        "compare": ["compare", "--patients", "2", "--seed", "1", "--arm-b", "mine"],
    }[command]
    code, out, err = invoke(*args, "--protocol", str(path))
    _assert_one_clear_message(code, out, err, expect)
    assert list(outputs.iterdir()) == []


def _clinical_file(folder: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    data = load_clinical().model_dump(mode="json", exclude_none=True)
    change(data)
    path = folder / "clinical.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def test_screening_interval_of_zero_in_a_clinical_file(tmp_path: Path) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    good = _clinical_file(inputs, lambda data: None)
    assert load_clinical(good) == load_clinical()  # the edit below is the only fault
    path = _clinical_file(
        inputs, lambda d: d["screening"]["colonoscopy"]["interval_years"].update(value=0))
    for args in (["simulate", "--seed", "1", "--screening", "--format", "json", "--out",
                  str(outputs / "r.json")],
                 ["cohort", "--patients", "2", "--seed", "1", "--out", str(outputs / "c.csv"),
                  "--figure", str(outputs / "s.png")]):
        code, out, err = invoke(*args, "--clinical", str(path))
        _assert_one_clear_message(code, out, err, (
            "screening.colonoscopy.interval_years", "0", "allowed"))
    assert list(outputs.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["simulate", "--protocol-name", "x"], ("--protocol-name", "x", "--protocol FILE")),
        (["simulate", "--untreated", "--screening"], ("--screening", "--untreated")),
        (["cohort", "--untreated", "--figure", "s.png"], ("--figure", "--untreated")),
        (["cohort", "--figure", "survival.jpg"], ("--figure", "survival.jpg", ".png")),
        (["cohort", "--figure", "missing/s.png"], ("--figure", "missing", "folder")),
        (["compare", "--arm-b", "chemo"], ("--arm-b", "chemo", "no screening", "screening")),
        (["compare", "--arm-a", "screening + screening"], ("--arm-a", "screening + screening")),
        (["compare", "--patients", "0"], ("patients", "0", "from 1 to 1000000000")),
        (["compare", "--format", "csv"], ("--format", "csv", "text, json")),
        (["simulate", "--protocol", "nope.toml"], ("--protocol file", "nope.toml", "readable")),
        (["simulate", "--clinical", "nope.toml"], ("--clinical file", "nope.toml")),
        (["simulate", "--treatments", "nope.toml"], ("--treatments file", "nope.toml")),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_clinical_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              args: list[str], expect: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(*args, "--seed", "1")
    _assert_one_clear_message(code, out, err, expect)
    assert list(tmp_path.iterdir()) == []


def test_several_protocols_need_a_name(tmp_path: Path) -> None:
    path = _protocol_file(tmp_path, {"mine": _base_protocol(), "yours": _base_protocol()})
    code, out, err = invoke("simulate", "--seed", "1", "--protocol", str(path))
    _assert_one_clear_message(code, out, err, ("--protocol-name", "mine, yours"))
    code, out, err = invoke("simulate", "--seed", "1", "--protocol", str(path),
                            "--protocol-name", "ours")
    _assert_one_clear_message(code, out, err, ("--protocol-name", "ours", "mine, yours"))


def _command() -> list[str]:
    script = shutil.which("metastasis") or shutil.which(
        "metastasis", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "metastasis.cli.app"]


def test_installed_command_refuses_a_protocol_for_another_cancer(tmp_path: Path) -> None:
    path = _protocol_file(tmp_path, {"mine": _osimertinib()})
    target = tmp_path / "story.json"
    done = subprocess.run(
        [*_command(), "simulate", "--cancer", "colorectal", "--seed", "1", "--protocol",
         str(path), "--format", "json", "--out", str(target)],
        capture_output=True, text=True, timeout=120, check=False)
    _assert_one_clear_message(done.returncode, done.stdout, done.stderr,
                              ("protocols.mine.cancers", "colorectal", "nsclc"))
    assert not target.exists()


def test_an_undiagnosed_patient_has_nulls_not_nan_in_json() -> None:
    """Three years is too short for a diagnosis: the missing values are null (JSON has no
    NaN), and the story says the cancer was never diagnosed."""
    text = ok("simulate", "--seed", "2", "--years", "3", "--format", "json")
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["diagnosis"] is None and data["treatment"] == []
    assert data["outcome"]["survival_from_diagnosis_days"] is None
    assert data["outcome"]["censored"] is True
    assert data["outcome"]["lifetime_days"] == pytest.approx(3 * 365.25)
    story = ok("simulate", "--seed", "2", "--years", "3")
    assert "Never diagnosed within the horizon" in story
    assert "No treatment: the cancer was never diagnosed." in story


def test_the_story_opens_with_a_short_summary(tmp_path: Path) -> None:
    """`simulate` opens with three lines (what was found when, what was done, how it ended)
    before a timeline of hundreds of lines, in the terminal and in the text file alike."""
    from metastasis.clinical.course import simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments

    course = simulate_course(load_model("colorectal"), load_clinical(), load_treatments(),
                             6, 0, 20.0, Arm(years_after_diagnosis=FOLLOW_UP_YEARS))
    assert course.diagnosis is not None
    shown = CliRunner().invoke(app, ["simulate", "--cancer", "colorectal", "--seed", "6"])
    assert shown.exit_code == 0, shown.output
    out = tmp_path / "story.txt"
    written = CliRunner().invoke(app, ["simulate", "--cancer", "colorectal", "--seed", "6",
                                       "--out", str(out)])
    assert written.exit_code == 0, written.output
    for text in (shown.stdout, out.read_text(encoding="utf-8")):
        flat = re.sub(r"\s+", " ", text)
        short = flat[flat.index("In short"):flat.index("Timeline")]
        assert f"Diagnosed on {numbers.day(course.diagnosis.day).lower()}" in short
        assert course.diagnosis.name in short
        assert short.count(f"stage {course.diagnosis.stage.group} ") == 1, short  # said once
        assert f"Treatment: {course.protocol}" in short
        if course.death_day is not None:
            assert f"Died on {numbers.day(course.death_day).lower()}" in short
        else:
            assert f"Alive {FOLLOW_UP_YEARS:g} years after diagnosis" in short
