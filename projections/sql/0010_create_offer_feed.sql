-- The offer feeds' read model (issue #14, docs/adr/0025-offer-feeds.md): what
-- GET /v1/offers (anonymous, per market) and GET /v1/members/{id}/offers (personalised) read,
-- shaped so that one indexed query answers each. Every value comes from an event, never from
-- now(): whether an offer is displayable is decided when the feed is read, from the window
-- stored here, so rebuilding from offset 0 gives byte-identical tables (DESIGN.md §7).

-- One row per published offer, rendered for the feed from the `offers` catalogue row that the
-- config topic's fold left (the offer performance writer folds OfferPublished,
-- OfferEndDateExtended and OfferWithdrawn there, with the rules' own judgement of an
-- extension; this table copies the result, so there is one fold).
CREATE TABLE offer_feed_items (
    offer_id              text        PRIMARY KEY,
    program_id            text        NOT NULL,
    market                text        NOT NULL,
    rank                  integer     NOT NULL,
    display_at            timestamptz NOT NULL,
    starts_at             timestamptz NOT NULL,
    ends_at               timestamptz NOT NULL,
    withdrawn_at          timestamptz,
    visible_until         timestamptz NOT NULL
        GENERATED ALWAYS AS (least(ends_at, coalesce(withdrawn_at, 'infinity'))) STORED,
    audience              text        NOT NULL
        CHECK (audience IN ('MASS', 'TARGETED', 'TRIGGERED', 'NONE')),
    control_share_percent integer     NOT NULL,
    trigger_valid_days    integer,
    activation            text        NOT NULL,
    coupon_code           text,
    in_reward_store       boolean     NOT NULL,
    uses_per_member_max   integer,
    points_per_member_max bigint,
    copy                  jsonb       NOT NULL,
    details               jsonb       NOT NULL,
    digest                text        NOT NULL,
    published_event_id    text        NOT NULL
);
COMMENT ON TABLE offer_feed_items IS
    'Each published offer as the feeds show it: displayable for display_at <= t < '
    'visible_until (its end after accepted extensions, or its withdrawal). audience: MASS (every '
    'member of the programme, and anonymous visitors), TARGETED (members with an OfferTargeted), '
    'TRIGGERED (one use per OfferTargeted, within trigger_valid_days), NONE (a kind or timing '
    'this version does not know: never shown). copy maps a locale (en, fr) to its plain-text '
    'copy; details holds the reward (JSON form, without product lists) and the behaviours; '
    'digest is the sha256 of everything shown, for ETags and caches.';
CREATE INDEX offer_feed_items_mass_by_market
    ON offer_feed_items (market, display_at) WHERE audience = 'MASS';
CREATE INDEX offer_feed_items_by_program ON offer_feed_items (program_id, display_at);

-- One row per member and offer the member has a standing on: targeted (OfferTargeted), loaded
-- (OfferLoaded), progressed or completed. Targetings are kept by event id (a TRIGGERED offer
-- is targeted once per fire, each fire good for one use; a redelivered OfferTargeted is the
-- same id), the first load holds, and uses, points and progress are copied from
-- member_offer_uses and member_offer_progress (the offers writer's rows, written earlier in
-- the same transaction), so a completion is counted in one place.
CREATE TABLE member_offer_standings (
    member_id            text        NOT NULL,
    offer_id             text        NOT NULL,
    in_control_group     boolean,
    targeted_at          timestamptz,
    last_targeted_at     timestamptz,
    targeting_event_ids  text[]      NOT NULL DEFAULT '{}',
    loaded_at            timestamptz,
    uses                 integer     NOT NULL DEFAULT 0 CHECK (uses >= 0),
    points_awarded       bigint      NOT NULL DEFAULT 0 CHECK (points_awarded >= 0),
    progress_use_number  integer,
    progress             jsonb,
    progress_updated_at  timestamptz,
    PRIMARY KEY (member_id, offer_id)
);
COMMENT ON TABLE member_offer_standings IS
    'Per member and offer, what the personalised feed needs: whether and when the member was '
    'targeted (in_control_group: held out, never shown the offer), each targeting''s event id '
    '(sorted), the first load to card, completed uses and points awarded (as '
    'member_offer_uses), and the latest progress (as member_offer_progress: the use it belongs '
    'to, and per behaviour its progress and threshold).';
