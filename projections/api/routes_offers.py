"""`POST /v1/members/{member_id}/offers/{offer_id}/load`: a member loads an offer to their card.

A command endpoint (docs/adr/0016-command-endpoints.md): the API checks only what it can know
without the member's state, and the worker decides the rest (ADR 13: unknown member, offer
not live, member not targeted). In order:
1. the caller holds a token for that member, or a staff token (401, 403), and the member and
   offer ids are well formed (400, `identifiers`);
2. the `Idempotency-Key` header is 1–128 printable ASCII: it becomes the command id (400);
3. the configuration is caught up with the config topic (503, as for carts);
4. the offer is in the live catalogue (404 `unknown_offer`: never published, or withdrawn)
   and is activated by LOAD_TO_CARD (422 `not_load_to_card`);
5. an `OfferLoadRequested` is written to the redemptions topic, keyed by the member, and the
   answer is 202 once the broker acknowledged it (503 if it could not be written).

The request's event id is derived from the member and the command id, so a retry with the same
key writes the same event again and the worker answers it with the original outcome, on
`loyalty.outcomes.v1`. Reads no table: the member may not be projected yet when they load.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from processors.contract.common import Source
from processors.contract.offer_definition import ActivationKind
from processors.contract.redemptions import OfferLoadRequested
from processors.rules.arithmetic import derived_id
from projections.api.auth import MemberId
from projections.api.commands import CommandAccepted, CommandId, CommandSink
from projections.api.errors import ApiError, refusals
from projections.api.identifiers import OfferIdPath
from projections.api.routes_carts import ConfigSource, ConfigUnavailableError

router = APIRouter(prefix="/v1/members", tags=["offers"])


class UnknownOfferError(ApiError):
    """404: no live offer of that id (the worker's `unknown_offer`)."""

    def __init__(self, offer_id: str) -> None:
        super().__init__(
            404, "unknown_offer", f"no live offer '{offer_id}' (never published, or withdrawn)"
        )


class NotLoadToCardError(ApiError):
    """422: the offer exists but is not activated by loading it."""

    def __init__(self, offer_id: str, activation: str) -> None:
        super().__init__(
            422,
            "not_load_to_card",
            f"offer '{offer_id}' is activated {activation}, not LOAD_TO_CARD: there is nothing "
            "to load",
        )


def load_request_id(member_id: str, command_id: str) -> str:
    """The OfferLoadRequested's event id: the same for every retry of one command."""
    return derived_id("offer-load-requested", member_id, command_id)


@router.post(
    "/{member_id}/offers/{offer_id}/load",
    status_code=202,
    summary="Load an offer to the member's card; the worker decides, on loyalty.outcomes.v1",
    responses=refusals(
        400,
        401,
        403,
        404,
        414,
        422,
        503,
        described={
            400: "invalid_parameter: missing or invalid Idempotency-Key, or a malformed member "
            "or offer id",
            403: "forbidden: a member token on another member's path",
            404: "unknown_offer: no live offer of that id",
            422: "not_load_to_card: the offer is not activated by loading",
            503: "config_unavailable: the configuration is not loaded yet (or "
            "commands_unavailable: the broker is down)",
        },
    ),
)
async def load_offer(
    request: Request,
    member_id: MemberId,
    offer_id: OfferIdPath,
    command_id: CommandId,
) -> CommandAccepted:
    """Ask for the offer to be loaded. 202 means the request is written, not that it is
    accepted: a `RequestAccepted` (with an `OfferLoaded` the first time) or a `RequestRejected`
    (`unknown_member`, `offer_not_live`, `not_eligible`, ...) for this `command_id` follows on
    the outcome topic. Retrying with the same Idempotency-Key is safe and answers the same ids.
    """
    source: ConfigSource = request.app.state.config_source
    if not source.ready.is_set():
        raise ConfigUnavailableError(f"the offer configuration is not loaded yet: {source.status}")
    offer = source.config.catalogue.get(offer_id)
    if offer is None:
        raise UnknownOfferError(offer_id)
    if offer.activation.kind is not ActivationKind.LOAD_TO_CARD:
        raise NotLoadToCardError(offer_id, offer.activation.kind.value)
    # Every id is the contract's already (`identifiers`, `CommandId`): this cannot refuse them.
    event = OfferLoadRequested(
        event_id=load_request_id(member_id, command_id),
        occurred_at=request.app.state.clock(),
        command_id=command_id,
        member_id=member_id,
        offer_id=offer_id,
        source=Source.APP,
    )
    sink: CommandSink = request.app.state.command_sink
    await sink.send(event)
    return CommandAccepted(
        command_id=command_id,
        event_id=event.event_id,
        outcome_topic=request.app.state.outcome_topic,
    )
