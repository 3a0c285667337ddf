"""The event stream the bench sends: a 50-store cluster over the last 30 days, in process.

Orders are paid over 29 days, ~8% refunded with realistic kinds, reasons (~40%
quality), lifecycles, reason changes and appeals; 30% of reasons come as Chinese
labels, every ``occurred_at`` is in the past with +08:00, event ids are random
UUIDs. The same seed and size give the same stream, so runs compare.
"""

from __future__ import annotations

import bisect
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

CST = timezone(timedelta(hours=8))
N_STORES = 50
N_PRODUCTS = 200

QUALITY_REASONS = {"quality_issue", "not_as_described"}
# (code, weight %, Chinese label): ~40% quality reasons.
REASONS = [
    ("quality_issue", 28, "质量问题"),
    ("not_as_described", 12, "描述不符"),
    ("damaged", 8, "破损"),
    ("wrong_item", 5, "发错货"),
    ("missing_parts", 5, "少件/漏发"),
    ("counterfeit", 1, "假冒品牌"),
    ("changed_mind", 20, "不想要了"),
    ("ordered_by_mistake", 8, "拍错/多拍"),
    ("shipping_delay", 7, "发货慢"),
    ("lost_in_transit", 3, "快递丢件"),
    ("other", 3, "其他"),
]
KINDS = [
    ("refund_only_unshipped", 22),
    ("return_refund", 45),
    ("refund_only", 23),
    ("intercept", 10),
]
COURIERS = ["zto", "yto", "sto", "yunda", "jtexpress", "sf", "jd", "ems"]
HOUR = 3600.0
DAY = 86400.0
EVENTS_PER_ORDER = 3.05  # measured on this generator

Event = dict[str, Any]
Timed = tuple[float, Event]


@dataclass
class Stream:
    """The generated events: a ~1% sample of whole orders, then the rest in arrival order."""

    sample: list[Event]
    rest: list[Event]
    stores: list[str]
    orders: int
    refunds: int
    types: dict[str, int]
    quality_share: float
    seconds: float
    pos: int = 0

    def take(self, n: int) -> list[Event]:
        chunk = self.rest[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def give_back(self, taken: int, sent: int) -> None:
        """Return the tail of a ``take`` that a bounded run did not send."""
        self.pos -= taken - sent

    @property
    def left(self) -> int:
        return len(self.rest) - self.pos

    def summary(self) -> dict[str, Any]:
        return {
            "stores": N_STORES,
            "products_per_store": N_PRODUCTS,
            "orders": self.orders,
            "refunds": self.refunds,
            "refund_share": round(self.refunds / self.orders, 4),
            "quality_share_of_refunds": round(self.quality_share, 3),
            "events": len(self.sample) + len(self.rest),
            "sample_events": len(self.sample),
            "types": self.types,
            "generation_seconds": round(self.seconds, 1),
        }


def generate_stream(total: int, small: int, seed: int, now: datetime) -> Stream:
    """About ``total`` events of a 50-store cluster over the last 30 days.

    Orders are drawn with probability ~small/total into ``sample`` (all of an order's
    events together, so the 10k-event database also spans the whole window); the
    others go to ``rest``, sorted by arrival (occurred_at plus up to 2 minutes of
    delivery jitter, so a few events arrive out of order, as they do in life).
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    orders = _OrderGenerator(rng, now.timestamp())
    n_orders = int(total / EVENTS_PER_ORDER) + 500
    p_sample = min(1.0, small / (n_orders * EVENTS_PER_ORDER))
    sample: list[Event] = []
    keyed: list[Timed] = []
    types: Counter[str] = Counter()
    for n in range(n_orders):
        evs = orders.order(n)
        types.update(e["type"] for _, e in evs)
        if rng.random() < p_sample:
            sample.extend(e for _, e in sorted(evs, key=lambda p: p[0]))
        else:
            keyed.extend((t + rng.uniform(0.0, 120.0), e) for t, e in evs)
    keyed.sort(key=lambda p: p[0])
    return Stream(
        sample=sample,
        rest=[e for _, e in keyed],
        stores=orders.stores,
        orders=n_orders,
        refunds=orders.refunds,
        types=dict(types),
        quality_share=orders.quality / max(orders.refunds, 1),
        seconds=time.perf_counter() - t0,
    )


@dataclass
class StoreEvents:
    """One store's events in arrival order, and its products by orders (most first)."""

    store_id: str
    events: list[Event]
    orders: int
    refunds: int
    quality_refunds: int
    products: list[str]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "orders": self.orders,
            "refunds": self.refunds,
            "quality_refunds": self.quality_refunds,
            "events": len(self.events),
            "products": len(self.products),
            "top_products": self.products[:5],
            "generation_seconds": round(self.seconds, 1),
        }


def generate_store_events(store_id: str, orders: int, seed: int, now: datetime) -> StoreEvents:
    """``orders`` orders of one store paid over the last 29 days, with the stream's mix.

    The same generator as the cluster's (SKUs, couriers on ``order.shipped``,
    refunds with kinds, reasons, lifecycles and appeals), for a single big store:
    what the explaining-figure reads are measured on.
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    gen = _OrderGenerator(rng, now.timestamp())
    gen.stores, gen.store_cum = [store_id], [1.0]
    keyed: list[Timed] = []
    products: Counter[str] = Counter()
    for n in range(orders):
        evs = gen.order(n)
        for t, e in evs:
            if e["type"] == "order.paid":
                products[e["product_id"]] += 1
            keyed.append((t + rng.uniform(0.0, 120.0), e))
    keyed.sort(key=lambda p: p[0])
    return StoreEvents(
        store_id=store_id,
        events=[e for _, e in keyed],
        orders=orders,
        refunds=gen.refunds,
        quality_refunds=gen.quality,
        products=[p for p, _ in products.most_common()],
        seconds=time.perf_counter() - t0,
    )


def spread_stores(events: Sequence[Event], stores: Sequence[str], variants: int) -> list[Event]:
    """The cluster's events moved to ``variants`` stores per store: ``s001`` → ``s001-v0`` …

    An order and its refund keep one store (the variant comes from the number in
    ``order_id`` / ``refund_id``, which the generator gives both). Only the stores
    in ``stores`` are kept; product and SKU ids follow their store.
    """
    keep = set(stores)
    out: list[Event] = []
    for e in events:
        ref = e.get("order_id") or e.get("refund_id") or "x0"
        store = f"{e['store_id']}-v{int(ref[1:]) % variants}"
        if store not in keep:
            continue
        moved = {**e, "store_id": store}
        for name in ("product_id", "sku_id"):
            if name in moved:
                moved[name] = store + moved[name][len(e["store_id"]) :]
        out.append(moved)
    return out


def write_jsonl(path: Path, events: Sequence[Event]) -> int:
    """An ``events-jsonl`` import file: one event per line; returns its size in bytes."""
    with path.open("wb") as f:
        for e in events:
            f.write(orjson.dumps(e) + b"\n")
    return path.stat().st_size


def batch_bodies(events: Sequence[Event], size: int) -> list[tuple[bytes, int]]:
    """Request bodies of ``size`` events each, serialised once: (body, events in it)."""
    return [
        (orjson.dumps({"events": events[i : i + size]}), len(events[i : i + size]))
        for i in range(0, len(events), size)
    ]


def _cum(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, CST).isoformat(timespec="seconds")


class _OrderEvents:
    """One order's events with their true times; nothing at or after the horizon."""

    def __init__(self, rng: random.Random, store: str, horizon: float) -> None:
        self.rng, self.store, self.horizon = rng, store, horizon
        self.items: list[Timed] = []

    def add(self, t: float, type_: str, **fields: Any) -> bool:
        if t > self.horizon:
            return False
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.items.append(
            (
                t,
                {
                    "event_id": event_id,
                    "type": type_,
                    "store_id": self.store,
                    "occurred_at": _iso(t),
                    **fields,
                },
            )
        )
        return True


class _OrderGenerator:
    """Draws one order at a time; the order of the random draws fixes the stream for a seed."""

    def __init__(self, rng: random.Random, now_ts: float) -> None:
        self.rng = rng
        self.stores = [f"s{i:03d}" for i in range(1, N_STORES + 1)]
        self.store_cum = _cum([1.0 / (i**0.6) for i in range(1, N_STORES + 1)])  # a few big
        self.product_cum = _cum([1.0 / (k**0.9) for k in range(1, N_PRODUCTS + 1)])  # bestsellers
        self.reason_cum = _cum([w for _, w, _ in REASONS])
        self.kind_cum = _cum([w for _, w in KINDS])
        self.horizon = now_ts - 60.0  # nothing in the last minute: every event is in the past
        self.start_ts = now_ts - 29 * DAY
        self.refunds = 0
        self.quality = 0

    def order(self, n: int) -> list[Timed]:
        rng = self.rng
        store = self.stores[_pick(rng, self.store_cum)]
        product = f"{store}-p{_pick(rng, self.product_cum) + 1:03d}"
        order_id = f"o{n + 1:09d}"
        amount = f"{rng.randint(5, 399)}.{rng.choice(('00', '90', '99', '50', '80'))}"
        paid = self.start_ts + rng.random() * (self.horizon - 300.0 - self.start_ts)
        evs = _OrderEvents(rng, store, self.horizon)
        evs.add(
            paid,
            "order.paid",
            order_id=order_id,
            product_id=product,
            sku_id=f"{product}-k{rng.randint(1, 4)}",
            amount=amount,
        )
        refund = rng.random() < 0.08
        kind = KINDS[_pick(rng, self.kind_cum)][0] if refund else None
        shipped = paid + rng.uniform(2 * HOUR, 48 * HOUR)
        delivered = shipped + rng.uniform(1 * DAY, 4 * DAY)
        outcome = rng.choices(
            ("succeeded", "withdrawn", "rejected", "open"), weights=(74, 13, 8, 5)
        )[0]
        ships = not (kind == "refund_only_unshipped" and outcome == "succeeded")
        delivers = ships and not (kind == "intercept" and outcome == "succeeded")
        if ships:
            evs.add(shipped, "order.shipped", order_id=order_id, courier=rng.choice(COURIERS))
        if delivers:
            evs.add(delivered, "order.delivered", order_id=order_id)
        if kind is not None:
            times = {"paid": paid, "shipped": shipped, "delivered": delivered}
            self._refund(evs, n, order_id, product, amount, kind, outcome, times)
        return evs.items

    def _reason_value(self, code: str) -> str:
        if self.rng.random() < 0.3:
            return next(label for c, _, label in REASONS if c == code)
        return code

    def _refund(
        self,
        evs: _OrderEvents,
        n: int,
        order_id: str,
        product: str,
        amount: str,
        kind: str,
        outcome: str,
        times: dict[str, float],
    ) -> None:
        rng = self.rng
        self.refunds += 1
        refund_id = f"r{n + 1:09d}"
        code = REASONS[_pick(rng, self.reason_cum)][0]
        self.quality += code in QUALITY_REASONS
        if kind == "refund_only_unshipped":
            t = times["paid"] + rng.uniform(0.2 * HOUR, 20 * HOUR)
        elif kind == "intercept":
            t = times["shipped"] + rng.uniform(2 * HOUR, 30 * HOUR)
        else:
            t = times["delivered"] + rng.uniform(1 * HOUR, 5 * DAY)
        fields: dict[str, Any] = {
            "refund_id": refund_id,
            "order_id": order_id,
            "kind": kind,
            "reason": self._reason_value(code),
            "amount": amount,
        }
        if rng.random() < 0.7:
            fields["product_id"] = product
        ok = evs.add(t, "refund.requested", **fields)
        if ok and rng.random() < 0.04:  # the buyer changes the reason
            new = "changed_mind" if code in QUALITY_REASONS else "quality_issue"
            evs.add(
                t + rng.uniform(1 * HOUR, 24 * HOUR),
                "refund.reason_changed",
                refund_id=refund_id,
                reason=self._reason_value(new),
            )
        if ok and outcome == "succeeded":
            self._succeeded(evs, refund_id, kind, code, t)
        elif ok and outcome == "withdrawn":
            evs.add(t + rng.uniform(2 * HOUR, 72 * HOUR), "refund.withdrawn", refund_id=refund_id)
        elif ok and outcome == "rejected":
            evs.add(t + rng.uniform(12 * HOUR, 72 * HOUR), "refund.rejected", refund_id=refund_id)

    def _succeeded(self, evs: _OrderEvents, refund_id: str, kind: str, code: str, t: float) -> None:
        rng = self.rng
        ok = True
        t = t + rng.uniform(0.1 * HOUR, 24 * HOUR)
        if rng.random() < 0.9:
            ok = evs.add(t, "refund.approved", refund_id=refund_id)
        if ok and kind == "return_refund":
            t += rng.uniform(4 * HOUR, 48 * HOUR)
            ok = evs.add(
                t, "refund.return_shipped", refund_id=refund_id, courier=rng.choice(COURIERS)
            )
            t += rng.uniform(1 * DAY, 4 * DAY)
            ok = ok and evs.add(t, "refund.return_received", refund_id=refund_id)
            t += rng.uniform(1 * HOUR, 24 * HOUR)
        ok = ok and evs.add(t, "refund.succeeded", refund_id=refund_id)
        if ok and code in QUALITY_REASONS and rng.random() < 0.03:  # the seller appeals
            at = t + rng.uniform(1 * DAY, 5 * DAY)
            verdict = ("refund.appeal_upheld", "refund.appeal_rejected")
            evs.add(at, rng.choices(verdict, weights=(40, 60))[0], refund_id=refund_id)
