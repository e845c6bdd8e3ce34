"""The structure calibration needs (issue 9 item 2), each against what it claims.

* metastases grow on their own Gompertz curve: doubling time at the reference size is the
  primary's divided by the speed-up (closed form), and without a capacity of their own the
  law is exactly the old one;
* death from the whole burden (cachexia) comes on the first day the total burden reaches
  the patient's threshold, which is log-normal as stated;
* an untreated arm is diagnosed exactly as standard care (common random numbers) and then
  gets nothing;
* every cancer type's stage groups follow its AJCC table and every stage group can occur.
"""

from __future__ import annotations

import copy
import math
import tomllib
from importlib import resources
from typing import Any

import numpy as np
import pytest

from metastasis.api import load_model
from metastasis.calibration.validation import STANDARD_CARE, UNTREATED
from metastasis.clinical.course import NO_TREATMENT, simulate_course
from metastasis.clinical.loader import clinical_from_dict, load_clinical
from metastasis.clinical.observe import CROSSING_TOLERANCE_DAYS
from metastasis.clinical.schema import T_ORDER
from metastasis.clinical.staging import stage
from metastasis.clinical.symptoms import draw_cachexia_threshold
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.knowledge.loader import from_dict
from metastasis.model.growth import gompertz_rate
from metastasis.model.resolve import resolve

CANCERS = ("colorectal", "pancreatic", "gastric", "breast", "nsclc", "prostate", "melanoma",
           "renal_cell")


def _clinical_raw() -> dict[str, Any]:
    text = resources.files("metastasis.knowledge.data").joinpath("clinical.toml").read_text()
    return tomllib.loads(text)


def _doubling_at(rate: float, capacity: float, size: float) -> float:
    return math.log(2.0) / (rate * math.log(capacity / size))


# ---------------------------------------------------------------- growth of metastases


@pytest.mark.parametrize("cancer", CANCERS)
def test_a_metastasis_doubles_speedup_times_faster_at_the_reference_size(default_raw, cancer):
    model = load_model(cancer)
    growth = default_raw["cancers"][cancer].get("growth", {})
    defaults = default_raw["cancer_defaults"]["growth"]
    value = {k: (growth.get(k) or defaults[k])["value"] for k in
             ("doubling_time_days", "reference_size_cells", "metastasis_speedup",
              "metastasis_capacity_cells")}
    primary = _doubling_at(model.primary_rate, model.primary_capacity,
                           value["reference_size_cells"])
    metastasis = _doubling_at(model.metastasis_rate, model.metastasis_capacity,
                              value["reference_size_cells"])
    assert primary == pytest.approx(value["doubling_time_days"], rel=1e-12)
    assert metastasis == pytest.approx(primary / value["metastasis_speedup"], rel=1e-12)
    assert model.metastasis_capacity == value["metastasis_capacity_cells"]


def test_without_a_capacity_of_their_own_metastases_follow_the_old_law(default_raw):
    raw = copy.deepcopy(default_raw)
    del raw["cancer_defaults"]["growth"]["metastasis_capacity_cells"]
    model = resolve(from_dict(raw), "colorectal")
    assert model.metastasis_capacity == model.primary_capacity
    speedup = raw["cancers"]["colorectal"]["growth"]["metastasis_speedup"]["value"]
    assert model.metastasis_rate == pytest.approx(model.primary_rate * speedup, rel=1e-12)


def test_the_colorectal_capacity_gives_finlays_occult_and_overt_doubling_times():
    """The source of the default capacity: 86 d occult (1e9 cells), about 155 d overt
    (3e10-1e11 cells: the claimed 136 d and 172 d bracket it)."""
    model = load_model("colorectal")
    rate, capacity = model.metastasis_rate, model.metastasis_capacity
    assert _doubling_at(rate, capacity, 1e9) == pytest.approx(86.0, rel=0.01)
    assert _doubling_at(rate, capacity, 3e10) == pytest.approx(136.0, rel=0.01)
    assert _doubling_at(rate, capacity, 1e11) == pytest.approx(172.0, rel=0.01)
    assert gompertz_rate(86.0, 1e9, capacity) == pytest.approx(rate, rel=0.01)


# ---------------------------------------------------------------- cachexia


def test_cachexia_thresholds_are_log_normal_as_stated():
    """log10 of 20,000 drawn thresholds: mean and sd within 5 standard errors of the rule's
    median and spread (standard errors 0.002 and 0.0015 here)."""
    clinical = load_clinical()
    rule = clinical.outcomes.cachexia_rule("pancreatic")
    assert rule is not None
    rng = np.random.default_rng(20261129)
    logs = np.log10([draw_cachexia_threshold(clinical, "pancreatic", rng)[0]
                     for _ in range(20_000)])
    spread = rule.log10_spread.value
    standard_error = spread / math.sqrt(logs.size)
    assert abs(logs.mean() - math.log10(rule.median_threshold_cells.value)) < 5 * standard_error
    assert abs(logs.std(ddof=1) - spread) < 5 * spread / math.sqrt(2 * (logs.size - 1))


def test_a_cancer_type_without_its_own_rule_takes_the_default():
    raw = _clinical_raw()
    del raw["outcomes"]["cachexia"]["breast"]  # every shipped type has its own entry
    clinical = clinical_from_dict(raw)
    assert clinical.outcomes.cachexia_rule("breast") == clinical.outcomes.cachexia["default"]
    assert load_clinical().outcomes.cachexia_rule("breast") != clinical.outcomes.cachexia[
        "default"]
    del raw["outcomes"]["cachexia"]
    bare = clinical_from_dict(raw)
    assert draw_cachexia_threshold(bare, "breast", np.random.default_rng(1)) is None


def test_death_by_cachexia_comes_on_the_day_the_whole_burden_reaches_the_threshold():
    """With no spread every patient's threshold is the median: the total burden crosses it
    exactly on the recorded day of death (to the crossing search's tolerance)."""
    raw = _clinical_raw()
    median = 5e10
    raw["outcomes"]["cachexia"]["default"]["median_threshold_cells"]["value"] = median
    raw["outcomes"]["cachexia"]["default"]["log10_spread"]["value"] = 0.0
    raw["outcomes"]["cachexia"].pop("colorectal", None)  # its fitted rule: the default serves
    clinical = clinical_from_dict(raw)
    model, treatments = load_model("colorectal"), load_treatments()
    checked = 0
    for index in range(40):
        result = simulate_course(model, clinical, treatments, 7, index, 30.0, UNTREATED)
        if result.cause_of_death != clinical.outcomes.cachexia["default"].label:
            continue
        table, day = result.patient.lesions, float(result.death_day)
        slack = 1e3 * CROSSING_TOLERANCE_DAYS
        assert table.size_at(day - slack).sum() < median <= table.size_at(day + slack).sum()
        checked += 1
    assert checked >= 5


# ---------------------------------------------------------------- the untreated arm


def test_the_untreated_arm_is_diagnosed_as_standard_care_and_then_left_alone():
    model, clinical, treatments = load_model("colorectal"), load_clinical(), load_treatments()
    compared = 0
    for index in range(12):
        treated = simulate_course(model, clinical, treatments, 3, index, 25.0, STANDARD_CARE)
        untreated = simulate_course(model, clinical, treatments, 3, index, 25.0, UNTREATED)
        assert untreated.diagnosis == treated.diagnosis
        if untreated.diagnosis is None:
            continue
        compared += 1
        assert untreated.treatment == () and untreated.protocol == NO_TREATMENT
        assert treated.treatment
    assert compared >= 5


# ---------------------------------------------------------------- stage groups


@pytest.mark.parametrize(("cancer", "diameter", "nodes", "group"), [
    ("colorectal", 15.0, 0, "I"),    # T2 N0
    ("breast", 30.0, 0, "II"),       # T2 N0: IIA
    ("breast", 15.0, 2, "II"),       # T1 N1: IIA
    ("nsclc", 40.0, 0, "I"),         # T2 N0
    ("nsclc", 60.0, 0, "II"),        # T3 N0: IIB
    ("pancreatic", 30.0, 1, "II"),   # T2 N1: IIB
    ("renal_cell", 200.0, 0, "IV"),  # T4 N0: IV without distant spread
    ("prostate", 20.0, 1, "IV"),     # N1: IVA
    ("gastric", 10.0, 1, "II"),      # cT1 N+: IIA
])
def test_stage_groups_follow_each_types_ajcc_table(cancer, diameter, nodes, group):
    clinical = load_clinical()
    found = stage(diameter, True, nodes, [], cutoffs=clinical.t_cutoffs(cancer),
                  groups=clinical.groups(cancer))
    assert found.group == group
    assert found.summary == ("localized" if nodes == 0 else "regional")


@pytest.mark.parametrize("cancer", CANCERS)
def test_every_stage_group_can_occur_for_every_type(cancer):
    clinical = load_clinical()
    groups = clinical.groups(cancer)
    assert groups is not None
    cutoffs = clinical.t_cutoffs(cancer)
    sizes = {"T1": cutoffs.t1_max_mm.value / 2, "T2": cutoffs.t2_max_mm.value,
             "T3": cutoffs.t3_max_mm.value, "T4": cutoffs.t3_max_mm.value * 2}
    seen = {stage(sizes[t], True, nodes, [], cutoffs=cutoffs, groups=groups).group
            for t in T_ORDER[1:] for nodes in (0, 1, 5)}
    seen.add(stage(10.0, True, 0, ["liver"], cutoffs=cutoffs, groups=groups).group)
    assert seen == {"I", "II", "III", "IV"}
