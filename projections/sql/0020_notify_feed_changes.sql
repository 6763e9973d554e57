-- The anonymous offer feed is the same for every visitor of a market, so each API process
-- keeps it in memory until it changes (docs/adr/0025-offer-feeds.md, addendum). What it shows
-- is offer_feed_items alone: a written row notifies channel loyalty_decided (0018's channel,
-- the one listener each API process already runs) with key feed:<market>, for the market the
-- row was in and the one it is in now. Postgres delivers it when the projector's transaction
-- commits, once per distinct payload, so a batch of a market's offers is one notification.
-- The feed writer updates a row only when its digest changed (projections/writers/feed.py),
-- so a batch that leaves the offers as they were notifies nothing.
CREATE FUNCTION notify_feed_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('loyalty_decided', 'feed:' || OLD.market);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('loyalty_decided', 'feed:' || NEW.market);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION notify_feed_changed() IS
    'Notifies loyalty_decided with feed:<market> for a written offer_feed_items row, its old '
    'market and its new one (migration 0020).';

CREATE TRIGGER offer_feed_items_changed AFTER INSERT OR UPDATE OR DELETE ON offer_feed_items
    FOR EACH ROW EXECUTE FUNCTION notify_feed_changed();
