-- Read models of the points ledger (topic loyalty.ledger.v1) and of members
-- (topic loyalty.enrolments.v1). Every value comes from an event, never from now(), so
-- rebuilding from offset 0 gives byte-identical tables (DESIGN.md §7).

CREATE TABLE members (
    member_id        text        PRIMARY KEY,
    market           text        NOT NULL,
    enrolled_at      timestamptz NOT NULL,
    first_name       text,
    last_name        text,
    email            text,
    preferred_locale text,
    province         text,
    status           text        NOT NULL CHECK (status IN ('ACTIVE', 'MERGED')),
    merged_into      text,
    updated_at       timestamptz NOT NULL
);
COMMENT ON TABLE members IS 'Customer basics shown with the ledger; one row per member.';

CREATE TABLE ledger_events (
    event_log_id       text        PRIMARY KEY,
    member_id          text        NOT NULL,
    sequence           integer     NOT NULL CHECK (sequence >= 1),
    event_type         text        NOT NULL,
    occurred_at        timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL,
    cause_event_id     text        NOT NULL,
    source             text        NOT NULL,
    store_id           text,
    till_id            text,
    transaction_id     text,
    transaction_number text,
    related_member_id  text,
    points_on_event    bigint      NOT NULL,
    UNIQUE (member_id, sequence)
);
COMMENT ON TABLE ledger_events IS
    'One row per LedgerEventRecorded: a business event''s effect on one member''s accounts.';
CREATE INDEX ledger_events_by_member_time ON ledger_events (member_id, recorded_at, sequence);

CREATE TABLE ledger_entries (
    entry_id     text        PRIMARY KEY,
    event_log_id text        NOT NULL REFERENCES ledger_events (event_log_id),
    member_id    text        NOT NULL,
    sequence     integer     NOT NULL,
    position     integer     NOT NULL CHECK (position >= 0),
    program_id   text        NOT NULL,
    category     text        NOT NULL,
    entry_type   text        NOT NULL CHECK (entry_type IN ('CREDIT', 'DEBIT', 'UNKNOWN')),
    kind         text        NOT NULL,
    points       bigint      NOT NULL CHECK (points >= 0),
    expires_at   timestamptz,
    offer_id     text,
    UNIQUE (event_log_id, position)
);
COMMENT ON TABLE ledger_entries IS 'The credits and debits of each ledger event, in order.';
CREATE INDEX ledger_entries_by_member ON ledger_entries (member_id, sequence);

-- The balance of every account touched by an event, as it stood after that event: the
-- closing balance of any filtered ledger view is read from here.
CREATE TABLE ledger_event_balances (
    member_id    text    NOT NULL,
    sequence     integer NOT NULL,
    event_log_id text    NOT NULL REFERENCES ledger_events (event_log_id),
    program_id   text    NOT NULL,
    category     text    NOT NULL,
    balance      bigint  NOT NULL,
    PRIMARY KEY (member_id, program_id, category, sequence)
);

CREATE TABLE member_balances (
    member_id    text    NOT NULL,
    program_id   text    NOT NULL,
    category     text    NOT NULL,
    balance      bigint  NOT NULL,
    sequence     integer NOT NULL,
    PRIMARY KEY (member_id, program_id, category)
);
COMMENT ON TABLE member_balances IS 'Current balance per member, programme and category.';

-- expires_at 'infinity' is the lot of points that never expire (a primary key column
-- cannot be null).
CREATE TABLE member_lots (
    member_id  text        NOT NULL,
    program_id text        NOT NULL,
    category   text        NOT NULL,
    expires_at timestamptz NOT NULL,
    points     bigint      NOT NULL,
    PRIMARY KEY (member_id, program_id, category, expires_at)
);
COMMENT ON TABLE member_lots IS 'Current points per account and expiry date, earliest first.';
