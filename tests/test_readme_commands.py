"""Every command, query, file and Python snippet of the README runs (issue 11: examples had
drifted from the program).

The README is read, not copied: each ``metastasis ...`` line of its ``bash`` and ``console``
blocks is run through the installed ``metastasis`` script, in README order, in a scratch
folder per chain (a later command reads what an earlier one wrote: ``my-protocol.toml``,
``calibrated.toml``, ``run/``).  Each must end with exit status 0.  Two kinds of change are
made, both stated here, so that the whole README runs in a few minutes:

- *less work*: ``--patients`` above 40 becomes 40, and a command that does work without
  saying how much gets ``--patients 30``; an ABC fit runs 4 particles for 1 generation.
  Every other option is kept as written, so a renamed or removed option still fails;
- *one remote scheduler*: ``--scheduler tcp://scheduler-host:8786`` names a machine that does
  not exist here, so that command must fail the documented way instead: exit 2 and one
  line naming the scheduler.

The commands run in three chains (the sections before the clinical course, up to calibration,
and after), each in its own folder, so that the test workers share them.  The SQL block runs
in DuckDB over the dataset the ``--out run/`` command wrote; the TOML block
(the protocol format) is loaded as a protocol file and used by ``simulate``; each Python block
runs in a fresh interpreter, with its cohort sizes (``10_000``, ``20_000``) made 60.
``pip install`` and ``bash .ci/run`` are what CI itself runs, and are left to it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the whole README: a few minutes

README = Path(__file__).resolve().parent.parent / "README.md"
MOST_PATIENTS = 40
UNSIZED_PATIENTS = "30"
SIZED_COMMANDS = {"cohort", "compare", "validate", "calibrate"}
"""Commands whose work grows with --patients (given --patients 30 when the README does not
say; ``explain`` without it reads precomputed figures)."""
FEWER = {"--population": "4", "--generations": "1"}
REMOTE = "tcp://scheduler-host:8786"
SECONDS = 600
PYTHON_SIZES = re.compile(r"\b(10_000|20_000)\b")


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def readme_commands() -> list[str]:
    """Every ``metastasis`` command of the README's shell blocks, continuation lines joined,
    comments and prompts removed, in README order."""
    commands = []
    for block in _blocks("bash") + _blocks("console"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            line = re.sub(r"\s+#.*$", "", line)
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("metastasis "):
                    commands.append(part)
    # README order: the blocks were read by language, so sort by place in the file
    text = README.read_text(encoding="utf-8")
    return sorted(commands, key=lambda c: _place(text, c))


def _place(text: str, command: str) -> int:
    words = command.split()
    pattern = r"\s+(?:\\\s+)?".join(re.escape(w) for w in words)
    found = re.search(pattern, text)
    assert found is not None, command
    return found.start()


def lighter(command: str) -> list[str]:
    """The command as arguments, with less work (see the module)."""
    args = shlex.split(command)[1:]
    for k, arg in enumerate(args[:-1]):
        if arg in ("--patients", "-n") and int(args[k + 1]) > MOST_PATIENTS:
            args[k + 1] = str(MOST_PATIENTS)
        if arg in FEWER:
            args[k + 1] = FEWER[arg]
    if args and args[0] in SIZED_COMMANDS and "--patients" not in args and "-n" not in args:
        args += ["--patients", UNSIZED_PATIENTS]
    return args


def _metastasis() -> str:
    found = shutil.which("metastasis") or str(Path(sys.executable).parent / "metastasis")
    assert Path(found).exists(), "the metastasis script is installed with the package"
    return found


def test_the_commands_are_found() -> None:
    commands = readme_commands()
    assert len(commands) >= 30
    assert {shlex.split(c)[1] for c in commands} >= {
        "simulate", "cohort", "compare", "guide", "explain", "calibrate", "validate",
        "protocol"}
    assert lighter("metastasis cohort --patients 100000 --seed 1 --out run/") == [
        "cohort", "--patients", "40", "--seed", "1", "--out", "run/"]
    assert lighter("metastasis validate --workers 2") == [
        "validate", "--workers", "2", "--patients", "30"]
    assert lighter("metastasis simulate --seed 6") == ["simulate", "--seed", "6"]


CHAINS = ("## The clinical course", "## Calibration")
"""Headings that start a new chain of commands: the commands of one chain run in order in one
folder (a later one reads what an earlier wrote), the chains in parallel on the test
workers (none reads another's files)."""


def chain_of(command: str) -> int:
    text = README.read_text(encoding="utf-8")
    return sum(_place(text, command) > text.index(heading) for heading in CHAINS)


@pytest.mark.parametrize("chain", range(len(CHAINS) + 1))
def test_every_readme_command_runs(chain: int, tmp_path: Path) -> None:
    script = _metastasis()
    failures = []
    for command in (c for c in readme_commands() if chain_of(c) == chain):
        args = lighter(command)
        done = subprocess.run([script, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=SECONDS, stdin=subprocess.DEVNULL)
        if REMOTE in command:
            lines = done.stderr.strip().splitlines()
            if done.returncode != 2 or len(lines) != 1 or "scheduler" not in lines[0]:
                failures.append((command, done.returncode, done.stderr[-500:]))
        elif done.returncode != 0:
            failures.append((command, done.returncode, done.stderr[-1500:]))
    assert not failures, failures
    if (tmp_path / "run" / "manifest.json").exists():
        _the_sql_runs_over(tmp_path)


def _the_sql_runs_over(folder: Path) -> None:
    """The README's DuckDB query over the dataset its ``--out run/`` command wrote."""
    import duckdb

    (query,) = _blocks("sql")
    rows = duckdb.connect().execute(query.replace("'run/", f"'{folder}/run/")).fetchall()
    assert rows and all(0.0 <= share <= 1.0 for _, _, share in rows)
    assert sum(patients for _, patients, _ in rows) <= MOST_PATIENTS


def test_the_chains_hold_every_command_and_the_dataset() -> None:
    """Each chain holds commands, the one that writes ``run/`` runs the SQL, and the files a
    command reads are written earlier in its own chain."""
    commands = readme_commands()
    chains = [[c for c in commands if chain_of(c) == k] for k in range(len(CHAINS) + 1)]
    assert all(chains) and sum(map(len, chains)) == len(commands)
    for chain in chains:
        written: set[str] = set()
        for command in chain:
            args = shlex.split(command)
            for option in ("--protocol", "--model", "--clinical"):
                if option in args:
                    assert args[args.index(option) + 1] in written, command
            if "--out" in args:
                out = args[args.index("--out") + 1]
                written |= {out, out.replace(".toml", ".clinical.toml")}


def test_the_protocol_format_block_is_a_protocol_file(tmp_path: Path) -> None:
    (block,) = _blocks("toml")
    path = tmp_path / "snippet.toml"
    path.write_text(block, encoding="utf-8")
    done = subprocess.run([_metastasis(), "simulate", "--seed", "6", "--protocol", str(path),
                           "--format", "json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=SECONDS)
    assert done.returncode == 0, done.stderr
    assert "Surgery, then three months of FOLFOX" in done.stdout


@pytest.mark.parametrize("number", range(len(_blocks("python"))))
def test_every_python_block_runs(number: int, tmp_path: Path) -> None:
    script = _metastasis()
    subprocess.run([script, "protocol", "example", "--out", "my-protocol.toml"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=SECONDS)
    source = PYTHON_SIZES.sub("60", _blocks("python")[number])
    path = tmp_path / "snippet.py"
    path.write_text(source, encoding="utf-8")
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=SECONDS)
    assert done.returncode == 0, done.stderr[-2000:]
