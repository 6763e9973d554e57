"""Promo codes: generation, the promotions a code belongs to, and each promotion's uses
(docs/adr/0023-promo-codes.md). Pure, like the rest of the rule core."""
