"""Small builders for events, so tests read like the story they tell."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def _event(type_: str, at: str, store: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": fields.pop("event_id", None) or f"ev-{next(_ids)}",
        "type": type_,
        "store_id": store,
        "occurred_at": at,
        **{k: v for k, v in fields.items() if v is not None},
    }


def paid(
    order: str,
    product: str = "p1",
    at: str = "2026-11-25T10:00:00+08:00",
    store: str = "s1",
    **kw: Any,
) -> dict[str, Any]:
    return _event("order.paid", at, store, order_id=order, product_id=product, **kw)


def requested(
    refund: str,
    order: str,
    reason: str = "quality_issue",
    at: str = "2026-11-25T12:00:00+08:00",
    store: str = "s1",
    kind: str = "refund_only",
    **kw: Any,
) -> dict[str, Any]:
    return _event(
        "refund.requested",
        at,
        store,
        refund_id=refund,
        order_id=order,
        kind=kind,
        reason=reason,
        **kw,
    )


def refund_event(
    type_: str, refund: str, at: str = "2026-11-25T15:00:00+08:00", store: str = "s1", **kw: Any
) -> dict[str, Any]:
    return _event(f"refund.{type_}", at, store, refund_id=refund, **kw)
