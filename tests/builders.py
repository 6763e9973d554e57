"""Builders for test data: small, readable "given" helpers shared by the suites."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from processors.contract.common import Source, Store
from processors.contract.transactions import Tender, TransactionCompleted, TransactionLine

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def purchase(**changes) -> TransactionCompleted:
    """A member's one-line purchase of 2 × 5.15 at store S1 (QC); override any field."""
    fields = {
        "event_id": "e-1",
        "occurred_at": T0,
        "transaction_id": "T1",
        "member_id": "M1",
        "market": "CA",
        "currency": "CAD",
        "source": Source.INSTORE,
        "store": Store(store_id="S1", province="QC"),
        "lines": [
            TransactionLine(
                line_id="1",
                sku="SKU-1",
                quantity=Decimal("2"),
                unit_price_cents=515,
                amount_cents=1030,
            ),
        ],
        "tenders": [Tender(type="CARD", amount_cents=1030)],
    }
    return TransactionCompleted(**{**fields, **changes})


# --- The points ledger as the projections read it -------------------------------------------


def enrolled(member_id: str = "M1", **changes):
    """MemberEnrolled of `member_id` in CA_REWARDS through the app; override any field."""
    from processors.contract.enrolments import MemberEnrolled, MemberProfile

    fields = {
        "event_id": f"enrol-{member_id}",
        "occurred_at": T0,
        "member_id": member_id,
        "market": "CA",
        "program_ids": ["CA_REWARDS"],
        "source": Source.APP,
        "profile": MemberProfile(first_name=f"First {member_id}", last_name="Last", province="QC"),
    }
    return MemberEnrolled(**{**fields, **changes})


def enrolment_answered(enrolment, *, refused: str | None = None):
    """The engine's answer to `enrolment` (loyalty.outcomes.v1): accepted, or refused with the
    reason `refused` names."""
    from processors.contract.outcomes import (
        RejectionReason,
        RequestAccepted,
        RequestRejected,
    )
    from processors.contract.redemptions import RequestType

    fields = {
        "event_id": f"answer-{enrolment.event_id}",
        "occurred_at": enrolment.occurred_at,
        "member_id": enrolment.member_id,
        "command_id": enrolment.event_id,
        "request_type": RequestType.ENROLMENT,
        "request_event_id": enrolment.event_id,
    }
    if refused is None:
        return RequestAccepted(**fields)
    return RequestRejected(**fields, reason=RejectionReason(refused), detail=refused)


def credit(points: int, *, expires_at=None, program_id="CA_REWARDS", category="REGULAR",
           kind="ALLOCATION", offer_id=None) -> dict:  # fmt: skip
    """A credit to the lot expiring at `expires_at` (None: never), for `LedgerBook.record`."""
    return {
        "entry_type": "CREDIT",
        "points": points,
        "expires_at": expires_at,
        "program_id": program_id,
        "category": category,
        "kind": kind,
        "offer_id": offer_id,
    }


def debit(points: int, *, expires_at=None, program_id="CA_REWARDS", category="REGULAR",
          kind="REDEMPTION") -> dict:  # fmt: skip
    """A debit drawing on the lot expiring at `expires_at` (None: never)."""
    return {
        "entry_type": "DEBIT",
        "points": points,
        "expires_at": expires_at,
        "program_id": program_id,
        "category": category,
        "kind": kind,
        "offer_id": None,
    }


class LedgerBook:
    """One member's ledger being written: `record` returns the next LedgerEventRecorded, whose
    sequence follows the last and whose balances_after follow from its entries (a credit adds
    to the lot of its expiry, a debit takes from the lot it names), as the processor would."""

    def __init__(self, member_id: str = "M1"):
        self.member_id = member_id
        self.sequence = 0
        self.lots: dict[tuple[str, str], dict] = {}  # account → {expires_at: points}

    def record(self, *entries: dict, event_type="TRANSACTION_ADD", at=None, **changes):
        from processors.contract.ledger import (
            AccountBalance,
            LedgerEntry,
            LedgerEventRecorded,
            Lot,
        )

        self.sequence += 1
        log_id = f"{self.member_id}:{self.sequence}"
        touched: list[tuple[str, str]] = []
        net = 0
        for entry in entries:
            account = (entry["program_id"], entry["category"])
            if account not in touched:
                touched.append(account)
            sign = 1 if entry["entry_type"] == "CREDIT" else -1
            lots = self.lots.setdefault(account, {})
            lots[entry["expires_at"]] = lots.get(entry["expires_at"], 0) + sign * entry["points"]
            net += sign * entry["points"]
        balances = []
        for program_id, category in touched:
            lots = self.lots[(program_id, category)]
            # Earliest expiry first, the never-expiring lot last; empty lots are gone.
            ordered = sorted((e for e, p in lots.items() if p != 0 and e is not None)) + (
                [None] if lots.get(None) else []
            )
            balances.append(
                AccountBalance(
                    program_id=program_id,
                    category=category,
                    balance=sum(lots.values()),
                    lots=[Lot(expires_at=e, points=lots[e]) for e in ordered],
                )
            )
        occurred_at = at or T0 + timedelta(hours=self.sequence)
        fields = {
            "event_id": f"ledger-{log_id}",
            "occurred_at": occurred_at,
            "event_log_id": log_id,
            "member_id": self.member_id,
            "sequence": self.sequence,
            "event_type": event_type,
            "recorded_at": occurred_at,
            "cause_event_id": f"cause-{log_id}",
            "source": Source.INSTORE,
            "store_id": "S1",
            "points_on_event": net,
            "entries": [
                LedgerEntry(entry_id=f"{log_id}:{n}", **entry) for n, entry in enumerate(entries)
            ],
            "balances_after": balances,
        }
        return LedgerEventRecorded(**{**fields, **changes})


def ledger_history(
    members: int = 5, events_per_member: int = 10, *, seed: int = 1, first_member: int = 0
) -> tuple:
    """A reproducible feed: each member enrolled, then earning and spending points over lots
    with several expiries (and a promised-points account), in business-time order across
    members, for members M<first_member>, M<first_member + 1>, ... Returns (enrolment events,
    ledger events)."""
    import random

    rng = random.Random(seed)
    expiries = [None, T0 + timedelta(days=90), T0 + timedelta(days=365)]
    books = [LedgerBook(f"M{n:03d}") for n in range(first_member, first_member + members)]
    enrolments = [enrolled(book.member_id) for book in books]
    ledger = [book.record(credit(0), event_type="CUSTOMER_REGISTRATION") for book in books]
    for _ in range(events_per_member - 1):
        for book in books:
            lots = book.lots[("CA_REWARDS", "REGULAR")]
            spendable = [(e, p) for e, p in lots.items() if p > 0]
            if spendable and rng.random() < 0.3:
                expires_at, points = rng.choice(spendable)
                entries = [debit(rng.randint(1, points), expires_at=expires_at)]
            else:
                entries = [credit(rng.randint(1, 500), expires_at=rng.choice(expiries))]
                if rng.random() < 0.3:
                    entries.append(credit(rng.randint(1, 50), category="PROMISED"))
            ledger.append(book.record(*entries))
    return enrolments, ledger


# --- What offers did, as the offers projection reads it -------------------------------------


def offer_history(members: int = 5, *, first_member: int = 0) -> list:
    """A reproducible loyalty.offers.v1 feed: per member M<n>, progress towards an accumulated
    spend offer (ACC_SPEND), the completion of its first use and progress on the second, and
    one completed discount offer (CART_OFF), in business-time order per member."""
    from decimal import Decimal

    from processors.contract.offers import BehaviourProgress, OfferCompleted, OfferProgressed

    def progressed(member: str, n: int, use: int, cents: int):
        return OfferProgressed(
            event_id=f"progressed-{member}-{n}", occurred_at=T0 + timedelta(hours=n),
            member_id=member, offer_id="ACC_SPEND", in_control_group=False,
            cause_event_id=f"tx-{member}-{n}", transaction_id=f"T-{member}-{n}", use_number=use,
            progress=[BehaviourProgress(behaviour_index=0, metric="SPEND_CENTS",
                                        progress=Decimal(cents), threshold=Decimal(10000))],
        )  # fmt: skip

    def completed(member: str, n: int, offer: str, points: int, discount: int):
        return OfferCompleted(
            event_id=f"completed-{member}-{n}", occurred_at=T0 + timedelta(hours=n),
            member_id=member, offer_id=offer, in_control_group=False,
            cause_event_id=f"tx-{member}-{n}", transaction_id=f"T-{member}-{n}", use_number=1,
            program_id="CA_REWARDS", points_due=points, points_awarded=points,
            discount_cents=discount,
        )  # fmt: skip

    events: list = []
    for m in range(first_member, first_member + members):
        member = f"M{m:03d}"
        events += [
            progressed(member, 1, 1, 3000 + 100 * m),
            progressed(member, 2, 1, 7000 + 100 * m),
            completed(member, 3, "ACC_SPEND", 500, 0),
            progressed(member, 4, 2, 1500),
            completed(member, 5, "CART_OFF", 0, 250 + m),
        ]
    return events
