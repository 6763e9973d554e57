"""Challenges (seed 000, issue 15, docs/adr/0027-challenges.md): gamified goals published per
market (N visits in D days, spend X, a quantity, a series of steps in order, a custom activity)
that award points or a granted reward when a member completes them.

Owns each member's standing on each challenge and the catalogue of published challenges. It
counts with the offers' own measures (`offers.progress`: what a purchase or an activity is
worth towards a behaviour, the rolling window) rather than a second counter, and never books
points itself: the member rules hand its awards to the ledger and its rewards to `grants`.
Pure: no clock, no I/O.
"""
