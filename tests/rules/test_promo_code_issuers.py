"""Partner and influencer codes (issue #13; docs/adr/0030-discount-offer-total-uses.md): each
issue says who issued its codes; a use of one of them carries that issuer and the purchase's
spend, so analysts attribute uses, revenue and discount per partner and per influencer. The
latest issue's terms govern every code; the issuer stays with the codes its issue issued."""

from __future__ import annotations

from processors.contract.config import CodeIssuer, CodeIssuerKind
from processors.contract.internal import PromoCodeUseRequested
from processors.contract.offers import PromoCodeRedeemed
from processors.rules.codes import checkout, uses
from processors.rules.codes.generation import GeneratedCodes
from processors.rules.codes.promotions import Promotions
from processors.rules.offers.catalogue import Catalogue
from tests.rules.given import bought
from tests.rules.test_promo_codes import issue

HOLIMAN = CodeIssuer(kind=CodeIssuerKind.INFLUENCER, issuer_id="holiman", name="Holi Man")
SISTER = CodeIssuer(kind=CodeIssuerKind.PARTNER, issuer_id="sister-brand")


def promotions() -> Promotions:
    known = Promotions()
    known.apply(issue(codes=["HOLIMAN100"], issuer=HOLIMAN))
    known.apply(issue(event_id="i2", codes=[], code_pattern="SIS-#####", code_count=50,
                      issuer=SISTER))  # fmt: skip
    known.apply(issue(event_id="i3", codes=["OWN5"]))
    return known


def test_each_code_keeps_the_issuer_of_the_issue_that_issued_it():
    known = promotions()
    sister_code = GeneratedCodes("P1", "i2", "SIS-#####", 50).code(7)
    found = [known.lookup(code, "CA") for code in ("holiman100", sister_code, "OWN5")]
    assert [f.issuer if f else "none" for f in found] == [HOLIMAN, SISTER, None]
    assert {f.terms.event_id for f in found if f} == {"i3"}  # the latest terms govern all


def test_a_use_carries_its_code_s_issuer_and_the_purchase_s_spend_to_its_answer():
    tx = bought("m1", "T1", cents=4200).model_copy(update={"promo_codes": ["HOLIMAN100"]})
    (asked,) = checkout.judge(tx, promotions(), Catalogue()).events
    assert isinstance(asked, PromoCodeUseRequested)
    assert (asked.issuer, asked.spend_cents) == (HOLIMAN, 4200)
    (redeemed,) = uses.decide(None, asked).emitted
    assert isinstance(redeemed, PromoCodeRedeemed)
    assert (redeemed.issuer, redeemed.spend_cents) == (HOLIMAN, 4200)
