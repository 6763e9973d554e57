-- Manual points adjustments made in the staff console, with maker/checker approval
-- (docs/adr/0036-member-care-console.md). Not a projection: the console writes it, no event
-- fills it, no rebuild or dump touches it. One row per adjustment an agent submitted: at or
-- under the approval threshold it is approved on submission; above it, it waits (pending)
-- until an admin other than its maker approves or rejects it. `published_at` is set once the
-- PointsAdjustmentRequested (its event id and command id derived from `adjustment_id`) has
-- been acknowledged by Kafka; publishing again sends the same ids, so the ledger books once.
CREATE TABLE staff_points_adjustments (
    adjustment_id      text        PRIMARY KEY,
    member_id          text        NOT NULL,
    program_id         text        NOT NULL,
    direction          text        NOT NULL CHECK (direction IN ('credit', 'debit')),
    points             bigint      NOT NULL CHECK (points > 0),
    reason_code        text        NOT NULL,
    note               text        NOT NULL,
    requested_by       text        NOT NULL,
    requested_by_role  text        NOT NULL,
    requested_at       timestamptz NOT NULL,
    state              text        NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by         text,
    decided_at         timestamptz,
    decision_reason    text,
    published_at       timestamptz,
    CHECK (state = 'pending' OR decided_at IS NOT NULL),
    CHECK (decided_by IS NULL OR decided_by <> requested_by),
    CHECK (published_at IS NULL OR state = 'approved')
);
COMMENT ON TABLE staff_points_adjustments IS
    'Points adjustments made in the console: who asked (requested_by), when, what (member, '
    'programme, credit or debit, points, reason code and note), the approval state, who '
    'decided and when (decided_by null: approved on submission, at or under the threshold), '
    'and when the request was published.';
CREATE INDEX staff_points_adjustments_pending ON staff_points_adjustments (requested_at)
    WHERE state = 'pending';
CREATE INDEX staff_points_adjustments_by_member ON staff_points_adjustments
    (member_id, requested_at DESC);
CREATE INDEX staff_points_adjustments_by_maker ON staff_points_adjustments
    (requested_by, requested_at);

-- Member care finds a member by email (the members projection has no card numbers).
CREATE INDEX members_by_email ON members (lower(email));
-- The member's page lists the codes the member used.
CREATE INDEX promo_code_uses_by_member ON promo_code_uses (member_id, used_at DESC)
    WHERE member_id IS NOT NULL;
