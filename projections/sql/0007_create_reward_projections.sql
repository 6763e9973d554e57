-- Read models of rewards (issue #12, docs/adr/0020-rewards.md): the catalogue and its code
-- stock (topic loyalty.config.v1) and members' granted rewards, the wallet (topic
-- loyalty.rewards.v1). Every value comes from an event, never from now(), and each row is the
-- same whichever of the two topics delivered first, so rebuilding from offset 0 gives
-- byte-identical tables (DESIGN.md §7).

-- From RewardPublished, folded in log order as the worker's catalogue folds it
-- (processors.rules.member.Config): a republication replaces the row whole.
CREATE TABLE rewards (
    reward_id             text        PRIMARY KEY,
    program_id            text        NOT NULL,
    market                text        NOT NULL,
    points_cost           bigint      CHECK (points_cost > 0),
    uses_code_stock       boolean     NOT NULL,
    available_from        timestamptz NOT NULL,
    available_until       timestamptz,
    granted_valid_days    integer,
    grants_per_member_max integer,
    grants_total_max      integer,
    localized_copy        jsonb       NOT NULL,
    published_event_id    text        NOT NULL,
    published_at          timestamptz NOT NULL,
    definition            jsonb       NOT NULL
);
COMMENT ON TABLE rewards IS
    'The reward catalogue from the config topic: each reward''s latest RewardPublished. '
    'localized_copy maps a locale (en, fr) to its copy (headline, short_description, '
    'long_description, terms, image_url); definition is the whole event (JSON form). '
    'points_cost null: not for sale, only granted. For sale for '
    'available_from <= t < coalesce(available_until, infinity).';
CREATE INDEX rewards_by_market ON rewards (market, available_from);

-- One row per (reward, code) the engine has heard of: added by a RewardCodesAdded batch,
-- granted by a RewardGranted, or both. Either may come first (two topics); each side keeps
-- its first value, so the row does not depend on the order.
CREATE TABLE reward_codes (
    reward_id         text        NOT NULL,
    code              text        NOT NULL,
    batch_event_id    text,
    added_at          timestamptz,
    granted_reward_id text,
    granted_at        timestamptz,
    PRIMARY KEY (reward_id, code)
);
COMMENT ON TABLE reward_codes IS
    'Codes of rewards'' code stocks: batch_event_id is the RewardCodesAdded that first stocked '
    'the code (null: never stocked, e.g. a code an external system attributed), '
    'granted_reward_id the RewardGranted that gave it (null: still in stock).';

-- Counts kept by the writer as the rows of reward_codes and member_rewards change, so the
-- catalogue reads a reward's stock without counting its codes. codes_given <= codes_stocked
-- always holds, but is no CHECK: the writer adds to the counts with INSERT ... ON CONFLICT DO
-- UPDATE, whose proposed row (a delta) is checked before the conflict turns it into an update.
CREATE TABLE reward_stock (
    reward_id     text    PRIMARY KEY,
    codes_stocked integer NOT NULL CHECK (codes_stocked >= 0),
    codes_given   integer NOT NULL CHECK (codes_given >= 0),
    grants        integer NOT NULL CHECK (grants >= 0)
);
COMMENT ON TABLE reward_stock IS
    'Per reward: codes ever stocked, how many of those were granted (codes_stocked - '
    'codes_given are left), and grants given to all members (against grants_total_max).';

-- From loyalty.rewards.v1: one row per RewardGranted (insert-only, the first of the log
-- holds); RewardRedeemed and RewardExpired close an ISSUED row once (a closed one stays).
CREATE TABLE member_rewards (
    granted_reward_id  text        PRIMARY KEY,
    member_id          text        NOT NULL,
    reward_id          text        NOT NULL,
    reason             text        NOT NULL,
    program_id         text,
    points_spent       bigint      NOT NULL CHECK (points_spent >= 0),
    code               text,
    redemption_token   text        NOT NULL,
    expires_at         timestamptz,
    granted_at         timestamptz NOT NULL,
    grant_event_id     text        NOT NULL,
    cause_event_id     text        NOT NULL,
    command_id         text,
    offer_id           text,
    challenge_id       text,
    status             text        NOT NULL CHECK (status IN ('ISSUED', 'REDEEMED', 'EXPIRED')),
    closed_at          timestamptz,
    closed_event_id    text,
    redeemed_source    text,
    redeemed_transaction_id text,
    redeemed_store_id  text,
    redeemed_till_id   text
);
COMMENT ON TABLE member_rewards IS
    'The wallet: every reward granted to a member (RewardGranted), ISSUED until used at the '
    'till (REDEEMED, RewardRedeemed) or expired unused by the daily run (EXPIRED, '
    'RewardExpired); closed_at is when that happened. reason says why it was granted '
    '(REDEMPTION, OFFER, BIRTHDAY, ...).';
CREATE INDEX member_rewards_by_member_newest
    ON member_rewards (member_id, granted_at DESC, granted_reward_id DESC);
