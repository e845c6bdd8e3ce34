"""Bad input: one clear message, exit status 2, no traceback, nothing written.

Every kind of bad input the issue lists is fed to the command, through typer's CliRunner
and, for a representative set, through a real subprocess running the installed
``metastasis`` script.  Each case states what the message must name (field, value, what is
allowed) and every run is given an ``--out`` path that must still not exist afterwards.
Model files are made by exporting the default model and breaking one value, so the cases
follow the schema as it evolves.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from metastasis.cli.app import USAGE_ERROR, app
from metastasis.knowledge.loader import load as load_knowledge

runner = CliRunner()

Mutation = Callable[[dict[str, Any]], None]


def _default_data() -> dict[str, Any]:
    return load_knowledge().model_dump(mode="json", exclude_none=True)


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return mutate


def _write_model(folder: Path, mutate: Mutation, suffix: str = ".toml") -> Path:
    data = copy.deepcopy(_default_data())
    mutate(data)
    path = folder / f"model{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@dataclass(frozen=True)
class ModelCase:
    """A model file with one bad value, and the words the message must contain."""

    name: str
    mutate: Mutation
    expect: tuple[str, ...]
    suffix: str = ".toml"


SOURCE = "test: a deliberately bad value"

MODEL_CASES = [
    ModelCase("unknown site in affinity",
              _set("cancers.colorectal.affinity.spleen_x", {"value": 0.5, "source": SOURCE}),
              ("cancers.colorectal.affinity", "spleen_x", "allowed", "liver")),
    ModelCase("unknown primary site", _set("cancers.colorectal.primary_site", "appendix"),
              ("cancers.colorectal.primary_site", "appendix", "allowed", "colon")),
    ModelCase("negative rate", _set("cancers.colorectal.shedding.rate.value", -0.5),
              ("cancers.colorectal.shedding.rate", "-0.5", "allowed", "non-negative")),
    ModelCase("NaN rate", _set("cancers.colorectal.shedding.rate.value", float("nan")),
              ("cancers.colorectal.shedding.rate", "nan", "allowed", "finite")),
    ModelCase("infinite rate", _set("cancers.colorectal.growth.doubling_time_days.value",
                                    float("inf")),
              ("cancers.colorectal.growth.doubling_time_days", "inf", "allowed", "finite")),
    ModelCase("negative infinite rate", _set("cancers.colorectal.shedding.rate.value",
                                             float("-inf")),
              ("cancers.colorectal.shedding.rate", "-inf", "allowed")),
    ModelCase("probability above one", _set("sites.liver.capillary_arrest.value", 1.5),
              ("sites.liver.capillary_arrest", "1.5", "allowed", "[0, 1]")),
    ModelCase("probability below zero",
              _set("cancers.colorectal.colonisation.extravasation.value", -0.1),
              ("cancers.colorectal.colonisation.extravasation", "-0.1", "allowed", "[0, 1]")),
    ModelCase("lymph to an unknown organ", _set("sites.colon.lymph_drainage", "mesentery"),
              ("sites.colon.lymph_drainage", "mesentery", "allowed", "regional_lymph_nodes")),
    ModelCase("cavity to an unknown organ", _set("sites.colon.cavity", "abdomen"),
              ("sites.colon.cavity", "abdomen", "allowed", "peritoneum")),
    ModelCase("text where a number belongs", _set("sites.liver.arterial_share.value", "lots"),
              ("sites.liver.arterial_share", "lots", "allowed")),
    ModelCase("unknown key", _set("circulation.speed_of_light", {"value": 1.0, "source": SOURCE}),
              ("circulation.speed_of_light", "allowed")),
    ModelCase("NaN in JSON", _set("cancers.colorectal.shedding.rate.value", float("nan")),
              ("cancers.colorectal.shedding.rate", "nan", "allowed", "finite"), ".json"),
]


def _run(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def _assert_one_clear_message(code: int, out: str, err: str, expect: tuple[str, ...]) -> None:
    assert code == USAGE_ERROR, f"exit {code}: {err}{out}"
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("metastasis: error: ")
    for word in expect:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("command", ["simulate", "cohort", "show"])
def test_bad_model_file(tmp_path: Path, case: ModelCase, command: str) -> None:
    model = _write_model(tmp_path, case.mutate, case.suffix)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / ("r.parquet" if command == "cohort" else "r.json")
    args = {
        "simulate": ["simulate", "--seed", "1", "--format", "json", "--out", str(target)],
        "cohort": ["cohort", "--patients", "3", "--seed", "1", "--out", str(target)],
        "show": ["model", "show", "colorectal"],
    }[command]
    code, out, err = _run([*args, "--model", str(model)])
    _assert_one_clear_message(code, out, err, case.expect)
    assert list(out_dir.iterdir()) == []


def test_the_bad_model_files_are_really_bad_only_where_intended(tmp_path: Path) -> None:
    """Guard for the cases above: an unmodified export loads, so each failure is the edit."""
    model = _write_model(tmp_path, lambda data: None)
    assert load_knowledge(model) == load_knowledge()
    nan_file = _write_model(tmp_path, MODEL_CASES[3].mutate).read_text(encoding="utf-8")
    assert "rate = { value = nan" in nan_file or "value = nan" in nan_file


def test_malformed_toml(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "x"\n[sites\nliver = 1\n', encoding="utf-8")
    code, out, err = _run(["simulate", "--model", str(bad), "--seed", "1"])
    _assert_one_clear_message(code, out, err, ("model file", "broken.toml", "valid TOML"))


def test_malformed_json(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x", "sites": ', encoding="utf-8")
    code, out, err = _run(["model", "show", "colorectal", "--model", str(bad)])
    _assert_one_clear_message(code, out, err, ("model file", "broken.json", "JSON"))


def test_json_that_is_not_a_table(tmp_path: Path) -> None:
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2, 3]", encoding="utf-8")
    code, out, err = _run(["simulate", "--model", str(bad), "--seed", "1"])
    _assert_one_clear_message(code, out, err, ("model", "list", "allowed"))


def test_missing_model_file(tmp_path: Path) -> None:
    code, out, err = _run(["simulate", "--model", str(tmp_path / "nope.toml"), "--seed", "1"])
    _assert_one_clear_message(code, out, err, ("model file", "nope.toml", "readable"))


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["simulate", "--cancer", "lung"], ("cancer", "'lung'", "allowed", "colorectal",
                                            "nsclc")),
        (["cohort", "--cancer", "Colorectal", "--patients", "2"], ("cancer", "Colorectal",
                                                                   "colorectal")),
        (["simulate", "--years", "0"], ("years", "0.0", "(0, 150]")),
        (["simulate", "--years", "-1"], ("years", "-1.0", "(0, 150]")),
        (["simulate", "--years", "150.5"], ("years", "150.5", "(0, 150]")),
        (["simulate", "--years", "nan"], ("years", "nan", "(0, 150]")),
        (["simulate", "--years", "inf"], ("years", "inf", "(0, 150]")),
        (["cohort", "--years", "200", "--patients", "2"], ("years", "200", "(0, 150]")),
        (["cohort", "--patients", "0"], ("patients", "0", "from 1 to 1000000000")),
        (["cohort", "--patients", "-5"], ("patients", "-5", "from 1 to 1000000000")),
        (["simulate", "--seed", "-1"], ("seed", "-1", "from 0 to 9223372036854775807")),
        (["simulate", "--patient", "-2"], ("patient", "-2", "non-negative")),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_option_values(tmp_path: Path, args: list[str], expect: tuple[str, ...]) -> None:
    target = tmp_path / ("r.parquet" if args[0] == "cohort" else "r.json")
    extra = ["--format", "json"] if args[0] == "simulate" else []
    code, out, err = _run([*args, *extra, "--out", str(target)])
    _assert_one_clear_message(code, out, err, expect)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["cohort", "--patients", "2", "--out", "results.xlsx"], ("--out", "results.xlsx",
                                                                  ".parquet")),
        (["model", "export", "--out", "model.yaml"], ("--out", "model.yaml", ".toml", ".json")),
        (["model", "export", "--cancer", "kidney", "--out", "m.toml"], ("cancer", "kidney",
                                                                        "renal_cell")),
        (["simulate", "--out", "missing_dir/story.txt"], ("--out", "missing_dir", "folder")),
        (["model", "export", "--out", "."], ("--out", "allowed")),
    ],
)
def test_bad_output_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                          expect: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(args)
    _assert_one_clear_message(code, out, err, expect)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["simulate", "--format", "xml"], ("--format", "xml", "text, json, csv")),
        (["cohort", "--format", "csv", "--patients", "2"], ("--format", "csv", "text, json")),
        (["model", "show", "colorectal", "--graph", "png"], ("--graph", "png",
                                                              "text, mermaid")),
        (["simulate", "--years", "ten"], ("years", "ten", "(0, 150]")),
        (["cohort", "--patients", "many"], ("patients", "many", "from 1 to 1000000000")),
        (["cohort", "--patients", "2.5"], ("patients", "2.5", "from 1 to 1000000000")),
        (["simulate", "--seed", "1.5"], ("seed", "1.5", "from 0 to 9223372036854775807")),
    ],
)
def test_unknown_formats_and_unparsable_numbers(
    tmp_path: Path, args: list[str], expect: tuple[str, ...]
) -> None:
    target = tmp_path / "r.json"
    out_option = [] if args[0] == "model" else ["--out", str(target)]
    code, out, err = _run([*args, *out_option])
    _assert_one_clear_message(code, out, err, expect)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["simulate", "--colour", "red"], ["model", "export"], ["model", "show"], ["transmogrify"]],
)
def test_typer_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    """Unknown options and missing arguments are the parser's own errors: also status 2,
    and one line like every other bad input (cli/usage.py), naming the command's help."""
    result = runner.invoke(app, args)
    assert result.exit_code == USAGE_ERROR
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metastasis: error: "), result.stderr
    assert "--help' lists the options" in lines[0]


# ---------------------------------------------------------------- the installed command


def _command() -> list[str]:
    """The installed console script, else the module run by this interpreter."""
    script = shutil.which("metastasis") or shutil.which(
        "metastasis", path=str(Path(sys.executable).parent)
    )
    return [script] if script else [sys.executable, "-m", "metastasis.cli.app"]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["simulate", "--cancer", "liver", "--seed", "1"], ("cancer", "liver", "colorectal")),
        (["simulate", "--years", "151", "--seed", "1"], ("years", "151", "(0, 150]")),
        (["cohort", "--patients", "0", "--seed", "1"], ("patients", "0", "from 1 to 1000000000")),
    ],
)
def test_installed_command_reports_bad_input(
    tmp_path: Path, args: list[str], expect: tuple[str, ...]
) -> None:
    target = tmp_path / ("r.parquet" if args[0] == "cohort" else "r.json")
    extra = ["--format", "json"] if args[0] == "simulate" else []
    done = subprocess.run([*_command(), *args, *extra, "--out", str(target)],
                          capture_output=True, text=True, timeout=120, check=False)
    _assert_one_clear_message(done.returncode, done.stdout, done.stderr, expect)
    assert not target.exists()


def test_installed_command_reports_a_nan_model_file(tmp_path: Path) -> None:
    model = _write_model(tmp_path, _set("cancers.colorectal.shedding.rate.value",
                                        float("nan")))
    target = tmp_path / "story.json"
    done = subprocess.run(
        [*_command(), "simulate", "--model", str(model), "--seed", "1", "--format", "json",
         "--out", str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    _assert_one_clear_message(done.returncode, done.stdout, done.stderr,
                              ("cancers.colorectal.shedding.rate", "nan", "finite"))
    assert not target.exists()


def test_installed_command_runs_when_input_is_good(tmp_path: Path) -> None:
    """The other half of the contract: the same command succeeds and writes its file."""
    target = tmp_path / "story.json"
    done = subprocess.run(
        [*_command(), "simulate", "--seed", "1", "--years", "5", "--format", "json", "--out",
         str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text(encoding="utf-8"))["provenance"]["root_seed"] == 1


@pytest.mark.parametrize("fmt,name", [("text", "o.parquet"), ("json", "o.csv"),
                                      ("csv", "o.json"), ("text", "story")])
def test_simulate_refuses_an_out_whose_suffix_is_not_its_format(tmp_path: Path, fmt: str,
                                                                 name: str) -> None:
    """Issue 10 item 3: a file's content matches its suffix, or the command refuses (before
    any simulation, writing nothing)."""
    code, out, err = _run(["simulate", "--seed", "1", "--format", fmt, "--out",
                           str(tmp_path / name)])
    _assert_one_clear_message(code, out, err, ("--out", name, "a file ending in"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_a_cohort_that_fails_while_writing_leaves_none_of_its_files(
        tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clinical table, its provenance, the survival figure and the cohort's own files
    are one output: a failure while writing the last of them (a full disk, say) leaves none
    of them."""
    from metastasis.results import export

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, {".csv": "_write_csv", ".parquet": "_write_parquet",
                                 ".json": "_records"}[suffix], full_disk)
    code, out, err = _run(["cohort", "--patients", "3", "--seed", "1", "--years", "3",
                           "--out", str(tmp_path / f"r{suffix}"),
                           "--figure", str(tmp_path / "survival.png")])
    assert code == USAGE_ERROR and "Traceback" not in err + out
    errors = [line for line in err.splitlines() if line.startswith("metastasis: error: ")]
    assert len(errors) == 1 and "a writable file" in errors[0], err  # after the progress bars
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,option", [
    (["simulate", "--model"], "--model"),
    (["cohort", "--patients", "2", "--model"], "--model"),
    (["validate", "--patients", "2", "--cancer", "melanoma", "--model"], "--model"),
    (["cohort", "--patients", "2", "--clinical"], "--clinical"),
    (["cohort", "--patients", "2", "--treatments"], "--treatments"),
    (["simulate", "--protocol"], "--protocol"),
    (["validate", "--patients", "2", "--targets"], "--targets"),
    (["calibrate", "--check", "--patients", "2", "--targets"], "--targets"),
])
def test_an_unreadable_file_is_named_by_its_option(tmp_path: Path, args: list[str],
                                                   option: str) -> None:
    """Issue 10 item 2: the error names the option whose file is bad (calibrate said
    'model file' of a broken --targets file, and every command of a broken --model)."""
    broken = tmp_path / "broken.toml"
    broken.write_text("[x\n", encoding="utf-8")
    code, out, err = _run([*args, str(broken)])
    _assert_one_clear_message(code, out, err, (f"{option} file", "broken.toml", "valid TOML"))


def test_a_model_file_without_the_cancer_asked_for_is_named(tmp_path: Path) -> None:
    """Found by fuzzing: a model file holding other cancer types (or none) gave 'cancer:
    got ...; allowed:' with an empty list and no file name."""
    data = _default_data()
    data["cancers"] = {}
    empty = tmp_path / "none.json"
    empty.write_text(json.dumps(data), encoding="utf-8")
    code, out, err = _run(["simulate", "--untreated", "--model", str(empty)])
    _assert_one_clear_message(code, out, err, ("none.json", "cancer", "no cancer type"))


def test_a_protocol_naming_a_missing_site_is_refused_before_any_patient(tmp_path: Path
                                                                       ) -> None:
    """Found by fuzzing: a protocol step naming a site the anatomy lacks was refused only
    when the patient was treated, without the file or the protocol's name."""
    import tomllib

    from metastasis.clinical.protocol_example import example_text

    data = tomllib.loads(example_text())
    (plan,) = data["protocols"]
    radiotherapy = next(s for s in data["protocols"][plan]["steps"] if "sites" in s)
    radiotherapy["sites"] = ["spleen"]
    path = tmp_path / "plan.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    out_file = tmp_path / "r.json"
    code, out, err = _run(["simulate", "--seed", "1", "--years", "2", "--protocol", str(path),
                           "--format", "json", "--out", str(out_file)])
    _assert_one_clear_message(code, out, err, ("plan.toml", f"protocols.{plan}.steps.",
                                               ".sites", "'spleen'"))
    assert not out_file.exists()
