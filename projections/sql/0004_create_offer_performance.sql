-- Test vs control (DESIGN.md §5.16, seed 003; docs/adr/0015-offer-performance.md): who is in
-- which group of an offer, what the offer's window is, and every member purchase, kept as
-- facts; the activity of a targeted member and the comparison of the two groups are computed
-- from them when read, so the figures depend only on which events arrived, never on the order
-- the topics delivered them in. Every value comes from an event, never from now().

-- From loyalty.config.v1, folded in log order as the member rules fold it (processors.rules.
-- member.Config): OfferPublished replaces the row whole, OfferEndDateExtended moves ends_at when
-- the rules would allow it, OfferWithdrawn sets withdrawn_at.
CREATE TABLE offers (
    offer_id              text        PRIMARY KEY,
    program_id            text        NOT NULL,
    market                text        NOT NULL,
    rank                  integer     NOT NULL,
    starts_at             timestamptz NOT NULL,
    ends_at               timestamptz NOT NULL,
    withdrawn_at          timestamptz,
    control_share_percent integer     NOT NULL,
    definition            jsonb       NOT NULL
);
COMMENT ON TABLE offers IS
    'The offer catalogue from the config topic: each offer''s latest definition (JSON form of '
    'OfferPublished), its end after accepted extensions (3001-01-01 when it does not expire) '
    'and when it was withdrawn. Behaviour counts for starts_at <= t < least(ends_at, '
    'withdrawn_at).';

-- Only what judging an end-date extension needs (the programme's feature flag).
CREATE TABLE programs (
    program_id                       text    PRIMARY KEY,
    market                           text    NOT NULL,
    offer_end_date_extension_enabled boolean NOT NULL,
    definition                       jsonb   NOT NULL
);
COMMENT ON TABLE programs IS
    'Each programme''s latest ProgramConfigured (JSON form), from the config topic.';

-- From OfferTargeted: the first targeting of a member (in the log of its partition) holds.
CREATE TABLE offer_audience (
    offer_id         text        NOT NULL,
    member_id        text        NOT NULL,
    in_control_group boolean     NOT NULL,
    targeted_at      timestamptz NOT NULL,
    PRIMARY KEY (offer_id, member_id)
);
COMMENT ON TABLE offer_audience IS
    'Members targeted by an offer, and whether they are held out as control (sticky).';

-- From TransactionCompleted with a member: every purchase, whether or not its member is
-- targeted yet (the targeting and the offer may arrive after it, on other topics).
CREATE TABLE member_transactions (
    member_id      text        NOT NULL,
    transaction_id text        NOT NULL,
    market         text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    spend_cents    bigint      NOT NULL,
    PRIMARY KEY (member_id, transaction_id)
);
COMMENT ON TABLE member_transactions IS
    'One row per member purchase (TransactionCompleted): spend_cents is the sum of its lines'' '
    'amount_cents (before this engine''s discounts); returns are not subtracted.';
CREATE INDEX member_transactions_by_member_time ON member_transactions (member_id, occurred_at);
CREATE INDEX offer_completions_by_offer_member ON offer_completions (offer_id, member_id);

-- A function, not a view body: its statement names tables unqualified and is planned when
-- called, so it reads whatever tables the search path finds then, including the ones a
-- rebuild swaps in (a view would stay bound to the tables moved away, ADR 9). LANGUAGE sql and
-- STABLE, so the planner inlines it and pushes `WHERE offer_id = ...` down.
CREATE FUNCTION offer_member_activity_rows()
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
        SELECT count(*) AS visits, sum(mt.spend_cents)::bigint AS spend_cents
        FROM member_transactions mt
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

CREATE VIEW offer_member_activity AS SELECT * FROM offer_member_activity_rows();
COMMENT ON VIEW offer_member_activity IS
    'Per offer and targeted member: purchases in the offer''s market from the later of its start '
    'and the targeting until its end or withdrawal (visits, spend_cents), and its completions '
    '(points_due is what a control member would have earned; control members get no award).';

-- Ratios of integers are rounded once, half away from zero, to 4 places; an uplift is
-- (test - control) / control of a per-member figure, computed from the integers in one
-- division, and NULL when either group is empty or the control figure is 0
-- (projections.writers.performance.ratio and .uplift do the same for the API).
CREATE FUNCTION offer_performance_rows()
RETURNS TABLE (
    offer_id                     text,
    audience_group               text,
    in_control_group             boolean,
    members                      bigint,
    qualifying_members           bigint,
    qualifying_rate              numeric,
    redemptions                  bigint,
    redemptions_per_member       numeric,
    visits                       bigint,
    visits_per_member            numeric,
    spend_cents                  bigint,
    spend_per_member_cents       numeric,
    points_due                   bigint,
    points_awarded               bigint,
    discount_cents               bigint,
    qualifying_rate_uplift        numeric,
    redemptions_per_member_uplift numeric,
    visits_per_member_uplift      numeric,
    spend_per_member_uplift       numeric
)
LANGUAGE sql STABLE
AS $$
    SELECT w.offer_id,
        CASE WHEN w.in_control_group THEN 'control' ELSE 'test' END,
        w.in_control_group, w.members, w.qualifying_members,
        round(w.qualifying_members::numeric / nullif(w.members, 0), 4),
        w.redemptions,
        round(w.redemptions::numeric / nullif(w.members, 0), 4),
        w.visits,
        round(w.visits::numeric / nullif(w.members, 0), 4),
        w.spend_cents,
        round(w.spend_cents::numeric / nullif(w.members, 0), 4),
        w.points_due, w.points_awarded, w.discount_cents,
        -- Test rows only: a/b (test) against c/d (control) is (a*d - c*b) / (c*b).
        CASE WHEN NOT w.in_control_group THEN
            round((w.qualifying_members::numeric * w.c_members
                - w.c_qualifying_members * w.members)
                / nullif(w.c_qualifying_members::numeric * w.members, 0), 4) END,
        CASE WHEN NOT w.in_control_group THEN
            round((w.redemptions::numeric * w.c_members - w.c_redemptions * w.members)
                / nullif(w.c_redemptions::numeric * w.members, 0), 4) END,
        CASE WHEN NOT w.in_control_group THEN
            round((w.visits::numeric * w.c_members - w.c_visits * w.members)
                / nullif(w.c_visits::numeric * w.members, 0), 4) END,
        CASE WHEN NOT w.in_control_group THEN
            round((w.spend_cents::numeric * w.c_members - w.c_spend_cents * w.members)
                / nullif(w.c_spend_cents::numeric * w.members, 0), 4) END
    FROM (
        -- The control group's sums beside each row (a window partitioned by offer, so a
        -- filter on offer_id is pushed down to the tables).
        SELECT g.*,
            max(g.members) FILTER (WHERE g.in_control_group)
                OVER (PARTITION BY g.offer_id) AS c_members,
            max(g.qualifying_members) FILTER (WHERE g.in_control_group)
                OVER (PARTITION BY g.offer_id) AS c_qualifying_members,
            max(g.redemptions) FILTER (WHERE g.in_control_group)
                OVER (PARTITION BY g.offer_id) AS c_redemptions,
            max(g.visits) FILTER (WHERE g.in_control_group)
                OVER (PARTITION BY g.offer_id) AS c_visits,
            max(g.spend_cents) FILTER (WHERE g.in_control_group)
                OVER (PARTITION BY g.offer_id) AS c_spend_cents
        FROM (
            SELECT o.offer_id, k.in_control_group,
                count(a.member_id) AS members,
                count(a.member_id) FILTER (WHERE a.completions > 0) AS qualifying_members,
                coalesce(sum(a.completions), 0)::bigint AS redemptions,
                coalesce(sum(a.visits), 0)::bigint AS visits,
                coalesce(sum(a.spend_cents), 0)::bigint AS spend_cents,
                coalesce(sum(a.points_due), 0)::bigint AS points_due,
                coalesce(sum(a.points_awarded), 0)::bigint AS points_awarded,
                coalesce(sum(a.discount_cents), 0)::bigint AS discount_cents
            FROM offers o
            CROSS JOIN (VALUES (false), (true)) AS k (in_control_group)
            LEFT JOIN offer_member_activity_rows() a
                ON a.offer_id = o.offer_id AND a.in_control_group = k.in_control_group
            GROUP BY o.offer_id, k.in_control_group
        ) g
    ) w
$$;

CREATE VIEW offer_performance AS SELECT * FROM offer_performance_rows();
COMMENT ON VIEW offer_performance IS
    'Test vs control per offer: one row per group (test, control) of every published offer: '
    'members, qualifying members (completed at least once) and rate, redemptions (completions), '
    'visits and spend in the window, per member, points and discounts; on the test row the '
    'uplift of each per-member figure over control ((test - control) / control; NULL when a '
    'group is empty or the control figure is 0).';
