"""The guide's cohorts are kept, never stale: shipped with the package, else cached on disk.

The claims: the shipped file matches the code and the default knowledge as they are now
(else it must be rebuilt, and this test says how); a shipped cohort is the cohort a fresh
simulation gives; a cohort outside the shipped set is computed once, kept in the user's
cache and read back equal without simulating; a cache that cannot be written only costs
time; a stored cohort whose fingerprint differs is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metastasis.guide import figures, store
from metastasis.guide.settings import EXPLAIN_PATIENTS, GUIDE_PATIENTS, GUIDE_SEED, GUIDE_YEARS
from metastasis.knowledge.loader import load as load_knowledge


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("METASTASIS_CACHE_DIR", str(tmp_path / "cache"))
    figures.cohort.cache_clear()
    yield tmp_path / "cache"
    figures.cohort.cache_clear()


def test_the_shipped_cohorts_match_the_code() -> None:
    shipped = json.loads(store.PACKAGED.read_text(encoding="utf-8"))
    assert shipped["fingerprint"] == store.fingerprint(), (
        "the engine, model or default knowledge changed: rebuild the guide's cohorts with "
        "`python -m metastasis.guide.rebuild`")
    expected = {store.key(cancer, n, GUIDE_SEED, GUIDE_YEARS)
                for cancer in load_knowledge().cancers for n in (GUIDE_PATIENTS, EXPLAIN_PATIENTS)}
    assert set(shipped["cohorts"]) == expected


def test_a_shipped_cohort_is_a_fresh_simulation() -> None:
    name = store.key("breast", EXPLAIN_PATIENTS, GUIDE_SEED, GUIDE_YEARS)
    fresh = figures.simulate_digest_rows("breast", EXPLAIN_PATIENTS, GUIDE_SEED, GUIDE_YEARS)
    assert store.load(name) == json.loads(json.dumps(fresh))


def test_other_cohorts_are_cached_and_read_back(private_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first = figures.cohort("melanoma", 7, 11, 6.0)
    assert list(private_cache.rglob("*.json"))  # kept on disk
    figures.cohort.cache_clear()

    def no_simulation(*args: object) -> None:
        raise AssertionError("simulated again instead of reading the cache")

    monkeypatch.setattr("metastasis.api.run_patient", no_simulation)
    assert figures.cohort("melanoma", 7, 11, 6.0) == first


def test_an_unwritable_cache_only_costs_time(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("METASTASIS_CACHE_DIR", str(blocker))
    digest = figures.cohort("prostate", 3, 5, 4.0)
    assert digest.patients == 3 and len(digest.rows) == 3


def test_a_store_from_other_code_is_ignored(private_cache: Path) -> None:
    name = store.key("renal_cell", 4, 9, 5.0)
    store.save(name, [["nonsense"]])
    assert store.load(name) == [["nonsense"]]
    path = next(private_cache.rglob("*.json"))
    document = json.loads(path.read_text())
    document["fingerprint"] = "0" * 64
    path.write_text(json.dumps(document))
    assert store.load(name) is None


def test_shipped_figures_answer_without_the_engine(tmp_path) -> None:
    """`explain SITE` and guide sections read the shipped cohorts and the resolved model
    only: no simulation engine and no numba is imported (they cost a second or more to load,
    the difference between an answer in under a second and one in two)."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from metastasis.cli.app import main\n"
        "for argv in (['explain', 'liver'], ['guide', 'common-sites']):\n"
        "    sys.argv = ['metastasis', *argv]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "loaded = [m for m in ('numba', 'metastasis.engine.process') if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
    )
    env = {**os.environ, "METASTASIS_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout[-500:]
