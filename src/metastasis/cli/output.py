"""Writing output files so that a failed command leaves nothing behind.

Every file is written under a temporary name in the target folder and renamed into place
only once it is complete: an error half-way (bad input found late, a full disk, Ctrl-C)
never leaves a truncated results file that looks like a real one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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
    """Yield a temporary path with the same suffix; move it onto ``path`` on success only."""
    check_writable(path)
    # a short temporary name, so that any name the final file may have fits beside it
    temporary = path.with_name(f".metastasis-{uuid.uuid4().hex[:12]}.partial{path.suffix[:16]}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise ModelError("--out", shown(path), f"a writable file ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with staged(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
