"""The member facts targeting criteria read, kept by the engine from the member's own inputs
(docs/adr/0013-targeting-and-activation.md): enrolment date, purchase history (per purchase:
when, how much, by category; first and last purchase), digital engagement (app download,
logins) and communications (email clicks), all dated so a criterion can be judged as of any
instant still remembered.

Recorded once per input (the callers pass only inputs the rules took, once). Bounded like the
rest of `MemberOffers`: dated lists are forgotten after the returns window, except the latest
login and email click. Returns do not lower the history: it describes what the member did.
Never reads a clock.
"""

from __future__ import annotations

from datetime import datetime

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.enrolments import MemberEnrolled
from processors.contract.transactions import TransactionCompleted
from processors.rules.offers.state import MemberOffers, PurchaseFacts

LOGIN_KINDS = frozenset({ActivityKind.LOGIN, ActivityKind.FIRST_LOGIN})


def on_enrolled(state: MemberOffers, enrolled: MemberEnrolled) -> None:
    """The member's first enrolment is their enrolment date."""
    if state.enrolled_at is None or enrolled.occurred_at < state.enrolled_at:
        state.enrolled_at = enrolled.occurred_at


def on_purchase(state: MemberOffers, tx: TransactionCompleted) -> None:
    """One purchase into the history: its net amount and spend per product category."""
    if any(p.transaction_id == tx.transaction_id for p in state.history):
        return
    by_category: dict[str, int] = {}
    for line in tx.lines:
        if line.category is not None:
            by_category[line.category] = by_category.get(line.category, 0) + line.amount_cents
    amount = sum(line.amount_cents for line in tx.lines)
    state.history.append(
        PurchaseFacts(
            at=tx.occurred_at,
            transaction_id=tx.transaction_id,
            amount_cents=amount,
            category_cents=by_category,
        )
    )
    if state.first_purchase_at is None or tx.occurred_at < state.first_purchase_at:
        state.first_purchase_at = tx.occurred_at
    if state.last_purchase_at is None or tx.occurred_at > state.last_purchase_at:
        state.last_purchase_at = tx.occurred_at


def on_activity(state: MemberOffers, activity: ActivityRecorded) -> None:
    """App download (the first one), logins and email clicks, dated."""
    at = activity.occurred_at
    if activity.kind is ActivityKind.APP_DOWNLOAD:
        if state.app_downloaded_at is None or at < state.app_downloaded_at:
            state.app_downloaded_at = at
    elif activity.kind in LOGIN_KINDS:
        _insert(state.logins, at)
    elif activity.kind is ActivityKind.EMAIL_CLICKED:
        _insert(state.email_clicks, at)


def _insert(dates: list[datetime], at: datetime) -> None:
    """Keep `dates` in time order (inputs may arrive late), so the latest is last. One entry
    per instant: a redelivered activity is not a second click."""
    if at not in dates:
        dates.append(at)
        dates.sort()
