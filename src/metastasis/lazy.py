"""Modules loaded on first use, for the entry points that must answer at once.

``metastasis --help`` and a bad option should answer in a fraction of a second, but the
engine's compiled kernels, pandas and SciPy take seconds to import.  The command-line
modules therefore name the heavy modules they use through :func:`lazy_module`: the name is
bound at once and the module runs on its first attribute access (the standard library's
:class:`importlib.util.LazyLoader`), so a command imports only what it uses.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from types import ModuleType
from typing import Any


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, executed when an attribute of it is first read (at once if it
    is imported already)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does: ``import a.b`` then ``a.b`` finds it
        setattr(sys.modules[parent], child, module)
    return module


def lazy_attributes(package: str, homes: Mapping[str, str | tuple[str, str]],
                    namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A package's ``__getattr__`` (PEP 562) for public names imported on first use.

    ``homes`` maps each name to the module that defines it under the same name, or to a
    (module, name there) pair where the package renames it.  Once read,
    the name is an ordinary attribute of the package (``namespace`` is its ``globals()``),
    so the import happens once."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        home = homes[name]
        module, attribute = (home, name) if isinstance(home, str) else home
        value = getattr(import_module(module), attribute)
        namespace[name] = value
        return value

    return __getattr__
