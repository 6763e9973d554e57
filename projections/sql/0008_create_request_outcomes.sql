-- The engine's answer to every request (topic loyalty.outcomes.v1), so the API can tell a
-- client what became of its command (POST /v1/members/{id}/redemptions waits for it) and
-- analysts can count refusals by reason. Every value comes from the event, never from now().

-- One row per request: insert-only, the first outcome of the log holds (the worker re-emits
-- the same outcome, same event id, for a repeated command_id). A member's key may have been
-- used for requests of different kinds, so the kind is part of the key.
CREATE TABLE request_outcomes (
    member_id           text        NOT NULL,
    command_id          text        NOT NULL,
    request_type        text        NOT NULL,
    outcome_event_id    text        NOT NULL,
    request_event_id    text        NOT NULL,
    accepted            boolean     NOT NULL,
    reason              text,
    detail              text,
    points_debited      bigint      NOT NULL CHECK (points_debited >= 0),
    discount_cents      bigint,
    ledger_event_log_id text,
    granted_reward_ids  text[]      NOT NULL,
    issued_offer_id     text,
    decided_at          timestamptz NOT NULL,
    PRIMARY KEY (member_id, command_id, request_type),
    CHECK (accepted = (reason IS NULL))
);
COMMENT ON TABLE request_outcomes IS
    'One row per answered request: RequestAccepted (accepted, what it debited and granted) or '
    'RequestRejected (reason: a stable RejectionReason code, detail for a person). decided_at '
    'is the outcome''s occurred_at (the request''s business time).';
CREATE INDEX request_outcomes_by_reason ON request_outcomes (request_type, reason, decided_at);
