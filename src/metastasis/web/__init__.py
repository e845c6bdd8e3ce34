"""The web explorer: the guide, a virtual patient on a body map, cohorts, and a JSON API.

An optional part of metastasis (``pip install 'metastasis[web]'``): it needs FastAPI,
uvicorn, Jinja2 and plotly (for its plotly.js, served locally).  It calls only the public
API (:mod:`metastasis.api`, :mod:`metastasis.cohort`, the result types and the guide
package), never the engine.

Educational and research software: not medical advice, and no prediction for any real
person.  Every page and every API response says so.
"""

from __future__ import annotations

try:
    from metastasis.web.app import create_app, serve
except ModuleNotFoundError as error:  # pragma: no cover - depends on the installation
    if error.name in {"fastapi", "starlette", "jinja2", "uvicorn", "pydantic"}:
        raise ModuleNotFoundError(
            f"the web explorer needs {error.name}: pip install 'metastasis[web]'",
            name=error.name,
        ) from error
    raise

from metastasis.web.limits import Limits

__all__ = ["Limits", "create_app", "serve"]
