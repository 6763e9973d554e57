-- A granted reward's discount as granted (RewardGranted.discount: the reward's version at
-- the grant) and the cents it took off where it was used (RewardRedeemed.discount_cents),
-- so the till's preview (POST /v1/carts/evaluate) judges a token as the worker will, and
-- analysts can value what is outstanding.
ALTER TABLE member_rewards
    ADD COLUMN discount jsonb,
    ADD COLUMN redeemed_discount_cents bigint CHECK (redeemed_discount_cents >= 0);
COMMENT ON COLUMN member_rewards.discount IS
    'The DiscountTerms (JSON form) the granted reward gives at the till, as its reward''s '
    'version had them when granted; null: fulfilled outside the cart by its code.';
COMMENT ON COLUMN member_rewards.redeemed_discount_cents IS
    'Cents its discount took off the transaction it was used in (RewardRedeemed); null when '
    'not used or when it gives no discount.';
CREATE INDEX member_rewards_by_token ON member_rewards (redemption_token);

-- Outstanding liability: what members hold and may still use, per reward. "Outstanding" is
-- ISSUED (neither used nor expired by the daily run); its value in the points paid for it
-- and, for fixed-amount discounts, in the cents it would take off at most.
CREATE VIEW reward_liability AS
SELECT
    r.reward_id,
    count(*)                                               AS granted,
    count(*) FILTER (WHERE r.status = 'REDEEMED')          AS redeemed,
    count(*) FILTER (WHERE r.status = 'EXPIRED')           AS expired,
    count(*) FILTER (WHERE r.status = 'ISSUED')            AS outstanding,
    coalesce(sum(r.points_spent) FILTER (WHERE r.status = 'ISSUED'), 0) AS outstanding_points,
    coalesce(sum((r.discount ->> 'amount_off_cents')::bigint)
             FILTER (WHERE r.status = 'ISSUED'), 0)        AS outstanding_amount_off_cents,
    coalesce(sum(r.redeemed_discount_cents), 0)            AS discount_given_cents,
    round(count(*) FILTER (WHERE r.status = 'REDEEMED')::numeric
          / nullif(count(*) FILTER (WHERE r.status <> 'ISSUED'), 0), 4) AS redemption_rate
FROM member_rewards r
GROUP BY r.reward_id;
COMMENT ON VIEW reward_liability IS
    'Per reward: granted rewards by status; outstanding (ISSUED) valued in the points paid '
    'for them and in fixed amounts off; discounts given; redemption_rate = redeemed / closed '
    '(redeemed + expired), null while none has closed.';

-- Redemption rates by the month rewards were granted (UTC), per reward and why granted.
CREATE VIEW reward_redemption_rates AS
SELECT
    r.reward_id,
    r.reason,
    date_trunc('month', r.granted_at AT TIME ZONE 'UTC')::date AS granted_month,
    count(*)                                           AS granted,
    count(*) FILTER (WHERE r.status = 'REDEEMED')      AS redeemed,
    count(*) FILTER (WHERE r.status = 'EXPIRED')       AS expired,
    round(count(*) FILTER (WHERE r.status = 'REDEEMED')::numeric / count(*), 4) AS redeemed_share
FROM member_rewards r
GROUP BY r.reward_id, r.reason, granted_month;
COMMENT ON VIEW reward_redemption_rates IS
    'Per reward, grant reason (REDEMPTION, OFFER, ENROLMENT, BIRTHDAY, CHALLENGE) and month of '
    'grant: granted, redeemed, expired, and the share redeemed so far.';
