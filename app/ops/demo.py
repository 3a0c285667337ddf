"""`refundwatch demo`: a realistic store cluster (店群), loaded through the ingest road.

A new user should see the whole product in a minute: stores breached,
approaching and fine; products with SKUs; couriers and shipping times; refunds
of every kind, pending ones, reason changes, withdrawals; the alerts those
raise as the history comes in. The events are generated (:func:`demo_events`,
pure and seeded) and taken down the road in chronological transactions of
:data:`EVENTS_PER_TRANSACTION` — the same validation and the same road as
``POST /v1/events`` — so every figure, alert and explanation is the real one.

Each store's profile is built to land on its tiers under the default policy
(demotion 1% / 5, listing ban 2% / 10, delisting 3% / 5 per product, within
30 days):

- ``breached``: about 2.5% quality refunds (at least 12) — both store tiers
  breached — one best-seller past the product line and one niche product just
  short of it (4 quality refunds: one more delists it);
- ``approaching``: exactly 4 counted quality refunds on at most 500 orders —
  one refund from demotion;
- ``fine``: one to three.

Event ids are stable (``demo-<store>-<n>``) and times hang on the stores'
local days, so a second run the same day stores nothing new.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import Database
from app.events.validation import ValidatedBatch, validate_batch

EVENTS_PER_TRANSACTION = 1000
WINDOW_DAYS = 30  # the default policy's window

PROFILES = ("breached", "approaching", "fine", "fine", "approaching", "fine", "breached", "fine")
"""Store profiles, in store order (cycled): one store alone is breached, two are both."""

# (product, price, SKUs) of a cluster selling clothes and small goods.
CATALOG: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("dress-floral", "89.00", ("S", "M", "L", "XL")),
    ("tshirt-cotton", "29.90", ("white-M", "white-L", "black-M", "black-L")),
    ("jeans-slim", "119.00", ("28", "30", "32", "34")),
    ("socks-5pack", "19.90", ("grey", "mixed")),
    ("phone-case", "15.80", ("ip15", "ip16", "mate60")),
    ("water-bottle", "39.00", ("500ml", "750ml")),
    ("hoodie-fleece", "139.00", ("M", "L", "XL")),
    ("scarf-wool", "59.00", ("red", "navy")),
)
COURIERS = ("中通", "圆通", "韵达", "申通", "极兔", "顺丰")
QUALITY_REASONS = ("quality_issue", "not_as_described")
OTHER_REASONS = (
    "changed_mind",
    "ordered_by_mistake",
    "shipping_delay",
    "damaged",
    "wrong_item",
    "missing_parts",
)
ORDERS_PER_DAY = {"breached": (22, 34), "approaching": (10, 14), "fine": (14, 28)}


@dataclass(slots=True)
class _Order:
    order_id: str
    product_id: str
    sku_id: str
    amount: str
    paid_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None


@dataclass(slots=True)
class DemoStore:
    """One generated store: its profile and the events that tell its month."""

    store_id: str
    profile: str
    products: list[str]
    orders: int = 0
    quality_refunds_in_window: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


class _Writer:
    """Builds one store's events with stable ids, never later than ``now``."""

    def __init__(self, store: DemoStore, now: datetime) -> None:
        self.store = store
        self.now = now
        self.count = 0

    def add(self, type_: str, at: datetime, **fields: Any) -> bool:
        if at > self.now:
            return False
        self.count += 1
        self.store.events.append(
            {
                "event_id": f"demo-{self.store.store_id}-{self.count}",
                "type": type_,
                "store_id": self.store.store_id,
                "occurred_at": at.isoformat(timespec="seconds"),
                **{k: v for k, v in fields.items() if v is not None},
            }
        )
        return True


def demo_events(
    stores: int, days: int, now: datetime, timezone: str, seed: int = 20261126
) -> list[DemoStore]:
    """The cluster: ``stores`` stores with ``days`` days of history up to ``now`` (pure)."""
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    return [
        _store(i, PROFILES[i % len(PROFILES)], days, now, today, tz, random.Random(seed * 1000 + i))
        for i in range(stores)
    ]


def _store(
    index: int,
    profile: str,
    days: int,
    now: datetime,
    today: date,
    tz: ZoneInfo,
    rng: random.Random,
) -> DemoStore:
    store_id = f"shop-{index + 1:02d}"
    catalog = rng.sample(CATALOG, k=rng.randint(4, 6))
    # A best-seller, steady sellers and a niche product (weights of the order mix).
    weights = [6.0, *(rng.uniform(1.5, 3.0) for _ in catalog[1:-1]), 0.6]
    store = DemoStore(store_id, profile, [f"{store_id}-{name}" for name, _, _ in catalog])
    write = _Writer(store, now)
    orders = _orders(store, catalog, weights, days, now, today, tz, rng)
    store.orders = len(orders)
    for order in orders:
        write.add(
            "order.paid",
            order.paid_at,
            order_id=order.order_id,
            product_id=order.product_id,
            sku_id=order.sku_id,
            amount=order.amount,
        )
        if order.shipped_at is not None:
            write.add(
                "order.shipped", order.shipped_at, order_id=order.order_id, courier=_courier(rng)
            )
        if order.delivered_at is not None:
            write.add("order.delivered", order.delivered_at, order_id=order.order_id)

    first_window_day = today - timedelta(days=WINDOW_DAYS - 1)
    latest_request = now - timedelta(minutes=30)
    in_window = [
        o
        for o in orders
        if o.paid_at.astimezone(tz).date() >= first_window_day
        and o.paid_at + timedelta(hours=6) < latest_request
    ]
    taken: set[str] = set()
    for order in _quality_plan(store, profile, in_window, rng):
        _refund(
            write, order, rng, rng.choice(QUALITY_REASONS), withdrawn=False, until=latest_request
        )
        taken.add(order.order_id)
        store.quality_refunds_in_window += 1
    # Before the window, quality refunds at the profile's pace (history, not today's count):
    # requested before the window opened, or they would count.
    window_opens = datetime.combine(first_window_day, time(), tz) - timedelta(minutes=1)
    for order in orders:
        if order.order_id in taken or order.paid_at + timedelta(hours=6) >= latest_request:
            continue
        roll = rng.random()
        if roll < 0.02 and order.paid_at + timedelta(hours=6) < window_opens:
            quality = rng.choice(QUALITY_REASONS)
            _refund(write, order, rng, quality, withdrawn=False, until=window_opens)
        elif roll < 0.06:
            other = rng.choice(OTHER_REASONS)
            _refund(write, order, rng, other, withdrawn=False, until=latest_request)
        elif roll < 0.07:  # a quality complaint the buyer withdrew: it does not count
            quality = rng.choice(QUALITY_REASONS)
            _refund(write, order, rng, quality, withdrawn=True, until=latest_request)
    store.events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return store


def _orders(
    store: DemoStore,
    catalog: Sequence[tuple[str, str, tuple[str, ...]]],
    weights: Sequence[float],
    days: int,
    now: datetime,
    today: date,
    tz: ZoneInfo,
    rng: random.Random,
) -> list[_Order]:
    low, high = ORDERS_PER_DAY[store.profile]
    fast_shipper = rng.random() < 0.5
    orders: list[_Order] = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        weekend = day.weekday() >= 5
        for _ in range(int(rng.randint(low, high) * (1.2 if weekend else 1.0))):
            seconds = rng.randint(8 * 3600, 23 * 3600 + 1800)
            paid_at = datetime.combine(day, time(), tz) + timedelta(seconds=seconds)
            if paid_at > now:
                continue
            (name, price, skus) = rng.choices(catalog, weights=weights)[0]
            product_id = f"{store.store_id}-{name}"
            ship_hours = rng.uniform(2, 20) if fast_shipper else rng.uniform(6, 60)
            shipped_at = paid_at + timedelta(hours=ship_hours)
            delivered_at = shipped_at + timedelta(hours=rng.uniform(20, 96))
            orders.append(
                _Order(
                    order_id=f"{store.store_id}-o{len(orders) + 1:05d}",
                    product_id=product_id,
                    sku_id=f"{product_id}-{rng.choice(skus)}",
                    amount=price,
                    paid_at=paid_at,
                    shipped_at=shipped_at if shipped_at <= now else None,
                    delivered_at=delivered_at if delivered_at <= now else None,
                )
            )
    return orders


def _quality_plan(
    store: DemoStore, profile: str, in_window: list[_Order], rng: random.Random
) -> list[_Order]:
    """The window's counted quality refunds: which orders, so each tier lands as intended."""
    by_product: dict[str, list[_Order]] = {p: [] for p in store.products}
    for order in in_window:
        by_product[order.product_id].append(order)
    for listed in by_product.values():
        rng.shuffle(listed)
    chosen: list[_Order] = []
    if profile == "breached":
        best, niche = store.products[0], store.products[-1]
        on_best = max(5, math.ceil(0.03 * len(by_product[best])) + 1)
        chosen += by_product[best][:on_best]
        if len(by_product[niche]) >= 4:
            chosen += by_product[niche][:4]  # one more would delist it
        wanted = max(12, math.ceil(0.025 * len(in_window)) + 1, len(chosen) + 3)
        others = [o for p in store.products[1:-1] for o in by_product[p]]
        rng.shuffle(others)
        chosen += others[: max(0, wanted - len(chosen))]
    elif profile == "approaching":
        # Exactly 4 on at most 500 orders: one refund from the demotion line.
        pool = sorted((orders for orders in by_product.values() if len(orders) >= 4), key=len) or [
            in_window
        ]
        chosen += pool[0][:4]
    else:
        chosen += rng.sample(in_window, k=min(len(in_window), rng.randint(1, 3)))
    return chosen


def _courier(rng: random.Random) -> str:
    return rng.choices(COURIERS, weights=(5, 4, 4, 3, 3, 1))[0]


def _refund(
    write: _Writer,
    order: _Order,
    rng: random.Random,
    reason: str,
    *,
    withdrawn: bool,
    until: datetime,
) -> None:
    """One after-sale application on ``order``, requested by ``until``, and its lifecycle."""
    latest = min(until, order.paid_at + timedelta(days=8))
    requested_at = order.paid_at + timedelta(
        seconds=rng.uniform(6 * 3600, max(6 * 3600 + 60, (latest - order.paid_at).total_seconds()))
    )
    requested_at = min(requested_at, until)
    shipped = order.shipped_at is not None and order.shipped_at < requested_at
    kind = (
        rng.choice(("return_refund", "return_refund", "refund_only", "intercept"))
        if shipped
        else "refund_only_unshipped"
    )
    refund_id = f"r-{order.order_id}"
    write.add(
        "refund.requested",
        requested_at,
        refund_id=refund_id,
        order_id=order.order_id,
        kind=kind,
        reason=reason,
        product_id=order.product_id,
        sku_id=order.sku_id,
        amount=order.amount,
    )
    at = requested_at
    if rng.random() < 0.15:
        # The buyer re-words the complaint: the first reason still decides (policy basis).
        at += timedelta(hours=rng.uniform(1, 12))
        others = QUALITY_REASONS if reason in QUALITY_REASONS else OTHER_REASONS
        new_reason = rng.choice([r for r in others if r != reason])
        write.add("refund.reason_changed", at, refund_id=refund_id, reason=new_reason)
    if withdrawn:
        # Never later than now: an unwritten withdrawal would leave it pending, and counted.
        gone = min(at + timedelta(hours=rng.uniform(1, 30)), write.now)
        write.add("refund.withdrawn", max(gone, requested_at), refund_id=refund_id)
        return
    if rng.random() < 0.35:
        return  # still pending: the seller has not answered yet
    steps = ["refund.approved"]
    if kind == "return_refund":
        steps += ["refund.return_shipped", "refund.return_received"]
    steps.append("refund.succeeded")
    for step in steps:
        at += timedelta(hours=rng.uniform(2, 30))
        extra = {"courier": _courier(rng)} if step == "refund.return_shipped" else {}
        if not write.add(step, at, refund_id=refund_id, **extra):
            return  # the rest is in the future: pending today


class RoadAnswer(Protocol):
    @property
    def accepted(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def rejected(self) -> int: ...


class RoadReevaluated(Protocol):
    @property
    def alerts(self) -> Sequence[object]: ...


class RoadOutcome(Protocol):
    @property
    def answer(self) -> RoadAnswer: ...
    @property
    def reevaluated(self) -> RoadReevaluated: ...


class Road(Protocol):
    """``app.ingest.road.ingest`` (handed in by the caller: ops sits below the ingest package)."""

    async def __call__(
        self, session: AsyncSession, batch: ValidatedBatch, *, now: datetime, default_timezone: str
    ) -> RoadOutcome: ...


@dataclass(slots=True)
class DemoSummary:
    stores: list[DemoStore]
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    alerts: int = 0

    @property
    def events(self) -> int:
        return self.accepted + self.duplicates + self.rejected


async def load_demo(
    db: Database,
    road: Road,
    *,
    now: datetime,
    timezone: str,
    max_future: timedelta,
    stores: int = 8,
    days: int = 30,
    seed: int = 20261126,
) -> DemoSummary:
    """Generate the cluster and take it down the road, oldest events first."""
    cluster = demo_events(stores, days, now, timezone, seed)
    events = sorted(
        (e for store in cluster for e in store.events),
        key=lambda e: (e["occurred_at"], e["event_id"]),
    )
    summary = DemoSummary(cluster)
    for start in range(0, len(events), EVENTS_PER_TRANSACTION):
        batch = validate_batch(
            events[start : start + EVENTS_PER_TRANSACTION], now=now, max_future=max_future
        )
        async with db.transaction() as session:
            outcome = await road(session, batch, now=now, default_timezone=timezone)
        summary.accepted += outcome.answer.accepted
        summary.duplicates += outcome.answer.duplicates
        summary.rejected += outcome.answer.rejected
        summary.alerts += len(outcome.reevaluated.alerts)
    return summary
