"""Read the clinical knowledge base (TOML or JSON) into the validated schema.

Reading and error reporting are shared with the disease knowledge base
(:func:`metastasis.knowledge.loader.read_raw` and its pydantic-error conversion), so a bad
clinical file reads exactly like a bad model file: one :class:`ModelError` naming the field,
the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metastasis.clinical.schema import ALL_SITES, DEFAULT_STAGING, ClinicalKnowledge
from metastasis.errors import ModelError
from metastasis.knowledge.files import errors_named
from metastasis.knowledge.loader import _first_error, read_raw
from metastasis.knowledge.schema import KnowledgeBase

DEFAULT_CLINICAL = "clinical.toml"


def _model_error(exc: ValidationError) -> ModelError:
    """The first validation error as a ModelError.

    A check that raised a :class:`ModelError` itself (cross-field rules) knows the value and
    what is allowed better than pydantic's message does, so it is kept, with its field
    prefixed by where in the file the failing table sits.
    """
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, ModelError):
        where = ".".join(str(part) for part in err["loc"])
        field = f"{where}.{original.field}" if where and original.field else original.field
        return ModelError(field, original.value, original.allowed)
    return _first_error(exc)


def clinical_from_dict(raw: dict[str, Any]) -> ClinicalKnowledge:
    """Validate a clinical knowledge base given as plain data (as read from TOML or JSON)."""
    if not isinstance(raw, dict):
        raise ModelError("clinical", type(raw).__name__, "a table (mapping) at the top level")
    try:
        return ClinicalKnowledge.model_validate(raw)
    except ValidationError as exc:
        raise _model_error(exc) from None


def load_clinical(path: str | Path | None = None) -> ClinicalKnowledge:
    """Load the packaged clinical knowledge base, or a user's modified copy from ``path``."""
    if path is None:
        data = resources.files("metastasis.knowledge.data").joinpath(DEFAULT_CLINICAL)
        return clinical_from_dict(tomllib.loads(data.read_bytes().decode("utf-8")))
    with errors_named(path):
        return clinical_from_dict(read_raw(path))


def _check_names(field: str, names: Iterable[str], allowed: set[str]) -> None:
    for name in names:
        if name != ALL_SITES and name not in allowed:
            raise ModelError(field, name, ", ".join(sorted(allowed)))


def check_against(clinical: ClinicalKnowledge, kb: KnowledgeBase) -> None:
    """Check every site and cancer type the clinical base names against a knowledge base.

    Kept apart from validation because the same clinical file may serve several anatomies;
    the clinical course calls this once it knows which one it runs on.
    """
    sites, cancers = set(kb.sites), set(kb.cancers)
    for key, symptom in clinical.symptoms.items():
        _check_names(f"symptoms.{key}.sites", symptom.sites, sites)
    _check_names("primary_symptoms", clinical.primary_symptoms, cancers)
    for key, modality in clinical.modalities.items():
        _check_names(f"modalities.{key}.sites", modality.sites, sites)
        _check_names(f"modalities.{key}.curves", modality.curves, sites)
    _check_names("workup.neurological_sites", clinical.workup.neurological_sites, sites)
    _check_names("workup.staging", clinical.workup.staging, cancers)
    for cancer, scans in clinical.workup.staging.items():
        for index, scan in enumerate(scans):
            _check_names(f"workup.staging.{cancer}.{index}.sites", scan.sites, sites)
    for key, programme in clinical.screening.items():
        _check_names(f"screening.{key}.cancer", [programme.cancer], cancers)
    _check_names("onset_age", clinical.onset_age, cancers)
    # a misspelt cancer under [staging] would silently stage that cancer by the default
    _check_names("staging", clinical.staging, cancers | {DEFAULT_STAGING})
    outcomes = {f"organ_failure.{k}": v for k, v in clinical.outcomes.organ_failure.items()}
    outcomes["fracture"] = clinical.outcomes.fracture
    for key, outcome in outcomes.items():
        _check_names(f"outcomes.{key}.sites", outcome.sites, sites)
