"""Symptoms: per-patient thresholds on a burden, and the days the burden reaches them.

A symptom appears when the burden that drives it (some sites, the whole body, or the primary
alone) first reaches the patient's own threshold.  The threshold is drawn once per patient
from the clinical generator, so two arms of a comparison share it (common random numbers):
the same person notices the same amount of tumour in either arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metastasis.clinical.observe import BurdenQuery
from metastasis.clinical.schema import (
    ALL_SITES,
    ClinicalKnowledge,
    PrimarySymptom,
    Symptom,
    SymptomKind,
)
from metastasis.engine.process import PRIMARY
from metastasis.engine.seeds import keyed_uniform
from metastasis.errors import ModelError
from metastasis.model.resolve import ResolvedModel
from metastasis.results.patient import LesionTable


@dataclass(frozen=True)
class SymptomThreshold:
    """One symptom as it applies to one patient.

    ``sites``: indices of the sites whose burden drives it (None: the whole body).  For a
    symptom of the primary (``kind == "primary"``) only the primary lesion's own cells count,
    and ``sites`` holds the primary's site for reference; for an organ's symptom only the
    metastases in those sites count (a primary there is felt through its own symptoms).
    """

    name: str
    label: str
    sites: tuple[int, ...] | None
    cells: float
    workup: bool
    neurological: bool
    kind: SymptomKind


def _site_indices(names: Sequence[str], model: ResolvedModel, field: str) -> tuple[int, ...] | None:
    if list(names) == [ALL_SITES]:
        return None
    try:
        return tuple(model.site_index(name) for name in names)
    except ValueError:
        unknown = next(n for n in names if n not in model.site_names)
        raise ModelError(field, unknown, ", ".join(model.site_names)) from None


def draw_symptom_thresholds(
    clinical: ClinicalKnowledge, model: ResolvedModel, rng: np.random.Generator
) -> list[SymptomThreshold]:
    """Draw this patient's threshold for every symptom that applies to the cancer type.

    ``log10(cells) ~ Normal(log10(median), log10_spread)``, one standard normal per symptom
    in the file's order (organ and general symptoms, then the cancer type's primary ones),
    all drawn in one call so the number of draws depends only on the knowledge base.  A
    patient who never notices the primary (:func:`primary_unnoticed`) has no threshold for
    its symptoms (infinite cells): the cancer is found from its spread.
    """
    specs: list[tuple[str, Symptom | PrimarySymptom, tuple[int, ...] | None]] = [
        (name, spec, _site_indices(spec.sites, model, f"symptoms.{name}.sites"))
        for name, spec in clinical.symptoms.items()
    ]
    primary = clinical.primary_symptoms.get(model.cancer, {})
    specs += [(name, spec, (model.primary_site,)) for name, spec in primary.items()]
    normals = rng.standard_normal(len(specs))
    unnoticed = primary_unnoticed(clinical, model.cancer, rng)
    thresholds = []
    for (name, spec, sites), z in zip(specs, normals, strict=True):
        log10_cells = math.log10(spec.median_threshold_cells.value) + spec.log10_spread.value * z
        never = unnoticed and spec.kind == "primary"
        thresholds.append(
            SymptomThreshold(
                name=name,
                label=spec.label,
                sites=sites,
                cells=math.inf if never else float(10.0**log10_cells),
                workup=spec.workup,
                neurological=spec.neurological,
                kind=spec.kind,
            )
        )
    return thresholds


UNNOTICED_PRIMARY_STREAM = 2**32 - 8
"""Keys the uniform (:func:`~metastasis.engine.seeds.keyed_uniform`) that decides whether a
patient never notices the primary (``unnoticed_primary_share``): aside, so that the share
of one cancer type moves no other draw."""


def primary_unnoticed(clinical: ClinicalKnowledge, cancer: str,
                      rng: np.random.Generator) -> bool:
    """Whether this patient never notices the primary tumour: a lot drawn aside, for the
    cancer types with an ``unnoticed_primary_share`` only (the others draw nothing)."""
    share = clinical.unnoticed_primary_share.get(cancer)
    return share is not None and keyed_uniform(rng, UNNOTICED_PRIMARY_STREAM, 0) < share.value


def draw_cachexia_threshold(
    clinical: ClinicalKnowledge, cancer: str, rng: np.random.Generator
) -> tuple[float, str] | None:
    """This patient's whole-burden threshold of death by cachexia, with its label (None when
    the clinical knowledge has no rule for the cancer type).  One standard normal is drawn
    whether or not there is a rule, so the draws that follow do not depend on it."""
    z = float(rng.standard_normal())
    rule = clinical.outcomes.cachexia_rule(cancer)
    if rule is None:
        return None
    log10_cells = math.log10(rule.median_threshold_cells.value) + rule.log10_spread.value * z
    return float(10.0**log10_cells), rule.label


def symptom_onsets(
    table: LesionTable, thresholds: Sequence[SymptomThreshold], start: float, stop: float
) -> list[tuple[float, SymptomThreshold]]:
    """Days in [start, stop] on which each symptom first appears, sorted by day.

    A symptom whose burden never reaches its threshold in the window is left out; ties keep
    the order of ``thresholds``.
    """
    onsets = []
    query = BurdenQuery.of(table)
    reach = query.reach(start, stop)
    for threshold in thresholds:
        if threshold.cells > reach:
            continue  # not crossed in the window: spared the search's set-up
        if threshold.kind == "primary":
            day = query.first_crossing(None, threshold.cells, start, stop, lesions=(PRIMARY,))
        elif threshold.kind == "organ":
            # an organ's symptoms come from metastases in it: a primary there has its own
            # symptoms, with its own thresholds (``primary_symptoms``), so it is not counted
            # twice
            day = query.first_crossing(threshold.sites, threshold.cells, start, stop,
                                       metastases_only=True)
        else:
            day = query.first_crossing(threshold.sites, threshold.cells, start, stop)
        if day is not None:
            onsets.append((day, threshold))
    return sorted(onsets, key=lambda pair: pair[0])
