-- Each API process keeps members' personalised offer feeds in memory until something the feed
-- is built from changes (docs/adr/0025-offer-feeds.md, third addendum). The member feed reads
-- offer_feed_items (notified per market since 0020), members, member_offer_standings and
-- member_issued_offers: a written row of these three now notifies channel loyalty_decided
-- (0018's, the one listener each API process runs) with key member:<id>, for the member the
-- row was of and the one it is of now (a merge moves rows). Postgres delivers it when the
-- projector's transaction commits, once per distinct payload and transaction, so a batch of
-- one member's rows is one notification, shared with the member's decisions (0018).
-- An UPDATE that leaves the row as it was notifies nothing; of members, only a change of what
-- the feed shows (status, survivor, programmes, preferred language) notifies: a profile edit
-- does not empty the member's cached feed.

-- One notifier for a row's old and new key, for these tables and offer_feed_items (0020 had one
-- of its own for the market; it goes, as 0025 folded 0017's copy into 0018's notify_decided).
CREATE FUNCTION notify_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV[0]: the key's kind; TG_ARGV[1]: the column holding its value.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('loyalty_decided', TG_ARGV[0] || ':' || (to_jsonb(OLD) ->> TG_ARGV[1]));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('loyalty_decided', TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> TG_ARGV[1]));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_row_changed() IS
    'Notifies loyalty_decided with <kind>:<value of a column> for a written row, its old value '
    'and its new one (migration 0031).';

DROP TRIGGER offer_feed_items_changed ON offer_feed_items;
DROP FUNCTION notify_feed_changed();
CREATE TRIGGER offer_feed_items_changed AFTER INSERT OR UPDATE OR DELETE ON offer_feed_items
    FOR EACH ROW EXECUTE FUNCTION notify_row_changed('feed', 'market');

CREATE TRIGGER member_offer_standings_written AFTER INSERT OR DELETE ON member_offer_standings
    FOR EACH ROW EXECUTE FUNCTION notify_row_changed('member', 'member_id');
CREATE TRIGGER member_offer_standings_changed AFTER UPDATE ON member_offer_standings
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION notify_row_changed('member', 'member_id');

CREATE TRIGGER member_issued_offers_written AFTER INSERT OR DELETE ON member_issued_offers
    FOR EACH ROW EXECUTE FUNCTION notify_row_changed('member', 'member_id');
CREATE TRIGGER member_issued_offers_changed AFTER UPDATE ON member_issued_offers
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION notify_row_changed('member', 'member_id');

CREATE TRIGGER members_written AFTER INSERT OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION notify_row_changed('member', 'member_id');
CREATE TRIGGER members_shown_changed AFTER UPDATE ON members
    FOR EACH ROW WHEN (
        OLD.status IS DISTINCT FROM NEW.status
        OR OLD.merged_into IS DISTINCT FROM NEW.merged_into
        OR OLD.program_ids IS DISTINCT FROM NEW.program_ids
        OR OLD.preferred_locale IS DISTINCT FROM NEW.preferred_locale
    )
    EXECUTE FUNCTION notify_row_changed('member', 'member_id');
