"""Staging rules, case by case at every boundary, and the names of diagnoses.

The rule under test (metastasis.clinical.staging): Tis if not invaded; invaded T1, T2, T3 up
to the cancer type's cut-offs ([staging] in clinical.toml; default T1 <= 20 mm, T2 <= 50 mm,
T3 <= 100 mm; colorectal T1 <= 10 mm, T2 <= 25 mm, T3 <= 60 mm), T4 above; N0 / N1 (1-3
nodes) / N2 (4+); M1 if any distant site was found; groups I (Tis-T2 N0 M0), II (T3-4 N0 M0),
III (N+ M0), IV (M1); summary localized / regional / distant.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from metastasis.clinical.loader import check_against, clinical_from_dict, load_clinical
from metastasis.clinical.schema import DEFAULT_STAGING, TCutoffs
from metastasis.clinical.staging import N2_MIN_NODES, Stage, diagnosis_name, stage
from metastasis.errors import ModelError
from metastasis.knowledge.loader import load

CLINICAL = load_clinical()
DEFAULT = CLINICAL.staging[DEFAULT_STAGING]
COLORECTAL = CLINICAL.t_cutoffs("colorectal")

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
    got = stage(diameter, invaded, nodes, distant, cutoffs=DEFAULT)
    assert got == Stage(t, n, m, group, summary)


def test_rule_constants_are_the_documented_ones() -> None:
    """The boundaries the cases above test are the sourced default cut-offs of the data."""
    assert (DEFAULT.t1_max_mm.value, DEFAULT.t2_max_mm.value, DEFAULT.t3_max_mm.value) == (
        20.0,
        50.0,
        100.0,
    )
    assert N2_MIN_NODES.value == 4.0
    for constant in (DEFAULT.t1_max_mm, DEFAULT.t2_max_mm, N2_MIN_NODES):
        assert "AJCC" in constant.source
    assert DEFAULT.t3_max_mm.source.startswith("assumption:")


# ---------------------------------------------------------------- per-cancer T cut-offs


COLORECTAL_CASES = [
    # diameter -> colorectal T, group (invaded, N0 M0)
    (10.0, "T1", "I"),
    (math.nextafter(10.0, math.inf), "T2", "I"),
    (19.0, "T2", "I"),
    (math.nextafter(19.0, math.inf), "T3", "II"),
    (25.0, "T3", "II"),
    (30.0, "T3", "II"),
    (40.0, "T3", "II"),
    (60.0, "T3", "II"),
    (math.nextafter(60.0, math.inf), "T4", "II"),
]


@pytest.mark.parametrize(("diameter", "t", "group"), COLORECTAL_CASES)
def test_colorectal_cut_offs(diameter: float, t: str, group: str) -> None:
    assert stage(diameter, True, 0, [], cutoffs=COLORECTAL) == Stage(
        t, "N0", "M0", group, "localized"
    )


def test_a_symptomatic_sized_cancer_is_t3_in_the_colon_and_t2_in_the_breast() -> None:
    """30 mm, invaded, N0 M0: stage II colorectal (most are T3 at diagnosis), stage I breast."""
    colon = stage(30.0, True, 0, [], cutoffs=CLINICAL.t_cutoffs("colorectal"))
    breast = stage(30.0, True, 0, [], cutoffs=CLINICAL.t_cutoffs("breast"))
    assert (colon.tnm, colon.group) == ("T3 N0 M0", "II")
    assert (breast.tnm, breast.group) == ("T2 N0 M0", "I")


def test_colorectal_cut_offs_are_sourced_assumptions() -> None:
    """Colorectal T is depth of invasion in real TNM; the size stand-in says so, and the
    T2/T3 boundary says it was placed by hand against the registry's stage shares."""
    values = (COLORECTAL.t1_max_mm, COLORECTAL.t2_max_mm, COLORECTAL.t3_max_mm)
    assert tuple(c.value for c in values) == (10.0, 19.0, 60.0)
    assert COLORECTAL.t1_max_mm.source.startswith("assumption:")
    assert COLORECTAL.t3_max_mm.source.startswith("assumption:")
    assert COLORECTAL.t2_max_mm.source.startswith("calibrated by hand")
    assert "NCIN" in COLORECTAL.t2_max_mm.source
    assert "depth of invasion" in COLORECTAL.t1_max_mm.source


def test_a_cancer_without_its_own_cut_offs_takes_the_default() -> None:
    assert "breast" not in CLINICAL.staging
    assert CLINICAL.t_cutoffs("breast") == DEFAULT
    assert CLINICAL.t_cutoffs("colorectal") != DEFAULT


def _raw() -> dict[str, Any]:
    return copy.deepcopy(CLINICAL.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("t2_max_mm", 10.0, "t2_max_mm"),  # equal to t1: T2 would be empty
        ("t2_max_mm", 5.0, "t2_max_mm"),
        ("t3_max_mm", 15.0, "t3_max_mm"),
        ("t1_max_mm", 30.0, "t2_max_mm"),  # t1 above t2: t2 is the one out of order
    ],
)
def test_cut_offs_out_of_order_are_model_errors(field: str, value: float, named: str) -> None:
    raw = _raw()
    raw["staging"]["colorectal"][field]["value"] = value
    with pytest.raises(ModelError) as caught:
        clinical_from_dict(raw)
    assert caught.value.field == f"staging.colorectal.{named}"
    assert "increase strictly" in caught.value.allowed


def test_cut_offs_must_be_positive_and_complete() -> None:
    raw = _raw()
    raw["staging"]["colorectal"]["t1_max_mm"]["value"] = 0.0
    with pytest.raises(ModelError) as caught:
        clinical_from_dict(raw)
    assert caught.value.field.startswith("staging.colorectal.t1_max_mm")
    raw = _raw()
    del raw["staging"]["colorectal"]["t3_max_mm"]  # entries are complete, never merged
    with pytest.raises(ModelError) as caught:
        clinical_from_dict(raw)
    assert caught.value.field.startswith("staging.colorectal.t3_max_mm")


def test_the_default_cut_offs_are_required() -> None:
    raw = _raw()
    del raw["staging"][DEFAULT_STAGING]
    with pytest.raises(ModelError) as caught:
        clinical_from_dict(raw)
    assert caught.value.field == "staging"
    assert "[staging.default]" in caught.value.allowed
    raw = _raw()
    del raw["staging"]
    with pytest.raises(ModelError, match="staging"):
        clinical_from_dict(raw)


def test_unknown_cancer_under_staging_is_rejected() -> None:
    raw = _raw()
    raw["staging"]["colon"] = raw["staging"]["colorectal"]
    clinical = clinical_from_dict(raw)  # valid on its own: names are checked against a model
    with pytest.raises(ModelError) as caught:
        check_against(clinical, load())
    assert (caught.value.field, caught.value.value) == ("staging", "colon")
    assert "colorectal" in caught.value.allowed


GROUP_ORDER = {"I": 1, "II": 2, "III": 3, "IV": 4}


@pytest.mark.parametrize("cutoffs", [DEFAULT, COLORECTAL], ids=["default", "colorectal"])
@pytest.mark.parametrize("invaded", [False, True])
@pytest.mark.parametrize("diameter", [5.0, 20.0, 35.0, 50.0, 80.0])
def test_more_spread_never_lowers_the_stage(
    diameter: float, invaded: bool, cutoffs: TCutoffs
) -> None:
    """Node involvement raises the stage; a distant metastasis raises it to IV."""
    local = stage(diameter, invaded, 0, [], cutoffs=cutoffs)
    for nodes in (1, 3, 4, 10):
        nodal = stage(diameter, invaded, nodes, [], cutoffs=cutoffs)
        assert GROUP_ORDER[nodal.group] > GROUP_ORDER[local.group]
        assert stage(diameter, invaded, nodes, ["bone"], cutoffs=cutoffs).group == "IV"
    assert (
        GROUP_ORDER[stage(diameter, True, 0, [], cutoffs=cutoffs).group]
        >= GROUP_ORDER[stage(diameter, False, 0, [], cutoffs=cutoffs).group]
    )


def test_tnm_string() -> None:
    assert stage(30.0, True, 2, [], cutoffs=DEFAULT).tnm == "T2 N1 M0"


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
        stage(diameter, False, nodes, [], cutoffs=DEFAULT)
    assert caught.value.field == field


def test_names() -> None:
    localized = stage(60.0, True, 0, [], cutoffs=DEFAULT)
    assert diagnosis_name("colon cancer", localized, []) == "colon cancer, stage II (localized)"
    early = stage(15.0, False, 0, [], cutoffs=DEFAULT)
    assert diagnosis_name("breast cancer", early, []) == "breast cancer, stage I (localized)"
    regional = stage(15.0, True, 2, [], cutoffs=DEFAULT)
    assert diagnosis_name("lung cancer", regional, []) == "lung cancer, stage III (regional)"
    distant = stage(30.0, True, 1, ["liver", "lungs"], cutoffs=DEFAULT)
    assert (
        diagnosis_name("colon cancer", distant, ["liver", "lungs", "liver"])
        == "metastatic colon cancer (liver, lungs)"
    )
    assert diagnosis_name("melanoma", distant, []) == "metastatic melanoma"


def test_a_diagnosis_with_distant_nodes_only_is_stage_iv() -> None:
    """Distant lymph nodes are distant metastases (AJCC M1a), in the course as in
    :func:`stage`: the course once passed over them, so a patient whose scans found only
    distant nodes beyond the regional ones was staged M0.  The first such patient of a
    seeded lung cohort (stories end at diagnosis) is M1, named with the distant nodes."""
    from metastasis.api import load_model
    from metastasis.clinical.course import Arm, simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments

    model, clinical, treatments = load_model("nsclc"), load_clinical(), load_treatments()
    at_diagnosis = Arm(follow_up=False)
    for index in range(600):
        result = simulate_course(model, clinical, treatments, 17, index, 30.0, at_diagnosis)
        dx = result.diagnosis
        if dx is None:
            continue
        sites = {f.site for f in dx.findings if f.lesion != 0}
        if "distant_lymph_nodes" in sites:
            assert dx.stage.m == "M1" and dx.stage.group == "IV"
            assert "distant_lymph_nodes" in dx.distant_sites_found
            assert dx.metastases_found >= 1
            return
    pytest.fail("no lung patient of 600 had distant nodes found at diagnosis")
