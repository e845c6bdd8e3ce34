"""The example protocol file shipped with the package, for learners to copy and edit.

A protocol file is easiest to write by changing one that works, so the package carries one
(``examples/protocol.toml``): every field commented, loadable as it stands by
:func:`metastasis.clinical.treatment_schema.load_protocols`.  ``metastasis protocol
example`` prints it; a test runs a cohort with exactly what that command prints, so the
example cannot drift from the loader.
"""

from __future__ import annotations

from importlib import resources

EXAMPLE_FILE = "protocol.toml"
"""The example's file name under ``metastasis/clinical/examples/`` (package data)."""

EXAMPLE_NAME = "my_colorectal_plan"
"""The name of the protocol the example defines (what ``--protocol-name`` would pick)."""


def example_text() -> str:
    """The example protocol file, comments included, exactly as shipped."""
    shipped = resources.files("metastasis.clinical").joinpath("examples", EXAMPLE_FILE)
    return shipped.read_text(encoding="utf-8")
