"""The clinical layer on the command line: its settings, the cohort report and the comparison.

The command modules (:mod:`metastasis.cli.simulate_command`,
:mod:`metastasis.cli.cohort_command`) parse options; this module turns the clinical options
into the public API's objects (knowledge bases checked against the model, a protocol checked against
the cancer type, an :class:`~metastasis.clinical.course.Arm`) *before* any simulation runs,
so that bad input fails fast and nothing is written; and it words what
:mod:`metastasis.clinical.cohort` returns: stage at diagnosis, metastases at diagnosis found
and hidden, Kaplan-Meier survival by stage with confidence intervals, causes of death, and
the paired differences between two arms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from metastasis.cli.usage import file_option
from metastasis.clinical.cohort import STAGE_ORDER, ClinicalCohort, Difference
from metastasis.clinical.course import DAYS_PER_YEAR, Arm
from metastasis.clinical.schema import ClinicalKnowledge
from metastasis.clinical.screening import programmes_for
from metastasis.clinical.treatment import check_protocol_sites
from metastasis.clinical.treatment_schema import Protocol, TreatmentKnowledge
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel
from metastasis.results import numbers
from metastasis.results.statistics import kaplan_meier

FIVE_YEARS = 5.0
STAGE_GROUPS = ("I", "II", "III", "IV")
NO_SCREENING = ("no screening", "standard", "standard care")
SCREENING = "screening"

CRN_NOTE = (
    "Common random numbers: both arms follow the same virtual patients (same root seed and "
    "indices), so each patient's disease, onset age, symptom thresholds and tumour markers "
    "are shared and the arms differ only where the care differs; each difference is the mean "
    "of the per-patient differences (B - A) with a paired 95 % confidence interval."
)
LIFETIME_NOTE = (
    "Lifetime is counted from the first cancer cell, not from diagnosis, and capped at the "
    "horizon (restricted mean): screening that only finds the cancer earlier cannot lengthen "
    "it, so it is free of the lead-time bias of survival from diagnosis."
)


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class ClinicalSetup:
    """Everything the clinical course needs besides the model, checked and ready."""

    clinical: ClinicalKnowledge
    treatments: TreatmentKnowledge
    protocols: dict[str, Protocol] = field(default_factory=dict)
    clinical_path: Path | None = None
    treatments_path: Path | None = None
    protocol_path: Path | None = None

    def provenance(self) -> dict[str, Any]:
        """What a rerun needs: the files named, and their content when not the defaults."""
        return {
            "clinical_file": None if self.clinical_path is None else str(self.clinical_path),
            "clinical": None if self.clinical_path is None
            else self.clinical.model_dump(mode="json"),
            "treatments_file": None if self.treatments_path is None
            else str(self.treatments_path),
            "treatments": None if self.treatments_path is None
            else self.treatments.model_dump(mode="json"),
            "protocol_file": None if self.protocol_path is None else str(self.protocol_path),
        }


def load_setup(
    model: ResolvedModel,
    model_path: Path | None,
    clinical_path: Path | None,
    treatments_path: Path | None,
    protocol_path: Path | None,
) -> ClinicalSetup:
    """Load and check the clinical knowledge, the treatments and a user's protocol file.

    Every protocol in the file is checked against the treatments and against this cancer type
    here, before any patient is simulated: a protocol for another cancer is bad input, not a
    failure half-way through a cohort.
    """
    from metastasis.clinical.loader import check_against, load_clinical
    from metastasis.clinical.schema import DEFAULT_STAGING
    from metastasis.clinical.treatment_schema import check_protocol, load_protocols, load_treatments
    from metastasis.knowledge.loader import load as load_knowledge

    with file_option("--clinical"):
        clinical = load_clinical(clinical_path)
    # check what this run uses: every site (the anatomy is shared), but only this cancer's
    # entries, so a model file holding one cancer type works with the full clinical file
    relevant = clinical.model_copy(update={
        "primary_symptoms": {k: v for k, v in clinical.primary_symptoms.items()
                             if k == model.cancer},
        "screening": {k: v for k, v in clinical.screening.items() if v.cancer == model.cancer},
        "onset_age": {k: v for k, v in clinical.onset_age.items() if k == model.cancer},
        "staging": {k: v for k, v in clinical.staging.items()
                    if k in (DEFAULT_STAGING, model.cancer)},
        "workup": clinical.workup.model_copy(update={
            "staging": {k: v for k, v in clinical.workup.staging.items() if k == model.cancer}}),
    })
    check_against(relevant, load_knowledge(model_path))
    clinical.onset(model.cancer)  # a cancer without an onset age cannot start a course
    with file_option("--treatments"):
        treatments = load_treatments(treatments_path)
    protocols: dict[str, Protocol] = {}
    if protocol_path is not None:
        with file_option("--protocol"):
            protocols = load_protocols(protocol_path, treatments)
        for name, protocol in protocols.items():
            try:
                check_protocol(treatments, protocol, field=f"protocols.{name}",
                               cancer=model.cancer)
                check_protocol_sites(protocol, treatments, model.site_names,
                                     field=f"protocols.{name}")
            except ModelError as error:  # what the file says does not fit: name the file
                raise error.in_file(str(protocol_path)) from None
    return ClinicalSetup(clinical, treatments, protocols, clinical_path, treatments_path,
                         protocol_path)


def choose_protocol(setup: ClinicalSetup, name: str | None) -> tuple[str, Protocol] | None:
    """The protocol ``--protocol-name`` picks from the file (or its only one)."""
    if setup.protocol_path is None:
        if name is not None:
            raise ModelError("--protocol-name", name, "a name together with --protocol FILE")
        return None
    names = ", ".join(setup.protocols)
    if name is None:
        if len(setup.protocols) > 1:
            raise ModelError("--protocol-name", None, f"one of the file's protocols: {names}")
        name = next(iter(setup.protocols))
    if name not in setup.protocols:
        raise ModelError("--protocol-name", name, names)
    return name, setup.protocols[name]


def make_arm(screening: bool, chosen: tuple[str, Protocol] | None,
             years_after_diagnosis: float | None = None) -> Arm:
    """An arm named by what it does: screening or not, default plan or a named protocol;
    following each diagnosed patient ``years_after_diagnosis`` (None: to the horizon)."""
    care = "screening" if screening else "no screening"
    plan = "default plan by stage" if chosen is None else f"protocol {chosen[0]}"
    return Arm(name=f"{care}, {plan}", screening=screening,
               protocol=None if chosen is None else chosen[1],
               years_after_diagnosis=years_after_diagnosis)


def parse_arm(option: str, text: str, setup: ClinicalSetup) -> Arm:
    """Read an arm: ``no screening``, ``screening``, a protocol name from ``--protocol FILE``,
    or ``screening + NAME`` (parts joined by ``+``, in any order)."""
    names = list(setup.protocols)
    allowed = ("'no screening', 'screening', "
               + (f"a protocol of --protocol FILE ({', '.join(names)}), " if names
                  else "a protocol name (with --protocol FILE), ")
               + "or 'screening + <protocol>'")
    parts = [p.strip() for p in text.split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ModelError(option, text, allowed)
    screening: bool | None = None
    chosen: tuple[str, Protocol] | None = None
    for part in parts:
        word = " ".join(part.lower().replace("-", " ").split())
        if word in NO_SCREENING or word == SCREENING:
            if screening is not None:
                raise ModelError(option, text, allowed)
            screening = word == SCREENING
        elif part in setup.protocols and chosen is None:
            chosen = (part, setup.protocols[part])
        else:
            raise ModelError(option, text, allowed)
    return make_arm(bool(screening), chosen)


def describe_arm(arm: Arm, clinical: ClinicalKnowledge, model: ResolvedModel) -> str:
    """What an arm does, in words (the screening programme and the protocol)."""
    if arm.screening:
        programmes = programmes_for(clinical, model.cancer)
        screening = ("screening: " + "; ".join(p.label for p in programmes) if programmes
                     else f"screening (but no programme exists for {model.label})")
    else:
        screening = "no screening"
    protocol = ("the default plan for the stage found" if arm.protocol is None
                else f"protocol '{arm.protocol.label}' for everyone diagnosed")
    return f"{screening}; {protocol}"


def screening_note(screening: bool, clinical: ClinicalKnowledge,
                   model: ResolvedModel) -> str | None:
    """A warning when screening was asked for a cancer that has no programme."""
    if screening and not programmes_for(clinical, model.cancer):
        return (f"Note: the clinical knowledge has no screening programme for {model.label}, "
                "so --screening changes nothing.")
    return None


# ---------------------------------------------------------------- cohort report


def _km(part: pd.DataFrame) -> dict[str, Any]:
    """Kaplan-Meier survival from diagnosis with 95 % intervals
    (:func:`metastasis.results.statistics.kaplan_meier`: exponential Greenwood bands, the
    median's limits read off them)."""
    years = part["survival_days"].to_numpy(dtype=float) / DAYS_PER_YEAR
    curve = kaplan_meier(years, part["died"].to_numpy(dtype=bool))

    def finite(x: float) -> float | None:
        return float(x) if math.isfinite(x) else None

    median = curve.median()
    low = high = None
    if len(part) > 1:  # one patient's curve drops straight to 0: no interval to speak of
        low, high = finite(median.lower), finite(median.upper)
    five = five_low = five_high = None
    known = curve.known_at(FIVE_YEARS)  # none where 5 years lie beyond every follow-up
    if known is not None:
        five, five_low, five_high = known
    return {
        "patients": len(part),
        "deaths": int(part["died"].sum()),
        "median_years": finite(median.estimate),
        "median_ci_years": [low, high],
        "five_year_survival": five,
        "five_year_ci": [five_low, five_high],
    }


def clinical_summary(cohort: ClinicalCohort) -> dict[str, Any]:
    """The clinical summary of :meth:`ClinicalCohort.summary`, with what the report adds:
    pathways, patients with metastases found, survival with confidence intervals."""
    summary = cohort.summary()
    frame = cohort.patients
    diagnosed = frame[frame["diagnosed"]]
    summary["arm"] = cohort.arm
    summary["pathway"] = {str(k): int(v) for k, v in
                          diagnosed["pathway"].value_counts().sort_index().items()}
    summary["stage_group"] = {g: int((diagnosed["stage_group"] == g).sum()) for g in STAGE_GROUPS}
    mets = summary["metastases_at_diagnosis"]
    mets["patients_with_found"] = int((diagnosed["metastases_found"] > 0).sum())
    mets["present"] = int(diagnosed["metastases_present"].sum())
    survival = {}
    for name in STAGE_ORDER:
        part = diagnosed[diagnosed["summary_stage"] == name]
        if len(part):
            survival[name] = _km(part)
    summary["survival_by_stage"] = survival
    summary["undiagnosed"] = {
        "alive_at_horizon": int((~frame["diagnosed"] & ~frame["died"]).sum()),
        "died": int((~frame["diagnosed"] & frame["died"]).sum()),
    }
    summary["alive_at_horizon"] = int((~frame["died"]).sum())
    return summary


def _share(n: int, total: int) -> str:
    return numbers.share(n, total) if total else "n/a"


def _years_ci(value: float | None, ci: list[float | None]) -> str:
    if value is None:
        return "not reached"
    low, high = ci
    band = (f" ({'?' if low is None else f'{low:.1f}'} to "
            f"{'not reached' if high is None else f'{high:.1f}'})")
    return f"{value:.1f} y{band if low is not None or high is not None else ''}"


def _share_ci(value: float | None, ci: list[float | None]) -> str:
    if value is None:
        return "n/a (follow-up < 5 y)"
    low, high = ci
    if low is None or high is None:
        return numbers.percent(100 * value)
    return (f"{numbers.percent(100 * value)} ({numbers.percent(100 * low)} to "
            f"{numbers.percent(100 * high)})")


def print_clinical(console: Console, summary: dict[str, Any], years: float, *,
                   care: str, note: str | None = None) -> None:
    """The clinical part of the cohort report, as tables (``years`` from the first cell
    within which a diagnosis can come; the follow-up after it is in the summary)."""
    n, diagnosed = summary["patients"], summary["diagnosed"]
    console.print(Text("Clinical course: diagnosis, stage, treatment and survival",
                       style="bold underline"))
    console.print(f"Care: {care}.", markup=False, soft_wrap=True)
    if note:
        console.print(note, markup=False, soft_wrap=True)
    pathways = ", ".join(f"{v:,} by {k}" for k, v in summary["pathway"].items()) or "none"
    undiagnosed = summary["undiagnosed"]
    follow_up = summary.get("years_after_diagnosis")
    console.print(
        f"Diagnosed within {years:g} years of the first cancer cell: {diagnosed:,} of {n:,} "
        f"({pathways}); never diagnosed: {undiagnosed['alive_at_horizon']:,} alive at "
        f"{years:g} years and {undiagnosed['died']:,} who died first.", markup=False,
        soft_wrap=True)
    if follow_up is not None:
        console.print(f"Each diagnosed patient is followed {follow_up:g} years after the "
                      "diagnosis, or to death.", markup=False, soft_wrap=True)

    table = Table(title="Stage at diagnosis", title_style="bold")
    for header in ("stage group", "patients", "share of diagnosed"):
        table.add_column(header, justify="left" if header == "stage group" else "right")
    for group, count in summary["stage_group"].items():
        table.add_row(group, f"{count:,}", _share(count, diagnosed))
    table.add_section()
    for stage, count in summary["summary_stage"].items():
        table.add_row(stage, f"{count:,}", _share(count, diagnosed))
    console.print(table)

    mets = summary["metastases_at_diagnosis"]
    console.print(
        f"Metastases at diagnosis (distant, any size, true state): "
        f"{mets['patients_with_any']:,} of {diagnosed:,} diagnosed patients "
        f"({_share(mets['patients_with_any'], diagnosed)}) had at least one; found in "
        f"{mets['patients_with_found']:,}, hidden (present but not found) in "
        f"{mets['patients_with_hidden']:,}. Deposits: {mets['present']:,} present, "
        f"{mets['found']:,} found, {mets['hidden']:,} hidden.", markup=False, soft_wrap=True)

    table = Table(title="Survival from diagnosis by summary stage (Kaplan-Meier, 95 % CI)",
                  title_style="bold")
    for header in ("stage", "patients", "deaths", "median survival", "5-year survival"):
        table.add_column(header, justify="left" if header == "stage" else "right")
    for stage, km in summary["survival_by_stage"].items():
        table.add_row(stage, f"{km['patients']:,}", f"{km['deaths']:,}",
                      _years_ci(km["median_years"], km["median_ci_years"]),
                      _share_ci(km["five_year_survival"], km["five_year_ci"]))
    console.print(table)
    console.print("Patients alive at the end of their follow-up are censored there.",
                  markup=False, soft_wrap=True)

    table = Table(title="Causes of death", title_style="bold")
    for header in ("cause", "patients", "share of all patients"):
        table.add_column(header, justify="left" if header == "cause" else "right")
    for cause, count in summary["causes_of_death"].items():
        table.add_row(cause, f"{count:,}", _share(count, n))
    table.add_section()
    table.add_row("alive at the end of follow-up", f"{summary['alive_at_horizon']:,}",
                  _share(summary["alive_at_horizon"], n))
    console.print(table)


def clinical_sidecars(out: Path) -> tuple[Path, Path]:
    """Where ``cohort --out X.ext`` puts the clinical table and its provenance."""
    stem = out.with_suffix("")
    return (stem.with_name(stem.name + ".clinical.csv"),
            stem.with_name(stem.name + ".clinical.provenance.json"))


# ---------------------------------------------------------------- compare

SHARE_MEASURES = frozenset({
    "diagnosed at a distant stage",
    "metastases present at diagnosis",
    "died of cancer within the horizon",
})


def _is_share(measure: str) -> bool:
    return measure in SHARE_MEASURES or not measure.endswith("(years)")


def difference_cells(d: Difference) -> list[str]:
    """A measure as table cells: shares in %, their differences in percentage points."""
    if _is_share(d.measure):
        def pp(x: float) -> str:
            return f"{100 * x:+.1f} pp"
        return [d.measure, numbers.percent(100 * d.arm_a), numbers.percent(100 * d.arm_b),
                pp(d.difference), f"{pp(d.low)} to {pp(d.high)}"]
    return [d.measure, f"{d.arm_a:.2f}", f"{d.arm_b:.2f}", f"{d.difference:+.2f}",
            f"{d.low:+.2f} to {d.high:+.2f}"]


def print_compare(console: Console, differences: list[Difference], names: tuple[str, str],
                  descriptions: tuple[str, str]) -> None:
    """The comparison table with its two explanations."""
    for letter, name, words in zip("AB", names, descriptions, strict=True):
        console.print(f"Arm {letter} ({name}): {words}.", markup=False, soft_wrap=True)
    table = Table(title="Arm B - arm A, per patient", title_style="bold")
    for header in ("measure", "arm A", "arm B", "difference (B - A)", "95 % CI"):
        table.add_column(header, justify="left" if header == "measure" else "right")
    for d in differences:
        table.add_row(*difference_cells(d))
    console.print(table)
    console.print(CRN_NOTE, markup=False, soft_wrap=True)
    console.print(LIFETIME_NOTE, markup=False, soft_wrap=True)


def differences_data(differences: list[Difference]) -> list[dict[str, Any]]:
    """The differences as JSON-ready records (a share's unit is a fraction of patients)."""
    return [
        {"measure": d.measure, "unit": "share of patients" if _is_share(d.measure) else "years",
         "arm_a": d.arm_a, "arm_b": d.arm_b, "difference": d.difference, "ci_low": d.low,
         "ci_high": d.high}
        for d in differences
    ]
