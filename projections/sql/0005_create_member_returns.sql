-- Returns in the offer performance figures (docs/adr/0015-offer-performance.md): every member
-- return is kept as a fact, and the activity of a targeted member counts each purchase net of
-- what its returns refunded. Whether a refund counts depends only on whether its purchase
-- counts, so the figures are the same whichever of the return, its purchase, the targeting or
-- the offer arrived first. Every value comes from an event, never from now().

-- From TransactionReturned with a member: every return, whether or not its purchase (same
-- member, same partition; a return may be logged before it) or the member's targeting is
-- stored yet. Insert-only on return_id, the first of the log holding.
CREATE TABLE member_returns (
    return_id      text        PRIMARY KEY,
    transaction_id text        NOT NULL,
    member_id      text        NOT NULL,
    refunded_cents bigint      NOT NULL,
    occurred_at    timestamptz NOT NULL
);
COMMENT ON TABLE member_returns IS
    'One row per member return (TransactionReturned): refunded_cents is the sum of its lines'' '
    'amount_cents; it counts against the purchase (member_id, transaction_id) it returns from.';
CREATE INDEX member_returns_by_purchase ON member_returns (member_id, transaction_id);
COMMENT ON TABLE member_transactions IS
    'One row per member purchase (TransactionCompleted): spend_cents is the sum of its lines'' '
    'amount_cents (before this engine''s discounts); its returns are in member_returns.';

-- Same columns as in 0004, so the views over it stand. A purchase counts as in 0004 (market,
-- window, once targeted); it contributes its spend less what its returns refunded (never below
-- 0), and is a visit unless its returns refunded all of it (as the offer rules stop counting a
-- visit whose lines all came back). Completions are unchanged: see ADR 15.
CREATE OR REPLACE FUNCTION offer_member_activity_rows()
RETURNS TABLE (
    offer_id         text,
    member_id        text,
    in_control_group boolean,
    targeted_at      timestamptz,
    visits           bigint,
    spend_cents      bigint,
    completions      bigint,
    points_due       bigint,
    points_awarded   bigint,
    discount_cents   bigint
)
LANGUAGE sql STABLE
AS $$
    SELECT a.offer_id, a.member_id, a.in_control_group, a.targeted_at,
        coalesce(t.visits, 0), coalesce(t.spend_cents, 0),
        coalesce(c.completions, 0), coalesce(c.points_due, 0), coalesce(c.points_awarded, 0),
        coalesce(c.discount_cents, 0)
    FROM offer_audience a
    JOIN offers o ON o.offer_id = a.offer_id
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (
                WHERE r.refunded_cents IS NULL OR r.refunded_cents < mt.spend_cents
            ) AS visits,
            sum(greatest(mt.spend_cents - coalesce(r.refunded_cents, 0), 0))::bigint
                AS spend_cents
        FROM member_transactions mt
        LEFT JOIN LATERAL (
            SELECT sum(mr.refunded_cents) AS refunded_cents
            FROM member_returns mr
            WHERE mr.member_id = mt.member_id AND mr.transaction_id = mt.transaction_id
        ) r ON true
        WHERE mt.member_id = a.member_id
            AND mt.market = o.market
            AND mt.occurred_at >= greatest(o.starts_at, a.targeted_at)
            AND mt.occurred_at < least(o.ends_at, coalesce(o.withdrawn_at, 'infinity'))
    ) t ON true
    LEFT JOIN (
        SELECT oc.offer_id, oc.member_id, count(*) AS completions,
            sum(oc.points_due)::bigint AS points_due,
            sum(oc.points_awarded)::bigint AS points_awarded,
            sum(oc.discount_cents)::bigint AS discount_cents
        FROM offer_completions oc
        GROUP BY oc.offer_id, oc.member_id
    ) c ON c.offer_id = a.offer_id AND c.member_id = a.member_id
$$;

COMMENT ON VIEW offer_member_activity IS
    'Per offer and targeted member: purchases in the offer''s market from the later of its start '
    'and the targeting until its end or withdrawal, net of their returns (visits: those not '
    'refunded whole; spend_cents: less the refunds), and its completions (points_due is what a '
    'control member would have earned; control members get no award; a completion stays '
    'counted when a return takes its points back).';
COMMENT ON VIEW offer_performance IS
    'Test vs control per offer: one row per group (test, control) of every published offer: '
    'members, qualifying members (completed at least once) and rate, redemptions (completions), '
    'visits and spend in the window net of returns, per member, points and discounts; on the '
    'test row the uplift of each per-member figure over control ((test - control) / control; '
    'NULL when a group is empty or the control figure is 0).';
