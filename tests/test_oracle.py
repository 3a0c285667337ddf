"""Pins the reference oracle (tests/oracle.py) to DESIGN.md §3, and checks its strategies."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import (
    OracleFigures,
    OraclePolicy,
    figures,
    format_rate,
    normalize_reason,
    products_with_data,
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


def requested(refund: str, order: str, at: str, reason: str = "quality_issue", **kw: Any):
    return ev(
        "refund.requested",
        at,
        refund_id=refund,
        order_id=order,
        kind="refund_only",
        reason=reason,
        **kw,
    )


def stage(type_: str, refund: str, at: str, **kw: Any):
    return ev(f"refund.{type_}", at, refund_id=refund, **kw)


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
