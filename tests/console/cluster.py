"""A store cluster with history, for the console's tests and its screenshots.

Deterministic from a seed: each store gets a profile (its quality-refund rate over time, so
some are breached, some approaching, some calm, one rising, one falling) and daily orders over
``days`` days up to :data:`tests.conftest.NOW`, each with a product, a courier, and sometimes
a refund (quality or not) that is by now succeeded, withdrawn, rejected, or still open.
Events are built with :mod:`tests.support` and go in through ``POST /v1/events``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.conftest import NOW
from tests.support import paid, post_events, refund_event, requested

COURIERS = ("中通快递", "圆通速递", "韵达快递", "极兔速递", "顺丰速运")


@dataclass(frozen=True)
class Profile:
    """A store's quality-refund rate ``days`` ago (``start``) and today (``end``)."""

    store_id: str
    name: str
    start: float
    end: float
    orders_per_day: int
    hot_product: bool = False


PROFILES = (
    Profile("pdd-home-01", "家居优选旗舰店", 0.012, 0.026, 40, hot_product=True),
    Profile("pdd-kids-02", "童鞋专营店", 0.008, 0.0145, 36),
    Profile("pdd-cup-03", "保温杯工厂店", 0.013, 0.013, 30),
    Profile("pdd-tee-04", "纯棉T恤店", 0.004, 0.0135, 34),
    Profile("pdd-bed-05", "四件套直销", 0.022, 0.005, 32),
    Profile("pdd-case-06", "手机壳批发", 0.003, 0.003, 44),
    Profile("pdd-tea-07", "茶叶小铺", 0.002, 0.002, 18),
    Profile("pdd-pet-08", "宠物用品店", 0.005, 0.005, 26),
    Profile("pdd-toy-09", "益智玩具店", 0.001, 0.002, 22),
    Profile("pdd-bag-10", "箱包配饰店", 0.004, 0.006, 28),
    Profile("pdd-shoe-11", "运动鞋专营", 0.006, 0.004, 30),
    Profile("pdd-lamp-12", "灯具照明店", 0.0, 0.0, 12),
)


def _at(moment: datetime) -> str:
    return moment.isoformat()


def store_events(
    profile: Profile, *, days: int, rng: random.Random, scale: float = 1.0
) -> Iterator[dict[str, Any]]:
    """One store's events over ``days`` days up to NOW (none in the future)."""
    store = profile.store_id
    first = NOW - timedelta(days=days)
    serial = 0
    for day in range(days + 1):
        share = day / max(1, days)
        rate = profile.start + (profile.end - profile.start) * share
        count = max(1, round(profile.orders_per_day * scale * rng.uniform(0.8, 1.2)))
        for _ in range(count):
            serial += 1
            at = first + timedelta(days=day, seconds=rng.randrange(0, 86400))
            if at > NOW - timedelta(hours=1):
                continue
            order = f"{store}-o{serial}"
            product = (
                "p1" if profile.hot_product and rng.random() < 0.35 else f"p{rng.randrange(1, 7)}"
            )
            yield paid(
                order,
                product=product,
                at=_at(at),
                store=store,
                sku_id=f"{product}-s{rng.randrange(1, 4)}",
            )
            shipped = at + timedelta(hours=rng.uniform(3, 70))
            if shipped < NOW:
                yield _event_shipped(order, shipped, store, rng.choice(COURIERS))
            quality_rate = rate * (2.5 if profile.hot_product and product == "p1" else 1.0)
            roll = rng.random()
            if roll < quality_rate:
                reason = rng.choice(("quality_issue", "quality_issue", "not_as_described"))
            elif roll < quality_rate + 0.01:
                reason = rng.choice(("changed_mind", "shipping_delay", "damaged"))
            else:
                continue
            asked = at + timedelta(hours=rng.uniform(20, 96))
            if asked >= NOW:
                continue
            refund = f"{store}-r{serial}"
            kind = rng.choice(("refund_only", "return_refund", "refund_only_unshipped"))
            yield requested(
                refund,
                order,
                reason=reason,
                at=_at(asked),
                store=store,
                kind=kind,
                product_id=product,
            )
            settled = asked + timedelta(hours=rng.uniform(10, 120))
            if settled >= NOW:
                continue  # still open: it can be turned
            outcome = rng.random()
            if outcome < 0.12:
                yield refund_event("withdrawn", refund, at=_at(settled), store=store)
            elif outcome < 0.18:
                yield refund_event("rejected", refund, at=_at(settled), store=store)
            elif outcome < 0.9:
                yield refund_event("succeeded", refund, at=_at(settled), store=store)


def _event_shipped(order: str, at: datetime, store: str, courier: str) -> dict[str, Any]:
    return {
        "event_id": f"{store}:{order}:shipped",
        "type": "order.shipped",
        "store_id": store,
        "occurred_at": _at(at),
        "order_id": order,
        "courier": courier,
    }


def cluster_events(
    *, stores: int = len(PROFILES), days: int = 120, scale: float = 1.0, seed: int = 12
) -> list[dict[str, Any]]:
    """Every event of the first ``stores`` profiles."""
    events: list[dict[str, Any]] = []
    for profile in PROFILES[:stores]:
        # One generator per store: tuning one profile leaves the others' events alone.
        rng = random.Random(f"{seed}:{profile.store_id}")
        events.extend(store_events(profile, days=days, rng=rng, scale=scale))
    return events


async def load_cluster(
    client: httpx.AsyncClient,
    *,
    stores: int = len(PROFILES),
    days: int = 120,
    scale: float = 1.0,
    names: bool = True,
) -> list[Profile]:
    """Post the cluster through the API (batches of 1000) and name its stores."""
    events = cluster_events(stores=stores, days=days, scale=scale)
    for index in range(0, len(events), 1000):
        answer = await post_events(client, events[index : index + 1000])
        assert answer["rejected"] == 0, answer
    chosen = list(PROFILES[:stores])
    if names:
        for profile in chosen:
            response = await client.patch(
                f"/v1/stores/{profile.store_id}", json={"name": profile.name}
            )
            assert response.status_code == 200, response.text
    return chosen
