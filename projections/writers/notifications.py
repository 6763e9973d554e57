"""The member services projection: `PreferencesChanged` and `MessagePosted`
(loyalty.notifications.v1) → member_preferences, member_preference_changes, inbox_messages.

Owns those tables (docs/adr/0028-member-services.md): each member's current opt-in per
channel, the append-only audit trail of every change, and the inbox's messages, personal or
global per market. It decides nothing (which channels a market offers is the worker's
business), never commits (the caller's transaction holds the checkpoints) and never reads the
clock. Order-safe: a channel's current row moves only to a change not older than it, and the
trail and the inbox keep the first row of an id, so a redelivery or a rebuild writes the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from processors.contract.notifications import MessagePosted, PreferencesChanged

TABLES = ("member_preferences", "member_preference_changes", "inbox_messages")

NotificationEvent = PreferencesChanged | MessagePosted

EVENTS = (PreferencesChanged, MessagePosted)
"""What this projection writes."""

# The member's worker emits a change only when it is the channel's latest by time, in its
# partition's order: the latest by time holds here too, and at the same time, the later in
# that order (as the worker applied it).
_CURRENT = """
INSERT INTO member_preferences AS current (member_id, channel, opted_in, changed_at,
    change_event_id)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (member_id, channel) DO UPDATE
    SET opted_in = excluded.opted_in, changed_at = excluded.changed_at,
        change_event_id = excluded.change_event_id
    WHERE current.changed_at <= excluded.changed_at
"""

_TRAIL = """
INSERT INTO member_preference_changes (change_event_id, channel, member_id, was_opted_in,
    opted_in, changed_at, changed_by, changed_by_id, source, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (change_event_id, channel) DO NOTHING
"""

_MESSAGE = """
INSERT INTO inbox_messages (message_id, event_id, member_id, market, campaign_id,
    cause_event_id, locale, title, body, deep_link_url, image_url, posted_at, expires_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (message_id) DO NOTHING
"""


def write(conn: psycopg.Connection, events: Sequence[NotificationEvent]) -> None:
    """Project `events` in the caller's transaction, in their order."""
    if not events:
        return
    current, trail, messages = [], [], []
    for event in events:
        if isinstance(event, PreferencesChanged):
            for change in event.changes:
                channel = change.channel.value
                current.append(
                    (event.member_id, channel, change.opted_in, event.occurred_at, event.event_id)
                )
                trail.append((
                    event.event_id, channel, event.member_id, change.was_opted_in,
                    change.opted_in, event.occurred_at, event.changed_by.value,
                    event.changed_by_id, event.source.value, event.reason,
                ))  # fmt: skip
        else:
            messages.append((
                event.message_id, event.event_id, event.member_id, event.market,
                event.campaign_id, event.cause_event_id, event.locale, event.title, event.body,
                event.deep_link_url, event.image_url, event.occurred_at, event.expires_at,
            ))  # fmt: skip
    with conn.cursor() as cursor:
        for row in current:  # one by one: a batch may change a channel twice, in order
            cursor.execute(_CURRENT, row)
        if trail:
            cursor.executemany(_TRAIL, trail)
        if messages:
            cursor.executemany(_MESSAGE, messages)
