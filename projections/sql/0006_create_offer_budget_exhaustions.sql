-- When an offer spent its offer-wide limit (docs/adr/0014-offer-level-caps.md): analysts read
-- it beside offer_performance. From OfferBudgetExhausted on loyalty.offers.v1; insert-only on
-- event_id (an offer republished with higher limits may be spent again: one row each time).
CREATE TABLE offer_budget_exhaustions (
    event_id          text        PRIMARY KEY,
    offer_id          text        NOT NULL,
    reason            text        NOT NULL,
    uses_granted      integer     NOT NULL,
    points_granted    bigint      NOT NULL,
    uses_total_max    integer,
    budget_points_max bigint,
    occurred_at       timestamptz NOT NULL
);
COMMENT ON TABLE offer_budget_exhaustions IS
    'One row per OfferBudgetExhausted: the offer-wide limit spent (USES_SPENT or BUDGET_SPENT), '
    'what had been granted to all members together, the limits then, and when.';
CREATE INDEX offer_budget_exhaustions_by_offer ON offer_budget_exhaustions (offer_id, occurred_at);

COMMENT ON TABLE member_transactions IS
    'One row per member purchase (TransactionCompleted): spend_cents is the sum of its lines'' '
    'amount_cents, the net amounts after every discount (the spend that earns points); its '
    'returns are in member_returns.';
