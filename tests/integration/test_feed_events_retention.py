"""`loyalty feed-events-prune`: the offers page's app events are kept for the retention
period after they were received, and deleted after it, in batches, oldest first
(migration 0021; docs/adr/0025-offer-feeds.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from loyalty.cli import main
from processors.base.settings import get_settings

pytestmark = pytest.mark.integration

_EVENT = """
INSERT INTO offer_feed_events (event_id, kind, market, offer_ids, received_at)
VALUES (%s, 'PAGE_VIEWED', 'CA', '{}', %s)
"""


@pytest.fixture
def cli_env(own_database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", own_database_url)
    get_settings.cache_clear()
    yield {"DATABASE_URL": own_database_url}
    get_settings.cache_clear()


def test_app_events_older_than_the_retention_are_deleted_and_newer_ones_kept(
    cli_env, own_database_url
):
    now = datetime.now(UTC)
    ages = {"old-1": 400, "old-2": 396, "old-3": 31, "kept-1": 29, "kept-2": 0}
    with psycopg.connect(own_database_url, autocommit=True) as conn:
        for event_id, days in ages.items():
            conn.execute(_EVENT, (event_id, now - timedelta(days=days)))

    # A 30-day retention, two rows a batch: three batches of the three old events.
    result = CliRunner().invoke(main, ["feed-events-prune", "--keep-days", "30", "--batch", "2"],
                                env=cli_env)  # fmt: skip
    again = CliRunner().invoke(main, ["feed-events-prune", "--keep-days", "30"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("3 app events received before ")
    assert again.output.startswith("0 app events")
    with psycopg.connect(own_database_url) as conn:
        left = [row[0] for row in conn.execute("SELECT event_id FROM offer_feed_events ORDER BY 1")]
    assert left == ["kept-1", "kept-2"]


def test_the_default_retention_is_the_settings(monkeypatch):
    monkeypatch.delenv("LOYALTY_API_FEED_EVENTS_RETENTION_DAYS", raising=False)
    get_settings.cache_clear()
    try:
        assert get_settings().api_feed_events_retention_days == 395
    finally:
        get_settings.cache_clear()
