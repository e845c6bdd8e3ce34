"""The public Python API for clinical cohorts, used as a reader of the README would use it.

``SNIPPET`` is the README's example, read from README.md and run as written (in a fresh
folder, with the protocol file that `metastasis protocol example --out` writes): every name
it uses is importable from ``metastasis`` itself.  The short way
(:func:`metastasis.clinical_cohort`, the packaged knowledge) and the explicit one
(:func:`metastasis.run_clinical_cohort` with its loaders) give the same patients, and
importing the package still loads none of the heavy modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import metastasis
from metastasis.cli.app import app
from metastasis.clinical.protocol_example import EXAMPLE_NAME, example_text

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPET_OPENS = "From Python, everything a clinical cohort needs is importable"


def readme_snippet() -> str:
    """The README's clinical-cohort example, read from the README itself (the first Python
    block after the sentence that introduces it), so the two cannot drift apart."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```python\n", text.index(SNIPPET_OPENS)) + len("```python\n")
    return text[start : text.index("```", start)]


SNIPPET = readme_snippet()


@pytest.fixture(scope="module")
def snippet_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The snippet's names after running it in a folder holding the example protocol."""
    folder = tmp_path_factory.mktemp("reader")
    result = CliRunner().invoke(app, ["protocol", "example", "--out",
                                      str(folder / "my-protocol.toml")])
    assert result.exit_code == 0, result.stderr
    names: dict[str, object] = {}
    here = Path.cwd()
    os.chdir(folder)
    try:
        exec(compile(SNIPPET, "README snippet", "exec"), names)
    finally:
        os.chdir(here)
    return names


def test_the_snippet_returns_cohorts(snippet_run: dict[str, object]) -> None:
    for name in ("cohort", "screened", "mine", "explicit"):
        cohort = snippet_run[name]
        assert isinstance(cohort, metastasis.ClinicalCohort), name
        assert len(cohort.patients) == 10 and cohort.cancer == "colorectal", name
    assert isinstance(snippet_run["table"], pd.DataFrame)
    summary = snippet_run["cohort"].summary()  # type: ignore[attr-defined]
    assert summary["patients"] == 10 and summary["diagnosed"] >= 1


def test_the_chosen_care_is_followed(snippet_run: dict[str, object]) -> None:
    mine = snippet_run["mine"].patients  # type: ignore[attr-defined]
    label = snippet_run["plans"]["my_colorectal_plan"].label  # type: ignore[index]
    assert set(mine.loc[mine["diagnosed"], "protocol"]) == {label}
    assert snippet_run["screened"].arm == "screening, default plan by stage"  # type: ignore[attr-defined]


def test_the_short_way_and_the_explicit_one_give_the_same_patients(
    snippet_run: dict[str, object],
) -> None:
    """Same seed, same arm: the same patients, whichever way the cohort was asked for (the
    two differ only in the arm's name)."""
    short = snippet_run["screened"].patients.drop(columns="arm")  # type: ignore[attr-defined]
    explicit = snippet_run["explicit"].patients.drop(columns="arm")  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(short, explicit)


def test_the_clinical_package_exports_the_same_names() -> None:
    from metastasis.clinical import Arm, clinical_cohort, load_protocols, run_clinical_cohort

    assert run_clinical_cohort is metastasis.run_clinical_cohort
    assert clinical_cohort is metastasis.clinical_cohort
    assert Arm is metastasis.Arm and load_protocols is metastasis.load_protocols
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        metastasis.clinical.nothing_here  # noqa: B018


def test_a_protocol_for_another_cancer_is_refused_before_any_patient(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(example_text(), encoding="utf-8")
    plan = metastasis.load_protocols(path)[EXAMPLE_NAME]  # declared for colorectal only
    with pytest.raises(metastasis.ModelError) as caught:
        metastasis.clinical_cohort("nsclc", 2, seed=1, years=5, protocol=plan)
    assert caught.value.field == "protocol.cancers" and caught.value.value == "nsclc"


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import metastasis, metastasis.clinical\n"
        "assert 'clinical_cohort' in dir(metastasis) and 'Arm' in dir(metastasis.clinical)\n"
        "heavy = ('numba', 'pandas', 'scipy', 'metastasis.engine.process', 'metastasis.api')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_short_way_gives_the_command_lines_patients(
    snippet_run: dict[str, object], tmp_path: Path,
) -> None:
    """`clinical_cohort(..., screening=True)` is `metastasis cohort --screening` in Python:
    the same arm name and the same patients' stages and deaths."""
    out = tmp_path / "cohort.csv"
    result = CliRunner().invoke(app, ["cohort", "--cancer", "colorectal", "--patients", "10",
                                      "--seed", "1", "--years", "20", "--screening",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.stderr + result.stdout
    cli = pd.read_csv(out.with_name("cohort.clinical.csv"))
    api = snippet_run["screened"].patients  # type: ignore[attr-defined]
    assert list(cli["arm"].unique()) == list(api["arm"].unique())
    def plain(column: pd.Series) -> list[object]:  # a CSV reads an undiagnosed stage as NaN
        return column.astype(object).where(column.notna(), None).tolist()

    for column in ("patient_index", "diagnosed", "stage_group", "died"):
        assert plain(cli[column]) == plain(api[column]), column
    pd.testing.assert_series_equal(cli["death_day"], api["death_day"], check_dtype=False)
