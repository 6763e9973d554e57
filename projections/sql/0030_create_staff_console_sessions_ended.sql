-- Console sessions ended by signing out (docs/adr/0035-staff-console.md). A session cookie is
-- signed and holds its own expiry; this list is what makes signing out end it on the server
-- too: every request's session id is looked up here, and a copied cookie of an ended session
-- is refused. Not a projection: the console writes it, no rebuild or dump touches it. A row
-- is useless once its session would have expired anyway; signing out removes those.
CREATE TABLE staff_console_sessions_ended (
    session_id  text        PRIMARY KEY,
    staff       text        NOT NULL,
    ended_at    timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
COMMENT ON TABLE staff_console_sessions_ended IS
    'Console sessions ended by signing out before their expiry: session id (the cookie''s sid '
    'claim), who, when it ended, and when it would have expired (rows past it are removed).';
CREATE INDEX staff_console_sessions_ended_by_expiry
    ON staff_console_sessions_ended (expires_at);
