-- Challenges (seed 000, issue 15; docs/adr/0027-challenges.md): the challenges as published
-- (loyalty.config.v1), each member's standing and completions (loyalty.offers.v1), and the
-- participation figures analysts read. Every value comes from an event, never from now().

-- Each challenge's latest publication (config topic log order).
CREATE TABLE challenges (
    challenge_id               text        PRIMARY KEY,
    program_id                 text        NOT NULL,
    market                     text        NOT NULL,
    goal_kind                  text        NOT NULL,
    goal                       jsonb       NOT NULL,
    steps                      jsonb       NOT NULL,
    starts_at                  timestamptz NOT NULL,
    ends_at                    timestamptz NOT NULL,
    completions_per_member_max integer     NOT NULL CHECK (completions_per_member_max >= 1),
    award_points               bigint,
    award_reward_id            text,
    localized_copy             jsonb       NOT NULL,
    published_event_id         text        NOT NULL,
    published_at               timestamptz NOT NULL
);
COMMENT ON TABLE challenges IS
    'One row per challenge: its latest ChallengePublished (ends_at 3001-01-01: no end; copy by '
    'locale).';
CREATE INDEX challenges_by_market ON challenges (market, starts_at);

-- A member joins a challenge when anything first counts towards it (ChallengeProgressed or
-- ChallengeCompleted); the row then follows the member's partition in log order.
CREATE TABLE member_challenges (
    member_id           text        NOT NULL,
    challenge_id        text        NOT NULL,
    joined_at           timestamptz NOT NULL,
    completions         integer     NOT NULL DEFAULT 0 CHECK (completions >= 0),
    completion_number   integer     NOT NULL CHECK (completion_number >= 1),
    metric              text,
    progress            numeric     NOT NULL DEFAULT 0 CHECK (progress >= 0),
    threshold           numeric,
    oldest_counted_at   timestamptz,
    updated_at          timestamptz NOT NULL,
    updated_event_id    text        NOT NULL,
    PRIMARY KEY (member_id, challenge_id)
);
COMMENT ON TABLE member_challenges IS
    'One row per member and challenge joined: completions so far, and the progress towards the '
    'completion in progress (completion_number) as its latest ChallengeProgressed says.';
CREATE INDEX member_challenges_by_challenge ON member_challenges (challenge_id);

CREATE TABLE challenge_completions (
    event_id              text        PRIMARY KEY,
    member_id             text        NOT NULL,
    challenge_id          text        NOT NULL,
    completion_number     integer     NOT NULL CHECK (completion_number >= 1),
    cause_event_id        text        NOT NULL,
    completed_at          timestamptz NOT NULL,
    program_id            text,
    points_awarded        bigint      NOT NULL CHECK (points_awarded >= 0),
    reward_id             text,
    granted_reward_id     text,
    points_taken_back     bigint      NOT NULL DEFAULT 0 CHECK (points_taken_back >= 0),
    taken_back_at         timestamptz,
    taken_back_event_id   text,
    UNIQUE (member_id, challenge_id, completion_number)
);
COMMENT ON TABLE challenge_completions IS
    'One row per ChallengeCompleted; a ChallengeAwardTakenBack (a return after completion) '
    'records the points debited on it. The completion stands either way.';

-- A function, not a view body, so a rebuild's swapped tables are read (ADR 9, as in 0004).
CREATE FUNCTION challenge_participation_rows()
RETURNS TABLE (
    challenge_id      text,
    program_id        text,
    market            text,
    starts_at         timestamptz,
    ends_at           timestamptz,
    members_joined    bigint,
    members_completed bigint,
    completion_rate   numeric,
    completions       bigint,
    points_awarded    bigint,
    points_taken_back bigint,
    rewards_granted   bigint
)
LANGUAGE sql STABLE
AS $$
    SELECT c.challenge_id, c.program_id, c.market, c.starts_at, c.ends_at,
        coalesce(j.joined, 0), coalesce(j.completed, 0),
        CASE WHEN coalesce(j.joined, 0) = 0 THEN NULL
             ELSE round(j.completed::numeric / j.joined, 4) END,
        coalesce(d.completions, 0), coalesce(d.points_awarded, 0),
        coalesce(d.points_taken_back, 0), coalesce(d.rewards_granted, 0)
    FROM challenges c
    LEFT JOIN (
        SELECT m.challenge_id, count(*) AS joined,
            count(*) FILTER (WHERE m.completions > 0) AS completed
        FROM member_challenges m GROUP BY m.challenge_id
    ) j ON j.challenge_id = c.challenge_id
    LEFT JOIN (
        SELECT cc.challenge_id, count(*) AS completions,
            sum(cc.points_awarded)::bigint AS points_awarded,
            sum(cc.points_taken_back)::bigint AS points_taken_back,
            count(cc.granted_reward_id) AS rewards_granted
        FROM challenge_completions cc GROUP BY cc.challenge_id
    ) d ON d.challenge_id = c.challenge_id
$$;

CREATE VIEW challenge_participation AS SELECT * FROM challenge_participation_rows();
COMMENT ON VIEW challenge_participation IS
    'Per challenge: members who joined (anything counted), who completed it at least once, the '
    'completion rate (completed / joined, 4 places, NULL when nobody joined), completions, '
    'points awarded and taken back by returns, and rewards granted.';
