-- A merge moves the victim's issued rewards to the survivor (ADR 20 addendum): the victim's
-- row is closed as MOVED (RewardMoved, on the victim's partition) and the survivor gets its
-- own row (RewardGranted, reason MERGE, same code, token, expiry and discount), so every
-- event about one row stays on one member's partition.
ALTER TABLE member_rewards DROP CONSTRAINT member_rewards_status_check;
ALTER TABLE member_rewards ADD CONSTRAINT member_rewards_status_check
    CHECK (status IN ('ISSUED', 'REDEEMED', 'EXPIRED', 'MOVED'));
ALTER TABLE member_rewards ADD COLUMN moved_to_member_id text;
COMMENT ON COLUMN member_rewards.moved_to_member_id IS
    'For a MOVED row: the survivor of the merge that took it (whose MERGE row carries on).';

-- The views count each reward once: a MOVED row is carried on by its survivor's MERGE row.
CREATE OR REPLACE VIEW reward_liability AS
SELECT
    r.reward_id,
    count(*) FILTER (WHERE r.status <> 'MOVED')           AS granted,
    count(*) FILTER (WHERE r.status = 'REDEEMED')          AS redeemed,
    count(*) FILTER (WHERE r.status = 'EXPIRED')           AS expired,
    count(*) FILTER (WHERE r.status = 'ISSUED')            AS outstanding,
    coalesce(sum(r.points_spent) FILTER (WHERE r.status = 'ISSUED'), 0) AS outstanding_points,
    coalesce(sum((r.discount ->> 'amount_off_cents')::bigint)
             FILTER (WHERE r.status = 'ISSUED'), 0)        AS outstanding_amount_off_cents,
    coalesce(sum(r.redeemed_discount_cents), 0)            AS discount_given_cents,
    round(count(*) FILTER (WHERE r.status = 'REDEEMED')::numeric
          / nullif(count(*) FILTER (WHERE r.status IN ('REDEEMED', 'EXPIRED')), 0), 4)
                                                           AS redemption_rate
FROM member_rewards r
GROUP BY r.reward_id;

CREATE OR REPLACE VIEW reward_redemption_rates AS
SELECT
    r.reward_id,
    r.reason,
    date_trunc('month', r.granted_at AT TIME ZONE 'UTC')::date AS granted_month,
    count(*)                                           AS granted,
    count(*) FILTER (WHERE r.status = 'REDEEMED')      AS redeemed,
    count(*) FILTER (WHERE r.status = 'EXPIRED')       AS expired,
    round(count(*) FILTER (WHERE r.status = 'REDEEMED')::numeric / count(*), 4) AS redeemed_share
FROM member_rewards r
WHERE r.status <> 'MOVED'
GROUP BY r.reward_id, r.reason, granted_month;
