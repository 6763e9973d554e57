-- Owned by the HTTP API, not a projection: what each Idempotency-Key of a member was first
-- used for on POST /v1/members/{id}/redemptions (docs/adr/0022-redemption-endpoint.md). No
-- event writes it and `loyalty rebuild` neither replays nor swaps it.
CREATE TABLE redemption_requests (
    member_id        text        NOT NULL,
    command_id       text        NOT NULL,
    body_digest      text        NOT NULL,
    request_event_id text        NOT NULL,
    reward_id        text        NOT NULL,
    program_id       text        NOT NULL,
    quantity         integer     NOT NULL CHECK (quantity >= 1),
    received_at      timestamptz NOT NULL,
    claimed_at       timestamptz NOT NULL,
    written_at       timestamptz,
    PRIMARY KEY (member_id, command_id)
);
COMMENT ON TABLE redemption_requests IS
    'One row per (member, Idempotency-Key) the redemption endpoint accepted: the digest of the '
    'request body it first came with (the worker''s own, rules.identity), when it was received '
    'and claimed for writing, and when the broker acknowledged the request (null: not yet, or '
    'the writer died; a repeat claims it again after a while and writes the same event).';
