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
