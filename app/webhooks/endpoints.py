"""/v1/webhooks and /v1/deliveries: subscriptions and the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SettingsDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.params import MAX_INT
from app.api.problems import answers, problem_responses
from app.auth.deps import AdminKey, ReadKey
from app.auth.keys import grants
from app.auth.service import Principal
from app.errors import NotFound
from app.webhooks import repository, service
from app.webhooks.models import Delivery, WebhookSubscription
from app.webhooks.schemas import (
    DELIVERY_EXAMPLE,
    WEBHOOK_CREATED_EXAMPLE,
    WEBHOOK_EXAMPLE,
    DeliveryOut,
    RecoverIn,
    RecoverOut,
    TestOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])

WebhookIdPath = Annotated[
    int, Path(ge=1, le=MAX_INT, description="The subscription's id", examples=[1])
]
DeliveryIdPath = Annotated[
    int, Path(ge=1, le=MAX_INT, description="The delivery's id", examples=[7])
]


def _reveals(key: Principal) -> bool:
    # A robot's URL is its credential: only admin keys (which can change it) read it whole.
    return grants(key.scopes, "admin")


@router.post(
    "/webhooks",
    status_code=201,
    summary="Subscribe a webhook (secret shown once)",
    description=(
        "Alerts that pass the filters (`store_ids`, `tiers`, `alert_types`; null = all) "
        "go to `url`, as Standard Webhooks JSON (`standard`, signed with the `whsec_…` "
        "secret answered here once) or as a group robot's Chinese markdown (`dingtalk`, "
        "`wecom`, `feishu`, signed with the robot's own secret when it has one). The URL "
        "must resolve to a public address. Needs the `admin` scope."
    ),
    response_model=WebhookCreated,
    operation_id="create_webhook",
    responses=answers(WEBHOOK_CREATED_EXAMPLE, 401, 403, 422, status=201),
)
async def create_webhook(
    body: WebhookIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> WebhookCreated:
    await service.vet_url(str(body.url), settings)
    secret = service.secret_for(body.format, body.secret)
    async with db.transaction() as session:
        sub = await service.create_subscription(session, body, secret, clock.now())
        return WebhookCreated(**WebhookOut.of(sub).model_dump(), secret=secret)


@router.get(
    "/webhooks",
    summary="List webhooks",
    description=(
        "Every subscription, oldest first, with its health: `enabled`, `disabled_reason`, "
        "`failing_since` and a robot's `last_refusal`. Keys without the `admin` scope read "
        "URLs with their credentials masked. Needs the `read` scope."
    ),
    response_model=Page[WebhookOut],
    operation_id="list_webhooks",
    responses=answers({"items": [WEBHOOK_EXAMPLE], "next_cursor": None}, 401, 403, 422),
)
async def list_webhooks(
    key: ReadKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[WebhookOut]:
    query = keyset(repository.subscriptions_query(), WebhookSubscription.id, cursor, limit)
    subs, next_cursor = next_page(list(await session.scalars(query)), limit, lambda s: s.id)
    reveal = _reveals(key)
    return Page(items=[WebhookOut.of(s, reveal=reveal) for s in subs], next_cursor=next_cursor)


@router.get(
    "/webhooks/{webhook_id}",
    summary="Read a webhook",
    description=(
        "One subscription and its health. Keys without the `admin` scope read the URL "
        "with its credentials masked. Needs the `read` scope."
    ),
    response_model=WebhookOut,
    operation_id="get_webhook",
    responses=answers(WEBHOOK_EXAMPLE, 401, 403, 404, 422),
)
async def get_webhook(
    webhook_id: WebhookIdPath, key: ReadKey, session: ReadSessionDep
) -> WebhookOut:
    sub = await service.require_subscription(session, webhook_id)
    return WebhookOut.of(sub, reveal=_reveals(key))


@router.patch(
    "/webhooks/{webhook_id}",
    summary="Edit a webhook",
    description=(
        "Change the fields given. A new URL is checked again; a new robot secret or URL "
        "clears the robot's `last_refusal` (the next message tells whether it is fixed); "
        "`enabled: true` re-enables a disabled subscription and clears its failure streak. "
        "Needs the `admin` scope."
    ),
    response_model=WebhookOut,
    operation_id="patch_webhook",
    responses=answers(WEBHOOK_EXAMPLE, 401, 403, 404, 422),
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
        await service.vet_url(fields["url"], settings)
    async with db.transaction() as session:
        sub = await service.patch_subscription(session, webhook_id, fields, clock.now())
        return WebhookOut.of(sub)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Delete a webhook and its log",
    description=(
        "The subscription, its pending deliveries and its attempt log go; alerts stay. "
        "Answers 204 with no body. Needs the `admin` scope."
    ),
    operation_id="delete_webhook",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_webhook(webhook_id: WebhookIdPath, _key: AdminKey, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        await repository.delete_subscription(
            session, await service.require_subscription(session, webhook_id)
        )
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    summary="Rotate a standard webhook's secret",
    description="Returns the new whsec_… once. The old secret keeps signing beside it for 24 h "
    "(two v1 signatures in webhook-signature), so receivers can switch without a gap. "
    "Needs the `admin` scope.",
    response_model=WebhookCreated,
    operation_id="rotate_webhook_secret",
    responses=answers(WEBHOOK_CREATED_EXAMPLE, 401, 403, 404, 422),
)
async def rotate_secret(
    webhook_id: WebhookIdPath, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> WebhookCreated:
    async with db.transaction() as session:
        sub = await service.rotate_secret(session, webhook_id, clock.now())
        return WebhookCreated(**WebhookOut.of(sub).model_dump(), secret=sub.secret)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's deliveries and every attempt",
    description=(
        "Newest first, each with its attempts: when, the status code, how long, the error "
        "(a robot's refusal in its own words) and an excerpt of the answer. Filter by "
        "`status`. Needs the `read` scope."
    ),
    response_model=Page[DeliveryOut],
    operation_id="list_webhook_deliveries",
    responses=answers({"items": [DELIVERY_EXAMPLE], "next_cursor": None}, 401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: WebhookIdPath,
    _key: ReadKey,
    session: ReadSessionDep,
    status: Annotated[
        str | None,
        Query(
            pattern="^(pending|delivering|delivered|failed|cancelled)$",
            description="Only deliveries in this state",
        ),
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[DeliveryOut]:
    await service.require_subscription(session, webhook_id)
    query = keyset(
        repository.deliveries_query(webhook_id, status), Delivery.id, cursor, limit, descending=True
    )
    rows, next_cursor = next_page(list(await session.scalars(query)), limit, lambda d: d.id)
    return Page(items=await service.deliveries_out(session, rows), next_cursor=next_cursor)


@router.post(
    "/deliveries/{delivery_id}/retry",
    summary="Send a delivery again now",
    description=(
        "Puts a delivery (failed, cancelled or even delivered) back in the queue, due now; "
        "the relay sends it within a second, with the same `webhook-id`. 409 while it is "
        "being sent. Needs the `admin` scope."
    ),
    response_model=DeliveryOut,
    operation_id="retry_delivery",
    responses=answers({**DELIVERY_EXAMPLE, "status": "pending"}, 401, 403, 404, 409, 422),
)
async def retry_delivery(
    delivery_id: DeliveryIdPath, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> DeliveryOut:
    async with db.transaction() as session:
        delivery = await service.retry_delivery(session, delivery_id, clock.now())
        return (await service.deliveries_out(session, [delivery]))[0]


@router.post(
    "/webhooks/{webhook_id}/recover",
    summary="Re-queue failed deliveries since a time",
    description=(
        "After an outage or a fixed configuration: every failed delivery of this webhook "
        "created at or after `since` is queued again, due now. Answers how many. Needs the "
        "`admin` scope."
    ),
    response_model=RecoverOut,
    operation_id="recover_webhook",
    responses=answers({"requeued": 3}, 401, 403, 404, 422),
)
async def recover(
    webhook_id: WebhookIdPath, body: RecoverIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> RecoverOut:
    async with db.transaction() as session:
        return RecoverOut(
            requeued=await service.recover(session, webhook_id, body.since, clock.now())
        )


@router.post(
    "/webhooks/{webhook_id}/test",
    summary="Send a webhook.test ping now",
    description=(
        "Sends synchronously and returns the logged attempt: the quickest check of a URL, "
        "a signature or a robot's keyword. A robot that refuses it answers here in its own "
        "words (`outcome: refused`). Needs the `admin` scope."
    ),
    response_model=TestOut,
    operation_id="test_webhook",
    responses=answers(
        {
            "delivery": {
                **DELIVERY_EXAMPLE,
                "alert_id": None,
                "event_type": "webhook.test",
            },
            "outcome": "delivered",
        },
        401,
        403,
        404,
        422,
    ),
)
async def test_webhook(
    webhook_id: WebhookIdPath,
    _key: AdminKey,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TestOut:
    delivery, outcome = await service.test_ping(db, webhook_id, settings, clock)
    async with db.transaction() as session:
        fresh = await session.get(Delivery, delivery.id)
        if fresh is None:  # the webhook was deleted while its ping was in flight
            raise NotFound(f"no webhook {webhook_id}", code="webhook_not_found")
        return TestOut(
            delivery=(await service.deliveries_out(session, [fresh]))[0], outcome=outcome
        )
