-- A spent offer closes (issue #17, docs/adr/0029-gaps-closed.md): the agent keyed by the offer
-- emits OfferClosed on the config topic with its OfferBudgetExhausted. The offer performance
-- writer folds it into the catalogue row (closed_at; publishing the offer again clears it), so
-- an extension of a closed offer is refused as completed, as the rules refuse it; the feed's
-- item copies it, and the feeds stop showing the offer from then on. Every value comes from an
-- event, so a rebuild from offset 0 gives the same rows.
ALTER TABLE offers ADD COLUMN closed_at timestamptz;
COMMENT ON COLUMN offers.closed_at IS
    'When the engine closed the offer (OfferClosed: its total uses or budget spent); null while '
    'open. Publishing the offer again opens it.';

ALTER TABLE offer_feed_items ADD COLUMN closed_at timestamptz;
-- A generated column's expression cannot be changed in place: it is added again, with closure.
ALTER TABLE offer_feed_items DROP COLUMN visible_until;
ALTER TABLE offer_feed_items ADD COLUMN visible_until timestamptz NOT NULL
    GENERATED ALWAYS AS (
        least(ends_at, coalesce(withdrawn_at, 'infinity'), coalesce(closed_at, 'infinity'))
    ) STORED;
COMMENT ON COLUMN offer_feed_items.visible_until IS
    'The end of the offer''s display: its end after accepted extensions, its withdrawal, or its '
    'closing by the engine (its total uses or budget spent), whichever comes first.';
