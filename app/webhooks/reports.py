"""The daily report (日报): every covered store's standing, once a day, through the outbox.

A subscription with ``daily_report_at`` (``"09:00"`` in its ``timezone``) gets
one ``report.daily`` delivery a day: each store it covers (its ``store_ids``,
or all) with the figures of the window ending on the report's day, the worst
tier state, the change since the previous report, and the products at risk.
The delivery's ``webhook-id`` is derived from the subscription and the day, and
it is written in the same transaction that records the day as sent, so two
replicas, or a restart, never send a day twice; a day missed while no worker
ran is sent when one runs again (up to a week back).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import upsert
from app.figures.models import STORE_SCOPE
from app.figures.repository import window_figures, window_figures_many
from app.figures.rules import EMPTY, WindowFigures, figure_fields
from app.policies.tiers import STATE_SEVERITY, quality_refund_rate
from app.stores.repository import contexts_page_query, load_contexts, read_contexts
from app.stores.rules import StoreContext
from app.webhooks.models import Delivery, WebhookSubscription

REPORT = "report.daily"
CATCH_UP_DAYS = 7
TOP_PRODUCTS = 3


def report_days(sub: WebhookSubscription, now: datetime) -> list[date]:
    """The days whose report is due for ``sub`` at ``now`` (oldest first)."""
    if not sub.daily_report_at:
        return []
    zone = ZoneInfo(sub.report_timezone)
    local = now.astimezone(zone)
    hour, minute = (int(part) for part in sub.daily_report_at.split(":"))
    due_today = local.time() >= time(hour, minute)
    latest = local.date() if due_today else local.date() - timedelta(days=1)
    if sub.last_report_on is None:  # the first report is today's, once its time has come
        return [local.date()] if due_today else []
    first = sub.last_report_on + timedelta(days=1)
    first = max(first, latest - timedelta(days=CATCH_UP_DAYS - 1))
    days = []
    day = first
    while day <= latest:
        days.append(day)
        day += timedelta(days=1)
    return days


def report_msg_id(subscription_id: int, day: date) -> str:
    """The report's ``webhook-id``: one per subscription and day, whoever writes it."""
    return f"msg_report_{subscription_id}_{day:%Y%m%d}"


async def _covered(session: AsyncSession, sub: WebhookSubscription) -> list[StoreContext]:
    if sub.store_ids is not None:
        contexts = await load_contexts(session, list(sub.store_ids))
        return [contexts[s] for s in sorted(contexts)]
    return await read_contexts(session, contexts_page_query())


def _change(now: WindowFigures, before: WindowFigures) -> dict[str, Any]:
    rate_change = None
    if now.orders and before.orders:
        delta = Fraction(now.quality_refunds, now.orders) - Fraction(
            before.quality_refunds, before.orders
        )
        scaled = round(delta * 10**6)
        sign = "-" if scaled < 0 else "+"
        whole, part = divmod(abs(scaled), 10**6)
        rate_change = f"{sign}{whole}.{part:06d}"
    return {
        "orders": now.orders - before.orders,
        "quality_refunds": now.quality_refunds - before.quality_refunds,
        "quality_refund_rate": rate_change,
    }


async def _products_at_risk(
    session: AsyncSession, ctx: StoreContext, day: date
) -> list[dict[str, Any]]:
    start, end = ctx.window(day)
    products = await window_figures(session, ctx.store_id, start, end)
    at_risk: list[dict[str, Any]] = []
    for product_id, f in products.items():
        if product_id == STORE_SCOPE:
            continue
        for verdict in ctx.policy.judge(f, "product"):
            if verdict.state in ("approaching", "breached"):
                at_risk.append(
                    {
                        "product_id": product_id,
                        "tier": verdict.tier,
                        "state": verdict.state,
                        "quality_refunds": f.quality_refunds,
                        "orders": f.orders,
                        "quality_refund_rate": quality_refund_rate(f.quality_refunds, f.orders),
                    }
                )
    at_risk.sort(
        key=lambda p: (-STATE_SEVERITY[p["state"]], -p["quality_refunds"], p["product_id"])
    )
    return at_risk[:TOP_PRODUCTS]


async def build_report(
    session: AsyncSession, sub: WebhookSubscription, day: date, previous: date
) -> dict[str, Any]:
    """The report's ``data``: each covered store as of ``day``, against ``previous``."""
    contexts = await _covered(session, sub)
    now = await window_figures_many(
        session, [(c.store_id, [STORE_SCOPE], *c.window(day)) for c in contexts]
    )
    before = await window_figures_many(
        session, [(c.store_id, [STORE_SCOPE], *c.window(previous)) for c in contexts]
    )
    stores: list[dict[str, Any]] = []
    ranks: dict[str, tuple[int, Fraction, str]] = {}
    for ctx in contexts:
        f = now.get((ctx.store_id, STORE_SCOPE), EMPTY)
        verdicts = ctx.policy.judge(f, "store")
        worst = max(verdicts, key=lambda v: STATE_SEVERITY[v.state], default=None)
        state = worst.state if worst else "ok"
        rate = Fraction(f.quality_refunds, f.orders) if f.orders else Fraction(0)
        ranks[ctx.store_id] = (-STATE_SEVERITY[state], -rate, ctx.store_id)
        stores.append(
            {
                "store_id": ctx.store_id,
                "store_name": ctx.name,
                "figures": figure_fields(f),
                "worst_state": state,
                "tiers": [{"tier": v.tier, "state": v.state} for v in verdicts],
                "change": _change(f, before.get((ctx.store_id, STORE_SCOPE), EMPTY)),
                "products_at_risk": await _products_at_risk(session, ctx, day),
            }
        )
    stores.sort(key=lambda s: ranks[s["store_id"]])
    return {
        "date": day.isoformat(),
        "previous_date": previous.isoformat(),
        "timezone": sub.report_timezone,
        "subscription_id": str(sub.id),
        "summary": {
            "stores": len(stores),
            "breached": sum(s["worst_state"] == "breached" for s in stores),
            "approaching": sum(s["worst_state"] == "approaching" for s in stores),
        },
        "stores": stores,
    }


async def due_subscriptions(session: AsyncSession) -> Sequence[WebhookSubscription]:
    return list(
        await session.scalars(
            select(WebhookSubscription).where(
                WebhookSubscription.enabled.is_(True),
                WebhookSubscription.daily_report_at.is_not(None),
            )
        )
    )


async def write_report(session: AsyncSession, subscription_id: int, now: datetime) -> list[date]:
    """Write the due reports of one subscription (locked for the transaction); the days sent."""
    sub = await session.get(WebhookSubscription, subscription_id, with_for_update=True)
    if sub is None or not sub.enabled:
        return []
    days = report_days(sub, now)
    for day in days:
        previous = sub.last_report_on if sub.last_report_on else day - timedelta(days=1)
        data = await build_report(session, sub, day, previous)
        stmt = upsert(session, Delivery.__table__, ["msg_id"], mode="nothing")
        await session.execute(
            stmt,
            [
                {
                    "webhook_id": sub.id,
                    "alert_id": None,
                    "event_type": REPORT,
                    "msg_id": report_msg_id(sub.id, day),
                    "payload": data,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            ],
        )
        sub.last_report_on = day
    return days
