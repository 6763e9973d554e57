"""Who may open which area of the console, and the navigation bar built from it.

The one home of the console's permissions: a route names the area it belongs to
(`sessions.allowed(Area.OFFERS)`), the navigation shows the areas the staff member's role opens,
and nothing else decides. A new area adds itself to `Area`, to the roles that open it and,
when it has a page of its own in the bar, to `NAV`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from projections.api.auth import StaffRole


class Area(StrEnum):
    """A part of the console that a role opens or not."""

    OFFERS = "offers"
    """Write, preview, publish, extend and withdraw offers."""
    REPORTS = "reports"
    """Offer reports: test vs control, budgets."""
    MEMBER_CARE = "member care"
    """Find members, adjust points (maker), look up codes, the rewards catalogue."""
    APPROVALS = "approvals"
    """Approve or refuse what waits for a checker (points adjustments over the threshold)."""
    AUDIT = "audit"
    """Read the staff audit log."""


AREAS_OF: dict[StaffRole, frozenset[Area]] = {
    StaffRole.MARKETER: frozenset({Area.OFFERS, Area.REPORTS}),
    StaffRole.AGENT: frozenset({Area.MEMBER_CARE}),
    StaffRole.ADMIN: frozenset(Area),
}
"""The areas each role opens: admins open everything."""


def may_open(role: StaffRole, area: Area) -> bool:
    """Whether a staff member in `role` may use `area`."""
    return area in AREAS_OF[role]


@dataclass(frozen=True)
class NavLink:
    """One entry of the navigation bar."""

    label: str
    path: str
    area: Area


NAV: list[NavLink] = [
    NavLink("Offers", "/console/offers", Area.OFFERS),
    NavLink("Members", "/console/members", Area.MEMBER_CARE),
    NavLink("Codes", "/console/codes", Area.MEMBER_CARE),
    NavLink("Rewards", "/console/rewards", Area.MEMBER_CARE),
    NavLink("Approvals", "/console/approvals", Area.APPROVALS),
    NavLink("Audit log", "/console/audit", Area.AUDIT),
]
"""The navigation bar, in order; each staff member sees the links of the areas they open."""
