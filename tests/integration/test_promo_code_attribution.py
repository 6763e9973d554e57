"""Analysts' promo code projections on real Postgres (issue #13; migration 0017): uses,
revenue and discount per code, per partner and per influencer, for members and anonymous
customers alike (a use carries its purchase's spend), from the events the promotion's agent
emits, through the projection's own writer."""

from __future__ import annotations

import psycopg
import pytest

from processors.contract.config import CodeIssuer, CodeIssuerKind
from processors.contract.offers import PromoCodeRedeemed
from projections.writers import codes
from tests.rules.given import T0
from tests.unit.test_promo_code_projection_rows import issued

pytestmark = pytest.mark.integration

HOLIMAN = CodeIssuer(kind=CodeIssuerKind.INFLUENCER, issuer_id="holiman")
SISTER = CodeIssuer(kind=CodeIssuerKind.PARTNER, issuer_id="sister-brand")


def used(n: int, code: str, issuer: CodeIssuer | None, member: str | None) -> PromoCodeRedeemed:
    return PromoCodeRedeemed(
        event_id=f"used-{n}", occurred_at=T0, code=code, promotion_id="HOLI", member_id=member,
        transaction_id=f"T{n}", discount_cents=500, use_number=n, cause_event_id=f"tx-{n}",
        spend_cents=4000 + n, issuer=issuer,
    )  # fmt: skip


def test_uses_revenue_and_discount_per_code_partner_and_influencer(own_database_url):  # type: ignore[no-untyped-def]
    events = [
        issued(issuer=HOLIMAN),
        used(1, "HOLIMAN100", HOLIMAN, "M1"), used(2, "HOLIMAN100", HOLIMAN, None),
        used(3, "SIS-00001", SISTER, None), used(4, "OWN5", None, "M2"),
    ]  # fmt: skip
    with psycopg.connect(own_database_url) as conn:
        with conn.transaction():
            codes.write(conn, events)  # type: ignore[arg-type]
        partners = conn.execute(
            "SELECT partner_id, uses, anonymous_uses, discount_cents, revenue_cents, codes_used "
            "FROM partner_code_performance"
        ).fetchall()
        influencers = conn.execute(
            "SELECT influencer_id, uses, member_uses, anonymous_uses, discount_cents, "
            "revenue_cents FROM influencer_code_performance"
        ).fetchall()
        per_code = conn.execute(
            "SELECT code, uses, revenue_cents FROM promo_code_performance ORDER BY code"
        ).fetchall()
        issue = conn.execute("SELECT issuer_kind, issuer_id FROM promotion_issues").fetchone()
    assert partners == [("sister-brand", 1, 1, 500, 4003, 1)]
    assert influencers == [("holiman", 2, 1, 1, 1000, 8003)]
    assert per_code == [("HOLIMAN100", 2, 8003), ("OWN5", 1, 4004), ("SIS-00001", 1, 4003)]
    assert issue == ("INFLUENCER", "holiman")
