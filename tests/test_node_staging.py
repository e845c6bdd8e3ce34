"""Node staging by pathology or by imaging (``workup.node_pathology_share``).

A type listed stages a share of its patients without distant metastases found on the nodes
a pathologist examines, the rest on imaging; the draw is made aside, so nothing else of a
patient's course moves with the share (common random numbers)."""

from __future__ import annotations

from functools import cache

import pytest
from scipy import stats

from metastasis.api import load_model
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import clinical_from_dict, load_clinical
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.errors import ModelError

SEED = 41
PATIENTS = 150
YEARS = 30.0
ALPHA = 0.001


def _with_share(share: float | None) -> ClinicalKnowledge:
    raw = load_clinical().model_dump()
    shares = raw["workup"]["node_pathology_share"]
    shares.pop("prostate", None)
    if share is not None:
        shares["prostate"] = {"value": share, "source": "test"}
    return clinical_from_dict(raw)


@cache
def _diagnoses(share: float | None) -> tuple[ClinicalResult, ...]:
    clinical, treatments, model = _with_share(share), load_treatments(), load_model("prostate")
    return tuple(simulate_course(model, clinical, treatments, SEED, index, YEARS,
                                 Arm(follow_up=False)) for index in range(PATIENTS))


def _imaged_nodes(result: ClinicalResult) -> int:
    assert result.diagnosis is not None
    return len({f.lesion for f in result.diagnosis.findings if f.site == "regional_lymph_nodes"})


def _n_of(count: int) -> str:
    return "N0" if count == 0 else ("N1" if count <= 3 else "N2")


def test_a_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ModelError, match="node_pathology_share"):
        _with_share(1.5)


def test_the_share_decides_only_how_the_nodes_are_staged() -> None:
    """Share 0: every M0 patient's N is what imaging found; share 1 (the rule of a type not
    listed): what pathology found, never fewer, and more for some patients.  Everything
    else of the diagnosis is the same patient's."""
    by_imaging, by_pathology, unlisted = _diagnoses(0.0), _diagnoses(1.0), _diagnoses(None)
    upgraded = 0
    for imaged, examined, default in zip(by_imaging, by_pathology, unlisted, strict=True):
        assert (imaged.diagnosis is None) == (examined.diagnosis is None)
        if imaged.diagnosis is None or examined.diagnosis is None:
            continue
        assert default.diagnosis == examined.diagnosis
        assert imaged.diagnosis.day == examined.diagnosis.day
        assert imaged.diagnosis.findings == examined.diagnosis.findings
        assert imaged.diagnosis.stage.t == examined.diagnosis.stage.t
        assert imaged.diagnosis.stage.m == examined.diagnosis.stage.m
        if imaged.diagnosis.stage.m == "M0":
            assert not imaged.diagnosis.nodes_by_pathology
            assert examined.diagnosis.nodes_by_pathology
            assert imaged.diagnosis.stage.n == _n_of(_imaged_nodes(imaged))
            assert examined.diagnosis.stage.n >= imaged.diagnosis.stage.n
            upgraded += examined.diagnosis.stage.n != imaged.diagnosis.stage.n
    assert upgraded >= 5, "too few patients with nodes only pathology finds to test"


def test_half_the_patients_are_staged_by_pathology_at_share_one_half() -> None:
    """Among the patients whose N differs between the two ways, the share-1/2 stage is
    pathology's in a Binomial(k, 1/2) number of them (two-sided exact test, alpha 0.001)."""
    by_imaging, by_pathology, half = _diagnoses(0.0), _diagnoses(1.0), _diagnoses(0.5)
    differ = pathology = 0
    for imaged, examined, mixed in zip(by_imaging, by_pathology, half, strict=True):
        if imaged.diagnosis is None or mixed.diagnosis is None:
            continue
        n = (imaged.diagnosis.stage.n, examined.diagnosis.stage.n)
        assert mixed.diagnosis.stage.n in n
        if n[0] != n[1]:
            differ += 1
            pathology += mixed.diagnosis.stage.n == n[1]
    assert differ >= 5
    assert stats.binomtest(pathology, differ, 0.5).pvalue > ALPHA
