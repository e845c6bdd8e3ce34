"""`metastasis serve`: start the web explorer (an optional extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import metastasis
from metastasis.errors import ModelError


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on; the default serves this "
                          "computer only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port.")] = 8000,
    model: Annotated[
        Path | None, typer.Option("--model", help="A modified knowledge base (TOML or JSON).")
    ] = None,
) -> None:
    """Start the web explorer (guide, virtual patient, cohorts, JSON API) in a browser."""
    try:
        from metastasis.web import serve as run_server
    except ModuleNotFoundError as error:
        message = ModelError(
            "serve", error.name, "the web extra installed: pip install 'metastasis[web]'"
        )
        typer.echo(f"metastasis: error: {message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(metastasis.DISCLAIMER, err=True)
    typer.echo("preparing the engine: compiling its kernels takes about half a minute the "
               "first time after installing, a few seconds later...", err=True)
    from metastasis.clinical.warmup import compile_kernels

    seconds = compile_kernels()
    typer.echo(f"engine ready in {seconds:.1f} s", err=True)
    typer.echo(f"metastasis explorer on http://{host}:{port}/  (Ctrl+C stops it)", err=True)
    try:
        run_server(host, port, model_path=model)
    except ModelError as error:
        typer.echo(f"metastasis: error: {error}", err=True)
        raise typer.Exit(2) from None
