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
from types import ModuleType


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
    return module
