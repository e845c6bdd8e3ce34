"""Read a knowledge base from TOML or JSON into the validated schema.

Defaults shared by all cancer types live in ``[cancer_defaults]`` and are merged into each
cancer type before validation, so a file states only what differs from the defaults.
Every failure becomes one :class:`~metastasis.errors.ModelError` naming the field.
"""

from __future__ import annotations

import copy
import functools
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metastasis.errors import ModelError
from metastasis.knowledge.files import errors_named, read_data
from metastasis.knowledge.schema import KnowledgeBase

DEFAULT_MODEL = "default.toml"


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "value" not in value:
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Fold ``cancer_defaults`` into every cancer type (the file's own values win)."""
    raw = dict(raw)
    defaults = raw.pop("cancer_defaults", {})
    if not isinstance(defaults, dict):
        raise ModelError("cancer_defaults", defaults, "a table of default cancer parameters")
    cancers = raw.get("cancers", {})
    if not isinstance(cancers, dict):
        raise ModelError("cancers", cancers, "a table of cancer types")
    raw["cancers"] = {
        name: _deep_merge(defaults, spec) if isinstance(spec, dict) else spec
        for name, spec in cancers.items()
    }
    return raw


def _lookup(raw: dict[str, Any] | None, field: str) -> object:
    """The value a dotted field path names in ``raw`` (for messages), if it can be found."""
    node: object = raw
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict) and "value" in node:
        return node["value"]
    return None if isinstance(node, dict) else node


def first_error(exc: ValidationError, raw: dict[str, Any] | None = None) -> ModelError:
    """The first validation error as a ModelError naming the field, the value, the rule."""
    return _first_error(exc, raw)


def _first_error(exc: ValidationError, raw: dict[str, Any] | None = None) -> ModelError:
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, ModelError):  # a check that knows its field, value and rule
        where = ".".join(str(part) for part in err["loc"])
        field = f"{where}.{original.field}" if where and original.field else original.field
        return ModelError(field, original.value, original.allowed)
    field = ".".join(str(part) for part in err["loc"]) or "model"
    message = str(err["msg"]).removeprefix("Value error, ")
    named = re.match(r"^([A-Za-z_][\w.*]*): (.*)$", message, re.S)
    if named:  # a whole-model check names its own field; find its value where we can
        value = _lookup(raw, named.group(1))
        return ModelError(named.group(1), "see message" if value is None else value,
                          named.group(2))
    value = err.get("input")
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, dict):
        value = "{...}"
    return ModelError(field, value, message)


def from_dict(raw: dict[str, Any]) -> KnowledgeBase:
    """Validate a knowledge base given as plain data (as read from TOML or JSON)."""
    if not isinstance(raw, dict):
        raise ModelError("model", type(raw).__name__, "a table (mapping) at the top level")
    merged = merge_defaults(raw)
    try:
        return KnowledgeBase.model_validate(merged)
    except ValidationError as exc:
        raise _first_error(exc, merged) from None


def read_raw(path: str | Path) -> dict[str, Any]:
    """Parse a TOML or JSON file within the size and nesting limits of
    :mod:`metastasis.knowledge.files`, reporting any problem as a ModelError."""
    return read_data(path)


@functools.cache
def _packaged_raw() -> dict[str, Any]:
    """The packaged default file, parsed once per process (a guide page asked for it ten
    times, a quarter of a second of TOML parsing)."""
    text = resources.files("metastasis.knowledge.data").joinpath(DEFAULT_MODEL).read_bytes()
    return tomllib.loads(text.decode("utf-8"))


def raw_knowledge(path: str | Path | None = None) -> dict[str, Any]:
    """The packaged default knowledge base, or a user's copy from ``path``, as plain data
    (unvalidated: for tools that change values before validating, such as calibration; each
    call returns its own copy)."""
    if path is None:
        return copy.deepcopy(_packaged_raw())
    return read_raw(path)


def load(path: str | Path | None = None) -> KnowledgeBase:
    """Load the packaged default knowledge base, or a user's modified copy from ``path``
    (an error in the file names it: :attr:`~metastasis.errors.ModelError.file`)."""
    with errors_named(path):
        return from_dict(raw_knowledge(path))
