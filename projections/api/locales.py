"""Which language customer-facing copy is shown in: the one home of the fallback that the
reward catalogue and the offer feeds share, and of the `locale` and `market` query parameters.

The fallback: the tag asked for, lower-cased (`fr-ca`); then its language (`fr`); then English
(`en`), which every offer, reward and challenge has (the contract requires en and fr); then the
first locale there is. Copy is plain text as it was published (seed 003): nothing here formats
or escapes it. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated

from fastapi import Query

from processors.contract.offer_definition import CopyLocale

DEFAULT_LOCALE = "en"

LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"


def fallbacks(requested: str) -> list[str]:
    """The locales to try for `requested`, in order: `fr-CA` → `fr-ca`, `fr`, `en`."""
    tag = requested.lower()
    language = tag.split("-")[0]
    return list(dict.fromkeys((tag, language, DEFAULT_LOCALE)))


COPY_LOCALES = frozenset(c.value for c in CopyLocale if c is not CopyLocale.UNKNOWN)
"""The languages copy is published in (the contract's)."""


def shown(requested: str) -> str:
    """The copy language `pick` gives for `requested` from any copy the contract allows
    (every copy has en and fr): the same for every tag of one language (`fr-CA`, `FR`)."""
    return next(c for c in fallbacks(requested) if c in COPY_LOCALES or c == DEFAULT_LOCALE)


def pick(available: Collection[str], requested: str) -> str:
    """The locale of `available` to show for `requested` (see the module); ValueError when
    there is no copy at all."""
    for candidate in fallbacks(requested):
        if candidate in available:
            return candidate
    if not available:
        raise ValueError("no copy in any locale")
    return sorted(available)[0]


MarketQuery = Annotated[
    str,
    Query(
        min_length=2, max_length=16, pattern=r"^[A-Z0-9_]+$",
        description="The market, as the programme names it.", examples=["CA"],
    ),
]  # fmt: skip
"""A market code (the contract's `Market`)."""

LocaleQuery = Annotated[
    str,
    Query(
        max_length=35, pattern=LOCALE_PATTERN,
        description="The copy's language (en, fr). A tag with a region falls back to its "
        "language (fr-CA → fr), and any language without copy to en.", examples=["fr"],
    ),
]  # fmt: skip
"""A BCP 47 language tag, as apps send it."""

MemberLocaleQuery = Annotated[
    str | None,
    Query(
        max_length=35, pattern=LOCALE_PATTERN,
        description="The copy's language (en, fr); absent: the member's preferred locale, "
        "else en. A tag with a region falls back to its language (fr-CA → fr), and any "
        "language without copy to en.", examples=["fr"],
    ),
]  # fmt: skip
"""A language tag for a member's view: the member's own language when the app sends none."""


def for_member(asked: str | None, preferred: str | None) -> str:
    """The locale a member's view is in: the one asked, else the member's preferred locale
    (when it is a language tag), else en, as the personalised feed and the inbox choose."""
    if asked is not None:
        return asked
    if preferred and re.fullmatch(LOCALE_PATTERN, preferred):
        return preferred
    return DEFAULT_LOCALE
