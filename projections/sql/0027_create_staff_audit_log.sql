-- The staff console's audit log (docs/adr/0035-staff-console.md): every staff action, who,
-- when, what, and the state before and after. Append-only: rows are inserted, never changed
-- or deleted (the trigger refuses both, for every role, the owner included).
CREATE TABLE staff_audit_log (
    seq BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    staff TEXT NOT NULL,
    staff_role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    before JSONB,
    after JSONB,
    outcome TEXT NOT NULL DEFAULT 'done'
);
COMMENT ON TABLE staff_audit_log IS
    'Every staff action in the console: who (staff, staff_role), when (occurred_at), what '
    '(action on subject), before -> after, and its outcome (done, or refused with the reason). '
    'Append-only.';
CREATE INDEX staff_audit_log_by_staff ON staff_audit_log (staff, seq);
CREATE INDEX staff_audit_log_by_subject ON staff_audit_log (subject, seq);

CREATE FUNCTION refuse_staff_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'staff_audit_log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER staff_audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON staff_audit_log FOR EACH STATEMENT EXECUTE FUNCTION refuse_staff_audit_change();
