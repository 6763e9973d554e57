-- Reward stores (seed 002; docs/adr/0033-reward-store-api.md): the offers members bought in a
-- reward store, one row per issued instance, for the wallet and the purchase endpoint's answer.
-- From loyalty.outcomes.v1 (RequestAccepted of a purchase, a lock, an immediate redeem) and
-- loyalty.offers.v1 (OfferCompleted with an issued_offer_id: the transaction that used it).
-- Every value comes from an event, never from now(). The two topics may be read in either
-- order, so each column keeps its first value and the status only moves forward (ISSUED <
-- LOCKED < REDEEMED < USED; a later lock replaces an earlier one): replay equals live.
CREATE TABLE member_issued_offers (
    issued_offer_id      text        PRIMARY KEY,
    member_id            text        NOT NULL,
    offer_id             text,
    reward_store_id      text,
    points_spent         bigint      CHECK (points_spent >= 0),
    command_id           text,
    ledger_event_log_id  text,
    issued_at            timestamptz,
    status               text        NOT NULL
        CHECK (status IN ('ISSUED', 'LOCKED', 'REDEEMED', 'USED')),
    transaction_id       text,
    locked_until         timestamptz,
    status_at            timestamptz NOT NULL,
    status_event_id      text        NOT NULL,
    discount_cents       bigint      CHECK (discount_cents >= 0),
    points_awarded       bigint      CHECK (points_awarded >= 0)
);
COMMENT ON TABLE member_issued_offers IS
    'Reward-store offers members bought: bought with points_spent in reward_store_id by the '
    'purchase command_id (null until its outcome is read), then LOCKED to transaction_id until '
    'locked_until (free again after it), REDEEMED for transaction_id, or USED by it '
    '(OfferCompleted: the discount_cents and points_awarded it gave). status_at and '
    'status_event_id: the event that set the status.';
CREATE INDEX member_issued_offers_by_member
    ON member_issued_offers (member_id, issued_at DESC, issued_offer_id DESC);
CREATE UNIQUE INDEX member_issued_offers_by_purchase
    ON member_issued_offers (member_id, command_id) WHERE command_id IS NOT NULL;

-- POST /v1/reward-stores/{store}/offers/{offer}/purchase keeps its Idempotency-Keys with the
-- other member requests the API answers with the worker's decision (migration 0014).
ALTER TABLE member_service_requests DROP CONSTRAINT member_service_requests_kind_check;
ALTER TABLE member_service_requests ADD CONSTRAINT member_service_requests_kind_check
    CHECK (kind IN ('ENROLMENT', 'PREFERENCES_CHANGE', 'REWARD_STORE_OFFER_PURCHASE'));
