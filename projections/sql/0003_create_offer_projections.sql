-- Read models of what offers did for members (topic loyalty.offers.v1), and the member facts
-- the offer rules need (programmes, markets, the whole profile) on `members`, so the cart
-- preview (POST /v1/carts/evaluate) can rebuild a member's offer state from Postgres. Every
-- value comes from an event, never from now(), so rebuilding from offset 0 gives
-- byte-identical tables (DESIGN.md §7).

-- From MemberEnrolled (every enrolment adds its market and programmes) and the latest profile
-- (MemberEnrolled / MemberProfileUpdated, by occurred_at). Sorted, duplicate-free arrays, so
-- the order enrolments arrive in never shows. Rows projected before this migration keep the
-- defaults until `loyalty rebuild` replays the enrolments.
ALTER TABLE members
    ADD COLUMN markets     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN program_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN profile     jsonb;
COMMENT ON COLUMN members.profile IS
    'The member''s whole profile as the latest enrolment or profile update gave it (JSON form).';

CREATE TABLE offer_completions (
    event_id         text        PRIMARY KEY,
    member_id        text        NOT NULL,
    offer_id         text        NOT NULL,
    use_number       integer     NOT NULL CHECK (use_number >= 1),
    multiples        integer     NOT NULL CHECK (multiples >= 1),
    tier             integer,
    program_id       text,
    points_due       bigint      NOT NULL CHECK (points_due >= 0),
    points_awarded   bigint      NOT NULL CHECK (points_awarded >= 0),
    discount_cents   bigint      NOT NULL CHECK (discount_cents >= 0),
    in_control_group boolean     NOT NULL,
    transaction_id   text,
    cause_event_id   text        NOT NULL,
    occurred_at      timestamptz NOT NULL
);
COMMENT ON TABLE offer_completions IS
    'One row per OfferCompleted: one use of an offer by a member, what it paid and gave off.';
-- Analysts ask per offer over time (redemption rate, points paid, test vs control).
CREATE INDEX offer_completions_by_offer_time
    ON offer_completions (offer_id, occurred_at, in_control_group);
CREATE INDEX offer_completions_by_member ON offer_completions (member_id, occurred_at);

CREATE TABLE member_offer_progress (
    member_id  text        NOT NULL,
    offer_id   text        NOT NULL,
    use_number integer     NOT NULL CHECK (use_number >= 1),
    progress   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, offer_id)
);
COMMENT ON TABLE member_offer_progress IS
    'The latest OfferProgressed of each member and offer: progress of the use in progress per '
    'behaviour (behaviour_index, metric, progress, threshold), as the event gives it.';

CREATE TABLE member_offer_uses (
    member_id         text        NOT NULL,
    offer_id          text        NOT NULL,
    uses              integer     NOT NULL CHECK (uses >= 0),
    points_awarded    bigint      NOT NULL CHECK (points_awarded >= 0),
    discount_cents    bigint      NOT NULL CHECK (discount_cents >= 0),
    last_completed_at timestamptz NOT NULL,
    PRIMARY KEY (member_id, offer_id)
);
COMMENT ON TABLE member_offer_uses IS
    'Per member and offer, the uses completed and what they paid: the sums of offer_completions '
    '(points before any return took them back; the ledger''s RETURN entries say that).';
