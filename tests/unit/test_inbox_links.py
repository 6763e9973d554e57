"""An inbox message's deep link is checked against the allow-list when it is posted (issue
#15, ADR 28): its scheme and its host must both be listed; anything else is refused with a
reason that names what is allowed."""

from __future__ import annotations

import pytest

from projections.api.routes_inbox import link_refusal, listed

SCHEMES = listed("https, loyalty")
HOSTS = listed("www.example.com,Offers,rewards")


@pytest.mark.parametrize(
    "url",
    ["https://www.example.com/rewards?ref=inbox", "loyalty://offers/DOUBLE_WEEKEND",
     "LOYALTY://rewards/GR-1", "https://WWW.EXAMPLE.COM"],
)  # fmt: skip
def test_a_link_with_an_allowed_scheme_and_host_passes(url: str) -> None:
    assert link_refusal(url, SCHEMES, HOSTS) is None


@pytest.mark.parametrize(
    ("url", "named"),
    [("http://www.example.com/", "scheme 'http'"),
     ("javascript://offers/alert(1)", "scheme 'javascript'"),
     ("https://evil.example.net/win", "host 'evil.example.net'"),
     ("https://www.example.com.evil.net/", "host 'www.example.com.evil.net'"),
     ("loyalty://settings/delete", "host 'settings'"),
     ("not a link", "a link may not hold ' '"),
     # Found by a user's trial: read apart by parsers, so passed here and went to evil.com.
     ("https://evil.com\\@www.example.com/", "a link may not hold '\\\\'"),
     ("https://www.example.com/x\r\nSet-Cookie: a=b", "a link may not hold '\\r'"),
     ("https://www.exa\tmple.com/x", "a link may not hold '\\t'"),
     ("https://[::1/", "not a URL")],
)  # fmt: skip
def test_any_other_link_is_refused_with_what_is_wrong(url: str, named: str) -> None:
    refusal = link_refusal(url, SCHEMES, HOSTS)
    assert refusal is not None
    assert refusal.startswith(named), refusal


def test_the_allow_list_is_read_lower_cased_without_blanks() -> None:
    assert listed(" https ,, Loyalty ") == frozenset({"https", "loyalty"})
