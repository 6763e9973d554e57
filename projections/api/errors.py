"""The API's error bodies: one JSON shape for every refusal, with a stable `error` code.

Owns the exceptions routes raise, the handlers that turn them (and FastAPI's own validation
errors, and Starlette's 404/405 for a path no route has) into responses, the body's model
(`ErrorBody`), and how routes declare their refusals in the OpenAPI description (`refusals`).
Never decides whether a request is allowed: `auth`, `identifiers` and `views` do that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException


class Problem(BaseModel):
    """One thing wrong with a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameter: str = Field(
        description="The path, query or header parameter, or the body field as a dotted path "
        "(`lines.0.sku`)."
    )
    reason: str


class ErrorBody(BaseModel):
    """The body of every refusal (4xx) and of every 503."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: str = Field(
        description="A stable code: `invalid_parameter`, `unauthorized`, `forbidden`, "
        "`not_found`, `method_not_allowed`, `uri_too_long`, `database_unavailable`, or one "
        "the route names (`unknown_offer`, `member_merged`, ...).",
        examples=["invalid_parameter"],
    )
    reason: str = Field(description="What is wrong, in words a person can act on.")
    parameter: str | None = Field(
        default=None, description="The parameter or body field at fault, when there is one."
    )
    errors: list[Problem] | None = Field(
        default=None,
        description="Every problem found, when the request failed validation (the first is "
        "also in `parameter` and `reason`).",
    )

    def json_body(self) -> dict[str, Any]:
        """The body as sent: absent fields are left out, never null."""
        return self.model_dump(mode="json", exclude_none=True)


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
        return ErrorBody(error=self.error, reason=self.reason, parameter=self.parameter).json_body()


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


class MemberMergedError(ApiError):
    """409: the member was merged into another; `instead` says what to read or do for the
    survivor, who holds the member's points, offers and challenges now."""

    def __init__(self, member_id: str, survivor: str | None, instead: str) -> None:
        super().__init__(
            409, "member_merged", f"member '{member_id}' was merged into '{survivor}': {instead}"
        )


_NOT_AN_OBJECT = frozenset({"dict_type", "model_attributes_type", "model_type"})


def _problem(item: Mapping[str, Any]) -> Problem:
    """One validation error as a refusal names it; a body that is not JSON, or not a JSON
    object, is said plainly (pydantic's "JSON decode error" at location ("body", 1) named the
    character position as the parameter)."""
    location, kind = tuple(item.get("loc", ())), item.get("type")
    if kind == "json_invalid":
        at = location[1] if len(location) > 1 else None
        why = (item.get("ctx") or {}).get("error", "")
        where = f" at character {at}" if at is not None else ""
        return Problem(parameter="body", reason=f"the body is not valid JSON{where}: {why}")
    if location == ("body",) and kind in _NOT_AN_OBJECT:
        return Problem(
            parameter="body",
            reason="the body must be a JSON object, sent with Content-Type: application/json",
        )
    return Problem(parameter=_parameter_name(location), reason=str(item.get("msg", "")))


async def _on_api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _on_validation_error(_: Request, error: Exception) -> JSONResponse:
    # FastAPI answers 422 by default; a bad query parameter is a bad request (400), with the
    # same body shape as every other refusal plus the full list when there are several.
    assert isinstance(error, RequestValidationError)
    # The value itself is never echoed: it may be 10⁶ characters or a terminal escape.
    problems = [_problem(item) for item in error.errors()]
    first = problems[0] if problems else Problem(parameter="", reason="invalid request")
    body = ErrorBody(
        error="invalid_parameter", reason=first.reason, parameter=first.parameter, errors=problems
    )
    return JSONResponse(body.json_body(), status_code=400)


_HTTP_ERRORS = {
    400: "invalid_parameter",  # the framework's own: a body it could not parse (nested too deep)
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}

BODY_MAX_BYTES = 1024 * 1024
"""The largest request body the API reads (a cart of 500 lines is ~150 KB): beyond, 413
`payload_too_large` as the bytes arrive, before any is parsed."""


class EdgeRefusal(HTTPException):
    """A refusal made as the request arrives (`edge`: its body read as it comes), with its
    body: an HTTPException, so that the framework's body parsing passes it on (any other
    error there becomes a 400) and `_on_http_error` answers it as it is."""

    def __init__(self, status_code: int, body: ErrorBody) -> None:
        super().__init__(status_code, body.reason)
        self.body = body


async def _on_http_error(_: Request, error: Exception) -> JSONResponse:
    # Starlette's own refusals (no route has this path, or not this method) in the same shape.
    assert isinstance(error, HTTPException)
    if isinstance(error, EdgeRefusal):
        body = error.body
    else:
        code = _HTTP_ERRORS.get(error.status_code, "http_error")
        body = ErrorBody(error=code, reason=str(error.detail))
    return JSONResponse(body.json_body(), status_code=error.status_code, headers=error.headers)


async def _on_database_unavailable(_: Request, error: Exception) -> JSONResponse:
    # Not the client's fault and worth retrying: 503, never a 500 with a stack trace.
    body = ErrorBody(error="database_unavailable", reason=type(error).__name__)
    return JSONResponse(body.json_body(), status_code=503, headers={"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Register the handlers that give every refusal the shape described above."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(PoolTimeout, _on_database_unavailable)
    app.add_exception_handler(OperationalError, _on_database_unavailable)


_MEANINGS = {
    400: "invalid_parameter: a path, query, header or body value is malformed (an identifier "
    "that is not printable ASCII or too long, a bad filter, a bad cursor); `parameter` names it",
    401: "unauthorized: no usable bearer token; `reason` says what is wrong with it",
    403: "forbidden: the token may not read this resource",
    404: "not_found: no such resource",
    409: "conflict: the request contradicts the state of the resource",
    413: "payload_too_large: the request body is longer than the API reads (1 MiB)",
    414: "uri_too_long: the path and query are longer than the API reads",
    422: "the request is well formed but cannot be carried out; `error` says why",
    429: "too_many_requests: too many failed attempts from this caller; retry after `Retry-After`",
    503: "database_unavailable (or the route's own `*_unavailable`): retry after `Retry-After`",
}


_CODES = {
    400: "invalid_parameter",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    422: "unprocessable",
    429: "too_many_requests",
    503: "database_unavailable",
}
# "code: reason", or "snake_code (reason)": a description that starts with its stable code.
_CODED = re.compile(r"([a-z]+(?:_[a-z]+)+|[a-z]+(?=:)):?\s*(.+)", re.DOTALL)


def example_of(status: int, description: str) -> dict[str, Any]:
    """An example body for a refusal described as `code: reason` (the code and the reason
    are the example's), or in other words (the status's usual code, the words as reason)."""
    coded = _CODED.fullmatch(description)
    error, reason = coded.groups() if coded else (_CODES[status], description)
    return ErrorBody(error=error, reason=reason).json_body()


def refusals(*statuses: int, described: Mapping[int, str] | None = None) -> dict[int | str, Any]:
    """The `responses` of a route that answers `statuses` with an `ErrorBody`, each described
    by its general meaning or by the route's own words in `described`, with an example body."""
    own = dict(described or {})
    unknown = set(own) - set(statuses)
    assert not unknown, f"described statuses {unknown} are not among {statuses}"
    responses: dict[int | str, Any] = {}
    for status in statuses:
        description = own.get(status, _MEANINGS[status])
        responses[status] = {
            "model": ErrorBody,
            "description": description,
            "content": {"application/json": {"example": example_of(status, description)}},
        }
    return responses


_FRAMEWORK_422 = "#/components/schemas/HTTPValidationError"


def without_framework_422(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` without the 422 FastAPI documents on every route with parameters: the API
    answers validation errors 400 (`_on_validation_error`), and declares it."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref") == _FRAMEWORK_422:
                del responses["422"]
    schemas = spec.get("components", {}).get("schemas", {})
    if _FRAMEWORK_422 not in json.dumps(spec):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return spec


def with_body_limit(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the 413 every route that reads a body may answer (`BODY_MAX_BYTES`)."""
    description = _MEANINGS[413]
    documented = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorBody"},
                "example": example_of(413, description),
            }
        },
    }
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", documented)
    return spec
