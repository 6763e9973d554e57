-- Retention of the app events (docs/adr/0025-offer-feeds.md, addendum): rows received more
-- than the retention period ago (LOYALTY_API_FEED_EVENTS_RETENTION_DAYS, 395 days: a year
-- over year comparison and a month to spare) are deleted by `loyalty feed-events-prune`, in
-- batches, oldest first. This index finds them without reading the table.
CREATE INDEX offer_feed_events_by_time ON offer_feed_events (received_at);
COMMENT ON TABLE offer_feed_events IS
    'One row per event the app reported (event_id is the app''s, so a retry is one row): '
    'PAGE_VIEWED (the offers page was shown; offer_ids: the offers on it, the impressions) or '
    'OFFER_CLICKED (offer_id was opened). member_id: the member token''s member; null: an '
    'anonymous visitor. Kept for the retention period after received_at (loyalty '
    'feed-events-prune): the views over it cover that period only.';
