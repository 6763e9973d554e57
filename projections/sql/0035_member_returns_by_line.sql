-- A return counts in the offer performance figures for what it can take back, line by line,
-- as the ledger judges it (docs/adr/0015-offer-performance.md, addendum): a line returned
-- twice, or for more than it cost, was counted as the till sent it, so a purchase of 30.00
-- whose returns the engine held to 20.00 counted as refunded whole (a user's trial). Each
-- purchase and each return now keeps its lines' amounts; a purchase's refund is the sum over
-- its lines of the least of the line's amount and what its returns asked of it. Rows written
-- before this migration have no lines and count as before.
ALTER TABLE member_transactions ADD COLUMN line_cents jsonb;
ALTER TABLE member_returns ADD COLUMN line_cents jsonb;
COMMENT ON COLUMN member_transactions.line_cents IS
    'Each line''s amount_cents by line_id; null on rows written before migration 0035.';
COMMENT ON COLUMN member_returns.line_cents IS
    'The amount_cents asked back of each line, by line_id (a line named twice: the sum); '
    'null on rows written before migration 0035.';
COMMENT ON TABLE member_returns IS
    'One row per member return (TransactionReturned): refunded_cents is the sum of its lines'' '
    'amount_cents as sent, line_cents the same by line; it counts against the purchase '
    '(member_id, transaction_id) it returns from, at most each line''s amount.';

CREATE OR REPLACE FUNCTION purchase_refunded_cents(
    p_member_id text, p_transaction_id text, p_line_cents jsonb
) RETURNS bigint
LANGUAGE sql STABLE
AS $$
    -- NULL when the purchase has no return; else what its returns take back, each line at
    -- most its amount (rows without lines: the refunds as sent).
    SELECT CASE
        WHEN count(*) = 0 THEN NULL
        WHEN p_line_cents IS NULL OR bool_or(mr.line_cents IS NULL) THEN sum(mr.refunded_cents)
        ELSE (
            SELECT coalesce(sum(least(bought.value::bigint, back.cents)), 0)
            FROM jsonb_each_text(p_line_cents) bought
            JOIN (
                SELECT asked.key, sum(asked.value::bigint) AS cents
                FROM member_returns mr2, jsonb_each_text(mr2.line_cents) asked
                WHERE mr2.member_id = p_member_id AND mr2.transaction_id = p_transaction_id
                GROUP BY asked.key
            ) back ON back.key = bought.key
        )
    END::bigint
    FROM member_returns mr
    WHERE mr.member_id = p_member_id AND mr.transaction_id = p_transaction_id
$$;

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
        CROSS JOIN LATERAL (
            SELECT purchase_refunded_cents(mt.member_id, mt.transaction_id, mt.line_cents)
                AS refunded_cents
        ) r
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
