"""The points ledger: accounts, lots, credits and debits (DESIGN.md §5 items 1–2, 12–15, 18,
23–24). `handle` is the one entry point; see `processors.rules.ledger.handle`."""
