"""Treatment: protocols as data, their validation, and their exact effect on the process.

Statistical tests are seeded (fixed root seeds) and use exact binomial or Poisson tests, or
Kolmogorov-Smirnov tests, at significance level ALPHA = 0.001, so a failure is a finding, not
noise.  Closed-form checks
compare the engine's lesion sizes with Gompertz regrowth to a relative tolerance of 1e-9.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import tomllib
from typing import Any

import numpy as np
import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from metastasis.api import load_model
from metastasis.clinical.course import Arm, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment import (
    PatientTraits,
    apply_protocol,
    default_protocol,
    draw_traits,
    response_words,
    share_words,
)
from metastasis.clinical.treatment_schema import (
    STAGE_GROUPS,
    Protocol,
    TreatmentKnowledge,
    load_protocols,
    load_treatments,
    protocols_from_dict,
    protocols_to_dict,
    treatments_from_dict,
    write_protocols,
)
from metastasis.engine.process import MUTATION_ROUTE, DiseaseProcess
from metastasis.engine.seeds import clinical_generator, patient_generator
from metastasis.errors import ModelError
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.model.growth import gompertz_size

ALPHA = 0.001
REL = 1e-9
SEED = 20240601
SOURCE = "test: a value chosen for this test"


# ---------------------------------------------------------------------------- helpers
@functools.cache
def _default_treatments() -> TreatmentKnowledge:
    return load_treatments()


@pytest.fixture(scope="module")
def treatments() -> TreatmentKnowledge:
    return _default_treatments()


def sourced(value: float) -> dict[str, Any]:
    return {"value": value, "source": SOURCE}


def course_step(
    modality: str, therapy: str, start: float = 0.0, cycles: float = 4, interval: float = 21
) -> dict[str, Any]:
    return {
        "modality": modality,
        "therapy": therapy,
        "start_day": sourced(start),
        "cycles": sourced(cycles),
        "interval_days": sourced(interval),
    }


def radiation_step(therapy: str, sites: list[str], start: float = 0.0) -> dict[str, Any]:
    return {
        "modality": "radiation",
        "therapy": therapy,
        "start_day": sourced(start),
        "sites": sites,
        "dose_gy": sourced(20),
        "fractions": sourced(1),
    }


def surgery_step(start: float = 0.0, **flags: bool) -> dict[str, Any]:
    return {"modality": "surgery", "therapy": "resection", "start_day": sourced(start), **flags}


def protocol(
    treatments: TreatmentKnowledge, cancers: list[str], *steps: dict[str, Any]
) -> Protocol:
    raw = {"protocols": {"test": {"label": "test", "cancers": cancers, "steps": list(steps)}}}
    return protocols_from_dict(raw, treatments)["test"]


def with_therapy(treatments: TreatmentKnowledge, name: str, **values: float) -> TreatmentKnowledge:
    """A copy of the knowledge base with some numbers of one therapy replaced."""
    raw = treatments.model_dump(mode="json")
    for key, value in values.items():
        raw["therapies"][name][key] = sourced(value)
    return treatments_from_dict(raw)


NOBODY = PatientTraits()


def everyone(treatments: TreatmentKnowledge) -> PatientTraits:
    """A patient whose tumour carries every biomarker and who responds to every drug."""
    return PatientTraits(
        frozenset(treatments.biomarkers), dict.fromkeys(treatments.therapies, True)
    )


@functools.cache
def model_of(cancer: str) -> Any:
    return load_model(cancer)


def _rng() -> np.random.Generator:
    """The clinic's generator of a test: seeded, so that what it draws (an operation's death
    among them) is the same on every run."""
    return np.random.default_rng(SEED)


def process(cancer: str, index: int, horizon: float, seed: int = SEED) -> DiseaseProcess:
    return DiseaseProcess(model_of(cancer), patient_generator(seed, index), horizon)


def primary_rows(table: Any) -> np.ndarray:
    return np.flatnonzero(table.id == 0)


def primary_size(proc: DiseaseProcess, day: float) -> float:
    table = proc.lesion_table()
    return float(table.size_at(day)[primary_rows(table)].sum())


def _patient_with_a_primary_of(cells: float, cancer: str, days_left: float
                               ) -> tuple[int, float]:
    """The first patient (index) whose primary reaches ``cells`` and whose untreated history
    goes on ``days_left`` days after, with that day: a treatment can then act and be seen."""
    for index in range(50):
        untreated = process(cancer, index, 30 * 365.25)
        days = np.arange(0.0, untreated.end, 30.0)
        grown = [d for d in days if primary_size(untreated, d) >= cells]
        if grown and untreated.end > grown[0] + days_left:
            return index, float(grown[0])
    raise AssertionError(f"no {cancer} patient's primary reaches {cells:g} cells in time")


def assert_tables_equal(a: Any, b: Any) -> None:
    for name in a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# ---------------------------------------------------------------------------- the data
def test_default_plans_cover_every_cancer_and_stage(treatments: TreatmentKnowledge) -> None:
    cancers = set(load_knowledge().cancers)
    assert cancers <= set(treatments.plans)
    for cancer in cancers:
        for stage in STAGE_GROUPS:
            chosen = default_protocol(treatments, cancer, stage)
            assert cancer in chosen.cancers


def test_default_sites_exist_in_the_default_anatomy(treatments: TreatmentKnowledge) -> None:
    sites = set(load_knowledge().sites)
    for therapy in treatments.therapies.values():
        for field in ("metastasectomy_sites", "lymphadenectomy_sites"):
            assert set(getattr(therapy, field, [])) <= sites
    for proto in treatments.protocols.values():
        for step in proto.steps:
            assert set(getattr(step, "sites", [])) <= sites


def test_effect_sizes_follow_reference_figures(treatments: TreatmentKnowledge) -> None:
    """Section 6 of reference-figures: the cited trial figures are the defaults."""
    t = treatments.therapies
    assert t["osimertinib"].response["nsclc"].value == 0.80  # FLAURA
    assert t["pembrolizumab"].response["nsclc"].value == 0.448  # KEYNOTE-024
    assert t["nivolumab_ipilimumab"].response["melanoma"].value == 0.576  # CheckMate 067
    assert t["nivolumab"].response["melanoma"].value == 0.437  # CheckMate 067
    assert 0.80 <= t["stereotactic_radiosurgery"].local_control.value <= 0.95
    assert 0.60 <= t["palliative_bone_radiotherapy"].pain_relief.value <= 0.80
    for name, therapy in t.items():
        for key, value in therapy:
            if hasattr(value, "source"):
                assert value.source.startswith("assumption") or any(
                    c.isdigit() for c in value.source
                ), f"{name}.{key}: {value.source}"


# ---------------------------------------------------------------------------- chemotherapy
def test_chemotherapy_log_kill_matches_gompertz_closed_form(
    treatments: TreatmentKnowledge,
) -> None:
    """After k cycles the primary is its untreated regrowth from size * f, k times over.

    With Gompertz growth ln(x/K) decays as exp(-a t) and a kill adds ln f, so after cycles
    Delta apart L_k = L_0 e^{-a (k-1) Delta} + ln f * sum_j e^{-a j Delta}: the closed form
    and the cycle-by-cycle regrowth (gompertz_size) must both match the engine.
    """
    # half a log per cycle, so that five cycles must shrink the primary a hundredfold
    no_resistance = with_therapy(treatments, "folfox", resistance_per_cell=0.0,
                                 surviving_fraction=0.3)
    f = no_resistance.therapies["folfox"].surviving_fraction.value
    cycles, interval, start = 5, 14.0, 2200.0
    proc = process("colorectal", 3, start + 400.0)
    model = proc.model
    a, K = model.primary_rate, model.primary_capacity
    x0 = float(gompertz_size(start, 1.0, a, K))
    assert primary_size(proc, start) == pytest.approx(x0, rel=REL)
    plan = protocol(
        no_resistance, ["colorectal"], course_step("chemotherapy", "folfox", 0, cycles, interval)
    )
    events = apply_protocol(proc, plan, start, [0], NOBODY, no_resistance, np.random.default_rng(1))
    assert [e.outcome for e in events[:1]] == ["no resistant cells"]

    after = 9.0
    last = start + (cycles - 1) * interval
    size = x0
    for k in range(cycles):
        size *= f
        grow = interval if k < cycles - 1 else after
        size = float(gompertz_size(grow, size, a, K))
    log0 = math.log(x0 / K)
    closed = log0 * math.exp(-a * (cycles - 1) * interval) + math.log(f) * sum(
        math.exp(-a * j * interval) for j in range(cycles)
    )
    closed_size = K * math.exp(closed * math.exp(-a * after))
    engine = primary_size(proc, last + after)
    assert engine == pytest.approx(size, rel=REL)
    assert engine == pytest.approx(closed_size, rel=REL)
    assert engine < x0 * 1e-2  # the test can fail: treatment did shrink it


def _primary_clones(proc: DiseaseProcess, day: float) -> np.ndarray:
    table = proc.lesion_table()
    return np.flatnonzero(
        (table.route == MUTATION_ROUTE) & (table.parent == 0) & (table.arrival == day)
    )


def test_goldie_coldman_share_of_lesions_with_resistant_cells(
    treatments: TreatmentKnowledge,
) -> None:
    """A lesion of N cells holds Poisson(mu N) resistant cells at the first cycle.

    The primary's size on a given day is the same for every patient (it grows from one
    cell), so over many patients the share whose primary gains a resistant clone is
    1 - exp(-mu N) (binomial) and the clone sizes add up to Poisson(n mu N).
    """
    day, n = 2000.0, 400
    model = model_of("colorectal")
    size = float(gompertz_size(day, 1.0, model.primary_rate, model.primary_capacity))
    mu = 0.7 / size
    chemo = with_therapy(treatments, "folfox", resistance_per_cell=mu)
    plan = protocol(chemo, ["colorectal"], course_step("chemotherapy", "folfox", 0, 1, 14))
    carriers, cells = 0, 0.0
    for i in range(n):
        proc = process("colorectal", i, day + 30.0)
        apply_protocol(proc, plan, day, [0], NOBODY, chemo, clinical_generator(SEED, i))
        clones = _primary_clones(proc, day)
        carriers += bool(clones.size)
        cells += float(proc.lesion_table().x0[clones].sum())
    expected = 1.0 - math.exp(-mu * size)
    assert stats.binomtest(carriers, n, expected).pvalue > ALPHA
    mean = n * mu * size
    assert stats.poisson.cdf(cells, mean) > ALPHA / 2
    assert stats.poisson.sf(cells - 1, mean) > ALPHA / 2


def test_resistant_clones_survive_later_cycles(treatments: TreatmentKnowledge) -> None:
    """The clone carries the drug's bit: later cycles spare it while they kill its parent."""
    day, interval, cycles = 2200.0, 14.0, 4
    model = model_of("colorectal")
    size = float(gompertz_size(day, 1.0, model.primary_rate, model.primary_capacity))
    chemo = with_therapy(treatments, "folfox", resistance_per_cell=20.0 / size)
    plan = protocol(
        chemo, ["colorectal"], course_step("chemotherapy", "folfox", 0, cycles, interval)
    )
    proc = process("colorectal", 5, day + 300.0)
    apply_protocol(proc, plan, day, [0], NOBODY, chemo, np.random.default_rng(7))
    table = proc.lesion_table()
    clones = _primary_clones(proc, day)
    assert clones.size == 1  # Poisson(20) is never 0 in practice (p = 2e-9)
    clone = int(clones[0])
    assert table.resistance[clone] & chemo.resistance_bit("folfox")
    assert np.sum(table.id == table.id[clone]) == 1  # never cut: no later kill touched it
    later = day + cycles * interval
    untreated = gompertz_size(
        later - day, table.x0[clone], model.primary_rate, model.primary_capacity
    )
    assert table.size_at(later)[clone] == pytest.approx(float(untreated), rel=REL)
    assert table.size_at(later)[clone] > table.x0[clone]  # it grew through the cycles
    parent_rows = primary_rows(table)
    assert parent_rows.size == cycles + 1  # every cycle cut the sensitive parent


# ---------------------------------------------------------------------------- chemosensitivity
def without_spread(treatments: TreatmentKnowledge) -> TreatmentKnowledge:
    """The knowledge base with no between-patient spread of any chemotherapy's kill."""
    raw = treatments.model_dump(mode="json")
    for therapy in raw["therapies"].values():
        therapy.pop("log_kill_sd", None)
    return treatments_from_dict(raw)


def _cycles(result: Any) -> list[Any]:
    """The chemotherapy cycles a patient's story holds."""
    return [
        e for e in result.treatment if e.modality == "chemotherapy" and "cycle" in e.description
    ]


def test_default_chemotherapies_have_a_sourced_spread(treatments: TreatmentKnowledge) -> None:
    for name, therapy in treatments.therapies.items():
        if therapy.modality == "chemotherapy":
            assert therapy.spread() > 0.0, name
            assert therapy.log_kill_sd.source.startswith("assumption:"), name


def test_chemosensitivity_follows_its_law(treatments: TreatmentKnowledge) -> None:
    """log10 of a patient's surviving fraction is normal(log10 f, sd), capped at 0.

    folfox, set to f = 0.01 and sd = 0.3, never reaches the cap (6.7 sd away): its log10 is
    the normal itself (Kolmogorov-Smirnov).  The default platinum doublet reaches it: the
    share of patients with no kill is binomial with P(Z > -log10 f / sd), and the others
    follow the normal truncated at 0.
    """
    n = 2000
    chemo = with_therapy(treatments, "folfox", surviving_fraction=0.01, log_kill_sd=0.3)
    drawn = [draw_traits(chemo, "colorectal", clinical_generator(SEED, i)) for i in range(n)]
    folfox = np.log10([t.chemo_surviving_fraction["folfox"] for t in drawn])
    assert stats.kstest(folfox, "norm", args=(-2.0, 0.3)).pvalue > ALPHA

    doublet = chemo.therapies["platinum_doublet"]
    mu, sd = math.log10(doublet.surviving_fraction.value), doublet.spread()
    fractions = np.array([t.chemo_surviving_fraction["platinum_doublet"] for t in drawn])
    capped = int(np.sum(fractions == 1.0))
    assert stats.binomtest(capped, n, stats.norm.sf(-mu / sd)).pvalue > ALPHA
    assert 0 < capped < n  # the test can fail: some patients, not all, get no kill
    below = np.log10(fractions[fractions < 1.0])
    truncated = stats.truncnorm(-np.inf, -mu / sd, loc=mu, scale=sd)
    assert stats.kstest(below, truncated.cdf).pvalue > ALPHA
    # one draw per drug: two drugs of one patient are independent
    assert abs(stats.pearsonr(folfox, np.log10(fractions)).statistic) < 0.1


def test_a_patients_kill_is_the_same_in_every_cycle(treatments: TreatmentKnowledge) -> None:
    """The closed-form log-kill check with the patient's own fraction: every cycle of the
    engine kills exactly that share, and every cycle's event says so."""
    chemo = with_therapy(treatments, "folfox", resistance_per_cell=0.0)
    traits = draw_traits(chemo, "colorectal", clinical_generator(SEED, 4))
    f = traits.chemo_surviving_fraction["folfox"]
    assert f != chemo.therapies["folfox"].surviving_fraction.value
    cycles, interval, start = 5, 14.0, 2200.0
    proc = process("colorectal", 3, start + 400.0)
    a, K = proc.model.primary_rate, proc.model.primary_capacity
    size = float(gompertz_size(start, 1.0, a, K))
    plan = protocol(
        chemo, ["colorectal"], course_step("chemotherapy", "folfox", 0, cycles, interval)
    )
    events = apply_protocol(proc, plan, start, [0], traits, chemo, np.random.default_rng(1))
    after = 9.0
    for k in range(cycles):
        size = float(gompertz_size(interval if k < cycles - 1 else after, size * f, a, K))
    assert primary_size(proc, start + (cycles - 1) * interval + after) == pytest.approx(
        size, rel=REL
    )
    median = 1.0 - chemo.therapies["folfox"].surviving_fraction.value
    killed = f"kills {share_words(1.0 - f)} of the dividing cancer cells that do not resist it"
    typical = "this cancer responds " + response_words(1.0 - f, median)
    cycle_events = [e for e in events if "cycle" in e.description]
    assert len(cycle_events) == cycles
    assert all(killed in e.description and typical in e.description
               for e in cycle_events), cycle_events[0].description


def test_patients_differ_in_chemosensitivity_but_arms_share_it(
    treatments: TreatmentKnowledge,
) -> None:
    """Common random numbers: two arms with the same protocol give identical stories, and
    an arm with another protocol gives the patient the same chemosensitivity."""
    clinical, model = load_clinical(), model_of("colorectal")
    chemo = treatments.protocols["colorectal_metastatic"]
    a, b = Arm(name="a", protocol=chemo), Arm(name="b", protocol=chemo)
    other = Arm(name="surgery", protocol=treatments.protocols["resection"])
    fractions, treated = set(), 0
    for i in range(20):
        one = simulate_course(model, clinical, treatments, SEED, i, 20.0, a)
        two = simulate_course(model, clinical, treatments, SEED, i, 20.0, b)
        three = simulate_course(model, clinical, treatments, SEED, i, 20.0, other)
        assert one.traits == two.traits == three.traits  # chemosensitivity included
        assert one.diagnosis == two.diagnosis
        assert (one.treatment, one.events) == (two.treatment, two.events)
        assert (one.death_day, one.cause_of_death) == (two.death_day, two.cause_of_death)
        assert_tables_equal(one.patient.lesions, two.patient.lesions)
        fractions.add(one.traits.chemo_surviving_fraction["folfox"])
        treated += bool(_cycles(one))
        if treated == 4:
            break
    assert treated == 4  # the test can fail: four patients had chemotherapy
    assert len(fractions) == i + 1  # each patient has their own


def test_a_biomarker_or_drug_added_for_one_type_moves_no_other_draw(
    treatments: TreatmentKnowledge,
) -> None:
    """Each biomarker and each response is a draw keyed by its name, aside from the clinical
    stream: without breast cancer's hormone receptors and endocrine therapy, a lung or breast
    patient's other traits and the clinical stream are exactly as with them (a new biomarker
    once shifted every later draw of every cancer type).  The keyed draws follow their
    prevalence (binomial test)."""
    raw = treatments.model_dump(mode="json")
    del raw["biomarkers"]["HR_positive"]
    del raw["therapies"]["endocrine_therapy"]
    for plan in raw["plans"].values():
        for stage, name in list(plan.items()):
            if name in ("breast_early", "breast_adjuvant"):
                plan[stage] = "resection"
    raw["protocols"] = {k: v for k, v in raw["protocols"].items()
                        if k not in ("breast_early", "breast_adjuvant")}
    fewer = treatments_from_dict(raw)
    hr = 0
    n = 1000
    for i in range(n):
        for cancer in ("nsclc", "breast"):
            rng, other = clinical_generator(SEED, i), clinical_generator(SEED, i)
            full, lean = draw_traits(treatments, cancer, rng), draw_traits(fewer, cancer, other)
            assert full.mutations - {"HR_positive"} == lean.mutations
            assert {k: v for k, v in full.responder.items() if k != "endocrine_therapy"} == \
                lean.responder
            assert full.chemo_surviving_fraction == lean.chemo_surviving_fraction
            assert rng.random() == other.random()
            hr += cancer == "breast" and "HR_positive" in full.mutations
    prevalence = treatments.biomarkers["HR_positive"].prevalence["breast"].value
    assert stats.binomtest(hr, n, prevalence).pvalue > ALPHA


def test_no_spread_is_the_previous_behaviour(treatments: TreatmentKnowledge) -> None:
    """Without a spread nothing is drawn and every cycle kills the therapy's fraction; with
    one, the clinical stream is untouched, so everything before treatment is as it was."""
    plain = without_spread(treatments)
    zero = with_therapy(plain, "folfox", log_kill_sd=0.0)
    for knowledge in (plain, zero, treatments):
        rng, reference = clinical_generator(SEED, 9), clinical_generator(SEED, 9)
        traits = draw_traits(knowledge, "colorectal", rng)
        assert rng.random() == reference.random()  # traits take nothing from the stream
        if knowledge is not treatments:
            assert traits.chemo_surviving_fraction == {}
            folfox = knowledge.therapies["folfox"]
            assert traits.surviving_fraction("folfox", folfox) == folfox.surviving_fraction.value

    clinical, model = load_clinical(), model_of("colorectal")
    arm = Arm(protocol=treatments.protocols["colorectal_metastatic"])
    treated = 0
    for i in range(20):
        spread = simulate_course(model, clinical, treatments, SEED, i, 20.0, arm)
        none = simulate_course(model, clinical, plain, SEED, i, 20.0, arm)
        also_none = simulate_course(model, clinical, zero, SEED, i, 20.0, arm)
        assert none.traits.mutations == spread.traits.mutations
        assert none.traits.responder == spread.traits.responder
        assert none.diagnosis == spread.diagnosis
        assert none.treatment == also_none.treatment
        assert_tables_equal(none.patient.lesions, also_none.patient.lesions)
        median = 1.0 - plain.therapies["folfox"].surviving_fraction.value
        for cycle in _cycles(none):
            assert (f"kills {share_words(median)} of the dividing cancer cells that do not "
                    "resist it, in") in cycle.description
            assert "responds" not in cycle.description  # every patient is the median one
        treated += bool(_cycles(none))
        if treated == 3:
            break
    assert treated == 3  # the test can fail: three patients had chemotherapy


# ---------------------------------------------------------------------------- targeted
def test_targeted_therapy_does_nothing_without_its_mutation(
    treatments: TreatmentKnowledge,
) -> None:
    plan = protocol(treatments, ["nsclc"], course_step("targeted", "osimertinib", 0, 6, 28))
    without = PatientTraits(frozenset({"PDL1_high"}), dict.fromkeys(treatments.therapies, True))
    checked = 0
    for i in range(6):
        day = 2400.0
        untreated = process("nsclc", i, day + 600.0)
        treated = process("nsclc", i, day + 600.0)
        untreated.lesion_table(through=day)  # the clinic looks at both on the day
        seen = treated.lesion_table(through=day)
        events = apply_protocol(
            treated, plan, day, [0], without, treatments, clinical_generator(SEED, i), seen
        )
        assert [e.outcome for e in events] == ["no effect: no EGFR (activating EGFR mutation)"]
        assert_tables_equal(treated.lesion_table(), untreated.lesion_table())
        assert (treated.end, treated.end_reason) == (untreated.end, untreated.end_reason)
        assert treated.interventions == []
        checked += 1
    assert checked == 6


def test_targeted_therapy_shrinks_lesions_with_its_mutation(
    treatments: TreatmentKnowledge,
) -> None:
    plan = protocol(treatments, ["nsclc"], course_step("targeted", "osimertinib", 0, 6, 28))
    index, day = _patient_with_a_primary_of(1e9, "nsclc", days_left=600.0)
    untreated = process("nsclc", index, day + 600.0)
    treated = process("nsclc", index, day + 600.0)
    events = apply_protocol(
        treated, plan, day, [0], everyone(treatments), treatments, np.random.default_rng(3)
    )
    assert events[0].outcome in {"responded"} or events[0].outcome.startswith("resistant")
    later = day + 6 * 28
    assert primary_size(treated, later) < 0.01 * primary_size(untreated, later)
    assert events[-1].outcome in {"partial response", "complete response"}


def test_targeted_non_responder_is_untouched(treatments: TreatmentKnowledge) -> None:
    plan = protocol(treatments, ["nsclc"], course_step("targeted", "osimertinib", 0, 3, 28))
    traits = PatientTraits(frozenset({"EGFR"}), {"osimertinib": False})
    untreated = process("nsclc", 2, 3000.0)
    treated = process("nsclc", 2, 3000.0)
    events = apply_protocol(treated, plan, 2400.0, [], traits, treatments, _rng())
    assert [e.outcome for e in events] == ["no effect: non-responder"]
    assert_tables_equal(treated.lesion_table(), untreated.lesion_table())


# ---------------------------------------------------------------------------- traits
def test_biomarker_and_responder_shares_match_their_probabilities(
    treatments: TreatmentKnowledge,
) -> None:
    n = 3000
    melanoma = [draw_traits(treatments, "melanoma", clinical_generator(SEED, i)) for i in range(n)]
    nsclc = [draw_traits(treatments, "nsclc", clinical_generator(SEED + 1, i)) for i in range(n)]
    checks = [
        (sum(t.responds("nivolumab_ipilimumab") for t in melanoma), 0.576),
        (sum(t.responds("nivolumab") for t in melanoma), 0.437),
        (sum("BRAF_V600" in t.mutations for t in melanoma), 0.45),
        (sum("EGFR" in t.mutations for t in nsclc), 0.15),
        (sum("PDL1_high" in t.mutations for t in nsclc), 0.30),
        (sum(t.responds("pembrolizumab") for t in nsclc), 0.448),
    ]
    for count, p in checks:
        assert stats.binomtest(count, n, p).pvalue > ALPHA, (count, p)
    assert not any("EGFR" in t.mutations for t in melanoma)


def test_traits_draw_a_fixed_number_of_numbers(treatments: TreatmentKnowledge) -> None:
    """Common random numbers: what comes after the traits does not depend on the cancer."""
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    draw_traits(treatments, "melanoma", a)
    draw_traits(treatments, "colorectal", b)
    assert a.random() == b.random()


def test_immunotherapy_acts_only_in_responders(treatments: TreatmentKnowledge) -> None:
    plan = protocol(
        treatments, ["melanoma"], course_step("immunotherapy", "nivolumab_ipilimumab", 0, 4, 21)
    )
    day = 1200.0
    for responds in (False, True):
        traits = PatientTraits(frozenset(), {"nivolumab_ipilimumab": responds})
        untreated = process("melanoma", 4, day + 300.0)
        treated = process("melanoma", 4, day + 300.0)
        events = apply_protocol(treated, plan, day, [], traits, treatments, _rng())
        if responds:
            assert events[0].outcome == "responded"
            later = day + 4 * 21
            assert primary_size(treated, later) < 0.05 * primary_size(untreated, later)
        else:
            assert [e.outcome for e in events] == ["no effect: non-responder"]
            assert_tables_equal(treated.lesion_table(), untreated.lesion_table())


def test_pembrolizumab_needs_high_pd_l1(treatments: TreatmentKnowledge) -> None:
    plan = protocol(treatments, ["nsclc"], course_step("immunotherapy", "pembrolizumab", 0, 2, 21))
    traits = PatientTraits(frozenset(), {"pembrolizumab": True})
    proc = process("nsclc", 0, 3000.0)
    events = apply_protocol(proc, plan, 2400.0, [0], traits, treatments, _rng())
    assert events[0].outcome.startswith("no effect: no PDL1_high")


# ---------------------------------------------------------------------------- radiation
def test_radiation_local_control_and_pain_relief_shares(treatments: TreatmentKnowledge) -> None:
    """Each treated lesion is controlled with the technique's probability (binomial)."""
    day, n = 2200.0, 500
    srs = protocol(
        treatments, ["colorectal"], radiation_step("stereotactic_radiosurgery", ["colon"])
    )
    bone = protocol(
        treatments, ["colorectal"], radiation_step("palliative_bone_radiotherapy", ["colon"])
    )
    controlled = relieved = treated = 0
    for i in itertools.count():
        if treated == n:
            break
        proc = process("colorectal", i, day + 30.0)
        if proc.end <= day:
            continue  # died before the day of treatment (the lethal burden)
        treated += 1
        events = apply_protocol(
            proc, srs, day, [0], NOBODY, treatments, clinical_generator(SEED, i)
        )
        assert len(events) == 1 and events[0].lesions == (0,)
        ok = events[0].outcome == "local control"
        controlled += ok
        assert (primary_size(proc, day + 1.0) == 0.0) == ok  # control ablates, else one log
        proc = process("colorectal", i, day + 30.0)
        events = apply_protocol(
            proc, bone, day, [0], NOBODY, treatments, clinical_generator(SEED + 1, i)
        )
        relieved += events[-1].outcome == "pain relief"
    local = treatments.therapies["stereotactic_radiosurgery"].local_control.value
    pain = treatments.therapies["palliative_bone_radiotherapy"].pain_relief.value
    assert stats.binomtest(controlled, n, local).pvalue > ALPHA
    assert stats.binomtest(relieved, n, pain).pvalue > ALPHA


def test_radiation_needs_a_found_lesion_in_its_sites(treatments: TreatmentKnowledge) -> None:
    plan = protocol(
        treatments, ["colorectal"], radiation_step("stereotactic_radiosurgery", ["brain"])
    )
    proc = process("colorectal", 0, 2300.0)
    events = apply_protocol(proc, plan, 2200.0, [0], NOBODY, treatments, _rng())
    assert [e.outcome for e in events] == ["not needed: no lesion found in brain"]
    assert proc.interventions == []


# ---------------------------------------------------------------------------- surgery
def _patient_with(
    cancer: str, day: float, wanted: Any, horizon: float, tries: int = 400,
    *, frame: bool = False,
) -> tuple[int, Any]:
    """The first patient for whom ``wanted`` finds something, and what it found; ``frame``:
    look in the table through ``day`` (whose ids ``apply_protocol`` reads found lesions in),
    not in the whole history's."""
    for i in range(tries):
        proc = process(cancer, i, horizon)
        through_day = proc.lesion_table(through=day)  # read as the clinic and treatment will
        if proc.known_end <= day:
            continue  # the history ended before the day: nothing could be treated
        table = through_day if frame else proc.lesion_table()
        found = wanted(proc.model, table, day)
        if found is not None:
            return i, found
    raise AssertionError("no patient found for the test")


def test_surgery_removes_the_primary_and_its_future_seeding(
    treatments: TreatmentKnowledge,
) -> None:
    day, horizon = 2300.0, 4000.0

    def seeds_after(model: Any, table: Any, t: float) -> Any:
        later = table.first_segments() & (table.parent == 0) & (table.arrival > t)
        return True if later.any() else None

    index, _ = _patient_with("colorectal", day, seeds_after, horizon)
    untreated = process("colorectal", index, horizon)
    untreated.lesion_table(through=day)
    table = untreated.lesion_table()
    assert np.any(table.first_segments() & (table.parent == 0) & (table.arrival > day))

    plan = protocol(treatments, ["colorectal"], surgery_step(primary=True, regional_nodes=True))
    proc = process("colorectal", index, horizon)
    events = apply_protocol(proc, plan, day, [0], NOBODY, treatments, _rng())
    assert events[0].outcome == "resected"
    table = proc.lesion_table()
    for t in (day, day + 1.0, proc.end - 1.0):
        assert table.size_at(t)[primary_rows(table)].sum() == 0.0
    assert not np.any(table.first_segments() & (table.parent == 0) & (table.arrival >= day))
    nodes = table.site == proc.model.site_index("regional_lymph_nodes")
    assert table.size_at(day + 1.0)[nodes & (table.arrival < day)].sum() == 0.0


def _liver_and_other(model: Any, table: Any, day: float) -> Any:
    present = table.valid_at(day) & (table.arrival <= day) & (table.size_at(day) > 1e3)
    liver = np.flatnonzero(present & (table.site == model.site_index("liver")))
    other_sites = {model.site_index(s) for s in ("bone", "peritoneum", "brain", "adrenal_glands")}
    other = np.flatnonzero(present & np.isin(table.site, list(other_sites)))
    if liver.size and other.size:
        return int(table.id[liver[0]]), int(table.id[other[0]])
    return None


def test_metastasectomy_follows_the_eligibility_rules(treatments: TreatmentKnowledge) -> None:
    day = 4000.0
    index, (liver, other) = _patient_with("colorectal", day, _liver_and_other, day + 200.0,
                                          frame=True)
    plan = protocol(
        treatments,
        ["colorectal"],
        surgery_step(primary=True, metastasectomy=True, curative_only=True),
    )
    proc = process("colorectal", index, day + 200.0)
    events = apply_protocol(
        proc, plan, day, [0, liver], NOBODY, treatments, _rng()
    )
    assert [e.outcome for e in events] == ["resected", "resected"]
    table = proc.lesion_table()
    assert table.size_at(day + 1.0)[table.id == liver].sum() == 0.0

    proc = process("colorectal", index, day + 200.0)
    events = apply_protocol(
        proc, plan, day, [0, liver, other], NOBODY, treatments, _rng()
    )
    assert len(events) == 1 and events[0].outcome.startswith("not resectable: metastases in")
    assert proc.interventions == []


# ---------------------------------------------------------------------------- the course
def test_treatment_stops_once_the_natural_history_has_ended(
    treatments: TreatmentKnowledge,
) -> None:
    plan = protocol(treatments, ["colorectal"], course_step("chemotherapy", "folfox", 0, 12, 14))
    proc = process("colorectal", 0, 2260.0)
    events = apply_protocol(proc, plan, 2200.0, [0], NOBODY, treatments, _rng())
    assert events[-1].outcome == "not given"
    assert all(day < proc.end for day in proc.interventions)
    assert len(proc.interventions) == math.ceil((proc.end - 2200.0) / 14)


@pytest.mark.parametrize("cancer", sorted(load_knowledge().cancers))
def test_default_plans_run_in_time_order(treatments: TreatmentKnowledge, cancer: str) -> None:
    for stage in STAGE_GROUPS:
        proc = process(cancer, 1, 3200.0)
        table = proc.lesion_table()
        day = 2500.0
        found = np.unique(table.id[(table.size_at(day) > 1e7)]).tolist()
        rng = clinical_generator(SEED, 1)
        traits = draw_traits(treatments, cancer, rng)
        events = apply_protocol(
            proc, default_protocol(treatments, cancer, stage), day, found, traits, treatments, rng
        )
        assert events, stage
        days = [e.day for e in events]
        assert days == sorted(days)
        assert proc.interventions == sorted(proc.interventions)


def test_found_lesions_are_named_in_the_table_they_were_found_in(
    treatments: TreatmentKnowledge,
) -> None:
    """Tables read through different days number lesions differently; ``found_in`` fixes
    the frame, and a lesion found in it is treated whatever its id in other tables."""
    day = 5000.0
    for index in range(100):
        proc = process("colorectal", index, 8000.0)
        late = proc.lesion_table(through=day + 400.0)
        early = proc.lesion_table(through=day)
        present = late.valid_at(day) & (late.arrival <= day) & (late.id > 0)
        moved = [
            int(i)
            for i in late.id[present]
            if i < len(early) and np.any(early.arrival[early.id == i] != late.arrival[late.id == i])
        ]
        if moved:
            break
    else:
        pytest.fail("no patient with a lesion whose id differs between the two tables")
    lesion = moved[0]
    row = np.flatnonzero(late.id == lesion)[0]
    arrival, site = float(late.arrival[row]), model_of("colorectal").site_names[late.site[row]]
    plan = protocol(treatments, ["colorectal"], radiation_step("stereotactic_radiosurgery", [site]))
    always = with_therapy(treatments, "stereotactic_radiosurgery", local_control=1.0)
    events = apply_protocol(
        proc, plan, day, [lesion], NOBODY, always, _rng(), found_in=late
    )
    assert [e.outcome for e in events] == ["local control"]
    assert events[0].lesions == (lesion,)
    after = proc.lesion_table(through=day + 1.0)
    assert after.size_at(day + 1.0)[after.arrival == arrival].sum() == 0.0


def test_a_tumour_ablated_on_the_day_of_a_chemotherapy_cycle_keeps_no_clone(
    treatments: TreatmentKnowledge,
) -> None:
    """Local treatment acts before drugs on the same day, and one intervention carries the
    day's changes, so no resistant clone of an ablated tumour survives."""
    day = 2200.0
    model = model_of("colorectal")
    size = float(gompertz_size(day, 1.0, model.primary_rate, model.primary_capacity))
    chemo = with_therapy(treatments, "folfox", resistance_per_cell=50.0 / size)
    chemo = with_therapy(chemo, "stereotactic_radiosurgery", local_control=1.0)
    plan = protocol(
        chemo,
        ["colorectal"],
        course_step("chemotherapy", "folfox", 0, 2, 14),
        radiation_step("stereotactic_radiosurgery", ["colon"], 0),
    )
    proc = process("colorectal", 2, day + 100.0)
    events = apply_protocol(proc, plan, day, [0], NOBODY, chemo, np.random.default_rng(2))
    assert events[0].outcome == "local control"
    assert proc.interventions.count(day) == 1  # one intervention carries the day's changes
    table = proc.lesion_table()
    assert table.size_at(day + 1.0)[table.parent == 0].sum() == 0.0
    assert primary_size(proc, day + 1.0) == 0.0


# ---------------------------------------------------------------------------- validation
def _raw_protocol(*steps: dict[str, Any], cancers: list[str] | None = None) -> dict[str, Any]:
    return {
        "protocols": {
            "mine": {"label": "mine", "cancers": cancers or ["colorectal"], "steps": list(steps)}
        }
    }


BAD_PROTOCOLS = [
    (
        "unknown modality",
        _raw_protocol({**course_step("chemotherapy", "folfox"), "modality": "chemo"}),
        ("protocols.mine.steps.0.modality", "chemo", "chemotherapy"),
    ),
    (
        "unknown therapy",
        _raw_protocol(course_step("chemotherapy", "folfoxx")),
        ("protocols.mine.steps.0.therapy", "folfoxx", "folfox"),
    ),
    (
        "therapy of another class",
        _raw_protocol(course_step("chemotherapy", "pembrolizumab")),
        ("protocols.mine.steps.0.therapy", "pembrolizumab", "a chemotherapy therapy"),
    ),
    (
        "negative cycle count",
        _raw_protocol(course_step("chemotherapy", "folfox", cycles=-2)),
        ("protocols.mine.steps.0.cycles.value", "-2", "whole number"),
    ),
    (
        "zero cycles",
        _raw_protocol(course_step("chemotherapy", "folfox", cycles=0)),
        ("protocols.mine.steps.0.cycles", "0", "at least 1"),
    ),
    (
        "cycle interval of zero",
        _raw_protocol(course_step("chemotherapy", "folfox", interval=0)),
        ("interval_days", "0", "positive"),
    ),
    (
        "negative dose",
        _raw_protocol(
            {**radiation_step("stereotactic_radiosurgery", ["brain"]), "dose_gy": sourced(-20)}
        ),
        ("dose_gy", "-20", "positive"),
    ),
    (
        "step before the protocol start",
        _raw_protocol(course_step("chemotherapy", "folfox", start=-7)),
        ("start_day", "-7", "protocol start"),
    ),
    (
        "overlapping chemotherapy courses",
        _raw_protocol(
            course_step("chemotherapy", "folfox", 0, 12, 14),
            course_step("chemotherapy", "folfirinox", 100, 6, 14),
        ),
        ("protocols.mine.steps.1.start_day", "100", "must not overlap"),
    ),
    (
        "steps out of order",
        _raw_protocol(surgery_step(50, primary=True), course_step("chemotherapy", "folfox", 0)),
        ("protocols.mine.steps.1.start_day", "0", "in order of start"),
    ),
    (
        "the primary removed twice",
        _raw_protocol(surgery_step(0, primary=True), surgery_step(10, primary=True)),
        ("protocols.mine.steps.1.primary", "True", "already removed"),
    ),
    (
        "an operation that removes nothing",
        _raw_protocol(surgery_step(0)),
        ("protocols.mine.steps.0.primary", "False", "removes something"),
    ),
    (
        "a drug without a figure for the declared cancer",
        _raw_protocol(course_step("immunotherapy", "pembrolizumab")),
        ("protocols.mine.cancers", "colorectal", "nsclc"),
    ),
    (
        "an unknown field",
        _raw_protocol({**course_step("chemotherapy", "folfox"), "dose": sourced(3)}),
        ("protocols.mine.steps.0.dose", "3", "Extra inputs"),
    ),
]


@pytest.mark.parametrize(
    ("raw", "expect"), [c[1:] for c in BAD_PROTOCOLS], ids=[c[0] for c in BAD_PROTOCOLS]
)
def test_bad_protocols_name_field_value_and_allowed(
    treatments: TreatmentKnowledge, raw: dict[str, Any], expect: tuple[str, ...]
) -> None:
    with pytest.raises(ModelError) as info:
        protocols_from_dict(copy.deepcopy(raw), treatments)
    message = str(info.value)
    for word in expect:
        assert word in message, (word, message)


def test_protocol_for_another_cancer_is_refused(treatments: TreatmentKnowledge) -> None:
    proc = process("nsclc", 0, 3000.0)
    plan = default_protocol(treatments, "colorectal", "III")
    with pytest.raises(ModelError) as info:
        apply_protocol(proc, plan, 2400.0, [0], NOBODY, treatments, _rng())
    assert (info.value.field, info.value.value) == ("protocol.cancers", "nsclc")
    assert "colorectal" in info.value.allowed
    assert proc.interventions == []


def test_bad_arguments_of_the_api(treatments: TreatmentKnowledge) -> None:
    with pytest.raises(ModelError, match="stage_group"):
        default_protocol(treatments, "colorectal", "V")
    with pytest.raises(ModelError, match="cancer"):
        default_protocol(treatments, "appendix", "I")
    proc = process("colorectal", 0, 2400.0)
    plan = default_protocol(treatments, "colorectal", "I")
    with pytest.raises(ModelError, match="found_lesions"):
        apply_protocol(proc, plan, 2200.0, [10**6], NOBODY, treatments, _rng())
    with pytest.raises(ModelError, match="start_day"):
        apply_protocol(proc, plan, -1.0, [0], NOBODY, treatments, _rng())
    bad_site = protocol(
        treatments, ["colorectal"], radiation_step("stereotactic_radiosurgery", ["spleen"])
    )
    with pytest.raises(ModelError, match="spleen"):
        apply_protocol(proc, bad_site, 2200.0, [0], NOBODY, treatments, _rng())
    late_bad_site = protocol(
        treatments,
        ["colorectal"],
        course_step("chemotherapy", "folfox", 0, 2, 14),
        radiation_step("stereotactic_radiosurgery", ["spleen"], 30),
    )
    with pytest.raises(ModelError, match=r"protocol\.steps\.1\.sites"):
        apply_protocol(
            proc, late_bad_site, 2200.0, [0], NOBODY, treatments, _rng()
        )
    assert proc.interventions == []  # refused before anything was done


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        (("therapies", "folfox", "surviving_fraction"), sourced(-0.1), "surviving_fraction"),
        (("therapies", "folfox", "modality"), "chemo", "therapies.folfox.modality"),
        (("therapies", "osimertinib", "biomarker"), "KRAS", "therapies.osimertinib.biomarker"),
        (("plans", "colorectal", "IV"), "nope", "plans.colorectal.IV"),
        (("plans", "colorectal", "IV"), "nsclc_metastatic", "declared for colorectal"),
        (("plans", "colorectal", "V"), "resection", "plans.colorectal"),
    ],
)
def test_bad_treatment_knowledge(
    treatments: TreatmentKnowledge, path: tuple[str, ...], value: Any, expect: str
) -> None:
    raw = treatments.model_dump(mode="json")
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ModelError, match=expect.replace(".", r"\.")):
        treatments_from_dict(raw)


# ---------------------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_user_protocol_file_round_trips(
    treatments: TreatmentKnowledge, tmp_path: Any, suffix: str
) -> None:
    mine = protocol(
        treatments,
        ["colorectal", "gastric"],
        surgery_step(0, primary=True, regional_nodes=True),
        course_step("chemotherapy", "folfox", 30, 8, 14),
        radiation_step("palliative_bone_radiotherapy", ["bone"], 40),
    )
    protocols = {"mine": mine, "default": default_protocol(treatments, "nsclc", "IV")}
    path = write_protocols(protocols, tmp_path / f"protocols{suffix}")
    assert load_protocols(path, treatments) == protocols
    assert protocols_from_dict(protocols_to_dict(protocols), treatments) == protocols


def test_user_protocol_file_with_a_bad_value(treatments: TreatmentKnowledge, tmp_path: Any) -> None:
    raw = _raw_protocol(course_step("chemotherapy", "folfox", interval=0))
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelError, match="interval_days"):
        load_protocols(path, treatments)
    (tmp_path / "broken.toml").write_text("protocols = [", encoding="utf-8")
    with pytest.raises(ModelError, match="valid TOML"):
        load_protocols(tmp_path / "broken.toml", treatments)


def test_a_bad_step_in_a_protocol_file_is_named_by_its_path_in_the_file(
    treatments: TreatmentKnowledge, tmp_path: Any
) -> None:
    """The error names the step's field as the file has it, without pydantic's union tag
    (the step's modality), and other paths keep theirs."""
    raw = _raw_protocol(
        surgery_step(0, primary=True), course_step("chemotherapy", "folfox", 42, cycles=-2)
    )
    path = tmp_path / "mine.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelError) as info:
        load_protocols(path, treatments)
    assert (info.value.field, info.value.value) == ("protocols.mine.steps.1.cycles.value", -2)
    assert "whole number" in info.value.allowed
    assert str(info.value).startswith("protocols.mine.steps.1.cycles.value: got -2;")

    # a protocol named like a modality keeps its name; only the tag after the index goes
    named = {"protocols": {"chemotherapy": raw["protocols"]["mine"]}}
    with pytest.raises(ModelError) as info:
        protocols_from_dict(named, treatments)
    assert info.value.field == "protocols.chemotherapy.steps.1.cycles.value"
    # the therapies of a knowledge base are not protocol steps: their path is unchanged
    bad = treatments.model_dump(mode="json")
    bad["therapies"]["folfox"]["surviving_fraction"] = sourced(-0.1)
    with pytest.raises(ModelError) as info:
        treatments_from_dict(bad)
    assert info.value.field == "therapies.folfox.chemotherapy.surviving_fraction.value"


_DRUGS = {
    "chemotherapy": ["folfox", "platinum_doublet"],
    "targeted": ["osimertinib"],
    "immunotherapy": ["pembrolizumab"],
}


@st.composite
def _protocols(draw: st.DrawFn) -> dict[str, Any]:
    """Valid NSCLC protocols: courses of each kind one after another, local steps between."""
    steps: list[dict[str, Any]] = []
    day = 0.0
    course_end: dict[str, float] = {}
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["surgery", "radiation", *_DRUGS]))
        day = max(day, course_end.get(kind, 0.0)) + draw(st.integers(0, 60))
        if kind == "surgery":
            if any(s["modality"] == "surgery" for s in steps):
                continue
            steps.append(surgery_step(day, primary=True, regional_nodes=draw(st.booleans())))
        elif kind == "radiation":
            sites = draw(
                st.lists(
                    st.sampled_from(["bone", "brain", "liver"]), min_size=1, max_size=3, unique=True
                )
            )
            steps.append(radiation_step("palliative_bone_radiotherapy", sites, day))
        else:
            cycles, interval = draw(st.integers(1, 12)), draw(st.integers(1, 28))
            therapy = draw(st.sampled_from(_DRUGS[kind]))
            steps.append(course_step(kind, therapy, day, cycles, interval))
            course_end[kind] = day + cycles * interval
    if not steps:
        steps.append(surgery_step(0.0, primary=True))
    return {"protocols": {"drawn": {"label": "drawn", "cancers": ["nsclc"], "steps": steps}}}


@given(_protocols())
def test_any_valid_protocol_round_trips_through_toml(raw: dict[str, Any]) -> None:
    treatments = _default_treatments()
    protocols = protocols_from_dict(raw, treatments)
    text = tomli_w.dumps(protocols_to_dict(protocols))
    assert protocols_from_dict(tomllib.loads(text), treatments) == protocols


def test_shares_of_killed_cells_read_as_a_learner_reads_them() -> None:
    """No 7.5e-06 %, no 100 % that is not all, whole percent where a decimal adds nothing."""
    assert share_words(0.0) == "none" and share_words(1.0) == "all"
    assert share_words(7.5e-8) == "almost none"
    assert share_words(0.1388) == "14 %"
    assert share_words(0.025) == "2.5 %"
    assert share_words(0.005) == "0.5 %"
    assert share_words(0.999999) == "99.9999 %"
    assert share_words(1.0 - 1e-9) == "almost all"
    assert response_words(0.5, 0.5).startswith("about as much as most")
    assert response_words(0.14, 0.5).startswith("less than most")
    assert response_words(0.93, 0.3).startswith("more than most")
