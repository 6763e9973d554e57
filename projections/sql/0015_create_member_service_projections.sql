-- Read models of loyalty.notifications.v1 (docs/adr/0028-member-services.md): members'
-- communication preferences with their audit trail, and the inbox. Every value comes from
-- the events, never from now(), so a rebuild writes what the live projection wrote.

-- A member's current opt-in per channel: the newest PreferencesChanged naming the channel.
CREATE TABLE member_preferences (
    member_id       text        NOT NULL,
    channel         text        NOT NULL,
    opted_in        boolean     NOT NULL,
    changed_at      timestamptz NOT NULL,
    change_event_id text        NOT NULL,
    PRIMARY KEY (member_id, channel)
);
COMMENT ON TABLE member_preferences IS
    'Each member''s current marketing opt-in per channel (EMAIL, PUSH, SMS, IN_APP, ...), from '
    'the newest PreferencesChanged that named it; a channel never set has no row.';

-- The audit trail: append-only, one row per channel of each PreferencesChanged.
CREATE TABLE member_preference_changes (
    change_event_id text        NOT NULL,
    channel         text        NOT NULL,
    member_id       text        NOT NULL,
    was_opted_in    boolean,
    opted_in        boolean     NOT NULL,
    changed_at      timestamptz NOT NULL,
    changed_by      text        NOT NULL,
    changed_by_id   text        NOT NULL,
    source          text        NOT NULL,
    reason          text,
    PRIMARY KEY (change_event_id, channel)
);
COMMENT ON TABLE member_preference_changes IS
    'Who changed a member''s preference (changed_by MEMBER, STAFF, SYSTEM, CONSENT_MANAGER and '
    'their id), when, through which channel (source), and old -> new; never updated or deleted.';
CREATE INDEX member_preference_changes_by_member
    ON member_preference_changes (member_id, changed_at DESC, change_event_id DESC, channel);

-- The inbox: personal messages (member_id) and global ones (market, member_id null).
CREATE TABLE inbox_messages (
    message_id     text        PRIMARY KEY,
    event_id       text        NOT NULL,
    member_id      text,
    market         text,
    campaign_id    text,
    cause_event_id text        NOT NULL,
    locale         text        NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    deep_link_url  text,
    image_url      text,
    posted_at      timestamptz NOT NULL,
    expires_at     timestamptz,
    CHECK ((member_id IS NULL) <> (market IS NULL))
);
COMMENT ON TABLE inbox_messages IS
    'One row per MessagePosted (the first of a message_id holds): personal (member_id) or '
    'global for a market (market). A message with a campaign_id is marketing: a member opted '
    'out of IN_APP does not see it. Shown newest first until expires_at.';
CREATE INDEX inbox_messages_personal
    ON inbox_messages (member_id, posted_at DESC, message_id DESC) WHERE member_id IS NOT NULL;
CREATE INDEX inbox_messages_global
    ON inbox_messages (market, posted_at DESC, message_id DESC) WHERE market IS NOT NULL;
