"""The app factory and the server: ``create_app()`` builds the explorer, ``serve()`` runs it.

Everything the browser loads comes from this app: templates, CSS and scripts from the
package, plotly.js from the installed ``plotly`` package (read from its ``package_data`` at
request time, never copied into this repository, never fetched from a CDN).  A strict
Content-Security-Policy (``'self'`` only) makes the no-network rule hold in the browser
too: a page that tried to load anything from elsewhere would be blocked.  FastAPI's
interactive docs are switched off because they load from a CDN; the schema is at
``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import metastasis
from metastasis.web import api, bodymap, errors, views
from metastasis.web.limits import Limits
from metastasis.web.service import AppState

HERE = Path(__file__).parent
PLOTLY_JS = ("package_data", "plotly.min.js")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Metastasis-Disclaimer": metastasis.DISCLAIMER,
}
"""``style-src 'unsafe-inline'``: plotly.js sets inline styles on the elements it draws."""


def plotly_js_path() -> Path | None:
    """plotly.min.js inside the installed ``plotly`` package, or None without the package."""
    try:
        path = resources.files("plotly").joinpath(*PLOTLY_JS)
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["cells"] = bodymap.format_cells
    env.filters["days"] = lambda d: f"{d:,.0f}"
    env.filters["years"] = lambda d: f"{d / bodymap.DAYS_PER_YEAR:.1f}"
    env.filters["pct"] = lambda s: "–" if s is None else f"{100 * s:.1f} %"
    env.filters["thousands"] = lambda n: f"{n:,}"
    return templates


def create_app(limits: Limits | None = None, model_path: str | Path | None = None) -> FastAPI:
    """The web explorer as an ASGI app.

    ``limits`` bound what one request may ask (defaults: :class:`Limits`); ``model_path``
    serves a knowledge base of one's own instead of the default one.
    """
    limits = limits or Limits()
    state = AppState.build(limits, model_path)
    templates = _templates()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.runner.start()
        yield
        state.runner.shutdown()

    app = FastAPI(
        title="metastasis explorer",
        version=metastasis.__version__,
        description=(
            f"**{metastasis.DISCLAIMER}**\n\n"
            "JSON API of the metastasis web explorer: the model's cancer types, one virtual "
            "patient, the body map on any day, cohorts, and the guide.\n\n"
            f"Limits per request: at most {limits.max_patients} patients, years in "
            f"(0, {limits.max_years:g}], {limits.request_seconds:g} s of simulation "
            f"(longer runs are stopped: 503), {limits.max_running} simulations at once and "
            f"{limits.max_waiting} waiting (more: 503). Bad input gets a 422 whose `detail` "
            "names the field, the value and what is allowed."
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.metastasis = state
    errors.install(app, state.rules(), views.error_page(templates))

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                      ) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        path = plotly_js_path()
        if path is None:
            return PlainTextResponse(
                "plotly.js is not installed: pip install 'metastasis[web]'", status_code=404
            )
        return FileResponse(path, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.include_router(api.build(state))
    app.include_router(views.build(state, templates))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, *, limits: Limits | None = None,
          model_path: str | Path | None = None, log_level: str = "info") -> None:
    """Run the explorer with uvicorn until interrupted (``metastasis serve``).

    It listens on the loopback interface by default: the explorer is meant for one person's
    browser, and its limits are set for that.
    """
    import uvicorn

    uvicorn.run(create_app(limits, model_path), host=host, port=port, log_level=log_level)
