"""Code-linked promotions as every process knows them (docs/adr/0023-promo-codes.md): each
promotion's latest terms, and which promotion a code belongs to. Uploaded codes are kept one by
one; generated codes are checked by their generator, never stored. Codes compare
case-insensitively (upper-cased)."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.contract.config import CodeIssuer, PromotionCodesIssued
from processors.rules.codes.generation import GeneratedCodes


def normalised(code: str) -> str:
    """A code as codes compare: upper-cased, surrounding spaces dropped."""
    return code.strip().upper()


@dataclass(frozen=True)
class Found:
    """A code's promotion (its latest terms) and who issued the code (its issue's issuer)."""

    terms: PromotionCodesIssued
    issuer: CodeIssuer | None


@dataclass
class Promotions:
    """Every promotion's latest issue (its terms govern all of its codes) and its codes, each
    with its issue's issuer (attribution stays with the codes an issue issued)."""

    terms: dict[str, PromotionCodesIssued] = field(default_factory=dict)
    uploaded: dict[tuple[str, str], str] = field(default_factory=dict)  # (market, code) → id
    issuers: dict[tuple[str, str], CodeIssuer] = field(default_factory=dict)  # uploaded, sparse
    generated: dict[str, list[tuple[GeneratedCodes, CodeIssuer | None]]] = field(
        default_factory=dict
    )  # by promotion
    issues: dict[str, PromotionCodesIssued] = field(default_factory=dict)  # by event id

    def apply(self, issued: PromotionCodesIssued) -> str:
        """Fold one issue in; a note when it changes nothing, or when it replaces the terms
        of an issue sent before under the same event id: the config topic is compacted by
        event id, so the latest record of an id is what every process reads in the end, and
        a process that kept the first would disagree with one started later."""
        earlier = self.issues.get(issued.event_id)
        if earlier == issued:
            return "promotion codes already issued"
        self.issues[issued.event_id] = issued
        self.terms[issued.promotion_id] = issued
        for code in issued.codes:
            key = (issued.market, normalised(code))
            if key not in self.uploaded:
                self.uploaded[key] = issued.promotion_id
                if issued.issuer is not None:
                    self.issuers[key] = issued.issuer
        if issued.code_pattern is not None and issued.code_count is not None:
            codes = GeneratedCodes(
                issued.promotion_id, issued.event_id, issued.code_pattern, issued.code_count
            )
            kept = [g for g in self.generated.get(issued.promotion_id, [])
                    if g[0].event_id != issued.event_id]  # fmt: skip
            self.generated[issued.promotion_id] = [*kept, (codes, issued.issuer)]
        if earlier is not None:
            return (f"promotion codes issue {issued.event_id} sent again with other terms: "
                    f"they are promotion {issued.promotion_id}'s now")  # fmt: skip
        return ""

    def find(self, code: str, market: str) -> PromotionCodesIssued | None:
        """The terms of the promotion of `market` that issued `code`; None when none did (a
        code is a market's: the same letters may be another market's code)."""
        found = self.lookup(code, market)
        return found.terms if found is not None else None

    def lookup(self, code: str, market: str) -> Found | None:
        """`find`, with who issued the code."""
        code = normalised(code)
        key = (market, code)
        promotion_id = self.uploaded.get(key)
        if promotion_id is not None:
            return Found(self.terms[promotion_id], self.issuers.get(key))
        for p, issues in self.generated.items():
            if self.terms[p].market != market:
                continue
            for codes, issuer in issues:
                if code in codes:
                    return Found(self.terms[p], issuer)
        return None
