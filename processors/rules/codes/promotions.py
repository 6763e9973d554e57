"""Code-linked promotions as every process knows them (docs/adr/0023-promo-codes.md): each
promotion's latest terms, and which promotion a code belongs to. Uploaded codes are kept one by
one; generated codes are checked by their generator, never stored. Codes compare
case-insensitively (upper-cased)."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.contract.config import PromotionCodesIssued
from processors.rules.codes.generation import GeneratedCodes


def normalised(code: str) -> str:
    """A code as codes compare: upper-cased, surrounding spaces dropped."""
    return code.strip().upper()


@dataclass
class Promotions:
    """Every promotion's latest issue (its terms govern all of its codes) and its codes."""

    terms: dict[str, PromotionCodesIssued] = field(default_factory=dict)
    uploaded: dict[tuple[str, str], str] = field(default_factory=dict)  # (market, code) → id
    generated: dict[str, list[GeneratedCodes]] = field(default_factory=dict)  # by promotion
    issues: set[str] = field(default_factory=set)  # event ids applied

    def apply(self, issued: PromotionCodesIssued) -> str:
        """Fold one issue in; a note when it changes nothing."""
        if issued.event_id in self.issues:
            return "promotion codes already issued"
        self.issues.add(issued.event_id)
        self.terms[issued.promotion_id] = issued
        for code in issued.codes:
            self.uploaded.setdefault((issued.market, normalised(code)), issued.promotion_id)
        if issued.code_pattern is not None and issued.code_count is not None:
            codes = GeneratedCodes(
                issued.promotion_id, issued.event_id, issued.code_pattern, issued.code_count
            )
            self.generated.setdefault(issued.promotion_id, []).append(codes)
        return ""

    def find(self, code: str, market: str) -> PromotionCodesIssued | None:
        """The terms of the promotion of `market` that issued `code`; None when none did (a
        code is a market's: the same letters may be another market's code)."""
        code = normalised(code)
        promotion_id = self.uploaded.get((market, code))
        if promotion_id is None:
            promotion_id = next(
                (
                    p
                    for p, issues in self.generated.items()
                    if self.terms[p].market == market and any(code in g for g in issues)
                ),
                None,
            )
        return self.terms.get(promotion_id) if promotion_id is not None else None
