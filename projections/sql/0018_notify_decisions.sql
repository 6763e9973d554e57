-- The API's command endpoints wait for the engine's decision in these tables
-- (projections/api/wakeups.py): each written row notifies channel loyalty_decided with the
-- key a waiting request watches. Postgres delivers a notification when the writing
-- transaction commits (when the row becomes visible) and sends one of identical payloads
-- per transaction, so a batch of a member's rows wakes its waiters once.
CREATE FUNCTION notify_decided() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV[0]: the key's kind; TG_ARGV[1]: the column holding its value.
    PERFORM pg_notify('loyalty_decided', TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> TG_ARGV[1]));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_decided() IS
    'Notifies loyalty_decided with <kind>:<value of a column> for a written row (migration 0018).';

CREATE TRIGGER request_outcomes_decided AFTER INSERT ON request_outcomes
    FOR EACH ROW EXECUTE FUNCTION notify_decided('member', 'member_id');
CREATE TRIGGER member_rewards_decided AFTER INSERT ON member_rewards
    FOR EACH ROW EXECUTE FUNCTION notify_decided('member', 'member_id');
CREATE TRIGGER promo_code_reservations_decided AFTER INSERT OR UPDATE ON promo_code_reservations
    FOR EACH ROW EXECUTE FUNCTION notify_decided('code', 'code');
CREATE TRIGGER promo_code_refusals_decided AFTER INSERT ON promo_code_refusals
    FOR EACH ROW EXECUTE FUNCTION notify_decided('code', 'code');
