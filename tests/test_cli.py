"""The ``metastasis`` command: the story, the cohort summary, the model's self-description.

Each test drives the command through typer's CliRunner and checks what a reader would check:
the story follows the patient the API simulates, the numbers in it are that patient's
numbers, output is reproducible from the printed seed, and exported models load back.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import metastasis
from metastasis import api
from metastasis.api import load_model, run_patient
from metastasis.cli import model_view, narrative
from metastasis.cli.app import app
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.results import numbers
from metastasis.results.patient import PatientResult

SEED = 7
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = invoke(*args)
    assert code == 0, f"exit {code}: {err}{out}"
    return out


def timeline(out: str) -> list[str]:
    """The timeline lines of a text story ('Day N (Y y) · step S, ...')."""
    stamp = re.compile(r"^Day [\d,]+ \([\d.]+ y\) · step \d")
    return [line for line in out.splitlines() if stamp.match(line)]


def find_seed(predicate: Callable[[PatientResult], bool], years: float) -> int:
    """The first root seed whose patient 0 shows what a test needs (the search is seeded,
    so the test is deterministic, and it survives recalibration of the default model)."""
    model = load_model("colorectal")
    for seed in range(300):
        if predicate(run_patient(model, seed, 0, years)):
            return seed
    raise AssertionError("no patient in 300 seeds shows the case under test")


# ---------------------------------------------------------------- number formatting


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0"), (42, "42"), (4132, "4,132"), (99_999, "99,999"),
                    (124_804_592, "1.2e8"), (2.1e9, "2.1e9"), (1e12, "1.0e12")],
)
def test_counts_are_exact_when_small_and_compact_when_large(n: float, text: str) -> None:
    assert numbers.count(n) == text


def test_shares_never_round_to_a_misleading_zero_or_hundred() -> None:
    assert numbers.share(124_062_038, 124_804_592) == "99.4 %"
    assert numbers.share(999_999, 1_000_000) == "99.9999 %"
    assert numbers.share(1, 10_000_000) == "0.00001 %"
    assert numbers.share(0, 10) == "0 %"
    assert numbers.share(10, 10) == "100 %"
    assert numbers.share(1, 0) == "n/a"
    assert numbers.percent(100.00000000000001) == "100 %"
    assert numbers.percent(1e-6) == "0.000001 %"


def test_volumes_read_as_people_write_them() -> None:
    assert numbers.volume(1.9e11, 1e9) == "1.9e11 cells, about 190 cm³"
    assert numbers.volume(2.0e9, 1e9) == "2.0e9 cells, about 2 cm³"
    assert numbers.volume(1e6, 1e9) == "1.0e6 cells, about 1 mm³"
    assert numbers.volume(50, 1e9) == "50 cells, microscopic"


def test_days_have_thousands_separators() -> None:
    assert numbers.day(1204.7) == "Day 1,204"


# ---------------------------------------------------------------- simulate: the story


def _seed_with_a_founder(years: float) -> int:
    """The first seed whose patient 0 grows a micrometastasis within ``years`` (so the story
    has every step); chosen at run time so recalibration cannot silently empty the test."""
    model = load_model("colorectal")
    days = years * api.DAYS_PER_YEAR

    def grows(seed: int) -> bool:
        lesions = run_patient(model, seed, 0, years).lesions
        return bool((lesions.micrometastasis[1:] <= days).any())

    return next(s for s in range(SEED, SEED + 400) if grows(s))


def test_story_has_the_disclaimer_steps_spread_accounting_and_end() -> None:
    out = ok("simulate", "--untreated", "--cancer", "colorectal", "--years", "10", "--seed",
             str(_seed_with_a_founder(10.0)))
    assert out.splitlines()[0] == metastasis.DISCLAIMER
    for heading in ("Timeline", "Where it spread", "Cell accounting", "End"):
        assert heading in out.splitlines()
    steps = {int(m) for m in re.findall(r"· step (\d), ", out)}
    assert {1, 2, 3, 5, 6} <= steps
    assert "step 3, entering blood or lymph" in out
    assert "by the portal blood (first capillary bed: the liver)" in out
    assert "by the lymph towards the regional lymph nodes" in out
    assert "across the peritoneal cavity" in out


def test_story_numbers_are_the_patients_numbers() -> None:
    out = ok("simulate", "--untreated", "--seed", str(SEED), "--years", "10")
    patient = run_patient(load_model("colorectal"), SEED, 0, 10.0)
    totals = patient.accounting.totals()
    assert f"Of {numbers.count(totals['shed'])} cells shed" in out
    share = numbers.share(totals["died_in_circulation"], totals["shed"])
    assert f"{share} died in circulation" in out
    assert f"{numbers.count(totals['outgrowth'])} founded growing metastases" in out
    # every timeline line is one of the patient's events at its day
    days = {numbers.day(e.time) for e in patient.events()}
    for line in timeline(out):
        assert line.split(" (")[0] in days


def test_story_is_reproducible_and_depends_on_seed_and_patient() -> None:
    a = ok("simulate", "--seed", "11", "--years", "12")
    b = ok("simulate", "--seed", "11", "--years", "12")
    c = ok("simulate", "--seed", "12", "--years", "12")
    d = ok("simulate", "--seed", "11", "--years", "12", "--patient", "3")
    assert a == b
    assert timeline(a) != timeline(c)
    assert timeline(a) != timeline(d)
    assert "patient index 3" in d


def test_a_run_without_seed_draws_one_prints_it_and_can_be_rerun() -> None:
    out = ok("simulate", "--years", "8")
    drawn = re.search(r"drew root seed (\d+)", out)
    assert drawn, out
    again = ok("simulate", "--years", "8", "--seed", drawn.group(1))
    assert timeline(again) == timeline(out)


@pytest.mark.slow
def test_milestones_by_default_and_every_event_on_request() -> None:
    seed = find_seed(lambda p: len(p.lesions) > 20, 20.0)
    patient = run_patient(load_model("colorectal"), seed, 0, 20.0)
    told = [e for e in patient.events()
            if e.kind not in narrative.TOTAL_KINDS | narrative.END_KINDS]
    short = ok("simulate", "--untreated", "--seed", str(seed), "--years", "20")
    full = ok("simulate", "--untreated", "--seed", str(seed), "--years", "20", "--all-events")
    assert len(timeline(full)) == len(told)
    assert len(timeline(short)) < len(told)
    hidden = re.search(r"… and ([\d,]+) more events", short)
    assert hidden and int(hidden.group(1).replace(",", "")) == len(told) - len(timeline(short))


def test_a_patient_with_distant_spread_is_named_after_the_primary() -> None:
    seed = find_seed(lambda p: p.distant_rows(growing_by=p.end_time).size > 0, 20.0)
    out = ok("simulate", "--untreated", "--seed", str(seed), "--years", "20")
    assert re.search(r"Diagnosis name: metastatic colon cancer \([^)]+\)", out)
    assert "liver cancer" not in out


@pytest.mark.slow
def test_spread_from_a_metastasis_names_the_parent_lesion() -> None:
    seed = find_seed(lambda p: bool((p.lesions.parent > 0).any()), 20.0)
    out = ok("simulate", "--untreated", "--seed", str(seed), "--years", "20", "--all-events")
    assert re.search(r"a cell from metastasis #\d+ in the [a-z ]+, carried by", out)
    assert "a cell from the primary (colon and rectum), carried by" in out


def test_a_lethal_burden_ends_the_story() -> None:
    seed = find_seed(lambda p: p.end_reason == "lethal_burden", 40.0)
    out = ok("simulate", "--untreated", "--seed", str(seed), "--years", "40")
    assert "a burden the model treats as lethal" in out.split("\nEnd\n")[1]


def test_the_horizon_ends_a_story_that_is_not_lethal() -> None:
    out = ok("simulate", "--untreated", "--seed", "1", "--years", "2")
    assert "the simulated horizon of 2.0 y is reached" in out.split("\nEnd\n")[1]


def test_a_breast_primary_sheds_into_the_caval_blood_towards_the_lungs() -> None:
    out = ok("simulate", "--untreated", "--cancer", "breast", "--seed", "1", "--years", "15")
    assert "by the caval blood (first capillary bed: the lungs)" in out
    assert "portal blood" not in out.split("Where it spread")[0].split("step 3")[1][:300]


def test_json_output_is_the_patient_with_disclaimer_and_provenance() -> None:
    out = ok("simulate", "--untreated", "--seed", str(SEED), "--years", "10", "--format", "json")
    data = json.loads(out)
    assert data["disclaimer"] == metastasis.DISCLAIMER
    assert data["provenance"]["root_seed"] == SEED
    assert data["provenance"]["seed_drawn"] is False
    patient = run_patient(load_model("colorectal"), SEED, 0, 10.0)
    assert len(data["events"]) == len(patient.events())
    assert data["accounting"]["totals"] == patient.accounting.totals()


def test_json_records_a_drawn_seed() -> None:
    code, out, err = invoke("simulate", "--untreated", "--years", "5", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["provenance"]["seed_drawn"] is True
    assert f"drew root seed {data['provenance']['root_seed']}" in err


def test_csv_output_is_the_event_log() -> None:
    code, out, err = invoke("simulate", "--untreated", "--seed", str(SEED), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    patient = run_patient(load_model("colorectal"), SEED, 0, 10.0)
    assert len(rows) == len(patient.events())
    assert {"time", "step", "kind", "site", "lesion", "parent"} <= set(rows[0])
    assert metastasis.DISCLAIMER in err


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_out_writes_a_file_and_prints_nothing_on_stdout(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"story.{'txt' if fmt == 'text' else fmt}"
    code, out, err = invoke("simulate", "--untreated", "--seed", "3", "--format", fmt, "--out",
                            str(target))
    assert code == 0, err
    assert out == ""
    text = target.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(text)["disclaimer"] == metastasis.DISCLAIMER
    elif fmt == "text":
        assert text.splitlines()[0] == metastasis.DISCLAIMER
        assert "Cell accounting" in text
    else:
        assert text.startswith("time,step")
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_long_output_names(tmp_path: Path) -> None:
    """A name as long as the file system allows is written (its temporary name is short);
    a longer one is refused before any work, in one line, with nothing left behind."""
    longest = tmp_path / ("x" * 250 + ".toml")
    code, _out, err = invoke("model", "export", "--out", str(longest))
    assert code == 0, err
    assert longest.read_text(encoding="utf-8").strip()
    for args in (("model", "export"), ("cohort", "--untreated", "--patients", "2", "--seed", "1"),
                 ("simulate", "--untreated", "--seed", "1")):
        too_long = tmp_path / ("y" * 300 + ".json")
        code, _out, err = invoke(*args, "--out", str(too_long))
        assert code == 2, (args, err)
        assert "at most 255 bytes" in err or "File name too long" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [longest.name]


# ---------------------------------------------------------------- cohort


def test_cohort_prints_sites_timing_sites_per_patient_and_accounting(tmp_path: Path) -> None:
    target = tmp_path / "cohort.parquet"
    code, out, err = invoke("cohort", "--cancer", "colorectal", "--patients", "60", "--seed",
                            "1", "--years", "12", "--out", str(target))
    assert code == 0, err
    assert out.splitlines()[0] == metastasis.DISCLAIMER
    assert "Cohort: 60 virtual patients with colorectal cancer" in out
    assert "Share of patients with a growing metastasis, by site" in out
    assert re.search(r"regional lymph nodes\s+│\s+\d+ │\s+[\d.]+ % │\s+[\d.]+ % – [\d.]+ %", out)
    assert "Time to the first distant metastasis" in out
    assert "Distant sites per patient" in out
    assert "died in circulation" in out
    assert "60/60" in err  # the progress bar ran to the end
    from metastasis.results.export import read_cohort

    back = read_cohort(target)
    assert len(back.patients) == 60
    assert back.provenance["root_seed"] == 1


def test_cohort_json_summary_matches_the_api() -> None:
    from metastasis.cohort import run_cohort

    out = ok("cohort", "--patients", "40", "--seed", "5", "--years", "10", "--format", "json")
    data = json.loads(out)
    assert data["disclaimer"] == metastasis.DISCLAIMER
    expected = run_cohort(load_model("colorectal"), 40, 5, 10.0).summary()
    assert data["sites"] == expected["sites"]
    assert data["first_distant_metastasis"] == expected["first_distant_metastasis"]
    # the clinical course of the same patients sits beside the disease summary
    clinical = data["clinical"]
    assert clinical["patients"] == 40
    assert sum(clinical["summary_stage"].values()) == clinical["diagnosed"]


def test_cohort_without_seed_prints_the_drawn_seed() -> None:
    out = ok("cohort", "--untreated", "--patients", "5", "--years", "3")
    assert re.search(r"drew root seed \d+", out)


# ---------------------------------------------------------------- model list / show / export


def test_model_list_names_every_cancer_type() -> None:
    out = ok("model", "list")
    assert out.splitlines()[0] == metastasis.DISCLAIMER
    for key in load_knowledge().cancers:
        assert key in out


def _sourced(node: object, path: str = "") -> dict[str, tuple[float, str]]:
    found: dict[str, tuple[float, str]] = {}
    if isinstance(node, dict):
        if set(node) == {"value", "source"}:
            return {path: (node["value"], node["source"])}
        for key, child in node.items():
            found.update(_sourced(child, f"{path}.{key}" if path else key))
    return found


def test_model_show_prints_every_parameter_with_its_source() -> None:
    model = load_model("colorectal")
    expected = _sourced({
        "circulation": model.knowledge["circulation"],
        "sites": model.knowledge["sites"],
        "cancers": {"colorectal": model.knowledge["cancers"]["colorectal"]},
    })
    rows = {r.path: r for r in model_view.parameter_rows(model)}
    assert set(expected) <= set(rows)
    for path, (value, source) in expected.items():
        assert rows[path].source == source
        assert float(rows[path].value) == pytest.approx(value, rel=1e-5)
    out = ok("model", "show", "colorectal")
    assert out.splitlines()[0] == metastasis.DISCLAIMER
    doubling = model.knowledge["cancers"]["colorectal"]["growth"]["doubling_time_days"]
    assert re.search(rf"cancers\.colorectal\.growth\.doubling_time_days\s+│\s+"
                     rf"{doubling['value']:g} │ {re.escape(doubling['source'][:40])}", out)
    assert "cancers.breast" not in out


def test_model_show_draws_the_organ_graph_as_text() -> None:
    out = ok("model", "show", "colorectal")
    assert re.search(r"portal vein -> liver: from colon and rectum\*", out)
    assert re.search(r"venae cavae -> right heart -> lungs: from liver", out)
    assert "regional lymph nodes -> distant lymph nodes" in out
    assert "distant lymph nodes -> thoracic duct -> venae cavae -> lungs" in out
    assert re.search(r"colon and rectum\*.* -> peritoneum", out)
    assert re.search(r"kidney: 19\.0 %", out)


def test_model_show_draws_the_organ_graph_as_mermaid() -> None:
    out = ok("model", "show", "breast", "--graph", "mermaid")
    mermaid = out.split("```mermaid\n")[1].split("```")[0]
    assert mermaid.startswith("flowchart LR")
    assert "s_breast --> VC" in mermaid
    assert "PV --> s_liver" in mermaid and "VC --> s_lungs" in mermaid
    assert "s_regional_lymph_nodes -.->|lymph| s_distant_lymph_nodes" in mermaid
    assert "TD -.-> VC" in mermaid
    assert "class s_breast primary" in mermaid


def test_model_show_reports_the_closed_form_journey() -> None:
    model = load_model("colorectal")
    routes, rows = model_view.journey_rows(model)
    assert sum(share for share, _ in routes.values()) == pytest.approx(1.0)
    shed_arrest = sum(r.arrest for r in rows)
    died = sum(share * d for share, d in routes.values())
    assert shed_arrest + died == pytest.approx(1.0)
    assert rows[0].arrest >= rows[-1].arrest


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_export_round_trips_through_model(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"kb{suffix}"
    code, _, err = invoke("model", "export", "--out", str(target))
    assert code == 0, err
    original, back = load_knowledge(), load_knowledge(target)
    for part in ("circulation", "sites", "cancers"):
        assert getattr(back, part) == getattr(original, part)
    if suffix == ".toml":
        assert back == original
        assert metastasis.DISCLAIMER in target.read_text(encoding="utf-8")
        assert "cancer_defaults" not in tomllib.loads(target.read_text(encoding="utf-8"))
    else:
        assert metastasis.DISCLAIMER in json.loads(target.read_text())["description"]
    # the same patient from the exported model tells the same story
    default = ok("simulate", "--seed", "9", "--years", "15")
    loaded = ok("simulate", "--seed", "9", "--years", "15", "--model", str(target))
    assert timeline(loaded) == timeline(default)


def test_export_one_cancer_and_load_a_modified_copy(tmp_path: Path) -> None:
    target = tmp_path / "breast.toml"
    ok("model", "export", "--cancer", "breast", "--out", str(target))
    data = tomllib.loads(target.read_text(encoding="utf-8"))
    assert list(data["cancers"]) == ["breast"]
    text = target.read_text(encoding="utf-8")
    edited = re.sub(r"(\[cancers\.breast\.growth\]\ndoubling_time_days = \{ value = )[\d.]+",
                    r"\g<1>55.0", text)
    assert edited != text
    target.write_text(edited, encoding="utf-8")
    out = ok("model", "show", "breast", "--model", str(target))
    assert re.search(r"cancers\.breast\.growth\.doubling_time_days\s+│\s+55 │", out)
    fast = ok("simulate", "--cancer", "breast", "--seed", "2", "--model", str(target))
    slow = ok("simulate", "--cancer", "breast", "--seed", "2")
    assert timeline(fast) != timeline(slow)


def test_cohort_can_leave_the_lesions_out_of_the_file(tmp_path: Path) -> None:
    from metastasis.results.export import read_cohort

    with_lesions, without = tmp_path / "a.parquet", tmp_path / "b.parquet"
    ok("cohort", "--untreated", "--patients", "20", "--seed", "4", "--years", "12", "--out",
       str(with_lesions))
    ok("cohort", "--untreated", "--patients", "20", "--seed", "4", "--years", "12", "--out",
       str(without), "--no-lesions")
    a, b = read_cohort(with_lesions), read_cohort(without)
    assert len(a.lesions) > 0
    assert len(b.lesions) == 0
    assert a.patients.equals(b.patients)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_cohort_out_works_for_a_cohort_run_in_several_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """Cohorts above BLOCK_PATIENTS are built from several blocks; shrink the block so the
    case costs a few patients instead of thousands."""
    from metastasis import cohort as cohort_module
    from metastasis.results.export import read_cohort

    monkeypatch.setattr(cohort_module, "BLOCK_PATIENTS", 4)
    target = tmp_path / f"cohort{suffix}"
    ok("cohort", "--untreated", "--patients", "10", "--seed", "2", "--years", "12", "--out",
       str(target))
    assert len(read_cohort(target).patients) == 10


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"metastasis {metastasis.__version__}"


def test_help_loads_no_engine() -> None:
    """``metastasis --help`` answers without importing the engine, numba, pandas or SciPy
    (they take seconds; the commands load them on first use): checked in a fresh
    interpreter by what is in ``sys.modules`` after the help is printed, not by a clock
    (a module named for :func:`metastasis.lazy.lazy_module` sits there unexecuted, as a
    ``_LazyModule``, until first used)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from metastasis.cli.app import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ('numba', 'pandas', 'scipy', 'metastasis.engine.process', 'metastasis.api')\n"
        "loaded = [m for m in heavy if m in sys.modules\n"
        "          and type(sys.modules[m]).__name__ != '_LazyModule']\n"
        "print(sorted(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize(("args", "field"), [
    (("cohort", "--untreated", "--patients", "9" * 400), "patients"),
    (("cohort", "--untreated", "--patients", str(10**9 + 1)), "patients"),
    (("cohort", "--untreated", "--patients", "1_000"), "patients"),
    (("cohort", "--untreated", "--patients", "١٢"), "patients"),
    (("cohort", "--untreated", "--patients", "１２"), "patients"),
    (("cohort", "--untreated", "--patients", " 3 "), "patients"),
    (("simulate", "--untreated", "--seed", str(2**63)), "seed"),
    (("simulate", "--untreated", "--seed", str(10**99)), "seed"),
])
def test_odd_and_huge_numbers_are_refused_in_one_line(args: tuple[str, ...], field: str) -> None:
    """ASCII digits only, within the documented limits (metastasis.limits: a billion
    patients, seeds up to 2**63 - 1 as in the web API); one line, exit 2, no traceback."""
    code, _out, err = invoke(*args)
    assert code == 2, err
    assert err.startswith(f"metastasis: error: {field}: got "), err
    assert len(err.strip().splitlines()) == 1 and len(err) < 300, err
