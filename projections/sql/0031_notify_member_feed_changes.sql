-- Each API process keeps members' personalised offer feeds in memory until something the feed
-- is built from changes (docs/adr/0025-offer-feeds.md, third addendum). The member feed reads
-- offer_feed_items (notified per market since 0020), members, member_offer_standings and
-- member_issued_offers: a statement writing rows of these three now notifies channel
-- loyalty_decided (0018's, the one listener each API process runs) with key member:<id> for
-- each member whose rows it inserted, deleted or changed (the old and the new member of a row
-- a merge moved). Postgres delivers it when the projector's transaction commits, once per
-- distinct payload and transaction, so a batch of one member's rows is one notification,
-- shared with the member's decisions (0018).
-- Per statement, not per row: the projector writes a batch's standings in one statement, and
-- one set-based look at its transition tables costs half what a row trigger did (measured:
-- docs/performance.md). An UPDATE that leaves a row as it was notifies nothing.
CREATE FUNCTION notify_members_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('loyalty_decided', 'member:' || member_id)
        FROM (SELECT DISTINCT member_id FROM new_rows) written;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('loyalty_decided', 'member:' || member_id)
        FROM (SELECT DISTINCT member_id FROM old_rows) written;
    ELSE
        PERFORM pg_notify('loyalty_decided', 'member:' || member_id)
        FROM (SELECT DISTINCT member_id FROM (
            (SELECT * FROM new_rows EXCEPT ALL SELECT * FROM old_rows)
            UNION ALL
            (SELECT * FROM old_rows EXCEPT ALL SELECT * FROM new_rows)
        ) changed) written;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_members_written() IS
    'Notifies loyalty_decided with member:<member_id> for each member whose rows a statement '
    'inserted, deleted or changed (transition tables new_rows, old_rows; migration 0031).';

-- Each table: <table>_inserted, _updated and _deleted (a trigger with transition tables has
-- one event).
DO $$
DECLARE
    written text;
BEGIN
    FOREACH written IN ARRAY ARRAY['member_offer_standings', 'member_issued_offers', 'members']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION notify_members_written()',
                       written || '_inserted', written);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION notify_members_written()',
                       written || '_updated', written);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION notify_members_written()',
                       written || '_deleted', written);
    END LOOP;
END
$$;
