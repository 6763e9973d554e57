-- An enrolment is a request the engine answers (ADR 28): a refused one must never open a
-- member. The members projection keeps each enrolment here until its answer
-- (request_outcomes, request_type ENROLMENT, command id = the enrolment's event id) is
-- projected, in whichever order the two topics arrive; then it opens the member (accepted) or
-- is dropped (refused). Profile updates and merges that arrive meanwhile apply here too.
CREATE TABLE member_enrolments_pending (
    member_id   text        NOT NULL,
    command_id  text        NOT NULL,
    market      text        NOT NULL,
    program_ids text[]      NOT NULL,
    enrolled_at timestamptz NOT NULL,
    profile_at  timestamptz NOT NULL,
    basics      jsonb       NOT NULL,
    merged_into text,
    merged_at   timestamptz,
    PRIMARY KEY (member_id, command_id)
);
COMMENT ON TABLE member_enrolments_pending IS
    'Enrolments projected but not yet answered by the engine; opened or dropped by their answer.';
COMMENT ON COLUMN member_enrolments_pending.command_id IS 'The enrolment''s event id.';
COMMENT ON COLUMN member_enrolments_pending.profile_at IS
    'Business time of the profile in basics (a later profile update replaces it).';
COMMENT ON COLUMN member_enrolments_pending.basics IS
    'first_name, last_name, email, preferred_locale, province and the whole profile.';
COMMENT ON COLUMN member_enrolments_pending.merged_into IS
    'Set when a merge of this member arrived before the enrolment''s answer.';

COMMENT ON COLUMN member_enrolments_pending.merged_at IS 'Business time of that merge.';
