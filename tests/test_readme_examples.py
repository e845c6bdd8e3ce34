"""The README's examples say what the program prints (issue 11: an excerpt had drifted).

The excerpt of ``metastasis simulate --untreated --cancer colorectal --years 10 --seed 7``
is read from the README and checked against a real run: each of its events, and each piece
of the cell accounting between the "..." that mark what was left out, appears in the output
(compared with whitespace collapsed, since the README wraps lines that a wide terminal does
not).  A change to the model that moves these numbers fails here until the README shows the
new ones.
"""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from metastasis.cli.app import app

README = Path(__file__).resolve().parent.parent / "README.md"
COMMAND = "metastasis simulate --untreated --cancer colorectal --years 10 --seed 7"


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _excerpt() -> str:
    text = README.read_text(encoding="utf-8")
    after = text.index("For example (an excerpt):", text.index(COMMAND))
    start = text.index("```\n", after) + 4
    return text[start : text.index("```", start)]


def test_the_simulate_excerpt_is_what_the_command_prints(tmp_path: Path) -> None:
    out = tmp_path / "story.txt"
    result = CliRunner().invoke(app, [*COMMAND.split()[1:], "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = _flat(out.read_text(encoding="utf-8"))
    # one piece per event (a line starting with "Day ") or accounting paragraph
    pieces = re.split(r"\n(?=Day |Of )", _excerpt().strip())
    assert len(pieces) >= 3
    for piece in pieces:
        for fragment in _flat(piece).split("..."):
            fragment = fragment.strip(" ;")
            if fragment:
                assert fragment in printed, fragment


def test_the_in_short_excerpt_is_what_simulate_prints(tmp_path: Path) -> None:
    """The README's "In short" example for `simulate --cancer colorectal --seed 6`."""
    text = README.read_text(encoding="utf-8")
    after = text.index("For\n`--seed 6`:", text.index('The story opens "In short"'))
    start = text.index("```\n", after) + 4
    excerpt = text[start : text.index("```", start)]
    out = tmp_path / "story.txt"
    result = CliRunner().invoke(app, ["simulate", "--cancer", "colorectal", "--seed", "6",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = _flat(out.read_text(encoding="utf-8"))
    for line in re.split(r"\n(?=Diagnosed |Treatment: |Died |Alive |Not diagnosed |Hidden |At "
                         r"the end )", excerpt.strip()):
        assert _flat(line) in printed, line
