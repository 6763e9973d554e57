-- Owned by the HTTP API, not projections (docs/adr/0028-member-services.md): no event writes
-- these tables and `loyalty rebuild` neither replays nor swaps them.

-- What each Idempotency-Key of a member was first used for on the member-service command
-- endpoints (POST /v1/members/{id}/enrolment, PUT /v1/members/{id}/preferences): the same
-- claim protocol as redemption_requests (ADR 22), one table for every kind of request. The
-- request is kept whole, in its JSON form, so a repeat that takes over a claim whose writer
-- died writes the very same event again.
CREATE TABLE member_service_requests (
    member_id        text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('ENROLMENT', 'PREFERENCES_CHANGE')),
    command_id       text        NOT NULL,
    body_digest      text        NOT NULL,
    request_event_id text        NOT NULL,
    request          jsonb       NOT NULL,
    received_at      timestamptz NOT NULL,
    claimed_at       timestamptz NOT NULL,
    written_at       timestamptz,
    PRIMARY KEY (member_id, kind, command_id)
);
COMMENT ON TABLE member_service_requests IS
    'One row per (member, kind of request, Idempotency-Key) the member-service endpoints '
    'accepted: the digest of the request body it first came with (rules.identity, without '
    'event_id and occurred_at), the request event in its JSON form, when it was received and '
    'claimed for writing, and when the broker acknowledged it (null: not yet, or the writer '
    'died; a repeat claims it again after a while and writes the same event).';

-- Which inbox messages a member has read (PUT /v1/members/{id}/inbox/{message_id}/read). The
-- app's reading state, not a business fact: kept by the API, first read wins.
CREATE TABLE inbox_reads (
    member_id  text        NOT NULL,
    message_id text        NOT NULL,
    read_at    timestamptz NOT NULL,
    PRIMARY KEY (member_id, message_id)
);
COMMENT ON TABLE inbox_reads IS
    'One row per message a member marked read in their inbox (personal or their market''s '
    'global message); read_at is when it was first marked.';
