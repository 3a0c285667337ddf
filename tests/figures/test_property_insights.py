"""The explaining figures equal a recomputation from raw events, on both databases.

Random, shuffled, duplicated streams (SKUs, couriers, shipping delays in every
band, reason changes, withdrawals, appeals, refunds before orders) go through
``POST /v1/events``; then every SKU figure, every breakdown item for all four
``by`` values (store and product), every ``trend`` and every ``count_clears_on``
of ``/metrics``, ``/products``, ``/skus`` and ``/v1/risk`` must equal the oracle
(tests/oracle.py), for two as_of days.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import oracle
from tests.figures.test_property_figures import (
    AS_OF_DAYS,
    example_of,
    on_postgres,
    on_sqlite,
    send_in_batches,
)

_SCALE = 4 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 1
EXAMPLES = (12 * _SCALE, 8 * _SCALE)
FIGURES = ("orders", "quality_refunds", "applied_quality_refunds", "pending_quality_refunds")
TODAY = AS_OF_DAYS[0]


def _clears(tiers: list[dict[str, Any]], events: list[dict[str, Any]], **scope: Any) -> None:
    for tier in tiers:
        if tier["state"] == "breached":
            want = oracle.count_clears_on(events, min_count=tier["min_count"], **scope)
            assert tier["count_clears_on"] == (want.isoformat() if want else None), (tier, scope)
        else:
            assert tier["count_clears_on"] is None, tier


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _check_store_day(
    client: httpx.AsyncClient, events: list[dict[str, Any]], store: str, day: date
) -> None:
    scope = {"store_id": store, "as_of": day}
    metrics = await _get(client, f"/v1/stores/{store}/metrics", as_of=day.isoformat())
    assert metrics["trend"] == oracle.trend(events, **scope)
    _clears(metrics["tiers"], events, **scope)

    products = (
        await _get(client, f"/v1/stores/{store}/products", as_of=day.isoformat(), limit=500)
    )["items"]
    for product in products:
        pid = product["product_id"]
        assert product["trend"] == oracle.trend(events, product_id=pid, **scope), pid
        _clears(product["tiers"], events, product_id=pid, **scope)
        skus = (
            await _get(
                client, f"/v1/stores/{store}/products/{pid}/skus", as_of=day.isoformat(), limit=500
            )
        )["items"]
        want = oracle.sku_figures(events, product_id=pid, **scope)
        got = {s["sku_id"]: {k: s[k] for k in (*FIGURES, "quality_refund_rate")} for s in skus}
        assert got == {
            sku: {k: getattr(f, k) for k in (*FIGURES, "quality_refund_rate")}
            for sku, f in want.items()
        }, (pid, day)
        for sku in skus:
            assert sku["trend"] == oracle.trend(
                events, product_id=pid, sku_id=sku["sku_id"], **scope
            ), (pid, sku["sku_id"])

    for by in ("courier", "ship_hours", "reason", "kind"):
        for product_id in (None, *(p["product_id"] for p in products[:2])):
            params: dict[str, Any] = {"by": by, "as_of": day.isoformat()}
            if product_id is not None:
                params["product_id"] = product_id
            body = await _get(client, f"/v1/stores/{store}/breakdown", **params)
            assert body["items"] == oracle.breakdown(
                events, by=by, product_id=product_id, **scope
            ), (by, product_id, day)


# Low lines, so that generated streams breach tiers and count_clears_on is exercised.
LOW_LINES = {
    "name": "default",
    "tiers": [
        {"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 1},
        {"tier": "listing_ban", "scope": "store", "rate_threshold": "0.02", "min_count": 2},
        {"tier": "delisting", "scope": "product", "rate_threshold": "0.03", "min_count": 1},
    ],
}


async def check_insights(client: httpx.AsyncClient, data: st.DataObject) -> None:
    response = await client.put("/v1/policies/1", json=LOW_LINES)
    assert response.status_code == 200, response.text
    events, stream, sizes, stores = example_of(data)
    await send_in_batches(client, stream, sizes)
    for store in stores:
        if (await client.get(f"/v1/stores/{store}")).status_code == 404:
            continue  # every event of this store was a refund without a request
        for day in AS_OF_DAYS:
            await _check_store_day(client, events, store, day)
    risk = (await _get(client, "/v1/risk", limit=500))["items"]
    for item in risk:
        if item["store_id"] not in stores:
            continue  # an earlier example's store
        scope = {"store_id": item["store_id"], "as_of": TODAY, "product_id": item["product_id"]}
        assert item["trend"] == oracle.trend(events, **scope), item
        if item["state"] == "breached":
            want = oracle.count_clears_on(events, min_count=item["min_count"], **scope)
            assert item["count_clears_on"] == (want.isoformat() if want else None), item


@on_sqlite
@settings(max_examples=EXAMPLES[0])
@given(data=st.data())
async def test_the_explaining_figures_equal_a_recomputation_sqlite(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_insights(client, data)


@on_postgres
@settings(max_examples=EXAMPLES[1])
@given(data=st.data())
async def test_the_explaining_figures_equal_a_recomputation_postgres(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_insights(client, data)
