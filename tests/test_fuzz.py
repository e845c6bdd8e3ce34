"""The attacks stay in CI (issue 10, item 5): generated hostile input, bounded in time.

Hypothesis generates command lines (every command, hostile values for every option),
mutated model files and mutated protocol files; schemathesis generates API requests from
the OpenAPI schema.  Each command line runs in process (typer's runner) in a fresh output
folder, and must end with exit status 0, or 2 with exactly one line
``metastasis: error: ...``; never a traceback, another status or a hang (each run has a
wall-clock limit); a failed run leaves no file at all, a successful one no temporary.  Each
API request must get no 5xx and an answer that conforms to the schema.

The runs are seeded (``derandomize``), so CI sees the same inputs every time and a failure
reproduces; the numbers of inputs are printed at the end of the test session
(``conftest.py``) and add up to more than 10,000 per full run.  Valid inputs are kept
cheap (at most a few patients over a few years), so the suites run in a few minutes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import tomli_w
from fuzzcount import record_fuzz_count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command
from typer.testing import CliRunner, Result

from metastasis.cli.app import USAGE_ERROR, app
from metastasis.knowledge.loader import load as load_knowledge

pytestmark = pytest.mark.slow

runner = CliRunner()
COMMAND = get_command(app)
"""The click command, built once: typer's runner builds it anew on every call, which was
half the cost of a short run."""


def _invoke(args: list[str]) -> Result:
    # typer's runner builds the command through typer.testing._get_command on every call;
    # hand it the one built above (a private name: if typer renames it, this fails loudly)
    with mock.patch("typer.testing._get_command", lambda _app: COMMAND):
        return runner.invoke(app, args)

SCALE = float(os.environ.get("METASTASIS_FUZZ_SCALE", "1"))
"""A factor on the numbers of inputs, for a quick local run (CI runs them all)."""
CLI_EXAMPLES = max(1, int(4000 * SCALE))
MODEL_EXAMPLES = max(1, int(2500 * SCALE))
PROTOCOL_EXAMPLES = max(1, int(1000 * SCALE))
SECONDS_PER_RUN = 30
"""A run that takes longer is taken for a hang: valid inputs here need well under a second."""

FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))

HOSTILE = ["", " ", "-1", "0", "-0", "nan", "inf", "-inf", "1e309", "1e-320", "1_000", "١٢",
           "１２", " 3 ", "9" * 400, "10**29", "0x10", "3.5", "1e3", "\x00", "../../etc",
           "x" * 300, "true", "None", "[]", "{}", "--help", "-", "%s", "${HOME}", "\u202e"]
"""Values the issue found mishandled, and their kin."""

WORK = {"--patients", "-n", "--years", "-y", "--workers", "--chunk-size", "--population",
        "--generations", "--steps"}
"""Options that set how much work a run does: fuzzed only with small or hostile values, so
that a valid draw stays cheap."""

CANCERS = ["colorectal", "nsclc", "breast", "prostate", "melanoma", "pancreatic", "gastric",
           "renal_cell"]

COMMANDS: dict[tuple[str, ...], dict[str, str]] = {
    ("simulate",): {"--cancer": "c", "--years": "work", "--seed": "int", "--patient": "int",
                    "--model": "file", "--out": "out", "--format": "fmt",
                    "--untreated": "flag", "--all-events": "flag", "--protocol": "file",
                    "--protocol-name": "text", "--clinical": "file", "--treatments": "file"},
    ("cohort",): {"--cancer": "c", "--patients": "work", "--years": "work", "--seed": "int",
                  "--model": "file", "--out": "out", "--figure": "out", "--untreated": "flag",
                  "--protocol": "file", "--protocol-name": "text", "--clinical": "file",
                  "--treatments": "file", "--workers": "work", "--resume": "flag",
                  "--chunk-size": "work", "--format": "fmt"},
    ("compare",): {"--cancer": "c", "--patients": "work", "--years": "work", "--seed": "int",
                   "--arm-a": "text", "--arm-b": "text", "--protocol": "file",
                   "--model": "file", "--clinical": "file", "--treatments": "file",
                   "--format": "fmt"},
    ("validate",): {"--cancer": "c", "--patients": "work", "--years": "work", "--seed": "int",
                    "--model": "file", "--targets": "file", "--report": "out",
                    "--format": "fmt"},
    ("calibrate",): {"--cancer": "c", "--check": "flag", "--patients": "work",
                     "--years": "work", "--seed": "int", "--target": "text",
                     "--parameter": "text", "--steps": "work", "--targets": "file",
                     "--prior-width": "text",
                     "--out": "out", "--format": "fmt"},
    ("explain",): {"--patients": "work", "--seed": "int", "--years": "work"},
    ("guide",): {},
    ("guide", "search"): {},
    ("model", "show"): {"--model": "file", "--format": "fmt"},
    ("model", "list"): {"--model": "file"},
    ("model", "export"): {"--out": "out", "--model": "file"},
    ("protocol", "example"): {"--out": "out"},
}
"""Each command and its options, by the kind of value they take."""

BASE = {"simulate": ["--years", "2"], "cohort": ["--patients", "2", "--years", "2"],
        "compare": ["--patients", "2", "--years", "2"],
        "validate": ["--patients", "3", "--years", "2", "--cancer", "melanoma"],
        "calibrate": ["--check", "--patients", "3", "--years", "2"],
        "explain": ["--patients", "3", "--years", "2"]}
"""Options every draw of a command starts with, so that a valid run is cheap; the drawn
options come after them and win where they repeat one (the last value counts)."""


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Fail a run that does not end: a hang is a finding, not a stuck CI."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run_clean(args: list[str], outputs: Path, mentions: tuple[str, ...] = ()) -> int:
    """Run one command line and check the contract; returns its exit status."""
    with _time_limit(SECONDS_PER_RUN):
        result = _invoke(args)
    shown = f"args={args!r}\nstdout={result.stdout[-2000:]}\nstderr={result.stderr[-2000:]}"
    assert result.exit_code in (0, USAGE_ERROR), shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    left = _listing(outputs)
    assert not [name for name in left if ".metastasis-" in name], shown  # no temporary
    if result.exit_code == USAGE_ERROR:
        errors = [line for line in result.stderr.splitlines()
                  if line.startswith("metastasis: error: ")]
        assert len(errors) == 1, shown
        others = [line for line in result.stderr.splitlines()
                  if line.strip() and line not in errors and "━" not in line
                  and "disclaimer" not in line.lower() and "not medical advice" not in line]
        assert not others, shown  # besides progress bars and the disclaimer, one line
        assert left == [], shown  # a failed command writes nothing
        if mentions:
            assert any(word in errors[0] for word in mentions), shown
    return result.exit_code


@pytest.fixture(scope="module")
def fixtures() -> Iterator[Path]:
    """Input files of every kind: valid, empty, binary, malformed, a folder."""
    folder = Path(tempfile.mkdtemp(prefix="metastasis-fuzz-inputs-"))
    model = load_knowledge().model_dump(mode="json", exclude_none=True)
    (folder / "model.json").write_text(json.dumps(model))
    (folder / "empty.toml").write_text("")
    (folder / "binary.toml").write_bytes(bytes(range(256)) * 4)
    (folder / "broken.toml").write_text("[cancers\nx = = 1\n")
    (folder / "nested.json").write_text("[" * 5000 + "]" * 5000)
    (folder / "folder.toml").mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


FILE_KINDS = ["model.json", "empty.toml", "binary.toml", "broken.toml", "nested.json",
              "folder.toml", "missing.toml"]
OUT_KINDS = ["r.json", "r.csv", "r.parquet", "r.txt", "r.toml", "r.png", "missing/r.json",
             ".", "y" * 300 + ".json", "dir/", "r", "r.JSON", "\u00e9t\u00e9.csv"]


def _value(kind: str, draw: st.DrawFn, inputs: Path, outputs: Path) -> str:
    hostile = st.sampled_from(HOSTILE)
    if kind == "work":
        return draw(st.one_of(st.integers(-2, 3).map(str), hostile))
    if kind == "int":
        return draw(st.one_of(st.integers(-2, 2**64).map(str), hostile,
                              st.text(max_size=12)))
    if kind == "c":
        return draw(st.one_of(st.sampled_from([*CANCERS, "COLORECTAL", "lung"]), hostile))
    if kind == "fmt":
        return draw(st.one_of(st.sampled_from(["text", "json", "csv", "JSON", "xml"]),
                              hostile))
    if kind == "file":
        return str(inputs / draw(st.sampled_from(FILE_KINDS)))
    if kind == "out":
        return str(outputs / draw(st.sampled_from(OUT_KINDS)))
    return draw(st.one_of(hostile, st.text(max_size=20)))


@st.composite
def command_lines(draw: st.DrawFn, inputs: Path, outputs: Path) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[command]
    args = [*command, *BASE.get(command[0], [])]
    if command in {("explain",), ("guide",), ("guide", "search")}:
        args.append(draw(st.one_of(st.sampled_from(["liver", "bone", "brain", "lungs",
                                                     "common-sites", "1", "99"]),
                                   st.sampled_from(HOSTILE), st.text(max_size=15))))
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)) if options else []:
        if options[name] == "flag":
            args.append(name)
        else:
            args += [name, _value(options[name], draw, inputs, outputs)]
    if draw(st.booleans()) and command[0] in {"simulate", "cohort", "compare"}:
        args.append(draw(st.sampled_from(["--bogus", "-x", "--seed", "--", "extra"])))
    return args


@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(data=st.data())
def test_command_lines(data: st.DataObject, fixtures: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="metastasis-fuzz-") as name:
        outputs = Path(name)
        args = data.draw(command_lines(fixtures, outputs))
        _run_clean(args, outputs)
    record_fuzz_count("command lines", 1)


# ---------------------------------------------------------------- model files

def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in nested data."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


HOSTILE_VALUES = st.one_of(
    st.sampled_from([True, False, 0, -1, 1e-300, 1e300, 5e-324, -1e300, 1e308, 2**63, -2**63,
                     "", "x", "1e3", [], {}, [1, 2], {"value": True}, {"value": "nan"},
                     {"value": 1e300, "source": "fuzz"}, {"value": -5, "source": "fuzz"},
                     {"value": 0, "source": "fuzz"}, {"value": 1e-300, "source": "fuzz"}]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(), st.text(max_size=10))


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``base`` with one to three values replaced, removed or added; and how it is written."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:  # an earlier change removed everything
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
        if action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            # a copy: a later change may edit inside it, and the pool must stay as it is
            parent[draw(st.text(min_size=1, max_size=8))] = copy.deepcopy(draw(HOSTILE_VALUES))
        else:
            parent[path[-1]] = copy.deepcopy(draw(HOSTILE_VALUES))
    return data, draw(st.sampled_from([".toml", ".json"]))


def _write(data: dict[str, Any], path: Path) -> bool:
    """Write ``data`` as TOML or JSON; False where the format cannot hold it."""
    try:
        text = tomli_w.dumps(data) if path.suffix == ".toml" else json.dumps(data)
    except (TypeError, ValueError):
        return False
    path.write_text(text, encoding="utf-8")
    return True


@pytest.fixture(scope="module")
def default_model() -> dict[str, Any]:
    return load_knowledge().model_dump(mode="json", exclude_none=True)


def _run_mutated(data: st.DataObject, base: dict[str, Any], stem: str, option: str,
                 command: list[str], label: str) -> None:
    """Write a mutation of ``base`` to a file, pass it as ``option`` to ``command``, check
    the contract, and that a refusal names the file (or, once the file was accepted, the
    history's lesion budget: the one limit that is met while running)."""
    mutated, suffix = data.draw(mutations(base))
    with tempfile.TemporaryDirectory(prefix="metastasis-fuzz-") as name:
        folder = Path(name)
        inputs, outputs = folder / "in", folder / "out"
        inputs.mkdir()
        outputs.mkdir()
        path = inputs / f"{stem}{suffix}"
        if not _write(mutated, path):
            return
        _run_clean([*command, option, str(path), "--format", "json", "--out",
                    str(outputs / "r.json")], outputs, mentions=(path.name, "lesion segments"))
    record_fuzz_count(label, 1)


@settings(FUZZ, max_examples=MODEL_EXAMPLES)
@given(data=st.data())
def test_model_files(data: st.DataObject, default_model: dict[str, Any]) -> None:
    """A mutated model file is refused in one line that names the file, or runs."""
    cancer = data.draw(st.sampled_from(CANCERS))
    _run_mutated(data, default_model, "m", "--model",
                 ["simulate", "--untreated", "--cancer", cancer, "--years", "3", "--seed", "1"],
                 "model files")


# ---------------------------------------------------------------- protocol files

@pytest.fixture(scope="module")
def example_protocol() -> dict[str, Any]:
    import tomllib

    from metastasis.clinical.protocol_example import example_text

    return tomllib.loads(example_text())


@settings(FUZZ, max_examples=PROTOCOL_EXAMPLES)
@given(data=st.data())
def test_protocol_files(data: st.DataObject, example_protocol: dict[str, Any]) -> None:
    """A mutated protocol file is refused in one line that names it, or the patient is
    treated with it."""
    _run_mutated(data, example_protocol, "p", "--protocol",
                 ["simulate", "--cancer", "colorectal", "--seed", "6", "--years", "12"],
                 "protocol files")
