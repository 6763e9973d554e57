"""Rewards: the catalogue's rules, a member's redemptions and wallet, a reward's stock
(docs/adr/0020-rewards.md). Pure, like the rest of the rule core."""
