"""What the API bounds before any route runs: the length of a request's target and of its body,
and the server option that lets it answer an over-long target rather than drop the connection.

A request line of 10⁶ characters used to end in a reset connection: uvicorn's HTTP parser (h11)
gives up on a request head over 16 KiB, writes a plain-text 400 and closes the socket with the
rest of the request unread, so the client's kernel sees a reset, often before the answer. With
`server_config`, uvicorn reads a head of up to `REQUEST_HEAD_MAX_BYTES` whole, and
`BoundedRequestTarget` answers a target over `REQUEST_TARGET_MAX_BYTES` with 414 and the API's
error body before routing, so no route ever sees such a path. A head over the server's bound is
still refused by uvicorn (400, connection closed): memory per connection stays bounded.

The server runs on uvloop (a dependency; uvicorn picks it when installed): `GET /healthz` cost
2.1–2.3 ms of the API process's CPU on asyncio's loop and 1.2–1.4 ms on uvloop, same host,
alternating runs (docs/performance.md). The HTTP parser stays h11 on purpose: httptools saved
little more in the same runs and has no bound on a request head, the one `server_config` sets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from projections.api.errors import BODY_MAX_BYTES, EdgeRefusal, ErrorBody, Problem

REQUEST_TARGET_MAX_BYTES = 8 * 1024
"""Longest path plus query string answered: every route's longest legitimate target (ids of
at most 128 characters, a few filters, a cursor) is under 1 KiB."""

REQUEST_HEAD_MAX_BYTES = 2 * 1024 * 1024
"""Longest request head (request line and headers) the server reads before answering."""


class BoundedRequestTarget:
    """ASGI middleware: 414 `uri_too_long` for a target over `REQUEST_TARGET_MAX_BYTES`."""

    def __init__(self, app: ASGIApp, own_nul_checks: tuple[str, ...] = ()) -> None:
        self.app = app
        self.own_nul_checks = own_nul_checks  # prefixes that answer a NUL in their own pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: bytes = scope.get("raw_path") or scope["path"].encode()
            query: bytes = scope.get("query_string", b"")
            size = len(path) + len(query)
            if size > REQUEST_TARGET_MAX_BYTES:
                body = ErrorBody(
                    error="uri_too_long",
                    reason=f"the path and query are {size} bytes long; this API reads at most "
                    f"{REQUEST_TARGET_MAX_BYTES}",
                )
                await JSONResponse(body.json_body(), status_code=414)(scope, receive, send)
                return
            own = scope["path"].startswith(self.own_nul_checks)
            if not own and _holds_nul(query, "form"):  # a path's ids: by their own checks
                await _answer(_nul_refused(query, "form", "query"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


NUL_FORMS: Final = {
    "json": (b"\\u0000", b"\x00"),
    "form": (b"%00", b"\x00"),
    "other": (b"\x00",),
}
"""How a NUL character (U+0000) is written in a body of each kind: JSON escapes it, a form or
a URL percent-encodes it, anything may carry the raw byte."""
_TAIL: Final = 5  # a match may straddle two chunks of a body: the longest form, less one


def _body_kind(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            if kind == b"application/json" or kind.endswith(b"+json"):
                return "json"
            if kind == b"application/x-www-form-urlencoded":
                return "form"
            return "other"
    return "json"  # the framework reads a body without a type as JSON


def _holds_nul(data: bytes, kind: str) -> bool:
    return any(form in data for form in NUL_FORMS[kind])


def _nul_refused(data: bytes, kind: str, where: str) -> EdgeRefusal:
    """400 naming the field that holds the NUL character, as a validation error would."""
    field = _nul_field(data, kind) or where
    reason = f"{field} holds a NUL character (U+0000), which no field of this API can hold"
    body = ErrorBody(
        error="invalid_parameter", reason=reason, parameter=field,
        errors=[Problem(parameter=field, reason=reason)],
    )  # fmt: skip
    return EdgeRefusal(400, body)


def _nul_field(data: bytes, kind: str) -> str | None:
    """The field of `data` (a JSON body: its dotted path, `lines.0.sku`; a form or a query:
    its name) whose name or value holds the NUL character; None when it cannot be told."""
    if kind == "form":
        pairs = parse_qsl(data.decode("latin-1"), keep_blank_values=True)
        return next((name for name, value in pairs if "\x00" in name + value), None)
    if kind != "json":
        return None
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return _json_path(parsed, [])


def _json_path(value: Any, path: list[str]) -> str | None:
    if isinstance(value, str):
        return ".".join(path) if "\x00" in value and path else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else ()  # fmt: skip
    for key, item in items:
        if "\x00" in str(key):
            return ".".join([*path, str(key).replace("\x00", "?")])
        found = _json_path(item, [*path, str(key)])
        if found is not None:
            return found
    return None


def _answer(refusal: EdgeRefusal) -> JSONResponse:
    return JSONResponse(refusal.body.json_body(), status_code=refusal.status_code)


class BoundedRequestBody:
    """ASGI middleware: 413 `payload_too_large` for a body over `errors.BODY_MAX_BYTES`, told
    by its `Content-Length` before a byte is read, or counted as the bytes arrive (chunked):
    no route reads or parses more. And 400 `invalid_parameter` for a body that holds a NUL
    character in any form (`NUL_FORMS`): Postgres text and jsonb cannot hold one, so a name or
    a message title with it would fail its write (a 500) or stall the projector (a user's
    trial); `BoundedRequestTarget` refuses one in the query the same way (the path's ids are
    refused by their own checks). The field is named as a validation error names it."""

    def __init__(
        self,
        app: ASGIApp,
        wider: Mapping[str, int] | None = None,
        own_nul_checks: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.wider = dict(wider or {})  # path prefix → its own bound (the console's forms)
        self.own_nul_checks = own_nul_checks  # prefixes that answer a NUL in their own pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        bound = next(
            (n for prefix, n in self.wider.items() if path.startswith(prefix)), BODY_MAX_BYTES
        )
        told = _content_length(scope)
        if told is not None and told > bound:
            await _answer(_too_large(told, bound))(scope, receive, send)
            return
        read = 0
        started = False
        kind = None if path.startswith(self.own_nul_checks) else _body_kind(scope)
        chunks: list[bytes] = []

        async def bounded_receive() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                read += len(chunk)
                if read > bound:
                    raise _too_large(read, bound)
                seam = chunks[-1][-_TAIL:] if chunks else b""
                chunks.append(chunk)
                if kind is not None and _holds_nul(seam + chunk, kind):
                    more = message.get("more_body", False)
                    while more:  # the whole body, to name the field (bounded as above)
                        rest = await receive()
                        chunks.append(rest.get("body", b""))
                        read += len(chunks[-1])
                        if read > bound:
                            raise _too_large(read, bound)
                        more = rest.get("more_body", False)
                    raise _nul_refused(b"".join(chunks), kind, "body")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except EdgeRefusal as refused:  # raised outside the framework's own handlers
            if started:
                raise
            await _answer(refused)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(size: int, bound: int) -> EdgeRefusal:
    body = ErrorBody(
        error="payload_too_large",
        reason=f"the request body is {size} bytes or more; this API reads at most {bound}",
    )
    return EdgeRefusal(413, body)


def server_config(app: ASGIApp | str, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How uvicorn must serve the API (`app`, or the import path of its factory for several
    workers): `options` as given, with the request head bound above."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        h11_max_incomplete_event_size=REQUEST_HEAD_MAX_BYTES,
        **options,
    )
