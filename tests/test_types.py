"""The package type-checks: mypy, as configured in pyproject.toml, finds no error.

Run as a test so that the README's one test command is the whole of CI's checking.  About
20 s on a fresh machine, a few seconds with mypy's cache (``.mypy_cache``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_package() -> None:
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"),
        str(ROOT / "src" / "metastasis"),
    ])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
    assert "Success: no issues found" in stdout
