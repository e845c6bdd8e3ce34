"""Every file the program accepts runs (issue 10, item 1).

Model, clinical, treatment, protocol and target files are checked at load: numbers are
numbers (``true`` is never a rate, a probability or a count), every number lies in a range
that simulates without overflow, crash or hang, the anatomy is sound (no lymph drainage into
itself or round a cycle, a cavity is a cavity), and no file is too large or nested too deep
to parse.  Each reproducer of the issue is checked through the Python loaders (the error
names the file, the field, the value and what is allowed) and a representative set through
the command line (exit 2, one line, no traceback, no output file).  The shipped files must
all still load, and numbers at the ends of their ranges must still simulate.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from typer.testing import CliRunner

from metastasis.api import run_patient
from metastasis.calibration.targets import load_targets
from metastasis.cli.app import USAGE_ERROR, app
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_protocols, load_treatments
from metastasis.errors import ModelError
from metastasis.knowledge.files import FILE_FIELD, MAX_DEPTH, MAX_FILE_BYTES
from metastasis.knowledge.loader import load, merge_defaults, raw_knowledge
from metastasis.knowledge.ranges import CYCLES
from metastasis.model.resolve import resolve

DATA = Path(str(resources.files("metastasis.knowledge.data")))
SOURCE = "test: a value at the edge"
runner = CliRunner()

Mutation = Callable[[dict[str, Any]], None]


# ---------------------------------------------------------------- helpers


def _raw(name: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads((DATA / name).read_text(encoding="utf-8"))


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (list indices as numbers) to ``value``."""
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[last] = value
    return mutate


def _write(folder: Path, data: dict[str, Any], name: str) -> Path:
    path = folder / name
    if path.suffix == ".json":
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _model_file(folder: Path, *mutations: Mutation, name: str = "model.toml") -> Path:
    """The default model with its defaults merged in (as ``model export`` writes it), so
    every cancer type holds every field, changed by ``mutations``."""
    data = merge_defaults(copy.deepcopy(_raw("default.toml")))
    for mutate in mutations:
        mutate(data)
    return _write(folder, data, name)


def _protocol_data(**step: Any) -> dict[str, Any]:
    chemo = {
        "modality": "chemotherapy", "therapy": "folfox",
        "start_day": {"value": 0.0, "source": SOURCE},
        "cycles": {"value": 4, "source": SOURCE},
        "interval_days": {"value": 14.0, "source": SOURCE},
    }
    chemo.update(step)
    return {"protocols": {"mine": {"label": "mine", "cancers": ["colorectal"],
                                   "steps": [chemo]}}}


def _radiation_data(**step: Any) -> dict[str, Any]:
    radiation = {
        "modality": "radiation", "therapy": "palliative_bone_radiotherapy", "sites": ["bone"],
        "start_day": {"value": 0.0, "source": SOURCE},
        "dose_gy": {"value": 8.0, "source": SOURCE},
        "fractions": {"value": 1, "source": SOURCE},
    }
    radiation.update(step)
    return {"protocols": {"mine": {"label": "mine", "cancers": ["colorectal"],
                                   "steps": [radiation]}}}


def _refused(load_file: Callable[[Path], object], path: Path) -> ModelError:
    with pytest.raises(ModelError) as caught:
        load_file(path)
    return caught.value


def _names(error: ModelError, path: Path, field: str, value: object) -> None:
    """The error names the file, the field and the value, and says what is allowed."""
    assert error.file == str(path)
    assert error.field in (field, f"{field}.value")
    assert error.value == value or repr(error.value) == repr(value)
    assert error.allowed


def _sourced(value: Any) -> dict[str, Any]:
    return {"value": value, "source": SOURCE}


# ---------------------------------------------------------------- model files: types


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("cancers.colorectal.shedding.rate", True),
        ("cancers.colorectal.colonisation.extravasation", False),
        ("sites.liver.capillary_arrest", True),
        ("circulation.lethal_burden_cells", True),
        ("cancers.colorectal.growth.doubling_time_days", "160"),
    ],
)
def test_a_boolean_or_text_is_not_a_number(tmp_path: Path, path: str, value: Any) -> None:
    model = _model_file(tmp_path, _set(f"{path}.value", value))
    error = _refused(load, model)
    _names(error, model, path, value)
    assert "number" in error.allowed


def test_a_number_is_not_a_boolean(tmp_path: Path) -> None:
    model = _model_file(tmp_path, _set("sites.liver.vital", 1))
    _names(_refused(load, model), model, "sites.liver.vital", 1)


# ---------------------------------------------------------------- model files: ranges


@pytest.mark.parametrize(
    ("path", "value", "allowed"),
    [
        # the reproducers
        ("cancers.colorectal.invasion.breach_rate", 1e-300, "[1e-12, 1000]"),
        ("cancers.colorectal.growth.metastasis_speedup", 1e300, "[0.01, 100]"),
        ("cancers.colorectal.growth.reference_size_cells", 5e-324, "[1, 1e+14]"),
        ("cancers.colorectal.shedding.rate_log10_sd", 1e308, "[0, 3]"),
        # the other ends and the neighbours
        ("cancers.colorectal.invasion.breach_rate", 1e300, "[1e-12, 1000]"),
        ("cancers.colorectal.shedding.rate", 1e300, "[0, 100]"),
        ("cancers.colorectal.growth.metastasis_speedup", 1e-300, "[0.01, 100]"),
        ("cancers.colorectal.growth.capacity_cells", 1e300, "[1, 1e+14]"),
        ("cancers.colorectal.growth.doubling_time_days", 1e-300, "[0.1, 100000]"),
        ("cancers.colorectal.colonisation.colony_birth_rate", 1e300, "[1e-06, 1000]"),
        ("cancers.colorectal.colonisation.mean_dormancy_days", 1e300, "[0, 1e+12]"),
        ("cancers.colorectal.shedding.rate_log10_limit", 1e300, "[0.01, 3]"),
        ("circulation.cells_per_cm3", 5e-324, "[1e+06, 1e+12]"),
        ("sites.regional_lymph_nodes.max_lesion_cells", 1e300, "[1, 1e+14]"),
        ("cancers.colorectal.invasion.motility_per_new_cell", 1.5, "probability"),
    ],
)
def test_numbers_outside_their_range_are_refused(
    tmp_path: Path, path: str, value: float, allowed: str
) -> None:
    model = _model_file(tmp_path, _set(f"{path}.value", value))
    error = _refused(load, model)
    _names(error, model, path, value)
    assert allowed in error.allowed


@pytest.mark.parametrize(
    ("path", "value", "allowed"),
    [
        ("cancers.colorectal.growth.doubling_time_days", 0.1, "at least 7.8"),
        ("cancers.colorectal.growth.metastasis_speedup", 100.0, "at most 27.1"),
    ],
)
def test_growth_so_fast_that_lesions_reach_capacity_to_machine_precision_is_refused(
    tmp_path: Path, path: str, value: float, allowed: str
) -> None:
    """Each value is within its own range, but with the default sizes the Gompertz rate
    would pass 0.0128 per day: the emission's closed form overflowed ('lam value too
    large') once a lesion sat at its capacity to machine precision."""
    model = _model_file(tmp_path, _set(f"{path}.value", value))
    error = _refused(load, model)
    _names(error, model, path, value)
    assert allowed in error.allowed and "Gompertz rate" in error.allowed


def test_a_spread_truncated_too_tightly_to_draw_is_refused(tmp_path: Path) -> None:
    """sd 3 truncated at 0.01 would keep one draw in 400: the patient's rate is drawn by
    rejection, so the limit must be at least a tenth of the spread."""
    model = _model_file(
        tmp_path,
        _set("cancers.colorectal.shedding.rate_log10_sd.value", 3.0),
        _set("cancers.colorectal.shedding.rate_log10_limit.value", 0.01),
    )
    error = _refused(load, model)
    assert error.field.endswith("shedding.rate_log10_limit")
    assert error.value == 0.01 and "at least rate_log10_sd / 10" in error.allowed


# ---------------------------------------------------------------- model files: anatomy


def test_an_organ_draining_its_lymph_into_itself_is_refused(tmp_path: Path) -> None:
    model = _model_file(tmp_path, _set("sites.liver.lymph_drainage", "liver"))
    error = _refused(load, model)
    _names(error, model, "sites.liver.lymph_drainage", "liver")
    assert "regional_lymph_nodes" in error.allowed and "thoracic_duct" in error.allowed


def test_a_node_draining_into_itself_is_refused(tmp_path: Path) -> None:
    model = _model_file(tmp_path, _set("sites.distant_lymph_nodes.lymph_drainage",
                                       "distant_lymph_nodes"))
    _names(_refused(load, model), model, "sites.distant_lymph_nodes.lymph_drainage",
           "distant_lymph_nodes")


def test_a_lymph_cycle_is_refused(tmp_path: Path) -> None:
    """regional -> distant -> regional: a cell would go round for ever."""
    model = _model_file(tmp_path, _set("sites.distant_lymph_nodes.lymph_drainage",
                                       "regional_lymph_nodes"))
    error = _refused(load, model)
    assert error.file == str(model)
    assert error.field.endswith("lymph_nodes.lymph_drainage")
    assert error.value in ("regional_lymph_nodes", "distant_lymph_nodes")
    assert "cycle" in error.allowed


def test_lymph_draining_into_an_ordinary_organ_is_refused(tmp_path: Path) -> None:
    model = _model_file(tmp_path, _set("sites.colon.lymph_drainage", "liver"))
    _names(_refused(load, model), model, "sites.colon.lymph_drainage", "liver")


def test_a_cavity_naming_an_organ_is_refused(tmp_path: Path) -> None:
    model = _model_file(tmp_path, _set("sites.colon.cavity", "liver"))
    error = _refused(load, model)
    _names(error, model, "sites.colon.cavity", "liver")
    assert "peritoneum" in error.allowed and "pleura" in error.allowed


# ---------------------------------------------------------------- file size and nesting


def _deep_toml(depth: int) -> str:
    return "name = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("arrays.toml", _deep_toml(5000)),
        ("tables.toml", "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n"),
        ("dotted.toml", "a" + ".a" * 100_000 + " = 1\n"),
        ("headers.toml", "[" + ".".join(["a"] * 100_000) + "]\n"),
        ("arrays.json", "[" * 100_000 + "]" * 100_000),
        ("objects.json", '{"a": ' * 50_000 + "1" + "}" * 50_000),
    ],
    ids=["toml arrays", "toml inline tables", "toml dotted key", "toml table header",
         "json arrays", "json objects"],
)
def test_deep_nesting_is_refused_before_parsing(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    error = _refused(load, path)
    assert time.perf_counter() - started < 5.0  # refused, not parsed for minutes
    assert (error.field, error.value) == (FILE_FIELD, str(path))
    assert f"at most {MAX_DEPTH} levels" in error.allowed


def test_nesting_within_the_limit_is_parsed(tmp_path: Path) -> None:
    """The limit is on nesting, not on brackets in strings or comments."""
    model = _model_file(tmp_path, _set("description", "[[[[" * 50 + " a.b.c" * 50))
    text = model.read_text(encoding="utf-8") + "# " + "{" * 200 + "\n"
    model.write_text(text, encoding="utf-8")
    assert load(model).description.startswith("[[[[")


def test_an_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.write(b"# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    error = _refused(load, path)
    assert (error.field, error.value) == (FILE_FIELD, str(path))
    assert "MiB" in error.allowed


# ---------------------------------------------------------------- clinical, treatment files


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("symptoms.bone_pain.log10_spread.value", True, "symptoms.bone_pain.log10_spread"),
        ("symptoms.bone_pain.log10_spread.value", 1e308, "symptoms.bone_pain.log10_spread"),
        ("screening.colonoscopy.interval_years.value", 1e-9,
         "screening.colonoscopy.interval_years"),
        ("workup.delay_days.value", 1e300, "workup.delay_days"),
        ("outcomes.fracture.fatal", 0, "outcomes.fracture.fatal"),
    ],
)
def test_bad_clinical_numbers_are_refused(
    tmp_path: Path, path: str, value: Any, field: str
) -> None:
    data = copy.deepcopy(_raw("clinical.toml"))
    _set(path, value)(data)
    clinical = _write(tmp_path, data, "clinical.toml")
    _names(_refused(load_clinical, clinical), clinical, field, value)


@pytest.mark.parametrize("value", [True, 1e308])
def test_bad_treatment_numbers_are_refused(tmp_path: Path, value: Any) -> None:
    data = copy.deepcopy(_raw("treatments.toml"))
    data["therapies"]["folfox"]["log_kill_sd"] = _sourced(value)
    treatments = _write(tmp_path, data, "treatments.json")
    error = _refused(load_treatments, treatments)
    assert error.file == str(treatments)
    assert error.field.startswith("therapies.folfox") and "log_kill_sd" in error.field
    assert error.value == value


# ---------------------------------------------------------------- protocol files


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        (_protocol_data(cycles=_sourced(True)), "cycles", True),
        (_protocol_data(cycles=_sourced(1e9)), "cycles", 1e9),
        (_protocol_data(cycles=_sourced(1e18)), "cycles", 1e18),
        (_protocol_data(start_day=_sourced(True)), "start_day", True),
        (_protocol_data(start_day=_sourced(1e300)), "start_day", 1e300),
        (_protocol_data(interval_days=_sourced(1e-300)), "interval_days", 1e-300),
        (_radiation_data(fractions=_sourced(True)), "fractions", True),
        (_radiation_data(fractions=_sourced(1e9)), "fractions", 1e9),
        (_radiation_data(dose_gy=_sourced(True)), "dose_gy", True),
        (_radiation_data(dose_gy=_sourced(1e300)), "dose_gy", 1e300),
    ],
    ids=lambda v: None if isinstance(v, dict) else str(v),
)
def test_bad_protocol_numbers_are_refused(
    tmp_path: Path, data: dict[str, Any], field: str, value: Any
) -> None:
    protocol = _write(tmp_path, data, "protocol.toml")
    error = _refused(lambda path: load_protocols(path, load_treatments()), protocol)
    _names(error, protocol, f"protocols.mine.steps.0.{field}", value)


def test_the_most_cycles_allowed_load_and_one_more_does_not(tmp_path: Path) -> None:
    most = int(CYCLES.high)
    protocol = _write(tmp_path, _protocol_data(cycles=_sourced(most)), "ok.toml")
    assert load_protocols(protocol)["mine"].steps[0].cycles.n == most
    protocol = _write(tmp_path, _protocol_data(cycles=_sourced(most + 1)), "over.toml")
    _names(_refused(load_protocols, protocol), protocol, "protocols.mine.steps.0.cycles",
           most + 1)


# ---------------------------------------------------------------- target files


@pytest.mark.parametrize(("key", "value"), [("value", True), ("years", True), ("fit", 1)])
def test_bad_target_values_are_refused(tmp_path: Path, key: str, value: Any) -> None:
    data = {"colorectal": {"five_year": {
        "label": "five-year survival, stage I", "statistic": "survival", "stage": "I",
        "years": 5, "value": 0.9, "source": SOURCE, key: value}}}
    targets = _write(tmp_path, data, "targets.toml")
    _names(_refused(load_targets, targets), targets, f"colorectal.five_year.{key}", value)


# ---------------------------------------------------------------- what still works


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.toml")))
def test_every_shipped_file_loads_from_its_path(name: str) -> None:
    loaders: dict[str, Callable[[Path], object]] = {
        "clinical.toml": load_clinical, "treatments.toml": load_treatments,
        "calibration.toml": load_targets,
    }
    assert loaders.get(name, load)(DATA / name)


def test_every_shipped_default_loads() -> None:
    assert load().cancers and load_clinical().symptoms and load_treatments().therapies
    assert load_targets()


EDGES = [
    {"cancers.colorectal.invasion.breach_rate": 1e-12},
    {"cancers.colorectal.invasion.breach_rate": 1e3},
    {"cancers.colorectal.growth.metastasis_speedup": 100.0,
     "cancers.colorectal.growth.doubling_time_days": 1e5},
    {"cancers.colorectal.growth.metastasis_speedup": 0.01},
    # the fastest growth allowed: the Gompertz rate just below its bound
    {"cancers.colorectal.growth.doubling_time_days": 7.87,
     "cancers.colorectal.growth.metastasis_speedup": 0.9},
    {"cancers.colorectal.growth.reference_size_cells": 1.0},
    {"cancers.colorectal.shedding.exponent": 0.01},
    {"cancers.colorectal.shedding.rate_log10_sd": 3.0,
     "cancers.colorectal.shedding.rate_log10_limit": 0.3},
    {"cancers.colorectal.shedding.rate": 5e-324},
    {"cancers.colorectal.invasion.motility_per_new_cell": 5e-324},
    {"circulation.cells_per_cm3": 1e6},
]


@pytest.mark.parametrize("edges", EDGES, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_numbers_at_the_ends_of_their_ranges_simulate(edges: dict[str, float]) -> None:
    raw = merge_defaults(raw_knowledge())
    for path, value in edges.items():
        _set(path, _sourced(value))(raw)
    from metastasis.knowledge.loader import from_dict

    model = resolve(from_dict(raw), "colorectal")
    for seed in range(2):
        result = run_patient(model, seed, 0, 30.0)
        assert result.end_reason in ("horizon", "lethal_burden")


# ---------------------------------------------------------------- the command line


def _assert_clean_refusal(code: int, out: str, err: str, *words: str) -> None:
    assert code == USAGE_ERROR, f"exit {code}: {err}{out}"
    assert "Traceback" not in err + out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("metastasis: error: ")
    for word in words:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"


def _cli(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("mutation", "words"),
    [
        (_set("cancers.colorectal.invasion.breach_rate.value", 1e-300),
         ("cancers.colorectal.invasion.breach_rate", "1e-300", "[1e-12, 1000]")),
        (_set("cancers.colorectal.shedding.rate.value", True),
         ("cancers.colorectal.shedding.rate", "True", "number")),
        (_set("sites.distant_lymph_nodes.lymph_drainage", "regional_lymph_nodes"),
         ("lymph_drainage", "lymph_nodes", "cycle")),
        (_set("sites.colon.cavity", "liver"), ("sites.colon.cavity", "'liver'", "peritoneum")),
    ],
    ids=["tiny rate", "boolean rate", "lymph cycle", "cavity organ"],
)
def test_the_command_refuses_a_bad_model_file(
    tmp_path: Path, mutation: Mutation, words: tuple[str, ...]
) -> None:
    model = _model_file(tmp_path, mutation)
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, stderr = _cli(["simulate", "--model", str(model), "--seed", "1", "--format",
                                 "json", "--out", str(out / "r.json")])
    _assert_clean_refusal(code, stdout, stderr, str(model), *words)
    assert list(out.iterdir()) == []


def test_the_command_refuses_a_bad_protocol_file(tmp_path: Path) -> None:
    protocol = _write(tmp_path, _protocol_data(cycles=_sourced(1e9)), "protocol.toml")
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, stderr = _cli(["simulate", "--protocol", str(protocol), "--seed", "1",
                                 "--format", "json", "--out", str(out / "r.json")])
    _assert_clean_refusal(code, stdout, stderr, str(protocol),
                          "protocols.mine.steps.0.cycles", "1000000000", "[0, 400]")
    assert list(out.iterdir()) == []


def test_the_command_refuses_a_bad_clinical_file(tmp_path: Path) -> None:
    data = copy.deepcopy(_raw("clinical.toml"))
    data["workup"]["delay_days"]["value"] = True
    clinical = _write(tmp_path, data, "clinical.toml")
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, stderr = _cli(["simulate", "--clinical", str(clinical), "--seed", "1",
                                 "--format", "json", "--out", str(out / "r.json")])
    _assert_clean_refusal(code, stdout, stderr, str(clinical), "workup.delay_days", "True")
    assert list(out.iterdir()) == []


def test_the_command_refuses_a_bad_targets_file(tmp_path: Path) -> None:
    data = {"colorectal": {"five_year": {
        "label": "five-year survival, stage I", "statistic": "survival", "stage": "I",
        "years": True, "value": 0.9, "source": SOURCE}}}
    targets = _write(tmp_path, data, "targets.toml")
    code, stdout, stderr = _cli(["validate", "--targets", str(targets), "--patients", "2"])
    _assert_clean_refusal(code, stdout, stderr, str(targets), "colorectal.five_year.years",
                          "True")


def _installed() -> list[str]:
    return [sys.executable, "-m", "metastasis.cli.app"]


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("deep.toml", _deep_toml(5000), (FILE_FIELD, "deep.toml", f"at most {MAX_DEPTH}")),
        ("deep.json", "[" * 100_000 + "]" * 100_000,
         (FILE_FIELD, "deep.json", f"at most {MAX_DEPTH}")),
    ],
    ids=["toml", "json"],  # short ids: pytest puts the id in the subprocess's environment
)
def test_the_installed_command_refuses_a_deeply_nested_file(
    tmp_path: Path, name: str, text: str, words: tuple[str, ...]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    target = tmp_path / "story.json"
    done = subprocess.run(
        [*_installed(), "simulate", "--model", str(path), "--seed", "1", "--format", "json",
         "--out", str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    _assert_clean_refusal(done.returncode, done.stdout, done.stderr, *words)
    assert not target.exists()


def test_the_installed_command_refuses_a_tiny_breach_rate(tmp_path: Path) -> None:
    model = _model_file(tmp_path, _set("cancers.colorectal.invasion.breach_rate.value", 1e-300))
    target = tmp_path / "story.json"
    done = subprocess.run(
        [*_installed(), "simulate", "--untreated", "--model", str(model), "--seed", "1",
         "--format", "json", "--out", str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    _assert_clean_refusal(done.returncode, done.stdout, done.stderr, str(model),
                          "cancers.colorectal.invasion.breach_rate", "1e-300")
    assert not target.exists()


def test_a_history_past_the_lesion_budget_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted values can combine into more metastases than memory holds: the engine stops
    at its lesion budget with one error naming it, and the CLI says so in one line, exit 2,
    writing nothing.  (The budget is lowered here so that an ordinary patient reaches it.)"""
    from typer.testing import CliRunner

    from metastasis.api import load_model, run_patient
    from metastasis.cli.app import app
    from metastasis.engine import process
    from metastasis.errors import ModelError

    model = load_model("colorectal")
    index = next(i for i in range(200) if len(run_patient(model, 5, i, 10.0).lesions) > 40)
    monkeypatch.setattr(process, "MAX_LESION_ROWS", 40)
    with pytest.raises(ModelError, match="at most 40 lesion segments per patient"):
        run_patient(model, 5, index, 10.0)
    out = tmp_path / "story.json"
    result = CliRunner().invoke(app, ["simulate", "--cancer", "colorectal", "--seed", "5",
                                      "--patient", str(index), "--untreated", "--format", "json",
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    message = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(message) == 1 and "lesion segments per patient" in message[0], result.stderr
    assert "Traceback" not in result.output and not out.exists()
