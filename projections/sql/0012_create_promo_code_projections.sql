-- Promo codes (seed 001; docs/adr/0023-promo-codes.md, docs/adr/0026-promo-code-api.md): the
-- promotions as issued (loyalty.config.v1), what the promotion's agent answered about each use
-- and reservation (loyalty.offers.v1), and the analyst views over them. Every value comes from
-- an event, never from now().

-- Each promotion's latest issue: its terms govern all of its codes (config topic log order).
CREATE TABLE promotions (
    promotion_id             text        PRIMARY KEY,
    name                     text,
    market                   text        NOT NULL,
    mode                     text        NOT NULL,
    offer_id                 text,
    discount                 jsonb,
    starts_at                timestamptz NOT NULL,
    ends_at                  timestamptz NOT NULL,
    redemptions_per_code_max integer,
    redemptions_per_member_max integer,
    redemptions_total_max    integer,
    issued_event_id          text        NOT NULL,
    issued_at                timestamptz NOT NULL
);
COMMENT ON TABLE promotions IS
    'One row per code-linked promotion: the terms of its latest PromotionCodesIssued.';

-- Every issue: generated codes are never stored, only their generator's inputs.
CREATE TABLE promotion_issues (
    event_id       text        PRIMARY KEY,
    promotion_id   text        NOT NULL,
    market         text        NOT NULL,
    code_pattern   text,
    code_count     integer,
    codes_uploaded integer     NOT NULL,
    issued_at      timestamptz NOT NULL
);
COMMENT ON TABLE promotion_issues IS
    'One row per PromotionCodesIssued: uploaded codes counted, or the pattern and count the '
    'codes are generated from (processors.rules.codes.generation; never stored one by one).';
CREATE INDEX promotion_issues_by_promotion ON promotion_issues (promotion_id);

-- Uploaded codes, the first issue of a (market, code) holding, as Config.promotions keeps it.
CREATE TABLE promotion_codes (
    market          text NOT NULL,
    code            text NOT NULL,
    promotion_id    text NOT NULL,
    issue_event_id  text NOT NULL,
    PRIMARY KEY (market, code)
);
COMMENT ON TABLE promotion_codes IS
    'One row per uploaded code (upper-cased): the promotion whose issue first listed it.';

CREATE TABLE promo_code_uses (
    event_id           text        PRIMARY KEY,
    promotion_id       text        NOT NULL,
    code               text        NOT NULL,
    member_id          text,
    transaction_id     text        NOT NULL,
    transaction_number text,
    store_id           text,
    discount_cents     bigint      NOT NULL CHECK (discount_cents >= 0),
    use_number         integer     NOT NULL CHECK (use_number >= 1),
    used_at            timestamptz NOT NULL,
    cause_event_id     text        NOT NULL
);
COMMENT ON TABLE promo_code_uses IS
    'One row per PromoCodeRedeemed: a purchase used a code (member_id null: anonymous), the '
    'promotion''s use_number in its agent''s arrival order, the discount the code gave.';
CREATE INDEX promo_code_uses_by_code ON promo_code_uses (code, used_at DESC, event_id DESC);
CREATE INDEX promo_code_uses_by_promotion ON promo_code_uses (promotion_id);
CREATE INDEX promo_code_uses_by_transaction ON promo_code_uses (transaction_id, code);

-- A basket's reservation of a code: asking again extends it, so the latest end holds.
CREATE TABLE promo_code_reservations (
    code            text        NOT NULL,
    transaction_id  text        NOT NULL,
    promotion_id    text        NOT NULL,
    member_id       text,
    discount_cents  bigint      NOT NULL CHECK (discount_cents >= 0),
    reserved_at     timestamptz NOT NULL,
    reserved_until  timestamptz NOT NULL,
    PRIMARY KEY (code, transaction_id)
);
COMMENT ON TABLE promo_code_reservations IS
    'One row per (code, basket) the promotion''s agent reserved (PromoCodeReserved): first '
    'reserved_at, latest reserved_until. A release is not on this topic: a released '
    'reservation shows until it lapses; a committed one has its row in promo_code_uses.';

CREATE TABLE promo_code_refusals (
    event_id        text        PRIMARY KEY,
    code            text        NOT NULL,
    promotion_id    text,
    member_id       text,
    transaction_id  text        NOT NULL,
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    cause_event_id  text        NOT NULL,
    refused_at      timestamptz NOT NULL
);
COMMENT ON TABLE promo_code_refusals IS
    'One row per PromoCodeRefused: a purchase''s code, or a till''s reservation request '
    '(cause_event_id: the request), refused with a stable PromoCodeRefusal reason.';
CREATE INDEX promo_code_refusals_by_cause ON promo_code_refusals (cause_event_id);
CREATE INDEX promo_code_refusals_by_code ON promo_code_refusals (code, refused_at);

-- Functions, not view bodies: planned when called, so they read the tables a rebuild swaps in
-- (ADR 9; as 0004's offer_performance). Revenue is known for members' purchases only
-- (member_transactions: spend before discounts, when the projector reads transactions).
CREATE FUNCTION promo_code_performance_rows()
RETURNS TABLE (
    promotion_id    text,
    code            text,
    uses            bigint,
    member_uses     bigint,
    anonymous_uses  bigint,
    discount_cents  bigint,
    revenue_cents   bigint,
    refusals        bigint
)
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(u.promotion_id, r.promotion_id), coalesce(u.code, r.code),
        coalesce(u.uses, 0), coalesce(u.member_uses, 0), coalesce(u.anonymous_uses, 0),
        coalesce(u.discount_cents, 0), u.revenue_cents, coalesce(r.refusals, 0)
    FROM (
        SELECT pu.promotion_id, pu.code, count(*) AS uses,
            count(pu.member_id) AS member_uses, count(*) - count(pu.member_id) AS anonymous_uses,
            sum(pu.discount_cents)::bigint AS discount_cents,
            sum(mt.spend_cents)::bigint AS revenue_cents
        FROM promo_code_uses pu
        LEFT JOIN member_transactions mt
            ON mt.member_id = pu.member_id AND mt.transaction_id = pu.transaction_id
        GROUP BY pu.promotion_id, pu.code
    ) u
    FULL JOIN (
        SELECT rf.promotion_id, rf.code, count(*) AS refusals
        FROM promo_code_refusals rf WHERE rf.promotion_id IS NOT NULL
        GROUP BY rf.promotion_id, rf.code
    ) r ON r.promotion_id = u.promotion_id AND r.code = u.code
$$;

CREATE VIEW promo_code_performance AS SELECT * FROM promo_code_performance_rows();
COMMENT ON VIEW promo_code_performance IS
    'Per promotion and code: uses (by members, anonymous), discount given, revenue of the '
    'members'' purchases that used it (null when none is known), refusals of known codes.';

CREATE VIEW promotion_performance AS
SELECT promotion_id, sum(uses)::bigint AS uses, sum(member_uses)::bigint AS member_uses,
    sum(anonymous_uses)::bigint AS anonymous_uses, sum(discount_cents)::bigint AS discount_cents,
    sum(revenue_cents)::bigint AS revenue_cents, sum(refusals)::bigint AS refusals,
    count(*) FILTER (WHERE uses > 0) AS codes_used
FROM promo_code_performance_rows()
GROUP BY promotion_id;
COMMENT ON VIEW promotion_performance IS
    'Per promotion: promo_code_performance summed over its codes, and how many codes were used.';

-- Owned by the HTTP API, not a projection (as 0009's redemption_requests): what each
-- Idempotency-Key of a member was first used for on POST /v1/promotions/code/link. No event
-- writes it and `loyalty rebuild` neither replays nor swaps it.
CREATE TABLE promo_code_link_requests (
    member_id        text        NOT NULL,
    command_id       text        NOT NULL,
    body_digest      text        NOT NULL,
    request_event_id text        NOT NULL,
    code             text        NOT NULL,
    mode             text        NOT NULL,
    received_at      timestamptz NOT NULL,
    claimed_at       timestamptz NOT NULL,
    written_at       timestamptz,
    PRIMARY KEY (member_id, command_id)
);
COMMENT ON TABLE promo_code_link_requests IS
    'One row per (member, Idempotency-Key) the link endpoint accepted: the code (upper-cased) '
    'and mode asked for, the digest of the request (rules.identity), when the broker '
    'acknowledged it (null: not yet, or the writer died; a repeat writes it again later).';
CREATE INDEX promo_code_link_requests_by_code ON promo_code_link_requests (code);
