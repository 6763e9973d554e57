"""What the offer feeds show: which offers, in which order, and each offer as a member or an
anonymous visitor sees it (issue #14, docs/adr/0025-offer-feeds.md). Pure: rows in, plain JSON
values out; the time is given, never read.

- **Displayable**: `display_at <= now < visible_until` (the end after accepted extensions, or
  the withdrawal). Never before the display date, never after the end.
- **Who sees what**, as the rules target (`processors.rules.offers.targeting.status`): anyone
  sees a market's MASS offers; a member sees the MASS offers of their programmes unless held
  out as control (the rules' own sticky hash), the TARGETED offers they were targeted with
  unless held out, and a TRIGGERED offer while a fire is unused (uses < fires) and inside its
  validity (`trigger_valid_days` from the latest fire). An offer sold in a reward store is
  shown to a member holding an instance of it not yet used (bought: ADR 20), with each
  instance's state; a kind or timing this version does not know is never shown.
- **Order**: rank (1 first), then the earliest end, then offer_id.
- **Activation**: automatic; needs_loading, or loaded once the member loaded it;
  coupon_code_required (the code is shown to a targeted member, never anonymously);
  promo_code_required (a code of a promotion that unlocks it, ADR 37).
- **Progress**: the latest progress of the use in progress (a progress of a use already
  completed shows 0: the next use starts from nothing), for accumulated behaviours only.
- **Caps left**: the per-member uses and points caps less what the member used and earned.
- **Days left**: whole days to the end, rounded up; none for an offer that does not expire.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from processors.contract.offer_definition import EVERGREEN_ENDS_AT
from processors.rules.offers.targeting import in_control
from projections.api import caching, locales
from projections.writers.feed import FeedItem, number_text

DAY = timedelta(days=1)
NEVER = datetime.max.replace(tzinfo=UTC)
"""The end of what time alone never changes."""
HELD_AT_MOST = timedelta(hours=1)
"""The longest an answer (or a part of one) is kept without being built again."""


@dataclass(frozen=True)
class Issued:
    """An instance of a reward-store offer the member bought and has not used yet (a
    `member_issued_offers` row: ISSUED, LOCKED or REDEEMED)."""

    issued_offer_id: str
    status: str
    reward_store_id: str | None = None
    points_spent: int | None = None
    issued_at: datetime | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Standing:
    """A `member_offer_standings` row: the member's standing on one offer; and the instances
    of it the member bought in a reward store, not used yet (`issued`)."""

    in_control_group: bool | None = None
    targeted_at: datetime | None = None
    last_targeted_at: datetime | None = None
    targetings: int = 0
    loaded_at: datetime | None = None
    uses: int = 0
    points_awarded: int = 0
    progress_use_number: int | None = None
    progress: Sequence[Mapping[str, Any]] | None = None
    issued: tuple[Issued, ...] = ()


@dataclass(frozen=True)
class Member:
    """What the personalised feed needs to know about the member."""

    member_id: str
    status: str
    merged_into: str | None
    program_ids: tuple[str, ...]
    preferred_locale: str | None


def is_displayable(item: FeedItem, at: datetime) -> bool:
    """Shown at `at`: on or after its display date, before its end or withdrawal."""
    return item.display_at <= at < item.visible_until


def is_public(item: FeedItem) -> bool:
    """In the anonymous feed of its market (when displayable)."""
    return item.audience == "MASS" and not item.in_reward_store


def member_window_end(item: FeedItem, standing: Standing | None) -> datetime:
    """When the offer ends for the member: a triggered offer's fire is good until
    `trigger_valid_days` after it, if that comes before the offer's own end."""
    end = item.visible_until
    if item.audience == "TRIGGERED" and item.trigger_valid_days is not None:
        fired = standing.last_targeted_at if standing is not None else None
        if fired is not None:
            end = min(end, fired + timedelta(days=item.trigger_valid_days))
    return end


def sees(member: Member, item: FeedItem, standing: Standing | None, at: datetime) -> bool:
    """Whether the member is shown the offer at `at` (see the module)."""
    if not is_displayable(item, at) or item.program_id not in member.program_ids:
        return False
    if item.in_reward_store:
        return standing is not None and bool(standing.issued)
    if item.audience == "MASS":
        return not in_control(item.offer_id, member.member_id, item.control_share_percent)
    if standing is None or standing.targeted_at is None or standing.in_control_group:
        return False
    if item.audience == "TARGETED":
        return True
    if item.audience == "TRIGGERED":
        fired = standing.last_targeted_at
        unused = standing.uses < standing.targetings
        return unused and fired is not None and fired <= at < member_window_end(item, standing)
    return False


def days_left(end: datetime, at: datetime) -> int | None:
    """Whole days from `at` to `end`, rounded up; None for an offer that does not expire."""
    if end >= EVERGREEN_ENDS_AT:
        return None
    return max(0, math.ceil((end - at) / DAY))


def order_key(item: FeedItem, end: datetime) -> tuple[int, datetime, str]:
    """Rank (1 first), then the earliest end (`end`: the offer's, or the member's own; no end
    last), then offer_id (code point order, as Postgres's "C" collation)."""
    return (item.rank, end, item.offer_id)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


_COPY_FIELDS = ("headline", "short_description", "long_description", "terms", "image_url")
_BEHAVIOUR_FIELDS = ("behaviour_index", "kind", "metric", "threshold", "is_accumulated",
                     "window_days")  # fmt: skip


def _activation(item: FeedItem, standing: Standing | None, personal: bool) -> dict[str, Any]:
    kind = item.activation
    loaded_at = standing.loaded_at if personal and standing is not None else None
    if kind == "LOAD_TO_CARD":
        state = "loaded" if loaded_at is not None else "needs_loading"
    elif kind == "COUPON_CODE":
        state = "coupon_code_required"
    elif kind == "PROMOTION_CODE":
        state = "promo_code_required"
    else:
        state = "automatic"
    code = item.coupon_code if personal and kind == "COUPON_CODE" else None
    return {"kind": kind, "state": state, "coupon_code": code, "loaded_at": _instant(loaded_at)}


def current_progress(standing: Standing | None) -> dict[int, Decimal]:
    """Progress per behaviour index of the use in progress: none when the latest progress
    belongs to a use already completed."""
    if standing is None or standing.progress is None or standing.progress_use_number is None:
        return {}
    if standing.progress_use_number <= standing.uses:
        return {}
    return {int(p["behaviour_index"]): Decimal(str(p["progress"])) for p in standing.progress}


def _behaviours(item: FeedItem, standing: Standing | None, personal: bool) -> list[dict[str, Any]]:
    done = current_progress(standing) if personal else {}
    shown = []
    for behaviour in item.details["behaviours"]:
        progress = percent = None
        if personal and behaviour["is_accumulated"]:
            value = done.get(behaviour["behaviour_index"], Decimal(0))
            progress = number_text(value)
            needed = behaviour["threshold"]
            if needed is not None and Decimal(needed) > 0:
                percent = int(min(value, Decimal(needed)) * 100 // Decimal(needed))
        fields = {name: behaviour.get(name) for name in _BEHAVIOUR_FIELDS}
        shown.append({**fields, "progress": progress, "percent": percent})
    return shown


def issued_state(issued: Issued, at: datetime) -> str:
    """ready: the member may use it; locked: reserved for a transaction in progress until its
    lock lapses; redeemed: spent for a transaction not completed yet."""
    if issued.status == "REDEEMED":
        return "redeemed"
    if issued.status == "LOCKED" and issued.locked_until is not None and at < issued.locked_until:
        return "locked"
    return "ready"


def _issued(standing: Standing | None, at: datetime) -> list[dict[str, Any]]:
    held = standing.issued if standing is not None else ()
    return [
        {
            "issued_offer_id": issued.issued_offer_id,
            "reward_store_id": issued.reward_store_id,
            "points_spent": issued.points_spent,
            "issued_at": _instant(issued.issued_at),
            "state": state,
            "locked_until": _instant(issued.locked_until) if state == "locked" else None,
        }
        for issued in held
        for state in (issued_state(issued, at),)
    ]


def _usage(item: FeedItem, standing: Standing | None) -> dict[str, Any]:
    uses = standing.uses if standing is not None else 0
    points = standing.points_awarded if standing is not None else 0
    uses_max, points_max = item.uses_per_member_max, item.points_per_member_max
    return {
        "uses": uses,
        "uses_per_member_max": uses_max,
        "uses_left": None if uses_max is None else max(0, uses_max - uses),
        "points_awarded": points,
        "points_per_member_max": points_max,
        "points_left": None if points_max is None else max(0, points_max - points),
    }


def _dumps(value: Any) -> str:
    # Compact, UTF-8 as written: copy is sent with its accents, never as \u escapes.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class MassOffers:
    """Mass offers as a member without a standing on any of them sees them, from `built_at`
    until `until` (the first moment one is displayed, goes live or ends, or a `days_left`
    ticks): the displayable ones by `order_key`, each with its id, programme and control share
    (whether a member is held out is the member's) and its JSON (`Fragments.untouched`)."""

    built_at: datetime
    until: datetime
    shown: tuple[tuple[tuple[int, datetime, str], str, str, int, str], ...]


class Fragments:
    """The part of an offer's JSON that depends only on the offer and the copy's language
    (ids, rank, copy, dates, reward), encoded once per version of the offer (its digest) and
    language, and reused by every answer: most of a feed's bytes, and of the time it takes.
    And the whole JSON of an offer shown without a standing (`untouched`): a mass offer the
    member never targeted, loaded or progressed on is the same for every such member that
    day. Bounded: each emptied when it holds `size` parts (offers × languages × days left
    are far fewer)."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._heads: dict[tuple[str, str, str], str] = {}
        self._untouched: dict[tuple[str, str, str, bool, int | None, bool], str] = {}
        self._mass: dict[tuple[frozenset[tuple[str, str]], str], MassOffers] = {}

    MASS_SIZE = 256
    """Sets of mass offers kept (`mass`): one per set of programmes, version of their offers
    and copy language shown; each holds its offers' JSON (~2 KB an offer)."""

    def mass(self, items: Sequence[FeedItem], at: datetime, locale: str) -> MassOffers:
        """`MassOffers` of these offers at `at` in `locale`, built once for as long as it stays
        exact: every member of the same programmes reads the same (each skips those they have
        a standing on, and those they are held out of)."""
        # By the copy shown, not the tag asked for: a client's tags are many (`fr-CA`, `FR`),
        # the copies two, and each kept set holds the JSON of all the programmes' offers.
        shown_in = locales.shown(locale)
        key = (frozenset((item.offer_id, item.digest) for item in items), shown_in)
        found = self._mass.get(key)
        if found is None or not found.built_at <= at < found.until:
            if len(self._mass) >= self.MASS_SIZE:
                self._mass.clear()
            shown = sorted(
                (order_key(item, item.visible_until), item.offer_id, item.program_id,
                 item.control_share_percent, self.untouched(item, at, shown_in, personal=True))
                for item in items if is_displayable(item, at)
            )  # fmt: skip
            fresh = fresh_for(items, at)  # not capped: each answer caps its own (HELD_AT_MOST)
            until = NEVER if fresh == timedelta.max else at + fresh
            found = self._mass[key] = MassOffers(at, until, tuple(shown))
        return found

    def untouched(self, item: FeedItem, at: datetime, locale: str, *, personal: bool) -> str:
        """`offer_json` of an offer without a standing, built once per version, language,
        view (`personal`), days left and whether it is live yet: all it depends on."""
        shown = locales.pick(item.copy, locale)
        live = item.starts_at <= at
        key = (item.offer_id, item.digest, shown, personal, days_left(item.visible_until, at),
               live)  # fmt: skip
        found = self._untouched.get(key)
        if found is None:
            if len(self._untouched) >= self.size:
                self._untouched.clear()
            found = self._untouched[key] = _offer_json(item, at, shown, None, personal, self)
        return found

    def head(self, item: FeedItem, locale: str) -> str:
        """The offer's fixed fields as a JSON object without its closing brace."""
        shown = locales.pick(item.copy, locale)
        key = (item.offer_id, item.digest, shown)
        found = self._heads.get(key)
        if found is None:
            if len(self._heads) >= self.size:
                self._heads.clear()
            copy = item.copy[shown]
            fixed = {
                "offer_id": item.offer_id,
                "program_id": item.program_id,
                "market": item.market,
                "rank": item.rank,
                "copy": {"locale": shown, **{name: copy.get(name) for name in _COPY_FIELDS}},
                "display_at": _instant(item.display_at),
                "starts_at": _instant(item.starts_at),
                "reward": item.details["reward"],
                "behaviour_operator": item.details["behaviour_operator"],
            }
            found = self._heads[key] = _dumps(fixed)[:-1]
        return found


def offer_json(
    item: FeedItem, at: datetime, locale: str, standing: Standing | None = None, *,
    personal: bool, fragments: Fragments,
) -> str:  # fmt: skip
    """One offer as the feed shows it (`feed_schemas.FeedOffer`), as JSON: an anonymous
    visitor's view (`personal` False: no progress, no usage, no coupon code) or the
    member's."""
    if standing is None or not personal or shows_as_untouched(item, standing):
        return fragments.untouched(item, at, locale, personal=personal)
    return _offer_json(item, at, locale, standing, personal, fragments)


def shows_as_untouched(item: FeedItem, standing: Standing) -> bool:
    """A standing the offer's JSON shows nothing of: targeted, never loaded, used, earned on
    or progressed on, nothing bought, not a triggered offer's own window. Most targeted
    members' standings: their offer is shown as to a member without one (`untouched`)."""
    return (
        standing.loaded_at is None
        and standing.uses == 0
        and standing.points_awarded == 0
        and not current_progress(standing)
        and not standing.issued
        and item.audience != "TRIGGERED"
    )


def _offer_json(
    item: FeedItem, at: datetime, locale: str, standing: Standing | None, personal: bool,
    fragments: Fragments,
) -> str:  # fmt: skip
    end = member_window_end(item, standing) if personal else item.visible_until
    varying = {
        "ends_at": None if end >= EVERGREEN_ENDS_AT else _instant(end),
        "is_live": item.starts_at <= at,
        "days_left": days_left(end, at),
        "activation": _activation(item, standing, personal),
        "behaviours": _behaviours(item, standing, personal),
        "usage": _usage(item, standing) if personal else None,
        "issued": _issued(standing, at) if personal and item.in_reward_store else None,
    }
    return fragments.head(item, locale) + "," + _dumps(varying)[1:]


def _body(head: Mapping[str, str], offers: Iterable[str]) -> bytes:
    fields = "".join(f"{_dumps(name)}:{_dumps(value)}," for name, value in head.items())
    return ("{" + fields + '"offers":[' + ",".join(offers) + "]}").encode()


def market_feed(
    items: Iterable[FeedItem], market: str, locale: str, at: datetime, fragments: Fragments
) -> bytes:
    """`GET /v1/offers`: the market's public offers displayable at `at` (`MarketFeed`)."""
    shown = sorted(
        (item for item in items
         if item.market == market and is_public(item) and is_displayable(item, at)),
        key=lambda item: order_key(item, item.visible_until),
    )  # fmt: skip
    offers = [offer_json(item, at, locale, personal=False, fragments=fragments) for item in shown]
    return _body({"market": market, "locale": locale}, offers)


def _mass_offer(item: FeedItem) -> bool:
    """Shown alike to every member of its programme who is not held out of it and has no
    standing on it (`Fragments.mass`)."""
    return item.audience == "MASS" and not item.in_reward_store


def member_answer(
    member: Member,
    rows: Sequence[tuple[FeedItem, Standing | None]],
    locale: str,
    at: datetime,
    fragments: Fragments,
) -> tuple[bytes, timedelta]:
    """`member_feed`, and how long it stays exact (`member_fresh_for`)."""
    own = [(item, standing) for item, standing in rows
           if standing is not None or not _mass_offer(item)]  # fmt: skip
    touched = {item.offer_id for item, _ in own}
    # Every member of the same programmes shares these: keyed by all their mass offers.
    mass = fragments.mass([item for item, _ in rows if _mass_offer(item)], at, locale)
    # As `sees` decides for a mass offer without a standing: displayable (the block's), of the
    # member's programmes, and not held out as control.
    shown = [
        (place, offer) for place, offer_id, program_id, share, offer in mass.shown
        if offer_id not in touched and program_id in member.program_ids
        and not (share and in_control(offer_id, member.member_id, share))
    ]  # fmt: skip
    shown += [
        (order_key(item, member_window_end(item, standing)),
         offer_json(item, at, locale, standing, personal=True, fragments=fragments))
        for item, standing in own if sees(member, item, standing, at)
    ]  # fmt: skip
    shown.sort(key=lambda placed: placed[0])
    body = _body({"member_id": member.member_id, "locale": locale}, (o for _, o in shown))
    return body, min(mass.until - at, member_fresh_for(own, at))


def member_feed(
    member: Member,
    rows: Sequence[tuple[FeedItem, Standing | None]],
    locale: str,
    at: datetime,
    fragments: Fragments,
) -> bytes:
    """`GET /v1/members/{id}/offers`: the offers the member sees at `at` (`MemberFeed`)."""
    return member_answer(member, rows, locale, at, fragments)[0]


@dataclass(frozen=True)
class Answer:
    """A public answer: its bytes, their ETag, and until when it stays exact."""

    body: bytes
    etag: str
    until: datetime


class MarketFeeds:
    """Public answers by market, language asked for and the versions of the offers the query
    found (their digests), each reused until it stops being exact (`fresh_for`): the same
    bytes and ETag every API process would build, without building them again. Bounded:
    emptied when it holds `size` answers (clients choose the language tag).

    And the market's latest answer per language (`current`), served without asking Postgres
    while nothing says the market changed: `changed` is told of every `feed:<market>` the
    projector notifies (migration 0020, through `wakeups`), and of every time the listener
    connects or is lost (anything may have changed unseen). A generation per market, read
    before the query, tells an answer built from rows read before a notification from one
    built after. `FOLLOWED_AT_MOST` bounds how long an answer is trusted without a look, in
    case a change was never notified (a rebuild's swap notifies `EVERY_MARKET`: this is the
    safety net beside it)."""

    HELD_AT_MOST = HELD_AT_MOST
    FOLLOWED_AT_MOST = timedelta(seconds=1)
    NOTIFIED = "feed:"
    EVERY_MARKET = "feed:*"
    """What a rebuild's swap notifies (`projections.rebuild`): every table was replaced."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._answers: dict[tuple[str, str, tuple[tuple[str, str], ...]], Answer] = {}
        self._current: dict[tuple[str, str], tuple[Answer, tuple[int, int], datetime]] = {}
        self._everything = 0
        self._markets: dict[str, int] = {}

    def changed(self, key: str | None) -> None:
        """`key` (`feed:<market>`, or `feed:*`: every market) was notified; None: anything
        may have changed."""
        if key is None or key == self.EVERY_MARKET:
            self._everything += 1
            self._current.clear()
        else:
            market = key.removeprefix(self.NOTIFIED)
            self._markets[market] = self._markets.get(market, 0) + 1

    def generation(self, market: str) -> tuple[int, int]:
        """What `changed` was told of the market so far: read it before the query."""
        return (self._everything, self._markets.get(market, 0))

    def current(self, market: str, locale: str, at: datetime) -> Answer | None:
        """The answer at `at` if the market's latest one is still exact and nothing changed
        since its rows were read; else None (ask the store). Only while notifications are
        followed: the caller asks only then."""
        held = self._current.get((market, locale))
        if held is None:
            return None
        made, seen, read_at = held
        if seen != self.generation(market) or not read_at <= at < read_at + self.FOLLOWED_AT_MOST:
            return None
        return made if at < made.until else None

    def answer(
        self,
        items: Sequence[FeedItem],
        market: str,
        locale: str,
        at: datetime,
        fragments: Fragments,
        *,
        seen: tuple[int, int] | None = None,
    ) -> Answer:
        """The answer to `GET /v1/offers` at `at`, from `items` (the store's for the market),
        read when the market's `generation` was `seen` (None: not kept as current)."""
        key = (market, locale, tuple((item.offer_id, item.digest) for item in items))
        held = self._answers.get(key)
        if held is None or at >= held.until:
            if len(self._answers) >= self.size:
                self._answers.clear()
                self._current.clear()
            body = market_feed(items, market, locale, at, fragments)
            until = at + min(fresh_for(items, at), self.HELD_AT_MOST)
            held = self._answers[key] = Answer(body, caching.etag_of(body), until)
        if seen is not None:
            self._current[(market, locale)] = (held, seen, at)
        return held


@dataclass
class Reading:
    """A member's answer being built (`MemberFeeds.reading`): stale once something it reads
    was notified changed while it read."""

    stale: bool = False


class MemberFeeds:
    """Members' personalised answers, by member and language asked for (None: the member's
    preferred one), each kept until something it was built from changes: the member's rows
    (`members`, `member_offer_standings`, `member_issued_offers`: `member:<id>`, migration
    0031), any offer (`feed:<market>`, migration 0020: a member's programmes may span
    markets, and offers change rarely), or time alone (`member_fresh_for`: an offer displayed,
    live or ended, a triggered offer's window, a lock lapsing, `days_left` ticking). `changed`
    is told of each notified key through `wakeups`, and None whenever the listener connects or
    is lost: then everything goes. An answer whose rows were read while its member or the
    offers were notified (`reading`) is not kept: the next request reads again.

    Bounded by the bytes of the answers held (`budget`), least recently used first out: an
    answer is the feed's JSON (about 2 KB an offer shown), so the budget is the memory a
    process gives it; 64 MiB holds about 1,000 feeds of 30 offers, or 3,000 of 10. Used only
    while notifications are followed: the caller asks and keeps only then."""

    HELD_AT_MOST = MarketFeeds.HELD_AT_MOST
    BUDGET_DEFAULT = 64 * 2**20
    MEMBER = "member:"
    NOTIFIED = (MEMBER, MarketFeeds.NOTIFIED)

    def __init__(self, budget: int = BUDGET_DEFAULT) -> None:
        self.budget = budget
        self.held_bytes = 0
        self._held: OrderedDict[str, dict[str | None, tuple[Answer, datetime]]] = OrderedDict()
        self._reading: dict[str, list[Reading]] = {}

    def __len__(self) -> int:
        """How many answers are held."""
        return sum(len(answers) for answers in self._held.values())

    def changed(self, key: str | None) -> None:
        """`key` (`member:<id>` or `feed:<market>`) was notified; None: anything may have."""
        if key is None or not key.startswith(self.MEMBER):
            self._held.clear()
            self.held_bytes = 0
            for readings in self._reading.values():
                for reading in readings:
                    reading.stale = True
            return
        member_id = key.removeprefix(self.MEMBER)
        self._drop(member_id)
        for reading in self._reading.get(member_id, ()):
            reading.stale = True

    def current(self, member_id: str, locale: str | None, at: datetime) -> Answer | None:
        """The member's answer at `at` if one is held and still exact; else None."""
        answers = self._held.get(member_id)
        held = answers.get(locale) if answers is not None else None
        if held is None:
            return None
        made, built_at = held
        if not built_at <= at < made.until:
            return None
        self._held.move_to_end(member_id)
        return made

    @contextlib.contextmanager
    def reading(self, member_id: str) -> Iterator[Reading]:
        """Enter before reading the member's rows: `answer` keeps what was read only if
        nothing it depends on was notified meanwhile."""
        reading = Reading()
        readings = self._reading.setdefault(member_id, [])
        readings.append(reading)
        try:
            yield reading
        finally:
            readings.remove(reading)
            if not readings:
                del self._reading[member_id]

    def answer(
        self,
        member: Member,
        rows: Sequence[tuple[FeedItem, Standing | None]],
        asked: str | None,
        shown_in: str,
        at: datetime,
        fragments: Fragments,
        *,
        reading: Reading | None = None,
    ) -> Answer:
        """The member's answer at `at` in `shown_in` (asked for as `asked`), from `rows` (the
        store's), kept if read in `reading` and nothing it depends on was notified since."""
        body, fresh = member_answer(member, rows, shown_in, at, fragments)
        until = at + min(fresh, self.HELD_AT_MOST)
        made = Answer(body, caching.etag_of(body), until)
        if reading is not None and not reading.stale and len(body) <= self.budget:
            answers = self._held.setdefault(member.member_id, {})
            replaced = answers.get(asked)
            answers[asked] = (made, at)
            self._held.move_to_end(member.member_id)
            self.held_bytes += len(body) - (len(replaced[0].body) if replaced else 0)
            while self.held_bytes > self.budget:
                self._drop(next(iter(self._held)))
        return made

    def _drop(self, member_id: str) -> None:
        answers = self._held.pop(member_id, None)
        if answers is not None:
            self.held_bytes -= sum(len(made.body) for made, _ in answers.values())


def fresh_for(items: Iterable[FeedItem], at: datetime) -> timedelta:
    """How long the public answer built at `at` stays exact: until the next offer of these
    is displayed, goes live or ends, or the next `days_left` of one shown ticks down."""
    return time_left(
        at,
        (instant for item in items for instant in (item.display_at, item.starts_at,
                                                   item.visible_until)),
        (item.visible_until for item in items if is_displayable(item, at)),
    )  # fmt: skip


def member_fresh_for(rows: Iterable[tuple[FeedItem, Standing | None]], at: datetime) -> timedelta:
    """How long the member's answer built at `at` from `rows` (the store's: the offers they
    may see, displayed or to be) stays exact: until an offer is displayed, goes live or ends,
    a triggered offer's own window ends, an instance's lock lapses, or a `days_left` ticks."""
    instants: list[datetime] = []
    ends: list[datetime] = []
    for item, standing in rows:
        end = member_window_end(item, standing)
        instants += (item.display_at, item.starts_at, item.visible_until, end)
        if standing is not None:
            if standing.last_targeted_at is not None:
                instants.append(standing.last_targeted_at)
            instants += (i.locked_until for i in standing.issued if i.locked_until is not None)
        if is_displayable(item, at):
            ends.append(end)
    return time_left(at, instants, ends)


def time_left(at: datetime, instants: Iterable[datetime], ends: Iterable[datetime]) -> timedelta:
    """From `at` to the first of `instants` after it, or to the next moment a `days_left` of
    `ends` ticks down (a whole number of days before an end not reached); `timedelta.max` if
    none comes."""
    later = [instant for instant in instants if instant > at]
    ticks = [(end - at) % DAY or DAY for end in ends if at < end < EVERGREEN_ENDS_AT]
    soonest = min(later) - at if later else timedelta.max
    return min(soonest, *ticks) if ticks else soonest
