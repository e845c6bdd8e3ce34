"""Shared test settings: reproducible Hypothesis runs and the knowledge-base files.

Every stochastic test in this suite is seeded so that a failure is a finding, never noise:
Hypothesis is derandomized (its examples follow from the test's source), and the
verification tests draw their patients from fixed root seeds.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "metastasis",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("metastasis")


def _knowledge_file(name: str) -> Path:
    return Path(str(resources.files("metastasis.knowledge.data").joinpath(name)))


def _knowledge_raw(name: str) -> dict[str, Any]:
    return tomllib.loads(_knowledge_file(name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def iwata_path() -> Path:
    """Path of the shipped Iwata 2000 knowledge base."""
    return _knowledge_file("iwata2000.toml")


@pytest.fixture(scope="session")
def default_raw() -> dict[str, Any]:
    """The default knowledge base as plain data (callers must copy before modifying)."""
    return _knowledge_raw("default.toml")


@pytest.fixture(scope="session")
def iwata_raw() -> dict[str, Any]:
    """The Iwata 2000 knowledge base as plain data (callers must copy before modifying)."""
    return _knowledge_raw("iwata2000.toml")


@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide's cohort cache (metastasis.guide.store) of this test run: a fresh folder,
    never the user's own ``~/.cache`` (subprocesses inherit it through the environment)."""
    import os

    folder = tmp_path_factory.mktemp("user-cache")
    previous = os.environ.get("METASTASIS_CACHE_DIR")
    os.environ["METASTASIS_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("METASTASIS_CACHE_DIR", None)
    else:
        os.environ["METASTASIS_CACHE_DIR"] = previous


def pytest_configure(config: pytest.Config) -> None:
    """Where the fuzz suites count their inputs (the controller sets it; workers inherit)."""
    import os
    import tempfile

    from fuzzcount import FOLDER_VARIABLE

    if not hasattr(config, "workerinput") and FOLDER_VARIABLE not in os.environ:
        os.environ[FOLDER_VARIABLE] = tempfile.mkdtemp(prefix="metastasis-fuzz-counts-")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    """Print how many generated inputs the fuzz suites ran (issue 10, item 5)."""
    import os
    import shutil

    from fuzzcount import FOLDER_VARIABLE, fuzz_totals

    folder = os.environ.get(FOLDER_VARIABLE)
    if not folder or hasattr(config, "workerinput"):
        return
    totals = fuzz_totals(Path(folder))
    shutil.rmtree(folder, ignore_errors=True)
    if totals:
        parts = ", ".join(f"{label} {count:,}" for label, count in sorted(totals.items()))
        terminalreporter.write_line(
            f"fuzzed inputs: {parts}; {sum(totals.values()):,} in all")
