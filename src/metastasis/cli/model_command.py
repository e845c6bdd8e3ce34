"""`metastasis model`: the model shown, listed and exported, every number with its source.

What a learner reads here is what the commands run: ``model show`` prints the resolved
parameters and the organ graph, ``model export`` writes the knowledge base for
``--model FILE`` (:mod:`metastasis.cli.model_view` builds both).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

import metastasis
from metastasis.cli.common import (
    ModelOption,
    load_model,
    new_console,
    parse_choice,
    print_disclaimer,
    user_errors,
)
from metastasis.lazy import lazy_module

# the engine, pandas and SciPy load only when a command needs them: --help and a bad option
# answer without them
knowledge_loader = lazy_module("metastasis.knowledge.loader")
model_view = lazy_module("metastasis.cli.model_view")
numbers = lazy_module("metastasis.results.numbers")
output = lazy_module("metastasis.cli.output")

model_app = typer.Typer(
    help="Show, list and export the model: parameters with sources, organ graph.",
    no_args_is_help=True,
)


class GraphFormat(StrEnum):
    """How ``model show`` draws the organ graph."""

    text = "text"
    mermaid = "mermaid"


@model_app.command("list")
def model_list(model: ModelOption = None) -> None:
    """List the cancer types of the knowledge base."""
    with user_errors():
        kb = knowledge_loader.load(model)
    console = new_console()
    print_disclaimer(console)
    table = Table(title=f"Cancer types in knowledge base '{kb.name}'", title_style="bold")
    for header in ("cancer", "label", "primary site", "named as"):
        table.add_column(header)
    for key, spec in kb.cancers.items():
        site = kb.sites[spec.primary_site].label
        table.add_row(key, spec.label, site, spec.naming)
    console.print(table)


@model_app.command("show")
def model_show(
    cancer: Annotated[str, typer.Argument(help="Cancer type (see `metastasis model list`).")],
    model: ModelOption = None,
    graph: Annotated[
        str, typer.Option("--graph", "-g", metavar="[text|mermaid]",
                          help="Draw the organ graph as text or Mermaid.")
    ] = "text",
) -> None:
    """Print every parameter of a cancer type with its source, then the organ graph."""
    with user_errors():
        drawing = parse_choice(GraphFormat, "--graph", graph)
        resolved = load_model(cancer, model)
    console = new_console()
    print_disclaimer(console)
    table = Table(title=f"Parameters of {resolved.label} (anatomy and cancer type)",
                  title_style="bold", show_lines=False)
    table.add_column("parameter", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("source")
    for row in model_view.parameter_rows(resolved):
        style = "dim" if row.source == model_view.STRUCTURE else None
        table.add_row(row.path, row.value, row.source, style=style)
    console.print(table)
    console.print()

    routes, rows = model_view.journey_rows(resolved)
    primary = resolved.site_labels[resolved.primary_site]
    route_text = "; ".join(
        f"{name} {numbers.percent(100 * share)} of shed cells, of which "
        f"{numbers.percent(100 * died)} die on the way"
        for name, (share, died) in routes.items()
    )
    console.print(Text(f"Where a cell shed by the primary ({primary}) ends up, from the "
                       "resolved model (closed form)", style="bold"), soft_wrap=True)
    console.print(f"Routes: {route_text}.", markup=False, soft_wrap=True)
    table = Table()
    table.add_column("organ")
    table.add_column("arrests there (per shed cell)", justify="right")
    table.add_column("leaves the vessel (per arrested cell)", justify="right")
    table.add_column("founds a growing metastasis (per shed cell)", justify="right")
    for row in rows:
        table.add_row(row.site, f"{row.arrest:.3g}", f"{row.extravasation:.3g}",
                      f"{row.founds:.3g}")
    console.print(table)
    console.print()
    lines = (model_view.graph_text(resolved) if drawing is GraphFormat.text
             else ["```mermaid", *model_view.graph_mermaid(resolved), "```"])
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


@model_app.command("export")
def model_export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write: a .toml or .json file.")
    ],
    cancer: Annotated[
        str | None, typer.Option("--cancer", "-c", help="Keep only this cancer type.")
    ] = None,
    model: ModelOption = None,
) -> None:
    """Write the knowledge base (defaults merged, every source kept) for `--model FILE`."""
    with user_errors():
        model_view.check_export_path(out)
        output.check_writable(out)
        kb = knowledge_loader.load(model)
        data = model_view.export_data(kb, cancer)
        if out.suffix.lower() == ".json":
            if metastasis.DISCLAIMER not in data.get("description", ""):
                data["description"] = f"{data.get('description', '')} {metastasis.DISCLAIMER}"
                data["description"] = data["description"].strip()
            text = model_view.to_json(data)
        else:
            header = [
                f"metastasis knowledge base, written by `metastasis model export` "
                f"(version {metastasis.__version__}).",
                metastasis.DISCLAIMER,
                "Every number is { value, source }; edit a value, cite its new source, and "
                "load the file with --model.",
            ]
            text = model_view.to_toml(data, header)
        output.write_text(out, text)
    typer.echo(f"Wrote {out}", err=True)

