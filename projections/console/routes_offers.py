"""Offers: the list, the offer form (check, preview, publish), extension and withdrawal.

The form is checked by the validator the CLI uses (`offer_form`), previewed by the simulator
(`preview`), published as the `OfferPublished` the CLI publishes, through the API's command
sink; extension and withdrawal are judged by `processors.offer_changes`, as `loyalty offers
extend` judges them, against the configuration the API follows. Every change, and every
refused one, is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from processors.contract.base import TEXT_MAX_LENGTH
from processors.contract.offer_definition import EVERGREEN_ENDS_AT
from processors.offer_changes import extension, withdrawal
from processors.offer_files import Problem
from processors.rules.member import Config
from projections.console import offer_form
from projections.console.offer_queries import STATUSES, OfferQueries
from projections.console.pages import audit_log, is_htmx, now, redirect, render
from projections.console.preview import Sample, preview, read_events, sample_events
from projections.console.publishing import NotRecordedError, send_audited
from projections.console.roles import Area
from projections.console.sessions import CheckedForm, Staff, allowed

router = APIRouter(include_in_schema=False)
UPLOADS_INTO = {
    offer_form.PRODUCTS_CSV: offer_form.PRODUCTS,
    offer_form.AUDIENCE_CSV: offer_form.AUDIENCE_MEMBERS,
}
"""Each CSV upload of the offer form, and the input it fills (where its problems show)."""
Marketer = Annotated[Staff, Depends(allowed(Area.OFFERS))]
UPLOAD_MAX_BYTES = 2_000_000


def _queries(request: Request) -> OfferQueries:
    return OfferQueries(request.app.state.pool)


def _config(request: Request) -> Config | None:
    source = request.app.state.config_source
    return source.config if source.ready.is_set() else None


def _done(request: Request, path: str) -> Response:
    """After a change: the next page (htmx follows HX-Redirect with a full load)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": path})
    return redirect(path)


@router.get("/offers")
async def offer_list(
    request: Request,
    staff: Marketer,
    status: Annotated[str, Query(max_length=16)] = "",
    market: Annotated[str, Query(max_length=8)] = "",
    q: Annotated[str, Query(max_length=128)] = "",
    published: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    rows = await _queries(request).offers(
        now=now(request),
        status=status if status in STATUSES else None,
        market=market or None,
        text=q or None,
    )
    filters = {"status": status, "market": market, "q": q}
    return render(
        request,
        "offers/list.html",
        staff,
        offers=rows,
        filters=filters,
        statuses=STATUSES,
        published=published,
    )


@router.get("/offers/new")
async def new_offer(request: Request, staff: Marketer) -> Response:
    return _form_page(request, staff, offer_form.empty_form())


@router.get("/offers/{offer_id}/edit")
async def edit_offer(request: Request, staff: Marketer, offer_id: str) -> Response:
    definition = await _queries(request).definition(offer_id)
    if definition is None:
        return render(request, "refused.html", staff, 404, reason=f"No offer {offer_id}")
    return _form_page(request, staff, offer_form.form_of_definition(definition))


def _form_page(
    request: Request, staff: Staff, form: offer_form.OfferForm, status_code: int = 200, **extra: Any
) -> Response:
    context = {
        "form": form,
        "sections": offer_form.SECTIONS,
        "copy": offer_form.COPY,
        "placed": form.by_path,
        "preview": None,
        "valid": False,
        "error": "",
        **extra,
    }
    template = "offers/form_body.html" if is_htmx(request) else "offers/form.html"
    return render(request, template, staff, status_code, **context)


class UploadTooLargeError(ValueError):
    """An uploaded file over `UPLOAD_MAX_BYTES`: refused whole rather than read in part."""


async def _text_of(upload: object, limit: int = UPLOAD_MAX_BYTES) -> str | None:
    """An uploaded file's text (None: no file chosen)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLargeError(
            f"{upload.filename} is larger than {limit // 1_000_000} MB: upload a smaller file"
        )
    return data.decode("utf-8-sig", errors="replace")


@router.post("/offers/new")
async def submit_offer(request: Request, staff: Marketer, form_data: CheckedForm) -> Response:
    """One form, three buttons: check, preview, publish (`action`)."""
    action = str(form_data.get("action", "check"))
    fields = {k: v for k, v in form_data.items() if isinstance(v, str)}
    uploads: dict[str, str | None] = {}
    too_large: list[Problem] = []
    for name, into in UPLOADS_INTO.items():
        try:
            uploads[name] = await _text_of(form_data.get(name))
        except UploadTooLargeError as error:
            too_large.append(Problem("form", str(error), into))
    form = offer_form.read_form(fields, uploads)
    form.problems += too_large
    at = now(request)
    offer_form.check(form, published_at=at)
    errors = form.errors
    event = form.checked.events[0] if form.checked and form.checked.events and not errors else None
    if event is None:
        if action == "publish":
            await audit_log(request).record(
                staff,
                "publish offer",
                at=at,
                subject=fields.get("offer_id", ""),
                outcome=f"refused: {len(errors)} problem(s)",
            )
        return _form_page(request, staff, form, 422)
    if action == "preview":
        return _form_page(
            request,
            staff,
            form,
            valid=True,
            preview=await _preview(request, event, form.audience, form_data),
        )
    if action != "publish":
        return _form_page(request, staff, form, valid=True)
    before = await _queries(request).definition(event.offer_id)
    after = event.model_dump(mode="json")
    if form.audience:
        members = sum(len(part.member_ids) for part in form.audience)
        after["audience_uploaded"] = {
            "audience_id": form.audience[0].audience_id,
            "members": members,
            "parts": len(form.audience),
        }
    try:
        # The list first: an offer targeting it finds its members when it is published.
        unsent = await send_audited(
            request, staff, "publish offer", event.offer_id, [*form.audience, event],
            before=before, after=after,
        )  # fmt: skip
    except NotRecordedError as error:
        return _form_page(request, staff, form, 503, valid=True, error=str(error))
    if unsent:
        return _form_page(request, staff, form, 503, valid=True, error=unsent)
    return _done(request, f"/console/offers?published={event.offer_id}")


async def _preview(request: Request, event: Any, audience: list[Any], form_data: FormData) -> Any:
    """The simulator's outputs for the offer (after its audience list, when one is given) and
    an uploaded file of events or a sample member's purchase."""
    config = _config(request) or Config()
    try:
        uploaded = await _text_of(form_data.get("preview_events"))
    except UploadTooLargeError as error:
        result = preview(config, event, [], audience=audience)
        result.errors = [str(error)]
        return result
    if uploaded is not None:
        events, errors = read_events(uploaded)
        if errors:
            result = preview(config, event, [], audience=audience)
            result.errors = errors
            return result
    else:
        member = str(form_data.get("sample_member_id", "") or "SAMPLE_MEMBER")
        try:
            spend = int(str(form_data.get("sample_spend_cents", "") or "0"))
        except ValueError:
            spend = 0
        sku = str(form_data.get("sample_sku", "") or "SAMPLE_SKU")
        category = str(form_data.get("sample_category", ""))
        profile = await _queries(request).member_profile(member)
        events = sample_events(event, Sample(member, max(spend, 0), sku, category, profile))
    return preview(config, event, events, audience=audience)


@router.get("/offers/{offer_id}")
async def offer_page(request: Request, staff: Marketer, offer_id: str) -> Response:
    return await _offer_page(request, staff, offer_id)


async def _offer_page(
    request: Request, staff: Staff, offer_id: str, status_code: int = 200, **extra: Any
) -> Response:
    rows = await _queries(request).offers(now=now(request), offer_id=offer_id)
    if not rows:
        return render(request, "refused.html", staff, 404, reason=f"No offer {offer_id}")
    context = {"offer": rows[0], "refusal": "", "notice": "", **extra}
    return render(request, "offers/detail.html", staff, status_code, **context)


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=EVERGREEN_ENDS_AT.tzinfo)


_REASON_TOO_LONG = f"say why in at most {TEXT_MAX_LENGTH} characters"


def _too_long(reason: str | None) -> bool:
    """A reason the event could not carry (a user's trial: a 5,000-character one was a 500,
    and the refusal was not audited)."""
    return reason is not None and len(reason) > TEXT_MAX_LENGTH


@router.post("/offers/{offer_id}/extend")
async def extend_offer(
    request: Request, staff: Marketer, offer_id: str, form_data: CheckedForm
) -> Response:
    at = now(request)
    never = bool(form_data.get("never"))
    ends_at = EVERGREEN_ENDS_AT if never else _instant(str(form_data.get("ends_at", "")))
    reason = str(form_data.get("reason", "")).strip() or None
    config = _config(request)
    if ends_at is None:
        decided: Any = "give the new end as a date and time (UTC), or choose does not expire"
    elif _too_long(reason):
        decided = _REASON_TOO_LONG
    elif config is None:
        decided = "the configuration is not known yet: try again in a moment"
    else:
        decided = extension(
            config, offer_id, ends_at, now=at, requested_by=staff.name, reason=reason
        )
    if isinstance(decided, str):
        await audit_log(request).record(
            staff, "extend offer", at=at, subject=offer_id, outcome=f"refused: {decided}"
        )
        return await _offer_page(request, staff, offer_id, 422, refusal=decided)
    offer = config.catalogue.get(offer_id) if config else None
    before = {"ends_at": offer.schedule.ends_at.isoformat()} if offer else None
    try:
        unsent = await send_audited(
            request, staff, "extend offer", offer_id, [decided],
            before=before, after={"ends_at": decided.ends_at.isoformat()},
        )  # fmt: skip
    except NotRecordedError as error:
        return await _offer_page(request, staff, offer_id, 503, refusal=str(error))
    if unsent:
        return await _offer_page(request, staff, offer_id, 503, refusal=unsent)
    return _done(request, f"/console/offers/{offer_id}?extended=1")


@router.post("/offers/{offer_id}/withdraw")
async def withdraw_offer(
    request: Request, staff: Marketer, offer_id: str, form_data: CheckedForm
) -> Response:
    at = now(request)
    reason = str(form_data.get("reason", "")).strip() or None
    config = _config(request)
    decided: Any = (
        _REASON_TOO_LONG
        if _too_long(reason)
        else withdrawal(config, offer_id, now=at, requested_by=staff.name, reason=reason)
        if config is not None
        else "the configuration is not known yet: try again in a moment"
    )
    if isinstance(decided, str):
        await audit_log(request).record(
            staff, "withdraw offer", at=at, subject=offer_id, outcome=f"refused: {decided}"
        )
        return await _offer_page(request, staff, offer_id, 422, refusal=decided)
    try:
        unsent = await send_audited(
            request, staff, "withdraw offer", offer_id, [decided],
            after={"withdrawn_at": at.isoformat(), "reason": reason},
        )  # fmt: skip
    except NotRecordedError as error:
        return await _offer_page(request, staff, offer_id, 503, refusal=str(error))
    if unsent:
        return await _offer_page(request, staff, offer_id, 503, refusal=unsent)
    return _done(request, f"/console/offers/{offer_id}?withdrawn=1")
