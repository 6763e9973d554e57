-- Promo code attribution and the tills' reservations of capped discount offers (issue #13;
-- docs/adr/0030-discount-offer-total-uses.md). Every value comes from an event, never now().

-- Who issued an issue's codes (PromotionCodesIssued.issuer): null for the brand's own.
ALTER TABLE promotion_issues
    ADD COLUMN issuer_kind text,
    ADD COLUMN issuer_id   text,
    ADD COLUMN issuer_name text;

-- Each use carries its code's issuer and its purchase's spend (PromoCodeRedeemed), so revenue
-- is known for anonymous customers too; uses projected before this migration keep nulls.
ALTER TABLE promo_code_uses
    ADD COLUMN spend_cents bigint CHECK (spend_cents >= 0),
    ADD COLUMN issuer_kind text,
    ADD COLUMN issuer_id   text;
CREATE INDEX promo_code_uses_by_issuer ON promo_code_uses (issuer_kind, issuer_id)
    WHERE issuer_id IS NOT NULL;

-- Revenue: the use's own spend, else (older uses) the member's purchase as 0012 read it.
CREATE OR REPLACE FUNCTION promo_code_performance_rows()
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
            sum(coalesce(pu.spend_cents, mt.spend_cents))::bigint AS revenue_cents
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

-- Per issuer, promotion and code: the uses attributed to a partner or an influencer.
CREATE FUNCTION promo_code_attribution_rows()
RETURNS TABLE (
    issuer_kind     text,
    issuer_id       text,
    promotion_id    text,
    code            text,
    uses            bigint,
    member_uses     bigint,
    anonymous_uses  bigint,
    discount_cents  bigint,
    revenue_cents   bigint
)
LANGUAGE sql STABLE
AS $$
    SELECT pu.issuer_kind, pu.issuer_id, pu.promotion_id, pu.code, count(*),
        count(pu.member_id), count(*) - count(pu.member_id),
        sum(pu.discount_cents)::bigint, sum(coalesce(pu.spend_cents, mt.spend_cents))::bigint
    FROM promo_code_uses pu
    LEFT JOIN member_transactions mt
        ON mt.member_id = pu.member_id AND mt.transaction_id = pu.transaction_id
    WHERE pu.issuer_id IS NOT NULL
    GROUP BY pu.issuer_kind, pu.issuer_id, pu.promotion_id, pu.code
$$;

CREATE VIEW promo_code_attribution AS SELECT * FROM promo_code_attribution_rows();
COMMENT ON VIEW promo_code_attribution IS
    'Per issuer (PARTNER, INFLUENCER, BRAND when named), promotion and code: uses (by members, '
    'anonymous), discount given and revenue (the spend of the purchases that used the code).';

CREATE VIEW partner_code_performance AS
SELECT issuer_id AS partner_id, sum(uses)::bigint AS uses,
    sum(member_uses)::bigint AS member_uses, sum(anonymous_uses)::bigint AS anonymous_uses,
    sum(discount_cents)::bigint AS discount_cents, sum(revenue_cents)::bigint AS revenue_cents,
    count(*) AS codes_used, count(DISTINCT promotion_id) AS promotions
FROM promo_code_attribution_rows() WHERE issuer_kind = 'PARTNER'
GROUP BY issuer_id;
COMMENT ON VIEW partner_code_performance IS
    'Per coalition partner: the uses, discount and revenue of the codes it issued.';

CREATE VIEW influencer_code_performance AS
SELECT issuer_id AS influencer_id, sum(uses)::bigint AS uses,
    sum(member_uses)::bigint AS member_uses, sum(anonymous_uses)::bigint AS anonymous_uses,
    sum(discount_cents)::bigint AS discount_cents, sum(revenue_cents)::bigint AS revenue_cents,
    count(*) AS codes_used, count(DISTINCT promotion_id) AS promotions
FROM promo_code_attribution_rows() WHERE issuer_kind = 'INFLUENCER'
GROUP BY issuer_id;
COMMENT ON VIEW influencer_code_performance IS
    'Per influencer: the uses, discount and revenue of the codes they issued.';

-- The offer's agent's answer to each reservation a till asked for (OfferUseReservationAnswered):
-- what cart evaluation with "reserve" waits for.
CREATE TABLE offer_use_reservations (
    request_event_id text        PRIMARY KEY,
    offer_id         text        NOT NULL,
    member_id        text        NOT NULL,
    transaction_id   text        NOT NULL,
    reserved         boolean     NOT NULL,
    reserved_until   timestamptz,
    discount_cents   bigint      NOT NULL CHECK (discount_cents >= 0),
    reason           text,
    answered_at      timestamptz NOT NULL
);
COMMENT ON TABLE offer_use_reservations IS
    'One row per OfferUseReservationAnswered: a till''s basket reserved a use of a discount '
    'offer with a total-uses limit until reserved_until, or was refused (reason USES_SPENT).';
CREATE INDEX offer_use_reservations_by_offer ON offer_use_reservations (offer_id, answered_at);

-- Waiting requests wake when their answer is committed (projections/api/wakeups.py): the
-- channel and key protocol of 0018's notify_decided, which this earlier migration cannot call.
CREATE FUNCTION notify_offer_use_reservation_answered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loyalty_decided', 'member:' || NEW.member_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER offer_use_reservations_decided AFTER INSERT ON offer_use_reservations
    FOR EACH ROW EXECUTE FUNCTION notify_offer_use_reservation_answered();
