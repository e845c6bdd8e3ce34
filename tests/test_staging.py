"""Staging rules, case by case at every boundary, and the names of diagnoses.

The rule under test (metastasis.clinical.staging): Tis if not invaded; invaded T1 <= 20 mm,
T2 <= 50 mm, T3 <= 100 mm, T4 above; N0 / N1 (1-3 nodes) / N2 (4+); M1 if any distant site
was found; groups I (Tis-T2 N0 M0), II (T3-4 N0 M0), III (N+ M0), IV (M1); summary
localized / regional / distant.
"""

from __future__ import annotations

import math

import pytest

from metastasis.clinical.staging import (
    N2_MIN_NODES,
    T1_MAX_MM,
    T2_MAX_MM,
    Stage,
    diagnosis_name,
    stage,
)
from metastasis.errors import ModelError

JUST_ABOVE_20 = math.nextafter(20.0, math.inf)
JUST_ABOVE_50 = math.nextafter(50.0, math.inf)

JUST_ABOVE_100 = math.nextafter(100.0, math.inf)

CASES = [
    # diameter, invaded, nodes, distant sites -> T, N, M, group, summary
    # not invaded: in situ whatever the size
    (0.0, False, 0, [], "Tis", "N0", "M0", "I", "localized"),
    (120.0, False, 0, [], "Tis", "N0", "M0", "I", "localized"),
    (12.4, True, 0, [], "T1", "N0", "M0", "I", "localized"),
    (20.0, True, 0, [], "T1", "N0", "M0", "I", "localized"),
    (JUST_ABOVE_20, True, 0, [], "T2", "N0", "M0", "I", "localized"),
    (50.0, True, 0, [], "T2", "N0", "M0", "I", "localized"),
    (JUST_ABOVE_50, True, 0, [], "T3", "N0", "M0", "II", "localized"),
    (100.0, True, 0, [], "T3", "N0", "M0", "II", "localized"),
    (JUST_ABOVE_100, True, 0, [], "T4", "N0", "M0", "II", "localized"),
    # nodes: N1 for 1-3, N2 from 4; any N+ without M is stage III
    (15.0, True, 1, [], "T1", "N1", "M0", "III", "regional"),
    (15.0, True, 3, [], "T1", "N1", "M0", "III", "regional"),
    (15.0, True, 4, [], "T1", "N2", "M0", "III", "regional"),
    (60.0, True, 12, [], "T3", "N2", "M0", "III", "regional"),
    # any distant metastasis is stage IV
    (15.0, True, 0, ["liver"], "T1", "N0", "M1", "IV", "distant"),
    (150.0, True, 2, ["liver", "lungs"], "T4", "N1", "M1", "IV", "distant"),
    (70.0, False, 5, ["distant_lymph_nodes"], "Tis", "N2", "M1", "IV", "distant"),
]


@pytest.mark.parametrize(
    ("diameter", "invaded", "nodes", "distant", "t", "n", "m", "group", "summary"), CASES
)
def test_staging_rules(
    diameter: float,
    invaded: bool,
    nodes: int,
    distant: list[str],
    t: str,
    n: str,
    m: str,
    group: str,
    summary: str,
) -> None:
    assert stage(diameter, invaded, nodes, distant) == Stage(t, n, m, group, summary)


def test_rule_constants_are_the_documented_ones() -> None:
    """The boundaries the cases above test are the sourced constants of the module."""
    assert (T1_MAX_MM.value, T2_MAX_MM.value, N2_MIN_NODES.value) == (20.0, 50.0, 4.0)
    for constant in (T1_MAX_MM, T2_MAX_MM, N2_MIN_NODES):
        assert "AJCC" in constant.source


GROUP_ORDER = {"I": 1, "II": 2, "III": 3, "IV": 4}


@pytest.mark.parametrize("invaded", [False, True])
@pytest.mark.parametrize("diameter", [5.0, 20.0, 35.0, 50.0, 80.0])
def test_more_spread_never_lowers_the_stage(diameter: float, invaded: bool) -> None:
    """Node involvement raises the stage; a distant metastasis raises it to IV."""
    local = stage(diameter, invaded, 0, [])
    for nodes in (1, 3, 4, 10):
        nodal = stage(diameter, invaded, nodes, [])
        assert GROUP_ORDER[nodal.group] > GROUP_ORDER[local.group]
        assert stage(diameter, invaded, nodes, ["bone"]).group == "IV"
    assert (
        GROUP_ORDER[stage(diameter, True, 0, []).group]
        >= GROUP_ORDER[stage(diameter, False, 0, []).group]
    )


def test_tnm_string() -> None:
    assert stage(30.0, True, 2, []).tnm == "T2 N1 M0"


@pytest.mark.parametrize(
    ("diameter", "nodes", "field"),
    [
        (-1.0, 0, "primary_diameter_mm"),
        (math.nan, 0, "primary_diameter_mm"),
        (math.inf, 0, "primary_diameter_mm"),
        (10.0, -1, "involved_nodes"),
    ],
)
def test_impossible_findings_are_model_errors(diameter: float, nodes: int, field: str) -> None:
    with pytest.raises(ModelError) as caught:
        stage(diameter, False, nodes, [])
    assert caught.value.field == field


def test_names() -> None:
    localized = stage(60.0, True, 0, [])
    assert diagnosis_name("colon cancer", localized, []) == "colon cancer, stage II (localized)"
    early = stage(15.0, False, 0, [])
    assert diagnosis_name("breast cancer", early, []) == "breast cancer, stage I (localized)"
    regional = stage(15.0, True, 2, [])
    assert diagnosis_name("lung cancer", regional, []) == "lung cancer, stage III (regional)"
    distant = stage(30.0, True, 1, ["liver", "lungs"])
    assert (
        diagnosis_name("colon cancer", distant, ["liver", "lungs", "liver"])
        == "metastatic colon cancer (liver, lungs)"
    )
    assert diagnosis_name("melanoma", distant, []) == "metastatic melanoma"
