"""`metastasis serve` compiles the engine before it listens, so that no request pays it."""

from __future__ import annotations

import pytest
from numba.core.registry import CPUDispatcher
from typer.testing import CliRunner

from metastasis.cli.app import app

ENTRY_KERNELS = {
    "metastasis.engine.sampling": ["_sample_pieces", "_kernel_shares"],
    "metastasis.engine.accounting": ["_draw"],
    "metastasis.engine.burden": ["_first_lethal_day"],
    "metastasis.engine.intervention": ["_apply_changes", "_dividing_rows"],
    "metastasis.engine.process": ["_compact"],
    "metastasis.engine.tables": ["_number_lesions"],
    "metastasis.clinical.burden_kernels": ["burden_at", "ceiling_rows", "first_crossing_rows",
                                           "physical_roots", "select_rows"],
}
"""The kernels the engine and the clinic call from Python (the others are compiled into
them)."""


def test_every_entry_kernel_is_compiled_by_the_warm_up() -> None:
    import importlib

    from metastasis.clinical.warmup import compile_kernels

    assert compile_kernels() > 0.0
    for module_name, names in ENTRY_KERNELS.items():
        module = importlib.import_module(module_name)
        for name in names:
            kernel = getattr(module, name)
            assert isinstance(kernel, CPUDispatcher), (module_name, name)
            assert kernel.signatures, f"{module_name}.{name} was not compiled"


def test_serve_compiles_before_it_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvicorn")
    import metastasis.clinical.warmup as warmup
    import metastasis.web as web

    calls: list[str] = []
    monkeypatch.setattr(warmup, "compile_kernels", lambda: calls.append("compile") or 1.5)
    monkeypatch.setattr(web, "serve", lambda *a, **k: calls.append("listen"))
    result = CliRunner().invoke(app, ["serve", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert calls == ["compile", "listen"]
    assert "engine ready in 1.5 s" in result.output
