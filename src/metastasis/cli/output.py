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


def check_writable(path: Path) -> None:
    """Fail before any work if ``path`` cannot be created (missing folder, a directory)."""
    if path.is_dir():
        raise ModelError("--out", str(path), "a file path, not a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ModelError("--out", str(path), f"a path in an existing folder ({parent} is missing)")


@contextlib.contextmanager
def staged(path: Path) -> Iterator[Path]:
    """Yield a temporary path with the same suffix; move it onto ``path`` on success only."""
    check_writable(path)
    temporary = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise ModelError("--out", str(path), f"a writable file ({exc.strerror})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with staged(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
