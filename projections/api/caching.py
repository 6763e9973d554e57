"""HTTP caching of read responses that apps and CDNs understand (RFC 9110 §8.8.3, §13.1.2;
RFC 9111 §5.2): strong `ETag`s from the bytes sent, `If-None-Match` answered 304, and the
`Cache-Control` of a public and of a private response.

Owns the header formats and the comparison; never decides how long something may be cached
(the route knows when its answer changes). Pure.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header, Response

PUBLIC_MAX_AGE_S = 60
"""The longest a shared cache may keep a public answer without asking again."""

PRIVATE = "private, no-cache"
"""A member's own data: only their device may keep it, and must revalidate it each time."""

IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=4096,
        description="ETags of copies the client holds: a match is answered 304 Not Modified, "
        "without a body.",
        examples=['"5d41402abc4b2a76b9719d911017c592"'],
    ),
]


def etag_of(body: bytes) -> str:
    """A strong entity tag of the bytes sent: the same bytes, the same tag, in every process."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (or is `*`). A GET compares weakly: `W/"x"`
    matches `"x"`."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def public(max_age_s: int) -> str:
    """`Cache-Control` of an answer anyone may see, good for `max_age_s` seconds (0: every
    use must be revalidated)."""
    seconds = max(0, min(max_age_s, PUBLIC_MAX_AGE_S))
    return f"public, max-age={seconds}" if seconds else "public, no-cache"


def answer(
    body: bytes, *, if_none_match: str | None, cache_control: str, etag: str | None = None
) -> Response:
    """200 with `body` (JSON), or 304 without it when the client holds the same bytes; both
    with the `ETag` and `Cache-Control` (a 304 carries them too, RFC 9110 §15.4.5)."""
    tag = etag or etag_of(body)
    headers = {"ETag": tag, "Cache-Control": cache_control}
    if matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
