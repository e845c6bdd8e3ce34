"""The ``metastasis`` command line (typer + rich): a thin layer over the public API."""
