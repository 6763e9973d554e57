"""Bearer tokens: who is calling, and whether they may read a member's data (DESIGN.md §7).

A token is a JWT signed with HS256 and the API secret, carrying `sub` (the member id, or the
staff user's name), `role` (`member` or `staff`), `iat` and `exp`; a staff token may also carry
`staff_role` (`marketer`, `agent` or `admin`): what its holder may do in the staff console
(docs/adr/0035-staff-console.md). A member token reads only its own member's endpoints; a
staff token reads any member. Owns issuing and checking tokens;
never reads a table, and never trusts a claim whose signature does not verify.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from projections.api.errors import ForbiddenError, UnauthorizedError
from projections.api.identifiers import MemberIdPath

ALGORITHM = "HS256"
DEFAULT_TOKEN_TTL = timedelta(hours=1)


class Role(StrEnum):
    """What a token's holder is."""

    MEMBER = "member"
    STAFF = "staff"
    # A point of sale: prices carts, reserves and releases codes and capped offers, locks and
    # redeems a member's issued offers at checkout; reads no member's data (ADR 33).
    TILL = "till"


class StaffRole(StrEnum):
    """What a staff member does in the console: the `staff_role` claim of a staff token."""

    MARKETER = "marketer"
    AGENT = "agent"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The verified holder of a token."""

    subject: str
    role: Role
    staff_role: StaffRole | None = None
    """Staff only, when the token says: what the holder may do in the console."""

    def may_read_member(self, member_id: str) -> bool:
        """A member reads only itself; staff read anyone; a till nobody (whatever its name)."""
        return self.role is Role.STAFF or (self.role is Role.MEMBER and self.subject == member_id)


def issue_token(
    secret: str,
    subject: str,
    role: Role,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    staff_role: StaffRole | None = None,
) -> str:
    """A signed token for `subject` in `role`, valid from `now` for `ttl`; a staff token may
    name the holder's `staff_role` in the console."""
    if not subject:
        raise ValueError("a token needs a subject")
    if staff_role is not None and role is not Role.STAFF:
        raise ValueError("only a staff token has a staff role")
    claims: dict[str, Any] = {"sub": subject, "role": role.value, "iat": now, "exp": now + ttl}
    if staff_role is not None:
        claims["staff_role"] = staff_role.value
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _decode(secrets: Sequence[str], token: str) -> dict[str, Any]:
    """The token's claims under the first key whose signature verifies (a rotation keeps the
    retiring key beside the new one); the last key's error when none does."""
    for n, secret in enumerate(secrets):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                # Pinned: a token cannot choose its own algorithm (no "none", no RS/HS confusion).
                algorithms=[ALGORITHM],
                options={"require": ["sub", "role", "exp"]},
            )
            return claims
        except jwt.InvalidSignatureError:
            if n == len(secrets) - 1:
                raise
    raise jwt.InvalidSignatureError("no key to verify with")


VERIFIED_MAX = 50_000
"""Tokens whose verification is remembered by one API process (the oldest forgotten first):
~550 bytes each with its token, ~28 MB at most. Fewer than the members who call in a while misses on
nearly every request (bench-feed's 20,000 members with 10,000 kept: PyJWT was 6 % of a feed
request again)."""

_verified: dict[tuple[tuple[str, ...], str], tuple[Principal, float]] = {}


def verify_token(secrets: str | Sequence[str], token: str) -> Principal:
    """The principal a token names; `UnauthorizedError`, with the reason, if it is not trusted.
    `secrets`: the key, or the keys accepted (the signing key first).

    A token that verified is remembered with its expiry, under the very keys it was verified
    with, until it expires: an app sends the same token on every request, and checking its
    signature and claims again was a tenth of a till's request (docs/performance.md). Only
    verified tokens are remembered, so a caller cannot fill the memory with forgeries, and a
    key rotation (other keys) verifies again."""
    keys = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    known = _verified.get((keys, token))
    if known is not None:
        principal, expires = known
        if expires > time.time():  # PyJWT's own test: expired once `exp` <= now
            return principal
        del _verified[(keys, token)]
    principal, expires = _verify(keys, token)
    if len(_verified) >= VERIFIED_MAX:
        del _verified[next(iter(_verified))]
    _verified[(keys, token)] = (principal, expires)
    return principal


def _verify(secrets: Sequence[str], token: str) -> tuple[Principal, float]:
    """The principal and the expiry (seconds since the epoch) of a token verified in full."""
    try:
        claims = _decode(list(secrets), token)
    except jwt.ExpiredSignatureError:
        raise UnauthorizedError("the token has expired") from None
    except jwt.MissingRequiredClaimError as error:
        raise UnauthorizedError(f"the token lacks the '{error.claim}' claim") from None
    except jwt.InvalidSignatureError:
        raise UnauthorizedError("the token's signature does not verify") from None
    except jwt.InvalidAlgorithmError:
        raise UnauthorizedError(f"the token must be signed with {ALGORITHM}") from None
    except jwt.DecodeError:
        raise UnauthorizedError("the bearer value is not a JWT") from None
    except jwt.InvalidTokenError as error:
        raise UnauthorizedError(f"the token is invalid: {error}") from None
    subject, role = claims["sub"], claims["role"]
    if not isinstance(subject, str) or not subject:
        raise UnauthorizedError("the token's 'sub' claim must be a non-empty string")
    if role not in {r.value for r in Role}:
        raise UnauthorizedError("the token's 'role' claim must be 'member' or 'staff'")
    staff_role = claims.get("staff_role")
    if staff_role is not None and (
        role != Role.STAFF.value or staff_role not in {r.value for r in StaffRole}
    ):
        raise UnauthorizedError(
            "the token's 'staff_role' claim must be 'marketer', 'agent' or 'admin', on a "
            "staff token"
        )
    principal = Principal(
        subject=subject,
        role=Role(role),
        staff_role=StaffRole(staff_role) if staff_role is not None else None,
    )
    return principal, float(claims["exp"])


# Declares the scheme in the OpenAPI description; the header is read below, so that each way
# of getting it wrong gets its own reason. The dependencies below are `async def` though they
# never wait: FastAPI runs a plain `def` dependency in a worker thread, and the hop there and
# back cost more than verifying the token (docs/adr/0025-offer-feeds.md, addendum).
_BEARER = HTTPBearer(auto_error=False, description="`loyalty token member M1` prints one.")


async def read_principal(
    request: Request,
    declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    """The caller named by the `Authorization: Bearer <token>` header (`declared` is unused),
    a member or staff: a till token is refused here (403), so no route that serves members or
    staff can take a till for a member named like it; the till's own routes read the caller
    with `read_any_principal`."""
    principal = await read_any_principal(request, declared)
    if principal.role is Role.TILL:
        raise ForbiddenError(
            "a till token prices carts and holds offers; it reads no member's data"
        )
    return principal


async def read_any_principal(
    request: Request,
    declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal:
    """The caller named by the `Authorization: Bearer <token>` header, of any role."""
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthorizedError("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("the Authorization header must be 'Bearer <token>'")
    secrets: list[str] = request.app.state.api_secrets
    return verify_token(secrets, token.strip())


async def read_optional_principal(
    request: Request,
    declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Principal | None:
    """The caller, or None for a request without an `Authorization` header (an anonymous
    reader); a header that is there must hold a valid token (401 otherwise)."""
    if request.headers.get("authorization") is None:
        return None
    return await read_principal(request, declared)


async def authorized_member(
    member_id: MemberIdPath,
    principal: Annotated[Principal, Depends(read_principal)],
) -> str:
    """The path's member id, once the caller is known to be allowed to read that member and
    the id is known to be one (`MemberIdPath`: 400 otherwise, after the token's 401).

    A member token on another member's path is refused with 403 whether or not that member
    exists, so tokens cannot probe for member ids.
    """
    if not principal.may_read_member(member_id):
        raise ForbiddenError("a member token reads only its own member's data")
    return member_id


MemberId = Annotated[str, Depends(authorized_member)]
"""A route parameter: the member id of the path, authorised for the caller."""


async def staff_principal(principal: Annotated[Principal, Depends(read_principal)]) -> Principal:
    """The caller, once known to hold a staff token (back office, member care, analysts)."""
    if principal.role is not Role.STAFF:
        raise ForbiddenError("this needs a staff token")
    return principal


async def till_principal(
    principal: Annotated[Principal, Depends(read_any_principal)],
) -> Principal:
    """The caller, once known to be a till (or staff, who may do what a till does)."""
    if principal.role not in (Role.TILL, Role.STAFF):
        raise ForbiddenError("this is a till's call: it needs a till (POS) or staff token")
    return principal


async def member_at_till(
    member_id: MemberIdPath,
    principal: Annotated[Principal, Depends(read_any_principal)],
) -> str:
    """The path's member id, for what the member or a till does at checkout (lock or redeem
    an issued offer): the member itself, a till or staff."""
    if principal.role is not Role.TILL and not principal.may_read_member(member_id):
        raise ForbiddenError("a member token acts only for its own member")
    return member_id


MemberAtTill = Annotated[str, Depends(member_at_till)]
"""A route parameter: the member id of the path, for a checkout call by the member or a till."""
