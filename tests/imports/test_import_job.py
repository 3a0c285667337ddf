"""The import job end to end: real-looking exports in, figures out, on both databases.

Figures after an import are compared with the independent oracle computed from
the events an independent reading of the import rules expects
(``tests/imports/exports.py``), so two readings of the rules meet here.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.config import Settings
from app.imports import service
from app.imports.cli import import_files
from app.imports.service import ImportRequest, ImportRunner
from tests import oracle
from tests.imports import exports
from tests.support import paid, post_events, requested

STORE = "pdd-shop-1"
DAYS = (date(2026, 11, 26), date(2026, 11, 10))


@pytest.fixture
def records() -> tuple[list[exports.OrderRecord], list[exports.AfterSaleRecord]]:
    orders = list(exports.iter_orders(11, 300, start=datetime(2026, 10, 10), days=30))
    return orders, exports.aftersales(11, 90, source=orders)


def _expected(records: Any) -> list[dict[str, Any]]:
    orders, after = records
    return exports.expected_order_events(orders, STORE) + exports.expected_aftersale_events(
        after, STORE
    )


async def _assert_figures_match_oracle(
    client: httpx.AsyncClient, events: list[dict[str, Any]], store: str = STORE
) -> None:
    for day in DAYS:
        metrics = await client.get(f"/v1/stores/{store}/metrics", params={"as_of": str(day)})
        expected = oracle.figures(events, store_id=store, as_of=day)
        body = metrics.json()
        assert (
            body["orders"],
            body["quality_refunds"],
            body["applied_quality_refunds"],
            body["pending_quality_refunds"],
            body["quality_refund_rate"],
        ) == (
            expected.orders,
            expected.quality_refunds,
            expected.applied_quality_refunds,
            expected.pending_quality_refunds,
            expected.quality_refund_rate,
        ), day
        products = (
            await client.get(
                f"/v1/stores/{store}/products", params={"as_of": str(day), "limit": 500}
            )
        ).json()["items"]
        got = {p["product_id"]: (p["orders"], p["quality_refunds"]) for p in products}
        want = {
            pid: (f.orders, f.quality_refunds)
            for pid, f in oracle.products_with_data(events, store_id=store, as_of=day).items()
        }
        assert got == want, day


def _write_exports(tmp_path: Path, records: Any, encoding: str = "gb18030") -> list[Path]:
    orders, after = records
    orders_csv = exports.write_orders_csv(tmp_path / "orders.csv", orders, encoding=encoding)
    after_xlsx = exports.write_aftersales_xlsx(tmp_path / "aftersales.xlsx", after)
    exports.set_dimension(after_xlsx, "A1")
    return [orders_csv, after_xlsx]


async def test_the_cli_imports_exports_and_the_figures_follow_the_rules(
    app: FastAPI, client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path, records: Any
) -> None:
    files = _write_exports(tmp_path, records)
    errors = tmp_path / "errors.csv"
    code = await import_files(
        app_settings,
        files,
        store_id=STORE,
        format=None,
        dry_run=False,
        errors_path=errors,
        reason_map_path=None,
    )
    assert code == 0
    await _assert_figures_match_oracle(client, _expected(records))
    listed = (await client.get("/v1/imports", params={"store_id": STORE})).json()["items"]
    assert [i["format"] for i in listed] == ["pdd-aftersales", "pdd-orders"]
    after = listed[0]
    assert after["status"] == "succeeded"
    assert {u["label"]: u["count"] for u in after["unmapped_labels"]} == dict(
        exports.expected_unmapped(records[1])
    )
    assert after["skipped_by_cause"].get("not_a_refund", 0) == sum(
        1 for r in records[1] if r.refund_type in ("换货", "补寄", "维修")
    )

    # The same files again: nothing new, figures unchanged.
    again = await import_files(
        app_settings,
        files,
        store_id=STORE,
        format=None,
        dry_run=False,
        errors_path=None,
        reason_map_path=None,
    )
    assert again == 0
    latest = (await client.get("/v1/imports", params={"limit": 2})).json()["items"]
    assert all(i["events"]["accepted"] == 0 for i in latest)
    assert all(i["events"]["duplicate"] > 0 for i in latest)
    await _assert_figures_match_oracle(client, _expected(records))


async def test_a_later_export_adds_only_the_refunds_new_outcomes(
    app: FastAPI, client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path, records: Any
) -> None:
    orders, after = records
    opened = [exports.with_changes(r, status="待商家处理", agreed_at=None) for r in after]
    first = exports.write_aftersales_csv(tmp_path / "first.csv", opened)
    exports.write_orders_csv(tmp_path / "orders.csv", orders)
    for path in (tmp_path / "orders.csv", first):
        assert await _import(app_settings, path) == 0
    later = exports.write_aftersales_csv(tmp_path / "later.csv", after, encoding="utf-8-sig")
    assert await _import(app_settings, later) == 0
    last = (await client.get("/v1/imports", params={"limit": 1})).json()["items"][0]
    outcomes = sum(
        1
        for r in after
        if r.refund_type in ("仅退款", "退货退款") and r.status in ("退款成功", "退款关闭")
    )
    assert last["events"]["accepted"] == outcomes > 0
    await _assert_figures_match_oracle(
        client,
        exports.expected_order_events(orders, STORE)
        + exports.expected_aftersale_events(opened, STORE)
        + exports.expected_aftersale_events(after, STORE),
    )


async def _import(settings: Settings, path: Path, **kw: Any) -> int:
    options: dict[str, Any] = {
        "store_id": STORE,
        "format": None,
        "dry_run": False,
        "errors_path": None,
        "reason_map_path": None,
    }
    options.update(kw)
    return await import_files(settings, [path], **options)


async def test_bad_rows_are_reported_and_the_rest_goes_in(
    client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path, records: Any
) -> None:
    orders = [r for r in records[0] if r.status not in exports.SKIPPED_ORDER_STATUSES][:20]
    path = tmp_path / "orders.csv"
    exports.write_orders_csv(path, orders)
    lines = path.read_text(encoding="utf-8").splitlines()
    # Row 3 is the first data row (title line, header): break its paid time.
    broken = lines[2].replace(
        f"{orders[0].deal_time or orders[0].pay_time or orders[0].group_time:%Y-%m-%d %H:%M:%S}",
        "2026-13-45 99:00:00",
    )
    path.write_text("\n".join([lines[0], lines[1], broken, *lines[3:]]) + "\n", encoding="utf-8")
    errors = tmp_path / "errors.csv"
    code = await _import(app_settings, path, errors_path=errors)
    assert code == 1
    rows = list(csv.DictReader(errors.open(encoding="utf-8-sig")))
    assert [(r["row"], r["code"]) for r in rows] == [("3", "invalid_time")]
    metrics = (await client.get(f"/v1/stores/{STORE}/metrics")).json()
    assert (
        metrics["orders"]
        == oracle.figures(
            exports.expected_order_events(orders[1:], STORE), store_id=STORE, as_of=DAYS[0]
        ).orders
    )


async def test_a_file_of_no_known_format_fails_at_once_naming_what_it_lacks(
    client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("订单号,收货人\n231126-000000000000001,张**\n", encoding="utf-8")
    assert await _import(app_settings, path) == 2
    assert (await client.get("/v1/imports")).json()["items"] == []


async def test_a_dry_run_stores_nothing(
    client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path, records: Any
) -> None:
    files = _write_exports(tmp_path, records, encoding="utf-8")
    code = await import_files(
        app_settings,
        files,
        store_id=STORE,
        format=None,
        dry_run=True,
        errors_path=None,
        reason_map_path=None,
    )
    assert code == 0
    assert (await client.get(f"/v1/stores/{STORE}")).status_code == 404
    assert (await client.get("/v1/imports")).json()["items"] == []


async def test_an_interrupted_import_resumes_and_loses_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    app_settings: Settings,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [paid(f"o{i}", product=f"p{i % 7}", event_id=f"e{i}") for i in range(1200)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    monkeypatch.setattr(service, "TRANSACTION_EVENTS", 300)
    db = app.state.db
    request = ImportRequest(path=path, filename=path.name)

    real_commit = service._commit
    commits = 0

    async def crash_after_two(*args: Any, **kwargs: Any) -> int:
        nonlocal commits
        if commits == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third transaction would run
        commits += 1
        return await real_commit(*args, **kwargs)

    monkeypatch.setattr(service, "_commit", crash_after_two)
    _ctx, reader = await service.prepare(db, app_settings, request)
    record, skip = await service.start(db, request, reader, clock, service.file_digest(path))
    with pytest.raises(KeyboardInterrupt):
        await service.run_import(db, app_settings, clock, request, reader, record, skip_to_row=skip)
    stopped = (await client.get(f"/v1/imports/{record.id}")).json()
    assert stopped["status"] == "interrupted"
    assert stopped["events"]["accepted"] == 600
    assert (await client.get("/v1/stores/s1/metrics")).json()["orders"] == 600

    monkeypatch.setattr(service, "_commit", real_commit)
    _ctx, reader = await service.prepare(db, app_settings, request)
    again, skip = await service.start(db, request, reader, clock, service.file_digest(path))
    assert again is not None and again.id == record.id and skip == stopped["rows_committed"]
    summary = await service.run_import(
        db, app_settings, clock, request, reader, again, skip_to_row=skip
    )
    assert summary.events_accepted == 1200 and summary.events_duplicate == 0
    assert (await client.get("/v1/stores/s1/metrics")).json()["orders"] == 1200


async def test_figures_and_tier_states_equal_what_posting_the_events_gives(
    app: FastAPI,
    client: httpx.AsyncClient,
    app_settings: Settings,
    tmp_path: Path,
    records: Any,
    clock: FrozenClock,
) -> None:
    events = _expected(records)
    imported = [{**e, "store_id": "imported", "event_id": "i:" + e["event_id"]} for e in events]
    posted = [{**e, "store_id": "posted", "event_id": "p:" + e["event_id"]} for e in events]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in imported))
    # judged on the same day as the posted events (the app's clock), whatever today is
    assert await _import(app_settings, path, store_id=None, clock=clock) == 0
    for start in range(0, len(posted), 500):
        await post_events(client, posted[start : start + 500])
    for day in DAYS:
        a = (await client.get("/v1/stores/imported/metrics", params={"as_of": str(day)})).json()
        b = (await client.get("/v1/stores/posted/metrics", params={"as_of": str(day)})).json()
        assert {k: v for k, v in a.items() if k != "store_id"} == {
            k: v for k, v in b.items() if k != "store_id"
        }
    risk = (await client.get("/v1/risk", params={"limit": 500})).json()["items"]
    states = {(r["store_id"], r["product_id"], r["tier"]): r["state"] for r in risk}
    assert {(p, t): s for (st, p, t), s in states.items() if st == "imported"} == {
        (p, t): s for (st, p, t), s in states.items() if st == "posted"
    }


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
async def runner(app: FastAPI) -> AsyncIterator[ImportRunner]:
    yield app.state.imports
    await app.state.imports.wait()


async def test_an_upload_is_imported_in_the_background_and_followed(
    client: httpx.AsyncClient, runner: ImportRunner, tmp_path: Path, records: Any
) -> None:
    orders_csv, after_xlsx = _write_exports(tmp_path, records)
    ids = []
    for path in (orders_csv, after_xlsx):
        response = await client.post(
            "/v1/imports",
            data={"store_id": STORE},
            files={"file": (path.name, path.read_bytes())},
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
        await runner.wait()
    for import_id in ids:
        body = (await client.get(f"/v1/imports/{import_id}")).json()
        assert body["status"] == "succeeded"
        assert body["progress"]["fraction"] == 1.0
    await _assert_figures_match_oracle(client, _expected(records))


async def test_an_upload_of_no_known_format_is_a_422_naming_the_missing_columns(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/imports",
        data={"store_id": STORE, "format": "pdd-orders"},
        files={"file": ("x.csv", "订单号,收货人\n1,张\n".encode())},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "body.file"
    assert "商品id" in problem["detail"]


async def test_refused_rows_of_an_upload_are_listed(
    client: httpx.AsyncClient, runner: ImportRunner
) -> None:
    body = b'{"event_id": "a", "type": "order.paid"}\nnot json\n'
    response = await client.post("/v1/imports", files={"file": ("e.jsonl", body)})
    assert response.status_code == 202
    await runner.wait()
    got = (await client.get(f"/v1/imports/{response.json()['id']}")).json()
    assert got["row_errors"] == 2
    assert [(e["row"], e["code"]) for e in got["errors"]] == [
        (1, "missing_field"),
        (2, "invalid_json"),
    ]
    paged = (await client.get(f"/v1/imports/{got['id']}/errors", params={"limit": 1})).json()
    assert len(paged["items"]) == 1 and paged["next_cursor"]


async def test_imports_need_a_key_with_the_ingest_scope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = (await client.post("/v1/api-keys", json={"name": "reader", "scopes": ["read"]})).json()[
        "key"
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {key}"},
    ) as reader:
        refused = await reader.post("/v1/imports", files={"file": ("e.jsonl", b"{}")})
        assert refused.status_code == 403
        assert (await reader.get("/v1/imports")).status_code == 200
    assert (
        await httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test").get(
            "/v1/imports"
        )
    ).status_code == 401


async def test_a_bulk_large_enough_for_copy_gives_the_same_figures(
    client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path
) -> None:
    # Above COPY_FROM_ROWS rows a statement, PostgreSQL takes the COPY road. The
    # stream is simple enough to count by hand (the oracle is quadratic).
    events = []
    for i in range(3000):
        events.append(paid(f"o{i}", product=f"p{i % 4}", event_id=f"paid-{i}"))
        if i % 9 == 0:
            events.append(requested(f"r{i}", f"o{i}", event_id=f"req-{i}"))
    path = tmp_path / "bulk.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    assert await _import(app_settings, path, store_id=None) == 0
    metrics = (await client.get("/v1/stores/s1/metrics")).json()
    assert (metrics["orders"], metrics["quality_refunds"], metrics["pending_quality_refunds"]) == (
        3000,
        334,
        334,
    )
    products = (await client.get("/v1/stores/s1/products")).json()["items"]
    by_product = {p["product_id"]: (p["orders"], p["quality_refunds"]) for p in products}
    assert by_product == {
        f"p{k}": (750, sum(1 for i in range(0, 3000, 9) if i % 4 == k)) for k in range(4)
    }


async def test_a_first_import_leaves_the_planner_statistics_of_its_tables_current(
    app: FastAPI, app_settings: Settings, tmp_path: Path, records: Any
) -> None:
    """A first import fills empty tables inside its own transactions, before autovacuum
    looks at them; the import analyzes them so its own evaluation (and the reads after it)
    are planned on the real sizes — without it a big store's alert payload took minutes."""
    from sqlalchemy import text

    from app.db.dialect import refresh_statistics_after_bulk

    if app_settings.is_sqlite:
        pytest.skip("SQLite's planner keeps no row estimates to go stale")
    files = _write_exports(tmp_path, records)
    code = await import_files(
        app_settings,
        files,
        store_id=STORE,
        format=None,
        dry_run=False,
        errors_path=None,
        reason_map_path=None,
    )
    assert code == 0
    async with app.state.db.transaction() as session:
        stored = (await session.execute(text("SELECT count(*) FROM orders"))).scalar_one()
        estimate = (
            await session.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'orders'"))
        ).scalar_one()
        assert stored > 200  # some export rows are skipped by rule (unpaid, cancelled)
        assert estimate == pytest.approx(stored, rel=0.1)
        # a transaction that more than doubles the table analyzes it (one that adds less
        # does not, but PostgreSQL's per-transaction counters may still hold an earlier
        # transaction's inserts on a reused connection: that half is measured, not asserted)
        copy = (
            "INSERT INTO orders (store_id, order_id, c_pending) "
            "SELECT 'stats-' || n, 'o-' || n, false FROM generate_series(1, :n) AS n"
        )
        await session.execute(text(copy), {"n": stored * 3})
        assert await refresh_statistics_after_bulk(session, ["orders"]) == ["orders"]
        await session.rollback()


async def test_the_road_runs_with_automatic_collection_paused_and_collects_between_chunks(
    client: httpx.AsyncClient,
    app_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from app.ingest import road
    from app.ops import collector

    seen: list[bool] = []
    collections: list[int] = []
    real_ingest, real_collect = road.ingest, collector.collect

    async def watched_ingest(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return await real_ingest(*args, **kwargs)

    def counted_collect() -> int:
        collections.append(len(seen))
        return real_collect()

    monkeypatch.setattr(road, "ingest", watched_ingest)
    monkeypatch.setattr(collector, "collect", counted_collect)
    monkeypatch.setattr(service, "TRANSACTION_EVENTS", 40)
    events = [paid(f"o{i}", event_id=f"gc-{i}") for i in range(100)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    was = gc.isenabled()
    gc.enable()
    try:
        assert await _import(app_settings, path, store_id=None) == 0
        assert gc.isenabled()  # the pause ended with the import
    finally:
        if not was:
            gc.disable()
    assert seen == [False, False, False]  # three chunks of 40, 40 and 20 events
    assert collections == [1, 2, 3]  # one collection after each committed chunk
    assert (await client.get("/v1/stores/s1/metrics")).json()["orders"] == 100
