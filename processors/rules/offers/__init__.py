"""The offer engine's rule core (docs/adr/0010-offer-engine.md): which offers a purchase,
activity or redemption counts towards, what one use pays, which offers stack, and what a
return takes back. Pure: it never reads a clock, and knows nothing of the ledger's state (it
shares only the ledger's base-earn policy). Entry points are in `evaluate`."""
