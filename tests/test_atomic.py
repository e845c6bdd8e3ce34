"""The one writer (metastasis.atomic) and the one JSON cleaner (metastasis.jsondata).

Issue 10, item 3: outputs are whole or absent, written aside and moved in; temporaries are
removed on failure and, after a kill, by the next write into the folder; every JSON the
program writes is cleaned the same way.
"""

from __future__ import annotations

import ast
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metastasis import atomic, jsondata

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "metastasis"


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_staged_set_appears_whole_in_the_order_given(tmp_path: Path) -> None:
    main, side = tmp_path / "table.csv", tmp_path / "table.provenance.json"
    seen: list[list[str]] = []
    with atomic.staged(side, main) as (side_temporary, main_temporary):
        side_temporary.write_text("side")
        main_temporary.write_text("main")
        seen.append(_listing(tmp_path))
    # while being written, only hidden temporaries exist, named with this process's id
    assert all(name.startswith(f".metastasis-{os.getpid()}-") for name in seen[0])
    assert main_temporary.suffix == ".csv"  # the suffix is kept (writers infer formats)
    assert _listing(tmp_path) == ["table.csv", "table.provenance.json"]
    assert main.read_text() == "main" and side.read_text() == "side"


def test_a_failure_leaves_nothing_and_an_earlier_result_untouched(tmp_path: Path) -> None:
    main, side = tmp_path / "r.csv", tmp_path / "r.provenance.json"
    main.write_text("earlier")
    with pytest.raises(RuntimeError), atomic.staged(side, main) as (side_temporary, main_tmp):
        side_temporary.write_text("new side")
        main_tmp.write_text("half")
        raise RuntimeError("bad input found late")
    assert _listing(tmp_path) == ["r.csv"] and main.read_text() == "earlier"


def test_a_staged_directory_is_removed_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic.staged(tmp_path / "report") as (staging,):
        staging.mkdir()
        (staging / "index.html").write_text("half")
        raise RuntimeError
    assert _listing(tmp_path) == []


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    """A writer killed with SIGKILL cannot clean up; the next write into the folder does,
    and keeps what belongs to a process that still runs."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from metastasis import atomic\n"
        "with atomic.staged(Path(sys.argv[1])) as (t,):\n"
        "    t.write_text('half'); print(t, flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out.csv")],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    left = Path(writer.stdout.readline().strip())
    assert left.exists()
    mine = atomic.temporary_beside(tmp_path / "other.csv")
    mine.write_text("in progress here")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert left.exists()  # nothing can remove it at the kill
    atomic.write_text(tmp_path / "next.txt", "next")
    assert not left.exists()
    assert mine.exists()  # this process still runs: its temporary is kept
    assert sorted(_listing(tmp_path)) == sorted(["next.txt", mine.name])


def test_only_this_module_writes_files_by_renaming() -> None:
    """One writer: no other module of the package renames files into place or makes
    temporary files of its own."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {
                    "replace", "rename", "mkstemp", "NamedTemporaryFile"}:
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in {"os", "tempfile"}:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_the_cleaner_gives_plain_json() -> None:
    value = {
        1: np.float64(math.nan), "b": [np.int64(3), np.bool_(True), math.inf, -math.inf],
        "c": np.array([[1.5, np.nan]]), "d": (np.float32(0.25), {"x": frozenset({3, 1})}),
        "e": None, "f": "text", "g": True,
    }
    assert jsondata.plain(value) == {
        "1": None, "b": [3, True, None, None], "c": [[1.5, None]],
        "d": [0.25, {"x": [1, 3]}], "e": None, "f": "text", "g": True,
    }
    text = jsondata.dumps(value, indent=1)
    assert json.loads(text)["b"] == [3, True, None, None]
    assert isinstance(jsondata.plain(np.bool_(False)), bool)
    assert type(jsondata.plain(np.int64(2))) is int


def test_only_one_json_cleaner() -> None:
    """The package's other modules call the cleaner rather than keeping their own: no
    function elsewhere maps numpy floats to None by hand."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "jsondata.py":
            continue
        source = path.read_text(encoding="utf-8")
        if "np.floating" in source and "isfinite" in source and "np.integer" in source:
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []
