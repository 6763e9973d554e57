"""An offer's preview before publishing: the simulator (`processors.simulation`, the engine's
rules offline, as `loyalty simulate` runs them) with the programmes the API follows, the offer,
and a sample member's purchase or a file of events (JSON lines, the contract's JSON form).

What the member would get is shown event by event; nothing is published and nothing is kept.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from processors.codec.json_form import from_json_line, from_json_object, to_json_object
from processors.contract.base import Event
from processors.contract.config import AudienceUploaded, OfferPublished
from processors.rules.member import Config
from processors.simulation import Simulation

EVENTS_MAX = 10_000


@dataclass(frozen=True)
class Sample:
    """A sample member's one purchase, an hour after the offer starts; `profile`: what the
    members projection knows of a real member of that id (their province, locale, names), so
    targeting criteria judge them as the engine would."""

    member_id: str
    spend_cents: int
    sku: str
    category: str = ""
    profile: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Preview:
    """What the simulator made of the offer: each output event, and what it noted or refused."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    """(event type, member, what it says)."""
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    points_for_offer: int = 0


def sample_events(offer: OfferPublished, sample: Sample) -> list[Event]:
    """The sample member's enrolment in the offer's programme and one purchase."""
    enrolled_at = offer.schedule.starts_at
    bought_at = enrolled_at + timedelta(hours=1)
    return [
        from_json_object(
            {
                "type": "MemberEnrolled",
                "event_id": f"preview-enrol-{sample.member_id}",
                "occurred_at": enrolled_at.isoformat(),
                "member_id": sample.member_id,
                "market": offer.market,
                "program_ids": [offer.program_id],
                "profile": dict(sample.profile),
                "source": "APP",
            }
        ),
        from_json_object(
            {
                "type": "TransactionCompleted",
                "event_id": f"preview-buy-{sample.member_id}",
                "occurred_at": bought_at.isoformat(),
                "transaction_id": "PREVIEW-1",
                "transaction_number": "PREVIEW-1",
                "member_id": sample.member_id,
                "market": offer.market,
                "currency": "CAD",
                "source": "INSTORE",
                "store": {"store_id": "PREVIEW", "country": offer.market, "province": None},
                "till_id": "T1",
                "lines": [
                    {
                        "line_id": "1",
                        "sku": sample.sku,
                        "category": sample.category or None,
                        "quantity": "1",
                        "unit_price_cents": sample.spend_cents,
                        "amount_cents": sample.spend_cents,
                    }
                ],
            }
        ),
    ]


def read_events(text: str) -> tuple[list[Event], list[str]]:
    """The events of an uploaded JSON-lines file, and each bad line's reason by number."""
    events: list[Event] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(events) >= EVENTS_MAX:
            errors.append(f"more than {EVENTS_MAX} events: preview a smaller file")
            break
        try:
            events.append(from_json_line(line))
        except (ValueError, ValidationError) as error:
            errors.append(f"line {number}: {str(error).splitlines()[0][:200]}")
    return events, errors


def preview(
    config: Config,
    offer: OfferPublished,
    events: list[Event],
    *,
    audience: Sequence[AudienceUploaded] = (),
) -> Preview:
    """Run `offer` through the simulator on a copy of `config` (with its `audience` list, if
    any, uploaded first, as publishing does), then `events`."""
    simulation = Simulation(config=copy.deepcopy(config))
    result = Preview()
    for output in simulation.run([*audience, offer, *events]):
        body = to_json_object(output)
        member = str(body.get("member_id") or "")
        result.rows.append((type(output).__name__, member, _said(body, offer.offer_id, result)))
    result.notes = simulation.notes
    return result


def _said(body: dict[str, Any], offer_id: str, result: Preview) -> str:
    """An output in a line: a ledger event's points for this offer, else its fields."""
    if body.get("type") == "LedgerEventRecorded":
        mine = [e for e in body.get("entries", []) if e.get("offer_id") == offer_id]
        result.points_for_offer += sum(
            int(e["points"]) for e in mine if e["entry_type"] == "CREDIT"
        )
        parts = [
            f"{e['entry_type'].lower()} {e['points']} ({e['kind'].lower()}"
            f"{', this offer' if e.get('offer_id') == offer_id else ''})"
            for e in body.get("entries", [])
        ]
        return f"{body.get('event_type')}: " + "; ".join(parts)
    shown = {k: v for k, v in body.items() if k not in ("type", "event_id", "occurred_at")}
    return json.dumps(shown, ensure_ascii=False)[:300]
