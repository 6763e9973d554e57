-- Owned by the HTTP API, not a projection (as 0012's promo_code_link_requests): what each
-- Idempotency-Key of a poster (the staff token's subject: the CRM) was first used for on
-- POST /v1/inbox/messages, so one key writes one MessagePosted, the same event on a retry
-- (found by an end-to-end trial: a repeat wrote the message again with a new time, and the
-- same key with another body wrote another message under the same event id). No event
-- writes it and `loyalty rebuild` neither replays nor swaps it.
CREATE TABLE inbox_message_requests (
    poster      text        NOT NULL,
    command_id  text        NOT NULL,
    body_digest text        NOT NULL,
    message_id  text        NOT NULL,
    member_id   text,
    market      text,
    posted_at   timestamptz NOT NULL,
    claimed_at  timestamptz NOT NULL,
    written_at  timestamptz,
    PRIMARY KEY (poster, command_id)
);
COMMENT ON TABLE inbox_message_requests IS
    'One row per (poster, Idempotency-Key) the inbox endpoint accepted: the digest of the '
    'message (rules.identity), its id, whom it is for (member_id, or market for a global '
    'one), the time it carries (posted_at: a rewrite sends the very same event), and when the '
    'broker acknowledged it (null: not yet, or the writer died; a repeat writes it again later).';
