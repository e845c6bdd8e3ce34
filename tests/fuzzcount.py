"""Counts of the generated inputs the fuzz suites ran, summed over test processes.

Each fuzz test records its inputs here; ``conftest.py`` prints the totals at the end of the
session (issue 10 asks for the counts to be printed).  The counts go through files in one
folder named by an environment variable that the controlling pytest process sets before
its xdist workers start, so every worker adds to the same totals.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

FOLDER_VARIABLE = "METASTASIS_FUZZ_COUNTS"


def record_fuzz_count(label: str, count: int) -> None:
    """Add ``count`` inputs to the suite ``label``."""
    folder = os.environ.get(FOLDER_VARIABLE)
    if not folder:
        return
    with open(Path(folder) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps({"label": label, "count": count}) + "\n")


def fuzz_totals(folder: Path) -> Counter[str]:
    totals: Counter[str] = Counter()
    for path in folder.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            totals[entry["label"]] += int(entry["count"])
    return totals
