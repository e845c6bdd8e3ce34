"""Output files that appear whole or not at all: the package's one writer.

Every file the program writes (tables, sidecars, reports, figures, the guide's cache, a
dataset's parts and manifest) is first written under a temporary name beside its target and
renamed onto it only when complete.  A rename within one folder is atomic, so a reader never
sees half a file, and an error half-way (bad input found late, a full disk, Ctrl-C) leaves
the target as it was.  A multi-file output (a table with its sidecars) is written entirely
aside and moved in only once every file is complete, the most important file last.

Temporary names are hidden, short (so that any name the final file may have fits beside
them) and carry the writing process's id: ``.metastasis-<pid>-<random>.partial<suffix>``.
They are removed when the block fails; a process killed outright (``kill -9``) cannot remove
them, so :func:`remove_stale` removes, before each write into a folder, those whose process
is gone.

Kept free of the rest of the package (no imports from it), so that every layer, the guide
and the results included, can write through it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMPORARY_PREFIX = ".metastasis-"
_TEMPORARY = re.compile(r"^\.metastasis-(\d+)-[0-9a-f]{12}\.partial")
"""A temporary name of this module, with the id of the process that made it."""


def temporary_beside(path: Path) -> Path:
    """A fresh temporary name in ``path``'s folder, with ``path``'s suffix (so that writers
    that infer a format from the suffix, such as matplotlib, still do)."""
    suffix = path.suffix[:16]
    return path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
                          f".partial{suffix}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a check that cannot be made: keep the file
    return True


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporaries in ``folder`` left by processes that no longer run (killed
    before they could clean up); returns what was removed.  A process id reused by another
    program keeps its files: the safe direction."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        _remove(entry)
        removed.append(entry)
    return removed


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


@contextlib.contextmanager
def staged(*paths: Path, clear_stale: bool = True) -> Iterator[list[Path]]:
    """Temporary paths beside ``paths``, moved onto them in the order given only if the
    block succeeds (put the file whose presence means "done" last); removed in any case.

    The temporaries are only named, not created, so that writers create them with the
    user's usual permissions.  An ``OSError`` (a folder that cannot be written, a full disk)
    propagates for the caller to report in its own terms.  ``clear_stale=False`` skips
    :func:`remove_stale` (a writer of many files into one folder clears it once, first).
    """
    if clear_stale:
        for folder in {_folder(Path(path)) for path in paths}:
            remove_stale(folder)
    temporaries = [temporary_beside(Path(path)) for path in paths]
    try:
        yield temporaries
        for temporary, path in zip(temporaries, paths, strict=True):
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            _remove(temporary)


def _remove(path: Path) -> None:
    """Remove a file or a folder, if it is there."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_folder(path: Path, *, last: str) -> Iterator[Path]:
    """A temporary folder whose files become the folder ``path``'s if the block succeeds.

    A new ``path`` is the temporary folder renamed (atomic); an existing one, which may hold
    other files, receives the files one by one, ``last`` (the file whose presence means
    "done", such as a report's page) last.
    """
    remove_stale(_folder(path))
    staging = temporary_beside(path)
    try:
        staging.mkdir()
        yield staging
        if path.is_dir():
            names = sorted(p.name for p in staging.iterdir() if p.name != last)
            for name in [*names, last]:
                os.replace(staging / name, path / name)
        else:
            os.replace(staging, path)
    finally:
        _remove(staging)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with staged(path) as (temporary,):
        temporary.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with staged(path) as (temporary,):
        temporary.write_bytes(data)
