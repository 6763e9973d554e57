"""The API's error bodies: one JSON shape for every refusal, with a stable `error` code.

Owns the exceptions routes raise and the handlers that turn them (and FastAPI's own query
validation errors) into responses. Never decides whether a request is allowed: `auth` and
`views` do that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError
from psycopg_pool import PoolTimeout


class ApiError(Exception):
    """A refusal with its HTTP status, a stable code and a reason a person can act on."""

    def __init__(
        self,
        status: int,
        error: str,
        reason: str,
        *,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.parameter = parameter
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "reason": self.reason}
        if self.parameter is not None:
            body["parameter"] = self.parameter
        return body


class BadParameterError(ApiError):
    """400: a query or path parameter is malformed, out of range or inconsistent."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(400, "invalid_parameter", reason, parameter=parameter)


class UnauthorizedError(ApiError):
    """401: no usable bearer token; the reason says what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            401,
            "unauthorized",
            reason,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


class ForbiddenError(ApiError):
    """403: a valid token that may not read this resource."""

    def __init__(self, reason: str) -> None:
        super().__init__(403, "forbidden", reason)


class NotFoundError(ApiError):
    """404: the resource does not exist."""

    def __init__(self, reason: str) -> None:
        super().__init__(404, "not_found", reason)


def _parameter_name(location: Sequence[Any]) -> str:
    # ("query", "limit") -> "limit"; ("path", "member_id") -> "member_id".
    names = [str(part) for part in location[1:]] or [str(part) for part in location]
    return ".".join(names)


async def _on_api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _on_validation_error(_: Request, error: Exception) -> JSONResponse:
    # FastAPI answers 422 by default; a bad query parameter is a bad request (400), with the
    # same body shape as every other refusal plus the full list when there are several.
    assert isinstance(error, RequestValidationError)
    problems = [
        {"parameter": _parameter_name(item.get("loc", ())), "reason": str(item.get("msg", ""))}
        for item in error.errors()
    ]
    first = problems[0] if problems else {"parameter": "", "reason": "invalid request"}
    body = {"error": "invalid_parameter", **first, "errors": problems}
    return JSONResponse(body, status_code=400)


async def _on_database_unavailable(_: Request, error: Exception) -> JSONResponse:
    # Not the client's fault and worth retrying: 503, never a 500 with a stack trace.
    body = {"error": "database_unavailable", "reason": type(error).__name__}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Register the handlers that give every refusal the shape described above."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(PoolTimeout, _on_database_unavailable)
    app.add_exception_handler(OperationalError, _on_database_unavailable)
