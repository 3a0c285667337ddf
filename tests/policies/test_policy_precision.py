"""A policy is checked as it will be stored, and a stored policy never stops ingest.

warn_ratio is kept as Numeric(8, 6): 0.9999999 would come back as 1, which no
judge accepts. So values with more places than are kept are refused, and what is
answered is exactly what every later read gives. A row written by hand (or before
the check) with a value out of range is judged by the nearest valid one, with a
warning: the events of its stores still go in.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.db.engine import Database
from app.policies import rules
from app.policies.models import Policy
from app.policies.rules import policy_rules
from tests.policies.test_policies_api import create_policy, policy_body, use_policy, with_demotion
from tests.support import assert_problem, build_store, metrics, paid, post_events


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"warn_ratio": "0.9999999"}, "body.warn_ratio"),
        ({"warn_ratio": "0.0000001"}, "body.warn_ratio"),
        ({"warn_ratio": 0.99999999}, "body.warn_ratio"),
        ({"tiers": with_demotion(rate_threshold="0.0000001")}, "body.tiers.0.rate_threshold"),
        ({"tiers": with_demotion(rate_threshold="0.0100001")}, "body.tiers.0.rate_threshold"),
        ({"tiers": with_demotion(rate_threshold="1E-999999999")}, "body.tiers.0.rate_threshold"),
        ({"tiers": with_demotion(rate_threshold="NaN")}, "body.tiers.0.rate_threshold"),
    ],
)
async def test_more_places_than_are_kept_are_refused_not_rounded(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    for response in (
        await client.post("/v1/policies", json=policy_body(**changes)),
        await client.put("/v1/policies/1", json=policy_body(name="default", **changes)),
    ):
        body = assert_problem(response, 422, "validation_error")
        assert field in [e["field"] for e in body["errors"]], body
    assert len((await client.get("/v1/policies")).json()["items"]) == 1


async def test_a_policy_is_answered_as_every_later_read_gives_it(
    client: httpx.AsyncClient,
) -> None:
    created = await create_policy(
        client,
        warn_ratio="0.999999",
        tiers=with_demotion(rate_threshold="0.010", min_count=1),
    )
    assert created["warn_ratio"] == "0.999999"
    assert created["tiers"][0]["rate_threshold"] == "0.01"
    read = (await client.get(f"/v1/policies/{created['id']}")).json()
    assert {k: read[k] for k in ("warn_ratio", "tiers")} == {
        k: created[k] for k in ("warn_ratio", "tiers")
    }
    await build_store(client, "s1", 10, 0)
    await use_policy(client, "s1", created["id"])
    body = await post_events(client, [paid("late", store="s1")])
    assert body["accepted"] == 1


async def _store_by_hand(app: FastAPI, policy_id: int, **values: Any) -> None:
    db: Database = app.state.db
    async with db.transaction() as session:
        await session.execute(update(Policy).where(Policy.id == policy_id).values(**values))


async def test_a_stored_policy_out_of_range_still_takes_events(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    policy = await create_policy(client, name="hand-edited")
    await build_store(client, "s1", 100, 2)
    await use_policy(client, "s1", policy["id"])
    await _store_by_hand(
        app,
        policy["id"],
        warn_ratio=Decimal("1"),
        min_orders=-5,
        tiers=[
            {"tier": "demotion", "scope": "store", "rate_threshold": "1.5", "min_count": 0},
            {"tier": "listing_ban", "scope": "store", "rate_threshold": "a lot", "min_count": 3},
            {"tier": "shadow_ban", "scope": "store", "rate_threshold": "0.01", "min_count": 3},
        ],
    )
    # Each distinct stored value is warned about once per process: start afresh.
    rules._rules.cache_clear()
    rules._warn.cache_clear()
    with caplog.at_level(logging.WARNING, logger="refundwatch.policies"):
        body = await post_events(client, [paid("after-the-edit", store="s1")])
    assert body["accepted"] == 1
    figures = await metrics(client, "s1")
    assert figures["orders"] == 101
    # The unreadable lines are left out; the one out of range is judged at its nearest.
    assert [(t["tier"], t["rate_threshold"], t["min_count"]) for t in figures["tiers"]] == [
        ("demotion", "1", 1)
    ]
    assert any("out of range" in r.getMessage() for r in caplog.records)


def test_the_rules_of_a_stored_policy_are_brought_into_range() -> None:
    rules = policy_rules(
        policy_id=9,
        window_days=0,
        quality_reasons=["quality_issue"],
        reason_basis="first",
        warn_ratio=Decimal("1"),
        warn_headroom=-1,
        min_orders=-1,
        reminder_interval_seconds=60,
        tiers=[
            {"tier": "delisting", "scope": "product", "rate_threshold": "0", "min_count": -3},
            {"tier": "demotion", "scope": "store", "rate_threshold": "Infinity", "min_count": 5},
        ],
    )
    assert rules.window_days == 1
    assert rules.warn.warn_ratio == Decimal("0.999999")
    assert (rules.warn.warn_headroom, rules.warn.min_orders) == (0, 0)
    assert [(t.tier, t.rate_threshold, t.min_count) for t in rules.tiers] == [
        ("delisting", Decimal("0.000001"), 1)
    ]
