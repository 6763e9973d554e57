-- App metrics of the offers page (seed 000, "Impacted Metrics": offers page visits, offer click
-- rate; docs/adr/0025-offer-feeds.md), and the analyst views over them beside the test vs
-- control figures (0004's offer_performance).

-- Owned by the HTTP API, not a projection: what the app reported on
-- POST /v1/offer-feed/events. No event writes it and `loyalty rebuild` neither replays nor
-- swaps it. received_at is the API's clock (an app's clock is not trusted for analytics).
CREATE TABLE offer_feed_events (
    event_id    text        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('PAGE_VIEWED', 'OFFER_CLICKED')),
    market      text        NOT NULL,
    member_id   text,
    offer_id    text,
    offer_ids   text[]      NOT NULL DEFAULT '{}',
    locale      text,
    received_at timestamptz NOT NULL,
    CHECK ((kind = 'OFFER_CLICKED') = (offer_id IS NOT NULL))
);
COMMENT ON TABLE offer_feed_events IS
    'One row per event the app reported (event_id is the app''s, so a retry is one row): '
    'PAGE_VIEWED (the offers page was shown; offer_ids: the offers on it, the impressions) or '
    'OFFER_CLICKED (offer_id was opened). member_id: the member token''s member; null: an '
    'anonymous visitor.';
CREATE INDEX offer_feed_events_by_market_time ON offer_feed_events (market, received_at);
CREATE INDEX offer_feed_events_clicks_by_offer
    ON offer_feed_events (offer_id, received_at) WHERE kind = 'OFFER_CLICKED';

CREATE VIEW offers_page_visits AS
SELECT market,
    (received_at AT TIME ZONE 'UTC')::date AS day,
    count(*) AS visits,
    count(*) FILTER (WHERE member_id IS NOT NULL) AS member_visits,
    count(*) FILTER (WHERE member_id IS NULL) AS anonymous_visits,
    count(DISTINCT member_id) AS members
FROM offer_feed_events
WHERE kind = 'PAGE_VIEWED'
GROUP BY market, (received_at AT TIME ZONE 'UTC')::date;
COMMENT ON VIEW offers_page_visits IS
    'Offers page visits per market and UTC day: all, by members, by anonymous visitors, and '
    'distinct members.';

-- A click rate is clicks / impressions, rounded once to 4 places like offer_performance's
-- ratios; NULL without an impression. A click without a page view (a deep link) counts as a
-- click, so a rate may exceed 1.
CREATE VIEW offer_click_rates AS
WITH impressions AS (
    SELECT shown.offer_id, count(*) AS impressions,
        count(DISTINCT e.member_id) AS members_shown
    FROM offer_feed_events e
    CROSS JOIN LATERAL unnest(e.offer_ids) AS shown (offer_id)
    WHERE e.kind = 'PAGE_VIEWED'
    GROUP BY shown.offer_id
), clicks AS (
    SELECT offer_id, count(*) AS clicks, count(DISTINCT member_id) AS members_clicking
    FROM offer_feed_events
    WHERE kind = 'OFFER_CLICKED'
    GROUP BY offer_id
)
SELECT offer_id,
    coalesce(i.impressions, 0) AS impressions,
    coalesce(c.clicks, 0) AS clicks,
    round(coalesce(c.clicks, 0)::numeric / nullif(i.impressions, 0), 4) AS click_rate,
    coalesce(i.members_shown, 0) AS members_shown,
    coalesce(c.members_clicking, 0) AS members_clicking
FROM impressions i
FULL JOIN clicks c USING (offer_id);
COMMENT ON VIEW offer_click_rates IS
    'Per offer: impressions (page views that showed it), clicks, click_rate (clicks / '
    'impressions, 4 places; NULL without impressions), and distinct members shown and clicking.';

-- offer_performance_rows() is the function behind offer_performance (0004): it reads the
-- live tables even after a rebuild swapped them (ADR 9).
CREATE VIEW offer_feed_engagement AS
WITH groups AS (SELECT * FROM offer_performance_rows())
SELECT t.offer_id,
    coalesce(r.impressions, 0) AS impressions,
    coalesce(r.clicks, 0) AS clicks,
    r.click_rate,
    t.members AS test_members,
    c.members AS control_members,
    t.qualifying_rate AS test_qualifying_rate,
    c.qualifying_rate AS control_qualifying_rate,
    t.redemptions_per_member AS test_redemptions_per_member,
    c.redemptions_per_member AS control_redemptions_per_member,
    t.qualifying_rate_uplift,
    t.redemptions_per_member_uplift,
    t.visits_per_member_uplift,
    t.spend_per_member_uplift
FROM groups t
JOIN groups c ON c.offer_id = t.offer_id AND c.in_control_group
LEFT JOIN offer_click_rates r ON r.offer_id = t.offer_id
WHERE NOT t.in_control_group;
COMMENT ON VIEW offer_feed_engagement IS
    'Per published offer, what the feed did beside what the offer did: impressions, clicks and '
    'click rate (offer_click_rates) next to the test and control groups'' qualifying and '
    'redemption rates and the uplifts of test over control (offer_performance).';
