"""Pins the reference oracle (tests/oracle.py) to DESIGN.md §3, and checks its strategies."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from tests.oracle import (
    OracleFigures,
    OraclePolicy,
    breakdown,
    count_clears_on,
    figures,
    format_rate,
    normalize_reason,
    products_with_data,
    sku_figures,
    tier_count,
    time_then_id,
    trend,
)
from tests.strategies import LATEST_EXCLUSIVE, event_streams, shuffled_with_duplicates

AS_OF = date(2026, 11, 20)
_ids = itertools.count()


def ev(type_: str, at: str, store: str = "s1", event_id: str | None = None, **fields: Any):
    """One event dict as sent to the API."""
    return {
        "event_id": event_id or f"t{next(_ids):06d}",
        "type": type_,
        "store_id": store,
        "occurred_at": at,
        **fields,
    }


def paid(order: str, at: str, product: str = "p1", **kw: Any):
    return ev("order.paid", at, order_id=order, product_id=product, **kw)


def requested(
    refund: str,
    order: str,
    at: str,
    reason: str = "quality_issue",
    kind: str = "refund_only",
    **kw: Any,
):
    return ev(
        "refund.requested",
        at,
        refund_id=refund,
        order_id=order,
        kind=kind,
        reason=reason,
        **kw,
    )


def stage(type_: str, refund: str, at: str, **kw: Any):
    return ev(f"refund.{type_}", at, refund_id=refund, **kw)


def shipped(order: str, at: str, courier: str | None = None, **kw: Any):
    if courier is not None:
        kw["courier"] = courier
    return ev("order.shipped", at, order_id=order, **kw)


def fig(events, **kw: Any) -> OracleFigures:
    kw.setdefault("store_id", "s1")
    kw.setdefault("as_of", AS_OF)
    return figures(events, **kw)


def counts(f: OracleFigures) -> tuple[int, int, int, int]:
    return (f.orders, f.quality_refunds, f.applied_quality_refunds, f.pending_quality_refunds)


# --- orders ---------------------------------------------------------------------------


def test_orders_count_distinct_orders_paid_in_window() -> None:
    events = [
        paid("o1", "2026-11-20T10:00:00+08:00"),
        paid("o2", "2026-10-22T10:00:00+08:00"),  # first day of a 30-day window ending 11-20
        paid("o3", "2026-10-21T10:00:00+08:00"),  # one day too old
        paid("o4", "2026-11-21T10:00:00+08:00"),  # after as_of
    ]
    f = fig(events)
    assert counts(f) == (2, 0, 0, 0)
    assert f.quality_refund_rate == "0.000000"
    assert fig([]).quality_refund_rate is None


def test_latest_order_paid_wins_with_its_day_and_product() -> None:
    events = [
        paid("o1", "2026-11-10T10:00:00+08:00", product="p1"),
        paid("o1", "2026-11-25T10:00:00+08:00", product="p2"),
    ]
    # The later order.paid puts the order on 11-25, outside a window ending 11-20.
    assert fig(events).orders == 0
    assert fig(events, as_of=date(2026, 11, 25)).orders == 1
    assert fig(events, as_of=date(2026, 11, 25), product_id="p2").orders == 1
    assert fig(events, as_of=date(2026, 11, 25), product_id="p1").orders == 0


def test_order_paid_tie_goes_to_greater_event_id() -> None:
    # The same instant written in two offsets: a tie, broken by the greater event_id.
    events = [
        paid("o1", "2026-11-20T12:00:00+08:00", product="p1", event_id="b"),
        paid("o1", "2026-11-20T04:00:00Z", product="p2", event_id="a"),
    ]
    assert fig(events, product_id="p1").orders == 1
    assert fig(events, product_id="p2").orders == 0


def test_days_are_taken_in_the_store_time_zone() -> None:
    # 00:30 in Shanghai on 11-21 is still 11-20 in UTC.
    events = [paid("o1", "2026-11-21T00:30:00+08:00")]
    one_day = OraclePolicy(window_days=1)
    assert fig(events, as_of=date(2026, 11, 21), policy=one_day).orders == 1
    assert fig(events, as_of=date(2026, 11, 20), policy=one_day).orders == 0
    assert fig(events, as_of=date(2026, 11, 20), policy=one_day, tz="UTC").orders == 1
    assert fig(events, as_of=date(2026, 11, 21), policy=one_day, tz="UTC").orders == 0

    # 23:30 at -05:00 on 11-20 is already 11-21 in Shanghai (and in UTC).
    late = [paid("o2", "2026-11-20T23:30:00-05:00")]
    assert fig(late, as_of=date(2026, 11, 21), policy=one_day).orders == 1
    assert fig(late, as_of=date(2026, 11, 20), policy=one_day, tz="America/New_York").orders == 1

    # 23:30+08:00 is on that Shanghai day.
    evening = [paid("o3", "2026-11-20T23:30:00+08:00")]
    assert fig(evening, as_of=date(2026, 11, 20), policy=one_day).orders == 1
    assert (
        fig(evening, as_of=date(2026, 11, 20), policy=one_day, tz="Pacific/Kiritimati").orders == 0
    )


# --- when a refund counts ---------------------------------------------------------------


def test_refund_counts_only_once_its_requested_event_arrived() -> None:
    order = paid("o1", "2026-11-18T09:00:00+08:00")
    succeeded = stage("succeeded", "r1", "2026-11-19T09:00:00+08:00")
    req = requested("r1", "o1", "2026-11-18T20:00:00+08:00")
    assert counts(fig([order, succeeded])) == (1, 0, 0, 0)
    # Arrival order does not matter once both are in.
    assert counts(fig([order, succeeded, req])) == (1, 1, 1, 0)
    assert counts(fig([req, order, succeeded])) == (1, 1, 1, 0)


def test_refund_day_is_the_requested_day_not_the_outcome_day() -> None:
    events = [
        requested("r1", "o1", "2026-11-19T23:59:00+08:00"),
        stage("succeeded", "r1", "2026-11-21T10:00:00+08:00"),
    ]
    one_day = OraclePolicy(window_days=1)
    assert fig(events, as_of=date(2026, 11, 19), policy=one_day).quality_refunds == 1
    assert fig(events, as_of=date(2026, 11, 21), policy=one_day).quality_refunds == 0


def test_earliest_requested_gives_day_order_and_product() -> None:
    events = [
        requested("r1", "o1", "2026-11-15T10:00:00+08:00", product_id="p1"),
        requested("r1", "o9", "2026-11-19T10:00:00+08:00", product_id="p2"),
    ]
    one_day = OraclePolicy(window_days=1)
    assert fig(events, as_of=date(2026, 11, 15), policy=one_day).quality_refunds == 1
    assert fig(events, as_of=date(2026, 11, 19), policy=one_day).quality_refunds == 0
    assert fig(events, product_id="p1").quality_refunds == 1
    assert fig(events, product_id="p2").quality_refunds == 0


def test_withdrawn_and_rejected_leave_the_count_but_stay_applied() -> None:
    base = [paid("o1", "2026-11-10T10:00:00+08:00"), requested("r1", "o1", "2026-11-12T10:00:00Z")]
    assert counts(fig(base)) == (1, 1, 1, 1)
    assert counts(fig([*base, stage("withdrawn", "r1", "2026-11-13T10:00:00Z")])) == (1, 0, 1, 0)
    assert counts(fig([*base, stage("rejected", "r1", "2026-11-13T10:00:00Z")])) == (1, 0, 1, 0)


def test_latest_lifecycle_event_wins_and_ties_go_to_the_later_stage() -> None:
    base = [requested("r1", "o1", "2026-11-12T10:00:00+08:00")]
    # Withdrawn and then a later succeeded: succeeded is the latest, so it counts again.
    events = [
        *base,
        stage("withdrawn", "r1", "2026-11-13T10:00:00+08:00"),
        stage("succeeded", "r1", "2026-11-14T10:00:00+08:00"),
    ]
    assert fig(events).quality_refunds == 1
    # Same instant (two offsets): rejected is a later stage than succeeded.
    tie = [
        *base,
        stage("succeeded", "r1", "2026-11-13T10:00:00+08:00", event_id="zzz"),
        stage("rejected", "r1", "2026-11-13T02:00:00Z", event_id="aaa"),
    ]
    assert fig(tie).quality_refunds == 0
    # Same instant: succeeded beats approved, so the refund is no longer pending.
    tie2 = [
        *base,
        stage("approved", "r1", "2026-11-13T10:00:00+08:00"),
        stage("succeeded", "r1", "2026-11-13T10:00:00+08:00"),
    ]
    assert counts(fig(tie2)) == (0, 1, 1, 0)
    # A lifecycle event dated before the request: the request itself is the latest.
    early = [*base, stage("withdrawn", "r1", "2026-11-11T10:00:00+08:00")]
    assert counts(fig(early)) == (0, 1, 1, 1)
    # requested vs withdrawn at the same instant: withdrawn is the later stage.
    same = [*base, stage("withdrawn", "r1", "2026-11-12T10:00:00+08:00")]
    assert fig(same).quality_refunds == 0


def test_appeal_upheld_excludes_and_the_latest_appeal_decides() -> None:
    base = [
        requested("r1", "o1", "2026-11-12T10:00:00+08:00"),
        stage("succeeded", "r1", "2026-11-13T10:00:00+08:00"),
    ]
    upheld = stage("appeal_upheld", "r1", "2026-11-15T10:00:00+08:00")
    assert counts(fig([*base, upheld])) == (0, 0, 1, 0)
    overturned = stage("appeal_rejected", "r1", "2026-11-16T10:00:00+08:00")
    assert counts(fig([*base, upheld, overturned])) == (0, 1, 1, 0)
    # Appeal ties: the greater event_id wins.
    tie = [
        *base,
        stage("appeal_upheld", "r1", "2026-11-15T10:00:00+08:00", event_id="x2"),
        stage("appeal_rejected", "r1", "2026-11-15T10:00:00+08:00", event_id="x1"),
    ]
    assert fig(tie).quality_refunds == 0
    # Appeal events are not lifecycle events: an upheld appeal on an open refund.
    assert counts(fig([base[0], upheld])) == (0, 0, 1, 0)


def test_pending_until_the_refund_succeeds() -> None:
    events = [
        paid("o1", "2026-11-10T10:00:00+08:00"),
        requested("r1", "o1", "2026-11-12T10:00:00Z"),
    ]
    assert fig(events).pending_quality_refunds == 1
    events.append(stage("approved", "r1", "2026-11-12T11:00:00Z"))
    events.append(stage("return_shipped", "r1", "2026-11-13T11:00:00Z"))
    events.append(stage("return_received", "r1", "2026-11-14T11:00:00Z"))
    assert counts(fig(events)) == (1, 1, 1, 1)
    events.append(stage("succeeded", "r1", "2026-11-15T11:00:00Z"))
    assert counts(fig(events)) == (1, 1, 1, 0)


def test_pending_needs_all_counted_quality_refunds_of_the_order_open() -> None:
    events = [
        requested("r1", "o1", "2026-11-12T10:00:00+08:00"),
        requested("r2", "o1", "2026-11-13T10:00:00+08:00"),
        stage("succeeded", "r2", "2026-11-14T10:00:00+08:00"),
    ]
    assert counts(fig(events)) == (0, 1, 1, 0)
    # A withdrawn refund is not counted, so it does not stop the order being pending.
    events[2] = stage("withdrawn", "r2", "2026-11-14T10:00:00+08:00")
    assert counts(fig(events)) == (0, 1, 1, 1)
    # A non-quality refund on the order does not matter either.
    events.append(requested("r3", "o1", "2026-11-13T10:00:00+08:00", reason="changed_mind"))
    events.append(stage("succeeded", "r3", "2026-11-14T10:00:00+08:00"))
    assert counts(fig(events)) == (0, 1, 1, 1)


def test_two_quality_refunds_on_one_order_count_once_on_the_earliest_day() -> None:
    events = [
        paid("o1", "2026-11-01T10:00:00+08:00"),
        requested("r1", "o1", "2026-11-10T10:00:00+08:00"),
        requested("r2", "o1", "2026-11-12T10:00:00+08:00", reason="描述不符"),
    ]
    two_days = OraclePolicy(window_days=2)
    assert counts(fig(events)) == (1, 1, 1, 1)
    assert fig(events, as_of=date(2026, 11, 11), policy=two_days).quality_refunds == 1
    assert fig(events, as_of=date(2026, 11, 12), policy=two_days).quality_refunds == 0
    # r1 withdrawn: the earliest *counted* one is now r2 (day 11-12); applied stays on 11-10.
    events.append(stage("withdrawn", "r1", "2026-11-13T10:00:00+08:00"))
    on_12 = fig(events, as_of=date(2026, 11, 12), policy=two_days)
    on_11 = fig(events, as_of=date(2026, 11, 11), policy=two_days)
    assert (on_12.quality_refunds, on_12.applied_quality_refunds) == (1, 0)
    assert (on_11.quality_refunds, on_11.applied_quality_refunds) == (0, 1)


def test_non_quality_refunds_do_not_count_anywhere() -> None:
    events = [
        paid("o1", "2026-11-10T10:00:00+08:00"),
        requested("r1", "o1", "2026-11-12T10:00:00+08:00", reason="changed_mind"),
        requested("r2", "o1", "2026-11-12T11:00:00+08:00", reason="七天无理由"),
    ]
    assert counts(fig(events)) == (1, 0, 0, 0)
    custom = OraclePolicy(quality_reasons=frozenset({"changed_mind"}))
    assert counts(fig(events, policy=custom)) == (1, 1, 1, 1)


# --- reasons -----------------------------------------------------------------------------


def test_reason_basis_first_vs_latest() -> None:
    events = [
        requested("r1", "o1", "2026-11-12T10:00:00+08:00", reason="changed_mind"),
        stage("reason_changed", "r1", "2026-11-13T10:00:00+08:00", reason="质量问题"),
    ]
    latest = OraclePolicy(reason_basis="latest")
    assert fig(events).quality_refunds == 0
    assert fig(events, policy=latest).quality_refunds == 1
    events.append(stage("reason_changed", "r1", "2026-11-14T10:00:00+08:00", reason="其他"))
    assert fig(events, policy=latest).quality_refunds == 0
    # Ties among reason-carrying events: the greater event_id is the later one.
    tie = [
        requested("r2", "o2", "2026-11-12T10:00:00+08:00", reason="quality_issue", event_id="k1"),
        stage("reason_changed", "r2", "2026-11-12T02:00:00Z", reason="other", event_id="k2"),
    ]
    assert fig(tie).quality_refunds == 1
    assert fig(tie, policy=latest).quality_refunds == 0


def test_reason_first_means_earliest_reason_event_even_before_the_request() -> None:
    # Literal DESIGN rule: "the reason of its earliest event that carries a reason".
    events = [
        stage("reason_changed", "r1", "2026-11-11T10:00:00+08:00", reason="quality_issue"),
        requested("r1", "o1", "2026-11-12T10:00:00+08:00", reason="changed_mind"),
    ]
    assert fig(events).quality_refunds == 1
    assert fig(events, policy=OraclePolicy(reason_basis="latest")).quality_refunds == 0


def test_reason_labels_normalize() -> None:
    assert normalize_reason("质量问题") == "quality_issue"
    assert normalize_reason("描述不符") == "not_as_described"
    assert normalize_reason("少件/漏发") == "missing_parts"
    assert normalize_reason("拍错/多拍") == "ordered_by_mistake"
    assert normalize_reason("not_as_described") == "not_as_described"
    with pytest.raises(ValueError):
        normalize_reason("broken")


# --- scope --------------------------------------------------------------------------------


def test_product_scope() -> None:
    events = [
        # o1: product from its order.paid, whatever the refund says.
        paid("o1", "2026-11-10T10:00:00+08:00", product="p1"),
        requested("r1", "o1", "2026-11-12T10:00:00+08:00", product_id="p2"),
        # o2: no order.paid: product from the earliest refund.requested naming one.
        requested("r2a", "o2", "2026-11-11T10:00:00+08:00"),
        requested("r2b", "o2", "2026-11-13T10:00:00+08:00", product_id="p3"),
        requested("r2c", "o2", "2026-11-12T10:00:00+08:00", product_id="p2"),
        # o3: no product at all: store scope only.
        requested("r3", "o3", "2026-11-12T10:00:00+08:00"),
    ]
    assert counts(fig(events)) == (1, 3, 3, 3)
    assert counts(fig(events, product_id="p1")) == (1, 1, 1, 1)
    assert counts(fig(events, product_id="p2")) == (0, 1, 1, 1)
    assert counts(fig(events, product_id="p3")) == (0, 0, 0, 0)
    assert fig(events, product_id="p1").quality_refund_rate == "1.000000"
    assert fig(events, product_id="p2").quality_refund_rate is None
    assert set(products_with_data(events, store_id="s1", as_of=AS_OF)) == {"p1", "p2"}


def test_products_with_data_skips_products_without_figures_in_the_window() -> None:
    events = [
        paid("o1", "2026-11-10T10:00:00+08:00", product="p1"),
        paid("o2", "2026-09-10T10:00:00+08:00", product="p2"),
    ]
    result = products_with_data(events, store_id="s1", as_of=AS_OF)
    assert result == {"p1": OracleFigures(1, 0, 0, 0, "0.000000")}


def test_other_stores_are_ignored_and_ids_are_per_store() -> None:
    events = [
        paid("o1", "2026-11-10T10:00:00+08:00"),
        ev("order.paid", "2026-11-10T10:00:00+08:00", store="s2", order_id="o1", product_id="p1"),
        ev(
            "refund.requested",
            "2026-11-12T10:00:00+08:00",
            store="s2",
            refund_id="r1",
            order_id="o1",
            kind="return_refund",
            reason="quality_issue",
        ),
        requested("r1", "o1", "2026-11-12T10:00:00+08:00", reason="other"),
    ]
    assert counts(fig(events)) == (1, 0, 0, 0)
    assert counts(fig(events, store_id="s2")) == (1, 1, 1, 1)
    assert counts(fig(events, store_id="nobody")) == (0, 0, 0, 0)


def test_exact_resends_are_counted_once() -> None:
    order = paid("o1", "2026-11-10T10:00:00+08:00")
    other = paid("o2", "2026-11-10T10:00:00+08:00")
    req = requested("r1", "o1", "2026-11-12T10:00:00+08:00")
    assert counts(fig([order, req, dict(order), other, dict(req)])) == (2, 1, 1, 1)


# --- the rate -----------------------------------------------------------------------------


def test_rate_rounding() -> None:
    assert format_rate(1, 65) == "0.015385"
    assert format_rate(5, 400) == "0.012500"
    assert format_rate(0, 7) == "0.000000"
    assert format_rate(2, 1) == "2.000000"
    assert format_rate(1, 0) is None
    # Half-even on an exact tie in the 7th decimal.
    assert format_rate(1, 2_000_000) == "0.000000"
    assert format_rate(3, 2_000_000) == "0.000002"
    assert format_rate(5, 2_000_000) == "0.000002"


def test_rate_from_events_1_of_65() -> None:
    events = [paid(f"o{i}", "2026-11-15T10:00:00+08:00") for i in range(65)]
    events.append(requested("r1", "o7", "2026-11-16T10:00:00+08:00"))
    assert fig(events).quality_refund_rate == "0.015385"


# --- count_basis (DESIGN §13) -------------------------------------------------------------


def test_count_basis_picks_the_count_the_tiers_judge_and_leaves_the_figures_alone() -> None:
    events = [
        paid("o1", "2026-11-10T10:00:00+08:00"),
        paid("o2", "2026-11-10T10:00:00+08:00"),
        requested("r1", "o1", "2026-11-12T10:00:00+08:00"),
        stage("withdrawn", "r1", "2026-11-13T10:00:00+08:00"),
        requested("r2", "o2", "2026-11-12T10:00:00+08:00"),
        stage("succeeded", "r2", "2026-11-13T10:00:00+08:00"),
    ]
    counted = OraclePolicy()
    applied = OraclePolicy(count_basis="applied")
    assert counted.count_basis == "counted"
    f = fig(events)
    assert fig(events, policy=applied) == f == OracleFigures(2, 1, 2, 0, "0.500000")
    assert tier_count(f, counted) == 1
    assert tier_count(f, applied) == 2


# --- SKU scope (DESIGN §13) ---------------------------------------------------------------


def test_sku_figures() -> None:
    events = [
        # o1: sku from its order.paid, whatever its refund names.
        paid("o1", "2026-11-10T10:00:00+08:00", sku_id="sku-a"),
        requested("r1", "o1", "2026-11-12T10:00:00+08:00", sku_id="sku-b"),
        # o2: order.paid without a sku: the sku of its earliest refund.requested naming one
        # (a refund's sku comes from its own earliest refund.requested, like its product).
        paid("o2", "2026-11-10T10:00:00+08:00"),
        requested("r2", "o2", "2026-11-13T10:00:00+08:00", sku_id="sku-b"),
        requested("r2", "o2", "2026-11-14T10:00:00+08:00", sku_id="sku-z"),
        # o3: paid twice, the later order.paid (and its sku) wins.
        paid("o3", "2026-11-01T10:00:00+08:00", sku_id="sku-a"),
        paid("o3", "2026-11-05T10:00:00+08:00", sku_id="sku-c"),
        # o4: never paid: product from r4a, sku from r4b (the earliest naming one).
        requested("r4a", "o4", "2026-11-14T10:00:00+08:00", product_id="p1"),
        requested("r4b", "o4", "2026-11-15T10:00:00+08:00", product_id="p2", sku_id="sku-a"),
        requested("r4c", "o4", "2026-11-16T10:00:00+08:00", sku_id="sku-b"),
        # o5: the refund comes before its order.paid, and succeeds (not pending).
        paid("o5", "2026-11-18T10:00:00+08:00", sku_id="sku-d"),
        requested("r5", "o5", "2026-11-17T10:00:00+08:00"),
        stage("succeeded", "r5", "2026-11-19T10:00:00+08:00"),
        # o6: no sku anywhere: in the product, in no sku.
        paid("o6", "2026-11-10T10:00:00+08:00"),
        # o7: another product with the same sku id.
        paid("o7", "2026-11-10T10:00:00+08:00", product="p2", sku_id="sku-a"),
        # o8: paid before the window: sku-e has no figure in it.
        paid("o8", "2026-09-01T10:00:00+08:00", sku_id="sku-e"),
    ]
    got = sku_figures(events, store_id="s1", product_id="p1", as_of=AS_OF)
    assert got == {
        "sku-a": OracleFigures(1, 2, 2, 2, "2.000000"),  # o1 and o4
        "sku-b": OracleFigures(1, 1, 1, 1, "1.000000"),  # o2
        "sku-c": OracleFigures(1, 0, 0, 0, "0.000000"),  # o3
        "sku-d": OracleFigures(1, 1, 1, 0, "1.000000"),  # o5
    }
    product = fig(events, product_id="p1")
    assert counts(product) == (5, 4, 4, 3)  # o6 counts in the product, in no sku
    assert sku_figures(events, store_id="s1", product_id="p2", as_of=AS_OF) == {
        "sku-a": OracleFigures(1, 0, 0, 0, "0.000000")
    }
    assert sku_figures(events, store_id="s1", product_id="p9", as_of=AS_OF) == {}
    # A sku's figures are the same figures over fewer orders: the window applies.
    one_day = OraclePolicy(window_days=1)
    on_17 = sku_figures(
        events, store_id="s1", product_id="p1", as_of=date(2026, 11, 17), policy=one_day
    )
    assert on_17 == {"sku-d": OracleFigures(0, 1, 1, 0, None)}


# --- breakdowns (DESIGN §13) --------------------------------------------------------------


def breakdown_events() -> list[dict[str, Any]]:
    """Orders paid 11-10 10:00 Shanghai unless noted, product p1 unless noted."""
    paid_at = "2026-11-10T10:00:00+08:00"
    return [
        # a1: shipped first without a courier (2 h: 0-24), then SF, then ZTO: courier SF.
        # Its earliest quality refund was appeal-upheld: the counted one is r-a1.
        paid("a1", paid_at),
        shipped("a1", "2026-11-10T12:00:00+08:00"),
        shipped("a1", "2026-11-11T09:00:00+08:00", courier="ZTO"),
        shipped("a1", "2026-11-10T20:00:00+08:00", courier="SF"),
        requested("r-a1x", "a1", "2026-11-11T10:00:00+08:00", reason="not_as_described"),
        stage("appeal_upheld", "r-a1x", "2026-11-12T09:00:00+08:00"),
        requested("r-a1", "a1", "2026-11-12T10:00:00+08:00", kind="return_refund"),
        # a2: shipped exactly 24 h after payment (written in UTC): 24-48.
        paid("a2", paid_at),
        shipped("a2", "2026-11-11T02:00:00Z", courier="SF"),
        # a3: exactly 72 h: 72+, no courier. Its earliest quality refund was withdrawn;
        # the counted one (r-a3b) gives the reason and the kind.
        paid("a3", paid_at),
        shipped("a3", "2026-11-13T10:00:00+08:00"),
        requested("r-a3a", "a3", "2026-11-13T10:00:00+08:00", reason="not_as_described"),
        stage("withdrawn", "r-a3a", "2026-11-13T11:00:00+08:00"),
        requested("r-a3b", "a3", "2026-11-14T10:00:00+08:00"),
        # a4: exactly 48 h: 48-72, courier YTO; its quality refund withdrawn.
        paid("a4", paid_at),
        shipped("a4", "2026-11-12T10:00:00+08:00", courier="YTO"),
        requested("r-a4", "a4", "2026-11-13T10:00:00+08:00", kind="return_refund"),
        stage("withdrawn", "r-a4", "2026-11-14T10:00:00+08:00"),
        # a5: paid twice; shipped after the first order.paid but before the winning one
        # (0-24), courier JD; its refund comes before the winning order.paid.
        paid("a5", "2026-11-01T10:00:00+08:00"),
        paid("a5", paid_at),
        shipped("a5", "2026-11-09T10:00:00+08:00", courier="JD"),
        requested(
            "r-a5",
            "a5",
            "2026-11-09T09:00:00+08:00",
            reason="描述不符",
            kind="refund_only_unshipped",
        ),
        # a6: paid and shipped (24 h, SF) before the window, refunded inside it.
        paid("a6", "2026-10-01T10:00:00+08:00"),
        shipped("a6", "2026-10-02T10:00:00+08:00", courier="SF"),
        requested("r-a6", "a6", "2026-11-16T10:00:00+08:00", kind="intercept"),
        # a7: never paid (product from its refund), shipped with ZTO; reason changed.
        shipped("a7", "2026-11-16T10:00:00+08:00", courier="ZTO"),
        requested("r-a7", "a7", "2026-11-17T10:00:00+08:00", product_id="p1"),
        stage("reason_changed", "r-a7", "2026-11-18T10:00:00+08:00", reason="not_as_described"),
        # a8: paid, never shipped, no refund.
        paid("a8", "2026-11-18T10:00:00+08:00"),
        # a10: product p2, shipped 1 h after payment with SF, refunded.
        paid("a10", paid_at, product="p2"),
        shipped("a10", "2026-11-10T11:00:00+08:00", courier="SF"),
        requested("r-a10", "a10", "2026-11-11T10:00:00+08:00", kind="return_refund"),
        # A non-quality refund adds to no item.
        requested("r-a8", "a8", "2026-11-19T10:00:00+08:00", reason="changed_mind"),
    ]


def bd(events, by: str, **kw: Any) -> list[dict[str, Any]]:
    kw.setdefault("store_id", "s1")
    kw.setdefault("as_of", AS_OF)
    return breakdown(events, by=by, **kw)


def item(key: str | None, orders: int, quality: int, rate: str | None) -> dict[str, Any]:
    return {"key": key, "orders": orders, "quality_refunds": quality, "quality_refund_rate": rate}


def test_breakdown_by_courier() -> None:
    events = breakdown_events()
    assert bd(events, "courier") == [
        item("SF", 3, 3, "1.000000"),  # a1, a2, a10 paid; a1, a6, a10 counted
        item("JD", 1, 1, "1.000000"),  # a5
        item("ZTO", 0, 1, None),  # a7: never paid, its refund counts in its item
        item(None, 2, 1, "0.500000"),  # a3 (never named a courier), a8 (never shipped)
        item("YTO", 1, 0, "0.000000"),  # a4: its refund was withdrawn
    ]
    store = counts(fig(events))
    assert store[:2] == (7, 6)  # the items add up to the scope's figures
    assert bd(events, "courier", product_id="p1") == [
        item("SF", 2, 2, "1.000000"),
        item("JD", 1, 1, "1.000000"),
        item("ZTO", 0, 1, None),
        item(None, 2, 1, "0.500000"),
        item("YTO", 1, 0, "0.000000"),
    ]
    assert bd(events, "courier", product_id="p2") == [item("SF", 1, 1, "1.000000")]


def test_breakdown_by_ship_hours() -> None:
    events = breakdown_events()
    assert bd(events, "ship_hours") == [
        item("0-24", 3, 3, "1.000000"),  # a1 (2 h), a5 (shipped before paid), a10 (1 h)
        item("24-48", 1, 1, "1.000000"),  # a2 (exactly 24 h), a6 (paid before the window)
        item("72+", 1, 1, "1.000000"),  # a3 (exactly 72 h)
        item(None, 1, 1, "1.000000"),  # a8 never shipped, a7 never paid
        item("48-72", 1, 0, "0.000000"),  # a4 (exactly 48 h)
    ]
    # One second under an edge is still the lower band.
    edge = [
        paid("b1", "2026-11-10T10:00:00+08:00"),
        shipped("b1", "2026-11-11T09:59:59+08:00"),
        paid("b2", "2026-11-10T10:00:00+08:00"),
        shipped("b2", "2026-11-13T09:59:59.999+08:00"),
        paid("b3", "2026-11-10T10:00:00+08:00"),
        shipped("b3", "2026-11-16T10:00:00+08:00"),
        shipped("b3", "2026-11-12T09:59:59+08:00"),  # the earliest shipped counts
    ]
    assert bd(edge, "ship_hours") == [
        item("0-24", 1, 0, "0.000000"),
        item("24-48", 1, 0, "0.000000"),
        item("48-72", 1, 0, "0.000000"),
    ]


def test_breakdown_by_reason_and_kind() -> None:
    events = breakdown_events()
    reasons = [
        {"key": "quality_issue", "quality_refunds": 5},  # a1, a3, a6, a7, a10
        {"key": "not_as_described", "quality_refunds": 1},  # a5 (描述不符)
    ]
    assert bd(events, "reason") == reasons
    latest = OraclePolicy(reason_basis="latest")  # a7's reason changed
    assert bd(events, "reason", policy=latest) == [
        {"key": "quality_issue", "quality_refunds": 4},
        {"key": "not_as_described", "quality_refunds": 2},
    ]
    assert bd(events, "kind") == [
        {"key": "refund_only", "quality_refunds": 2},  # a3 (r-a3b), a7
        {"key": "return_refund", "quality_refunds": 2},  # a1 (r-a1), a10
        {"key": "intercept", "quality_refunds": 1},  # a6
        {"key": "refund_only_unshipped", "quality_refunds": 1},  # a5
    ]
    assert bd(events, "kind", product_id="p1") == [
        {"key": "refund_only", "quality_refunds": 2},
        {"key": "intercept", "quality_refunds": 1},
        {"key": "refund_only_unshipped", "quality_refunds": 1},
        {"key": "return_refund", "quality_refunds": 1},
    ]
    # The same window as the figures: as of 11-12 over 2 days only a1 and a10 count.
    two_days = OraclePolicy(window_days=2)
    assert bd(events, "kind", as_of=date(2026, 11, 12), policy=two_days) == [
        {"key": "return_refund", "quality_refunds": 2}
    ]
    assert bd(events, "reason", store_id="s2") == []
    with pytest.raises(ValueError):
        bd(events, "product")


def test_breakdown_courier_names_and_empty_windows() -> None:
    events = [
        paid("c1", "2026-11-10T10:00:00+08:00"),
        shipped("c1", "2026-11-10T11:00:00+08:00", courier=""),  # an empty name is none
        shipped("c1", "2026-11-10T12:00:00+08:00", courier="YTO"),
        paid("c2", "2026-11-10T10:00:00+08:00"),
        shipped("c2", "2026-11-10T11:00:00+08:00", courier="ZTO"),
        paid("c3", "2026-11-10T10:00:00+08:00"),
        shipped("c3", "2026-11-10T11:00:00+08:00", courier=""),
    ]
    # Ties on quality_refunds: key ascending, the null key last.
    assert bd(events, "courier") == [
        item("YTO", 1, 0, "0.000000"),
        item("ZTO", 1, 0, "0.000000"),
        item(None, 1, 0, "0.000000"),
    ]
    # Orders outside the window are left out, so are items with nothing in it.
    assert bd(events, "courier", as_of=date(2026, 12, 31)) == []
    assert bd(events, "ship_hours", as_of=date(2026, 11, 9)) == []


# --- trend (DESIGN §13) -------------------------------------------------------------------

WEEK = OraclePolicy(window_days=7)  # as of 11-20: 11-14…11-20; 7 days earlier: 11-07…11-13


def rate_days(then: tuple[int, int], now: tuple[int, int], tag: str = "") -> list[Any]:
    """``orders`` paid and ``quality`` refunded, (orders, quality), 11-10 and 11-17."""
    events: list[Any] = []
    for (n_orders, n_quality), day in ((then, "11-10"), (now, "11-17")):
        for i in range(n_orders):
            order = f"{tag}{day}-o{i}"
            events.append(paid(order, f"2026-{day}T10:00:00+08:00", product=f"p{tag}"))
            if i < n_quality:
                events.append(requested(f"r-{order}", order, f"2026-{day}T12:00:00+08:00"))
    return events


def tr(events, **kw: Any) -> str | None:
    kw.setdefault("store_id", "s1")
    kw.setdefault("as_of", AS_OF)
    kw.setdefault("policy", WEEK)
    return trend(events, **kw)


def test_trend_at_the_exact_boundary() -> None:
    # 47/125 − 3/8 = 0.376 − 0.375 = 0.001 exactly: rising; the other way round: falling.
    assert Fraction(47, 125) - Fraction(3, 8) == Fraction(1, 1000)
    assert tr(rate_days((8, 3), (125, 47))) == "rising"
    assert tr(rate_days((125, 47), (8, 3))) == "falling"
    # 50/133 − 3/8 ≈ 0.00094 (just under 0.001): flat either way.
    assert Fraction(50, 133) - Fraction(3, 8) < Fraction(1, 1000)
    assert tr(rate_days((8, 3), (133, 50))) == "flat"
    assert tr(rate_days((133, 50), (8, 3))) == "flat"
    assert tr(rate_days((8, 3), (8, 3))) == "flat"


def test_trend_is_null_when_either_rate_is_null() -> None:
    assert tr(rate_days((0, 0), (8, 3))) is None
    assert tr(rate_days((8, 3), (0, 0))) is None
    assert tr([]) is None
    # Quality refunds without orders still give no rate.
    events = [requested("r1", "o1", "2026-11-18T10:00:00+08:00"), *rate_days((8, 3), (0, 0))]
    assert tr(events) is None


def test_trend_judges_the_rate_shown_whatever_the_count_basis() -> None:
    events = rate_days((8, 3), (133, 50))
    # A withdrawn quality refund on a clean order: applied 51/133 would be rising.
    clean = "11-17-o132"
    events += [
        requested("r-w", clean, "2026-11-17T12:00:00+08:00"),
        stage("withdrawn", "r-w", "2026-11-17T13:00:00+08:00"),
    ]
    assert fig(events, policy=WEEK).applied_quality_refunds == 51
    assert tr(events) == "flat"
    assert tr(events, policy=OraclePolicy(window_days=7, count_basis="applied")) == "flat"


def test_trend_of_a_product_and_a_sku() -> None:
    events = rate_days((8, 3), (125, 47), tag="A") + rate_days((125, 47), (8, 3), tag="B")
    # The store: (3+47)/(8+125) both weeks: flat.
    assert tr(events) == "flat"
    assert tr(events, product_id="pA") == "rising"
    assert tr(events, product_id="pB") == "falling"
    assert tr(events, product_id="pC") is None
    skus = [
        paid("s-o1", "2026-11-10T10:00:00+08:00", sku_id="k1"),
        paid("s-o2", "2026-11-17T10:00:00+08:00", sku_id="k1"),
        requested("r-s-o2", "s-o2", "2026-11-17T11:00:00+08:00"),
        paid("s-o3", "2026-11-10T10:00:00+08:00", sku_id="k2"),
        requested("r-s-o3", "s-o3", "2026-11-10T11:00:00+08:00"),
        paid("s-o4", "2026-11-17T10:00:00+08:00", sku_id="k2"),
    ]
    assert tr(skus, product_id="p1", sku_id="k1") == "rising"
    assert tr(skus, product_id="p1", sku_id="k2") == "falling"
    assert tr(skus, product_id="p1") == "flat"
    with pytest.raises(ValueError):
        tr(skus, sku_id="k1")


# --- count_clears_on (DESIGN §13) ---------------------------------------------------------


def clearing_events() -> list[dict[str, Any]]:
    """Quality refunds on orders of p1 (q…) and p2 (two on 11-14), as of 11-20 over 7 days."""
    refund_days = {
        "q1": ("p2", "2026-11-14T09:00:00+08:00"),  # two refunds share a day
        "q2": ("p2", "2026-11-14T21:00:00+08:00"),
        "q3": ("p1", "2026-11-16T10:00:00+08:00"),
        "q4": ("p1", "2026-11-18T10:00:00+08:00"),
        "q5": ("p1", "2026-11-10T10:00:00+08:00"),  # before the window
        "q6": ("p1", "2026-11-21T10:00:00+08:00"),  # after as_of: a "new" refund
        "qw": ("p1", "2026-11-15T10:00:00+08:00"),  # withdrawn: applied only
        "qa": ("p1", "2026-11-17T10:00:00+08:00"),  # appeal upheld: applied only
    }
    events: list[dict[str, Any]] = []
    for order, (product, at) in refund_days.items():
        events.append(paid(order, "2026-11-01T10:00:00+08:00", product=product))
        events.append(requested(f"r-{order}", order, at))
    events += [
        stage("withdrawn", "r-qw", "2026-11-15T12:00:00+08:00"),
        stage("succeeded", "r-qa", "2026-11-17T12:00:00+08:00"),
        stage("appeal_upheld", "r-qa", "2026-11-19T12:00:00+08:00"),
        # "qx": its earliest quality refund (11-12, outside the window) was withdrawn,
        # a later one (11-19) counts: counted on 11-19, applied on 11-12.
        paid("qx", "2026-11-01T10:00:00+08:00"),
        requested("r-qx1", "qx", "2026-11-12T10:00:00+08:00"),
        stage("withdrawn", "r-qx1", "2026-11-12T12:00:00+08:00"),
        requested("r-qx2", "qx", "2026-11-19T10:00:00+08:00"),
    ]
    return events


def clears(events, min_count: int, **kw: Any) -> date | None:
    kw.setdefault("store_id", "s1")
    kw.setdefault("as_of", AS_OF)
    kw.setdefault("policy", WEEK)
    return count_clears_on(events, min_count=min_count, **kw)


def test_count_clears_on_counted_basis() -> None:
    events = clearing_events()
    # Counted days in the window: 11-14 ×2, 11-16, 11-18, 11-19 → 5 (11-21 is after as_of).
    assert fig(events, policy=WEEK).quality_refunds == 5
    assert clears(events, 5) == date(2026, 11, 21)  # both 11-14 refunds leave together
    assert clears(events, 4) == date(2026, 11, 21)  # 3 left: q3, q4, qx
    assert clears(events, 3) == date(2026, 11, 23)  # q3 leaves on 11-23
    assert clears(events, 2) == date(2026, 11, 25)
    assert clears(events, 1) == date(2026, 11, 26)  # as_of + window_days
    # The count never was ≥ min_count.
    assert clears(events, 6) is None
    # The refund of 11-21 is in the event set yet does not hold the count up; as of a day
    # after it, it is part of the count.
    assert fig(events, policy=WEEK, as_of=date(2026, 11, 21)).quality_refunds == 4
    assert clears(events, 4, as_of=date(2026, 11, 21)) == date(2026, 11, 23)


def test_count_clears_on_applied_basis() -> None:
    events = clearing_events()
    applied = OraclePolicy(window_days=7, count_basis="applied")
    # Applied days in the window: 11-14 ×2, 11-15, 11-16, 11-17, 11-18 → 6 (qx's is 11-12).
    assert fig(events, policy=WEEK).applied_quality_refunds == 6
    assert clears(events, 6, policy=applied) == date(2026, 11, 21)
    assert clears(events, 4, policy=applied) == date(2026, 11, 22)
    assert clears(events, 4) == date(2026, 11, 21)
    assert clears(events, 3, policy=applied) == date(2026, 11, 23)
    assert clears(events, 1, policy=applied) == date(2026, 11, 25)
    assert clears(events, 6) is None
    assert clears(events, 7, policy=applied) is None


def test_count_clears_on_a_product_and_on_bad_input() -> None:
    events = clearing_events()
    assert clears(events, 2, product_id="p2") == date(2026, 11, 21)
    assert clears(events, 3, product_id="p1") == date(2026, 11, 23)  # q3, q4, qx
    assert clears(events, 4, product_id="p1") is None
    assert clears(events, 1, product_id="p9") is None
    # The default 30-day window: the last counted refund (11-19) leaves on 12-19.
    assert clears(events, 1, policy=OraclePolicy()) == date(2026, 12, 19)
    with pytest.raises(ValueError):
        clears(events, 0)


# --- properties ---------------------------------------------------------------------------

# max_examples comes from the active Hypothesis profile (default 100).
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
as_of_days = st.dates(min_value=date(2026, 10, 8), max_value=date(2026, 11, 26))
time_zones = st.sampled_from(("Asia/Shanghai", "UTC", "America/New_York"))
policies = st.builds(
    OraclePolicy,
    window_days=st.sampled_from((1, 7, 30)),
    quality_reasons=st.sampled_from(
        (
            frozenset({"quality_issue", "not_as_described"}),
            frozenset({"quality_issue", "not_as_described", "damaged", "changed_mind"}),
        )
    ),
    reason_basis=st.sampled_from(("first", "latest")),
)


@SETTINGS
@given(st.data(), event_streams(), as_of_days, time_zones, policies)
def test_oracle_is_invariant_under_shuffles_and_resends(
    data: st.DataObject, events, as_of: date, tz: str, policy: OraclePolicy
) -> None:
    again = data.draw(shuffled_with_duplicates(events))
    for store_id in ("s1", "s2"):
        kw: dict[str, Any] = {"store_id": store_id, "as_of": as_of, "tz": tz, "policy": policy}
        assert figures(again, **kw) == figures(events, **kw)
        assert products_with_data(again, **kw) == products_with_data(events, **kw)


@SETTINGS
@given(event_streams(), as_of_days, time_zones, policies)
def test_oracle_figures_are_consistent(events, as_of: date, tz: str, policy: OraclePolicy) -> None:
    for store_id in ("s1", "s2"):
        kw: dict[str, Any] = {"store_id": store_id, "as_of": as_of, "tz": tz, "policy": policy}
        store = figures(events, **kw)
        assert 0 <= store.pending_quality_refunds <= store.quality_refunds
        assert store.orders >= 0 and store.applied_quality_refunds >= 0
        per_product = products_with_data(events, **kw)
        for name in ("orders", "quality_refunds", "applied_quality_refunds"):
            total = sum(getattr(f, name) for f in per_product.values())
            assert total <= getattr(store, name)
        for pid, f in per_product.items():
            assert f == figures(events, product_id=pid, **kw)
            assert 0 <= f.pending_quality_refunds <= f.quality_refunds


@SETTINGS
@given(event_streams())
def test_generated_streams_are_valid(events) -> None:
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    latest_allowed = LATEST_EXCLUSIVE
    for e in events:
        moment = datetime.fromisoformat(e["occurred_at"])
        assert moment.utcoffset() is not None
        assert moment < latest_allowed
        assert moment > LATEST_EXCLUSIVE - timedelta(days=60)
        assert e["store_id"] in ("s1", "s2")
        if e["type"] in ("refund.requested", "refund.reason_changed"):
            normalize_reason(e["reason"])
        if e["type"] == "refund.requested":
            assert e["kind"] in (
                "refund_only_unshipped",
                "return_refund",
                "intercept",
                "refund_only",
            )
        if e["type"].startswith("refund."):
            assert e["refund_id"]
        else:
            assert e["order_id"]
        assert all(v is not None for v in e.values())
        # Only the fields DESIGN §2 gives each type (sku_id on order.paid and
        # refund.requested, courier on the two shipping events).
        envelope = {"event_id", "type", "store_id", "occurred_at"}
        assert set(e) - envelope <= EVENT_FIELDS[e["type"]], e
        for name in ("order_id", "refund_id", "product_id", "sku_id"):
            if name in e:
                assert isinstance(e[name], str) and 1 <= len(e[name]) <= 128
        if "courier" in e:
            assert isinstance(e["courier"], str) and 1 <= len(e["courier"]) <= 64


EVENT_FIELDS: dict[str, set[str]] = {
    "order.paid": {"order_id", "product_id", "sku_id", "amount"},
    "order.shipped": {"order_id", "courier"},
    "order.delivered": {"order_id"},
    "refund.requested": {
        "refund_id",
        "order_id",
        "kind",
        "reason",
        "product_id",
        "sku_id",
        "amount",
    },
    "refund.approved": {"refund_id"},
    "refund.return_shipped": {"refund_id", "courier"},
    "refund.return_received": {"refund_id"},
    "refund.reason_changed": {"refund_id", "reason"},
    "refund.succeeded": {"refund_id"},
    "refund.rejected": {"refund_id"},
    "refund.withdrawn": {"refund_id"},
    "refund.appeal_upheld": {"refund_id"},
    "refund.appeal_rejected": {"refund_id"},
}


# --- properties of the DESIGN §13 functions -------------------------------------------------

clearing_policies = st.builds(
    OraclePolicy,
    window_days=st.sampled_from((1, 7, 30)),
    reason_basis=st.sampled_from(("first", "latest")),
    count_basis=st.sampled_from(("counted", "applied")),
)


def _sorted_as_designed(items: list[dict[str, Any]]) -> bool:
    keys = [(-i["quality_refunds"], i["key"] is None, i["key"] or "") for i in items]
    return keys == sorted(keys) and len({i["key"] for i in items}) == len(items)


@SETTINGS
@given(event_streams(), as_of_days, time_zones, clearing_policies)
def test_breakdowns_skus_and_trend_are_consistent_with_the_figures(
    events, as_of: date, tz: str, policy: OraclePolicy
) -> None:
    for store_id in ("s1", "s2"):
        kw: dict[str, Any] = {"store_id": store_id, "as_of": as_of, "tz": tz, "policy": policy}
        for product_id in (None, "p1"):
            scope = figures(events, product_id=product_id, **kw)
            for by in ("courier", "ship_hours", "reason", "kind"):
                items = breakdown(events, by=by, product_id=product_id, **kw)
                assert _sorted_as_designed(items), items
                assert sum(i["quality_refunds"] for i in items) == scope.quality_refunds
                if by in ("courier", "ship_hours"):
                    assert sum(i["orders"] for i in items) == scope.orders
                    for i in items:
                        assert i["orders"] or i["quality_refunds"]
                        assert i["quality_refund_rate"] == format_rate(
                            i["quality_refunds"], i["orders"]
                        )
                else:
                    assert all(i["quality_refunds"] > 0 for i in items)
                if by == "ship_hours":
                    assert {i["key"] for i in items} <= {"0-24", "24-48", "48-72", "72+", None}
                if by == "reason":
                    assert {i["key"] for i in items} <= policy.quality_reasons
            # trend: null exactly when a rate is null (0 orders now or 7 days earlier)
            week_ago = figures(
                events,
                product_id=product_id,
                **{**kw, "as_of": as_of - timedelta(days=7)},
            )
            got = trend(events, product_id=product_id, **kw)
            assert (got is None) == (scope.orders == 0 or week_ago.orders == 0)

        for product_id, product in products_with_data(events, **kw).items():
            skus = sku_figures(events, product_id=product_id, **kw)
            for name in ("orders", "quality_refunds", "applied_quality_refunds"):
                assert sum(getattr(f, name) for f in skus.values()) <= getattr(product, name)
            for f in skus.values():
                assert f.orders or f.quality_refunds or f.applied_quality_refunds
                assert 0 <= f.pending_quality_refunds <= f.quality_refunds


def without_refunds_after(events, store_id: str, as_of: date, tz: str) -> list[dict[str, Any]]:
    """The store's events without the refunds requested after ``as_of`` (all their
    events): "no new quality refunds" after as_of."""
    zone = ZoneInfo(tz)
    mine = [e for e in events if e["store_id"] == store_id]
    requested_days: dict[str, list[tuple[datetime, str]]] = {}
    for e in mine:
        if e["type"] == "refund.requested":
            requested_days.setdefault(e["refund_id"], []).append(time_then_id(e))
    late = {
        refund_id
        for refund_id, keys in requested_days.items()
        if min(keys)[0].astimezone(zone).date() > as_of
    }
    return [e for e in mine if not (e["type"].startswith("refund.") and e["refund_id"] in late)]


@SETTINGS
@given(event_streams(), as_of_days, time_zones, clearing_policies, st.integers(1, 4))
def test_count_clears_on_agrees_with_the_figures_of_later_days(
    events, as_of: date, tz: str, policy: OraclePolicy, min_count: int
) -> None:
    for store_id in ("s1", "s2"):
        kw: dict[str, Any] = {"store_id": store_id, "tz": tz, "policy": policy}
        now = tier_count(figures(events, as_of=as_of, **kw), policy)
        got = count_clears_on(events, as_of=as_of, min_count=min_count, **kw)
        if now < min_count:
            assert got is None
            continue
        assert got is not None and as_of < got <= as_of + timedelta(days=policy.window_days)
        # Recomputed with figures(): the events without the refunds requested after
        # as_of, as of the day before (still at or over the line) and the day itself.
        frozen = without_refunds_after(events, store_id, as_of, tz)
        assert tier_count(figures(frozen, as_of=as_of, **kw), policy) == now
        day_before = tier_count(figures(frozen, as_of=got - timedelta(days=1), **kw), policy)
        assert day_before >= min_count
        assert tier_count(figures(frozen, as_of=got, **kw), policy) < min_count


@SETTINGS
@given(st.data(), event_streams(), as_of_days, time_zones, clearing_policies)
def test_new_functions_are_invariant_under_shuffles_and_resends(
    data: st.DataObject, events, as_of: date, tz: str, policy: OraclePolicy
) -> None:
    again = data.draw(shuffled_with_duplicates(events))
    kw: dict[str, Any] = {"store_id": "s1", "as_of": as_of, "tz": tz, "policy": policy}
    for by in ("courier", "ship_hours", "reason", "kind"):
        assert breakdown(again, by=by, **kw) == breakdown(events, by=by, **kw)
    for product_id in ("p1", "p2"):
        assert sku_figures(again, product_id=product_id, **kw) == sku_figures(
            events, product_id=product_id, **kw
        )
    assert trend(again, **kw) == trend(events, **kw)
    assert count_clears_on(again, min_count=1, **kw) == count_clears_on(events, min_count=1, **kw)


# --- the strategies generate the DESIGN §13 cases -------------------------------------------


def _shipping_facts(events) -> set[str]:
    """Which §13 shipping and sku cases one stream contains."""
    facts: set[str] = set()
    by_order: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in events:
        if e["type"] == "refund.requested" and "sku_id" in e:
            facts.add("sku on refund.requested")
        if e["type"] in ("order.paid", "order.shipped"):
            by_order.setdefault((e["store_id"], e["order_id"]), []).append(e)
    for order_events in by_order.values():
        paid_events = [e for e in order_events if e["type"] == "order.paid"]
        shipped_events = [e for e in order_events if e["type"] == "order.shipped"]
        if len(shipped_events) > 1:
            facts.add("several shipped")
        if shipped_events:
            first = min(shipped_events, key=time_then_id)
            named = [e for e in shipped_events if "courier" in e]
            if "courier" not in first and named:
                facts.add("courier only on a later shipped")
        if paid_events and shipped_events:
            winner = max(paid_events, key=time_then_id)
            first_shipped = min(shipped_events, key=time_then_id)
            elapsed = time_then_id(first_shipped)[0] - time_then_id(winner)[0]
            for hours in (24, 48, 72):
                if elapsed == timedelta(hours=hours):
                    facts.add(f"exactly {hours} h")
            if elapsed < timedelta(0):
                facts.add("shipped before paid")
            if timedelta(hours=72) < elapsed:
                facts.add("72+ inside")
        if shipped_events and not paid_events:
            facts.add("shipped, never paid")
    return facts


@pytest.mark.parametrize(
    "fact",
    [
        "sku on refund.requested",
        "several shipped",
        "courier only on a later shipped",
        "exactly 24 h",
        "exactly 48 h",
        "exactly 72 h",
        "shipped before paid",
        "72+ inside",
        "shipped, never paid",
    ],
)
def test_streams_contain_the_shipping_and_sku_cases(fact: str) -> None:
    found = find(
        event_streams(),
        lambda events: fact in _shipping_facts(events),
        settings=settings(max_examples=500, database=None, phases=[Phase.generate]),
    )
    assert fact in _shipping_facts(found)
