"""One shape for every error the web explorer returns, as JSON or as a page.

The project's rule for bad input (see :mod:`metastasis.errors`) is one message that names the
field, the value and what is allowed.  The API keeps that rule: a :class:`ModelError`, a
request FastAPI could not parse (a word where a number goes, NaN, a huge integer), an
overloaded server or a run past its time limit all become a 4xx or 503 whose ``detail`` is
such a sentence, with the parts also given separately for programs.  Nothing a client sends
may produce a 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import metastasis
from metastasis.errors import ModelError
from metastasis.web.runner import Busy, TooSlow

log = logging.getLogger("metastasis.web")

RETRY_AFTER_SECONDS = 5


class NotFound(ModelError):
    """A named thing (a guide section) that does not exist: 404 rather than 422."""


@dataclass(frozen=True)
class Problem:
    """An error as the explorer reports it."""

    status: int
    message: str
    field: str | None = None
    value: Any = None
    allowed: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "detail": self.message,
            "error": {
                "status": self.status,
                "field": self.field,
                "value": json_safe_value(self.value),
                "allowed": self.allowed,
            },
            "disclaimer": metastasis.DISCLAIMER,
        }


def json_safe_value(value: Any) -> Any:
    """The offending value as JSON can carry it (NaN, infinities and objects as text)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return repr(value)


def from_model_error(error: ModelError, status: int = 422) -> Problem:
    return Problem(status, str(error), error.field, error.value, error.allowed)


def from_validation(error: RequestValidationError, rules: Mapping[str, str]) -> Problem:
    """The first problem FastAPI found, said the way a :class:`ModelError` says it.

    ``rules`` maps a parameter name to what is allowed for it; FastAPI's own wording (for
    example "Input should be a valid integer") is used for fields without a rule.
    """
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    field = ".".join(location) or "request"
    missing = first.get("type") == "missing"
    value = None if missing else first.get("input")
    shown = "nothing" if missing else repr(value)
    problem = str(first.get("msg", "invalid value"))
    allowed = rules.get(location[-1] if location else "", problem)
    message = f"{field}: got {shown}; allowed: {allowed}"
    if allowed != problem:
        message += f" ({problem[0].lower() + problem[1:]})" if problem else ""
    return Problem(422, message, field, value, allowed)


def busy() -> Problem:
    return Problem(
        503,
        "the server is running as many simulations as it allows; try again in a few seconds",
    )


def too_slow(seconds: float) -> Problem:
    return Problem(
        503,
        f"the simulation took longer than the limit of {seconds:g} s per request and was "
        "stopped; ask for fewer patients or fewer years",
    )


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def install(app: FastAPI, rules: Mapping[str, str], page: Any) -> None:
    """Register the handlers.  ``page(request, problem)`` renders an HTML error page."""

    def respond(request: Request, problem: Problem,
                extra: Mapping[str, str] | None = None) -> Response:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if problem.status == 503 else {}
        headers.update(extra or {})
        if is_api(request):
            return JSONResponse(problem.payload(), status_code=problem.status, headers=headers)
        response: HTMLResponse = page(request, problem)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(ModelError)
    async def model_error(request: Request, error: ModelError) -> Response:
        return respond(request, from_model_error(error))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> Response:
        return respond(request, from_model_error(error, 404))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        return respond(request, from_validation(error, rules))

    @app.exception_handler(Busy)
    async def busy_error(request: Request, _error: Busy) -> Response:
        return respond(request, busy())

    @app.exception_handler(TooSlow)
    async def slow_error(request: Request, error: TooSlow) -> Response:
        seconds = float(error.args[0]) if error.args else 0.0
        return respond(request, too_slow(seconds))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404:
            message = f"nothing at {request.url.path}"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed at {request.url.path}"
        else:
            message = str(error.detail)
        # the router's own headers (a 405's Allow: the methods the path does accept)
        return respond(request, Problem(error.status_code, message), error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:  # pragma: no cover
        log.exception("unexpected error on %s", request.url.path, exc_info=error)
        return respond(
            request,
            Problem(500, "an unexpected error in metastasis; please report it with this URL"),
        )
