"""/v1/webhooks and /v1/deliveries: subscriptions and the delivery log."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import AdminKey, ClockDep, DatabaseDep, ReadKey, ReadSessionDep, SettingsDep
from app.api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor, split_page
from app.api.problems import NotFound, field_error, problem_responses
from app.config import Settings
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription
from app.webhooks.outbox import new_msg_id
from app.webhooks.relay import Relay, send
from app.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    RecoverIn,
    RecoverOut,
    TestOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)
from app.webhooks.signing import generate_standard_secret, validate_standard_secret
from app.webhooks.ssrf import UrlRefused, parse_allowed_networks, resolve_and_vet

router = APIRouter(prefix="/v1", tags=["webhooks"])

WebhookIdPath = Annotated[int, Path(ge=1, description="The subscription's id")]
SECRET_OVERLAP = timedelta(hours=24)


async def vet_url(url: str, settings: Settings) -> None:
    """The SSRF guard at create/update time (it runs again at every send)."""
    try:
        await resolve_and_vet(url, parse_allowed_networks(settings.webhook_allowed_networks))
    except UrlRefused as exc:
        raise field_error("body.url", "url_refused", f"{exc.reason}: {exc.message}") from None


def _secret_for(format: str, given: str | None) -> str | None:
    if format == "standard":
        if given is None:
            return generate_standard_secret()
        try:
            return validate_standard_secret(given)
        except ValueError as exc:
            raise field_error("body.secret", "invalid_secret", str(exc)) from None
    if format == "wecom" and given:
        raise field_error(
            "body.secret", "invalid_secret", "wecom group robots take no signing secret"
        )
    return given


async def _get_or_404(session: AsyncSession, webhook_id: int) -> WebhookSubscription:
    sub = await session.get(WebhookSubscription, webhook_id)
    if sub is None:
        raise NotFound(f"no webhook {webhook_id}", code="webhook_not_found")
    return sub


@router.post(
    "/webhooks",
    status_code=201,
    summary="Subscribe a webhook (secret shown once)",
    response_model=WebhookCreated,
    operation_id="create_webhook",
    responses=problem_responses(401, 403, 422),
)
async def create_webhook(
    body: WebhookIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> WebhookCreated:
    url = str(body.url)
    await vet_url(url, settings)
    secret = _secret_for(body.format, body.secret)
    now = clock.now()
    async with db.transaction() as session:
        sub = WebhookSubscription(
            url=url,
            format=body.format,
            description=body.description,
            secret=secret,
            store_ids=body.store_ids,
            tiers=body.tiers,
            alert_types=body.alert_types,
            enabled=body.enabled,
            created_at=now,
            updated_at=now,
        )
        session.add(sub)
        await session.flush()
        return WebhookCreated(**WebhookOut.of(sub).model_dump(), secret=secret)


@router.get(
    "/webhooks",
    summary="List webhooks",
    response_model=WebhookPage,
    operation_id="list_webhooks",
    responses=problem_responses(401, 403, 422),
)
async def list_webhooks(
    _key: ReadKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> WebhookPage:
    after = decode_cursor(cursor, int) or 0
    rows = list(
        await session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.id > after)
            .order_by(WebhookSubscription.id)
            .limit(limit + 1)
        )
    )
    rows, more = split_page(rows, limit)
    return WebhookPage(
        items=[WebhookOut.of(s) for s in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@router.get(
    "/webhooks/{webhook_id}",
    summary="Read a webhook",
    response_model=WebhookOut,
    operation_id="get_webhook",
    responses=problem_responses(401, 403, 404),
)
async def get_webhook(
    webhook_id: WebhookIdPath, _key: ReadKey, session: ReadSessionDep
) -> WebhookOut:
    return WebhookOut.of(await _get_or_404(session, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}",
    summary="Edit a webhook",
    response_model=WebhookOut,
    operation_id="patch_webhook",
    responses=problem_responses(401, 403, 404, 422),
)
async def patch_webhook(
    webhook_id: WebhookIdPath,
    body: WebhookPatch,
    _key: AdminKey,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> WebhookOut:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("url") is not None:
        fields["url"] = str(body.url)
        await vet_url(fields["url"], settings)
    async with db.transaction() as session:
        sub = await _get_or_404(session, webhook_id)
        if "secret" in fields:
            if sub.format == "standard":
                raise field_error(
                    "body.secret",
                    "use_rotate_secret",
                    "rotate a standard secret with POST …/rotate-secret",
                )
            fields["secret"] = _secret_for(sub.format, fields["secret"])
        for name, value in fields.items():
            if name in ("url", "enabled") and value is None:
                continue
            setattr(sub, name, value)
        if fields.get("enabled"):
            sub.disabled_reason = None
            sub.failing_since = None
        sub.updated_at = clock.now()
        await session.flush()
        return WebhookOut.of(sub)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Delete a webhook and its log",
    operation_id="delete_webhook",
    responses=problem_responses(401, 403, 404),
)
async def delete_webhook(webhook_id: WebhookIdPath, _key: AdminKey, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        sub = await _get_or_404(session, webhook_id)
        attempts = select(Delivery.id).where(Delivery.webhook_id == webhook_id)
        from sqlalchemy import delete

        await session.execute(
            delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(attempts))
        )
        await session.execute(delete(Delivery).where(Delivery.webhook_id == webhook_id))
        await session.delete(sub)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    summary="Rotate a standard webhook's secret",
    description="Returns the new whsec_… once. The old secret keeps signing beside it for 24 h "
    "(two v1 signatures in webhook-signature), so receivers can switch without a gap.",
    response_model=WebhookCreated,
    operation_id="rotate_webhook_secret",
    responses=problem_responses(401, 403, 404, 422),
)
async def rotate_secret(
    webhook_id: WebhookIdPath, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> WebhookCreated:
    now = clock.now()
    async with db.transaction() as session:
        sub = await _get_or_404(session, webhook_id)
        if sub.format != "standard":
            raise field_error(
                "path.webhook_id", "not_standard", "only standard webhooks have a rotatable secret"
            )
        sub.previous_secret = sub.secret
        sub.previous_secret_expires_at = now + SECRET_OVERLAP
        sub.secret = generate_standard_secret()
        sub.updated_at = now
        await session.flush()
        return WebhookCreated(**WebhookOut.of(sub).model_dump(), secret=sub.secret)


async def _deliveries_out(session: AsyncSession, deliveries: list[Delivery]) -> list[DeliveryOut]:
    attempts: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    if deliveries:
        for a in await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.id)
        ):
            attempts[a.delivery_id].append(a)
    return [DeliveryOut.of(d, attempts[d.id]) for d in deliveries]


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's deliveries and every attempt",
    response_model=DeliveryPage,
    operation_id="list_webhook_deliveries",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: WebhookIdPath,
    _key: ReadKey,
    session: ReadSessionDep,
    status: Annotated[
        str | None, Query(pattern="^(pending|delivering|delivered|failed|cancelled)$")
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> DeliveryPage:
    await _get_or_404(session, webhook_id)
    query = (
        select(Delivery)
        .where(Delivery.webhook_id == webhook_id)
        .order_by(Delivery.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(Delivery.status == status)
    before = decode_cursor(cursor, int)
    if before is not None:
        query = query.where(Delivery.id < int(before))
    rows = list(await session.scalars(query))
    rows, more = split_page(rows, limit)
    return DeliveryPage(
        items=await _deliveries_out(session, rows),
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@router.post(
    "/deliveries/{delivery_id}/retry",
    summary="Send a delivery again now",
    response_model=DeliveryOut,
    operation_id="retry_delivery",
    responses=problem_responses(401, 403, 404, 409),
)
async def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1)], _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> DeliveryOut:
    async with db.transaction() as session:
        delivery = await session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
        if delivery.status == "delivering":
            from app.api.problems import Conflict

            raise Conflict("this delivery is being sent right now", code="delivery_in_flight")
        delivery.status = "pending"
        delivery.next_attempt_at = clock.now()
        await session.flush()
        return (await _deliveries_out(session, [delivery]))[0]


@router.post(
    "/webhooks/{webhook_id}/recover",
    summary="Re-queue failed deliveries since a time",
    response_model=RecoverOut,
    operation_id="recover_webhook",
    responses=problem_responses(401, 403, 404, 422),
)
async def recover(
    webhook_id: WebhookIdPath, body: RecoverIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> RecoverOut:
    if body.since.tzinfo is None:
        raise field_error("body.since", "naive_since", "since needs a UTC offset")
    async with db.transaction() as session:
        await _get_or_404(session, webhook_id)
        result = await session.execute(
            update(Delivery)
            .where(
                Delivery.webhook_id == webhook_id,
                Delivery.status.in_(("failed", "cancelled")),
                Delivery.created_at >= body.since,
            )
            .values(status="pending", next_attempt_at=clock.now(), attempts=0)
        )
        return RecoverOut(requeued=int(result.rowcount))  # type: ignore[attr-defined]


@router.post(
    "/webhooks/{webhook_id}/test",
    summary="Send a webhook.test ping now",
    description="Sends synchronously and returns the logged attempt.",
    response_model=TestOut,
    operation_id="test_webhook",
    responses=problem_responses(401, 403, 404),
)
async def test_webhook(
    webhook_id: WebhookIdPath,
    _key: AdminKey,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TestOut:
    now = clock.now()
    async with db.transaction() as session:
        sub = await _get_or_404(session, webhook_id)
        delivery = Delivery(
            webhook_id=sub.id,
            alert_id=None,
            event_type="webhook.test",
            msg_id=new_msg_id(),
            payload={
                "message": "refundwatch test message / 测试消息",
                "subscription_id": str(sub.id),
            },
            status="delivering",
            attempts=0,
            next_attempt_at=now,
            lease_expires_at=now + timedelta(minutes=1),
            created_at=now,
        )
        session.add(delivery)
        await session.flush()
    result = await send(sub, [delivery], now=now, settings=settings)
    relay = Relay(db, settings, clock)
    outcome = await relay.record(sub, [delivery], result)
    async with db.transaction() as session:
        fresh = await session.get(Delivery, delivery.id)
        if fresh is None:  # the webhook was deleted while its ping was in flight
            raise NotFound(f"no webhook {webhook_id}", code="webhook_not_found")
        return TestOut(delivery=(await _deliveries_out(session, [fresh]))[0], outcome=outcome)
