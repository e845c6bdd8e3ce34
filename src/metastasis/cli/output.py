"""Writing the CLI's output files so that a failed command leaves nothing behind.

Every file goes through :mod:`metastasis.atomic` (written aside, renamed into place once
complete); this module adds what the command line needs: checking ``--out`` before any work,
and reporting a failure as one line naming the option.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from metastasis import atomic
from metastasis.errors import ModelError

NAME_MAX_FALLBACK = 255
"""Longest file name, in bytes, where the file system does not say (Linux, macOS and
Windows all allow 255)."""


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return NAME_MAX_FALLBACK


SHOWN_CHARS = 80
"""Longest value an error message quotes whole: a longer one is shortened in the middle, so
that the message stays one readable line."""


def shown(value: object) -> str:
    """``value`` as an error quotes it: whole, or its two ends around an ellipsis."""
    text = str(value)
    half = (SHOWN_CHARS - 3) // 2
    return text if len(text) <= SHOWN_CHARS else f"{text[:half]}...{text[-half:]}"


def check_writable(path: Path, option: str = "--out") -> None:
    """Fail before any work if ``path`` cannot be created: a directory, a missing folder, a
    name longer than the file system allows."""
    parent = path.parent if str(path.parent) else Path(".")
    limit = _name_max(parent)
    if len(os.fsencode(path.name)) > limit:
        raise ModelError(option, shown(path), f"a file name of at most {limit} bytes")
    try:
        if path.is_dir():
            raise ModelError(option, shown(path), "a file path, not a directory")
        if not parent.is_dir():
            raise ModelError(option, shown(path),
                             f"a path in an existing folder ({shown(parent)} is missing)")
    except OSError as exc:  # a folder name too long, or a folder that cannot be read
        raise ModelError(option, shown(path), f"a path that can be written ({exc.strerror})"
                         ) from None


@contextlib.contextmanager
def staged(path: Path) -> Iterator[Path]:
    """Yield a temporary path with the same suffix; move it onto ``path`` on success only
    (:func:`metastasis.atomic.staged`, with the CLI's checks and errors)."""
    check_writable(path)
    try:
        with atomic.staged(path) as (temporary,):
            yield temporary
    except OSError as exc:
        raise ModelError("--out", shown(path), f"a writable file ({exc.strerror})") from None


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    write_texts({path: text})


def write_texts(files: dict[Path, str]) -> None:
    """Write several files as one output: all of them or none, moved in in the order given
    (put the main file last)."""
    for path in files:
        check_writable(path)
    try:
        with atomic.staged(*files) as temporaries:
            for temporary, text in zip(temporaries, files.values(), strict=True):
                temporary.write_text(text, encoding="utf-8")
    except OSError as exc:
        path = list(files)[-1]
        raise ModelError("--out", shown(path), f"a writable file ({exc.strerror})") from None
