"""The guide's simulated cohorts, kept: shipped with the package, else cached on disk.

Every simulated figure of the guide, ``explain`` and the web guide rests on a few seeded,
untreated cohorts of the default model (:func:`metastasis.guide.figures.cohort`).  They are
the same numbers every time for a given version of the code and the default knowledge, so
recomputing them on each command cost learners seconds for nothing.  A cohort is looked up
in three places, in order:

1. ``guide/data/cohorts.json`` in the package: the cohorts of the guide's own settings for
   every cancer type, computed when the package was built
   (``python -m metastasis.guide.rebuild`` rebuilds it);
2. the user's cache directory (``$METASTASIS_CACHE_DIR``, else ``$XDG_CACHE_HOME/metastasis``,
   else ``~/.cache/metastasis``), where any other cohort is written once computed;
3. a fresh simulation.

Each stored cohort is tied to a *fingerprint* of what it depends on: the package version,
this module's format, the default disease knowledge and the source of the engine, the model,
the results and the digest.  Change any of them and the stored cohorts no longer match, so
they are computed again (and a test says the shipped file must be rebuilt): no figure is
ever read from a stale store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from metastasis import atomic
from metastasis.about import __version__

FORMAT = 1
"""Version of the stored layout: bump it when :class:`PatientDigest` changes."""

PACKAGE = Path(__file__).resolve().parents[1]
PACKAGED = PACKAGE / "guide" / "data" / "cohorts.json"

DEPENDS_ON = ("engine", "model", "knowledge", "results/patient.py", "results/story.py",
              "api.py", "units.py",
              "guide/figures.py", "guide/store.py", "guide/settings.py",
              "guide/rebuild.py")
"""What a simulated cohort's digest depends on, relative to the package: the Python source
under these paths (the disease, its resolution, the patient result the digest reads, the
entry point that runs a patient), and the default disease knowledge
(``knowledge/data/default.toml``).  Narrow enough that reporting code (tables, statistics,
exports) can change without a rebuild."""

DATA_FILES = ("knowledge/data/default.toml",)

Rows = list[list[Any]]


@cache
def fingerprint() -> str:
    """A hash of everything a stored cohort depends on (see the module's docstring)."""
    digest = hashlib.sha256(f"metastasis {__version__} guide store {FORMAT}".encode())
    files: list[Path] = []
    for name in DEPENDS_ON:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    files += [PACKAGE / name for name in DATA_FILES]
    for path in files:
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def key(cancer: str, patients: int, seed: int, years: float) -> str:
    return f"{cancer}|{patients}|{seed}|{float(years)!r}"


def cache_directory() -> Path:
    """Where computed cohorts are kept for the user (see the module's docstring)."""
    explicit = os.environ.get("METASTASIS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "metastasis"


@cache
def _packaged() -> dict[str, Rows]:
    try:
        stored = json.loads(PACKAGED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint():
        return {}
    cohorts = stored.get("cohorts")
    return cohorts if isinstance(cohorts, dict) else {}


def forget_packaged() -> None:
    """Read the shipped file again at the next lookup (after a rebuild)."""
    _packaged.cache_clear()


def _cached_file(name: str) -> Path:
    safe = hashlib.sha256(name.encode()).hexdigest()[:32]
    return cache_directory() / f"guide-{fingerprint()[:16]}" / f"{safe}.json"


def load(name: str) -> Rows | None:
    """The stored rows of cohort ``name`` (a :func:`key`), or None if none match the code."""
    packaged = _packaged().get(name)
    if packaged is not None:
        return packaged
    try:
        stored = json.loads(_cached_file(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(stored, dict) and stored.get("key") == name
            and stored.get("fingerprint") == fingerprint()):
        return None
    rows = stored.get("rows")
    return rows if isinstance(rows, list) else None


def save(name: str, rows: Rows) -> None:
    """Keep cohort ``name`` in the user's cache; a cache that cannot be written is skipped
    (it only saves time)."""
    document = {"key": name, "fingerprint": fingerprint(), "rows": rows}
    try:
        path = _cached_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, json.dumps(document))
    except OSError:
        return


def kept(name: str, compute: Callable[[], Rows]) -> Rows:
    """The rows of cohort ``name``: stored if they match the code, else computed and kept."""
    rows = load(name)
    if rows is None:
        rows = compute()
        save(name, rows)
    return rows
