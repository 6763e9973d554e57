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

from collections.abc import Mapping
from typing import Any

import uvicorn
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from projections.api.errors import BODY_MAX_BYTES, ErrorBody

REQUEST_TARGET_MAX_BYTES = 8 * 1024
"""Longest path plus query string answered: every route's longest legitimate target (ids of
at most 128 characters, a few filters, a cursor) is under 1 KiB."""

REQUEST_HEAD_MAX_BYTES = 2 * 1024 * 1024
"""Longest request head (request line and headers) the server reads before answering."""


class BoundedRequestTarget:
    """ASGI middleware: 414 `uri_too_long` for a target over `REQUEST_TARGET_MAX_BYTES`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: bytes = scope.get("raw_path") or scope["path"].encode()
            size = len(path) + len(scope.get("query_string", b""))
            if size > REQUEST_TARGET_MAX_BYTES:
                body = ErrorBody(
                    error="uri_too_long",
                    reason=f"the path and query are {size} bytes long; this API reads at most "
                    f"{REQUEST_TARGET_MAX_BYTES}",
                )
                await JSONResponse(body.json_body(), status_code=414)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyTooLargeError(HTTPException):
    # An HTTPException: the framework's body parsing passes it on (any other error there
    # becomes a 400), and the API's handler answers it in the error body's shape.
    def __init__(self, bound: int) -> None:
        super().__init__(413, f"the request body is over {bound} bytes; this API reads at most "
                              f"{bound}")  # fmt: skip


class BoundedRequestBody:
    """ASGI middleware: 413 `payload_too_large` for a body over `errors.BODY_MAX_BYTES`, told
    by its `Content-Length` before a byte is read, or counted as the bytes arrive (chunked):
    no route reads or parses more."""

    def __init__(self, app: ASGIApp, wider: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.wider = dict(wider or {})  # path prefix → its own bound (the console's forms)

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
            await _too_large(told, bound)(scope, receive, send)
            return
        read = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > bound:
                    raise _BodyTooLargeError(bound)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except _BodyTooLargeError:
            if started:
                raise
            await _too_large(read, bound)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(size: int, bound: int) -> JSONResponse:
    body = ErrorBody(
        error="payload_too_large",
        reason=f"the request body is {size} bytes or more; this API reads at most {bound}",
    )
    return JSONResponse(body.json_body(), status_code=413)


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
