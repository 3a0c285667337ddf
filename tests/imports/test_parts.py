"""An events file of many stores imported in parts, one process each (``app.imports.parts``).

The parallel runs need PostgreSQL (SQLite takes one part); they start the real
child process (``python -m app.imports.parts``) and compare what the parts
committed together with the oracle and with a one-part reading of the same file.
"""

from __future__ import annotations

import csv
import os
import random
import sys
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.imports import parts, service
from app.imports.cli import import_files
from app.imports.formats import RowResult, open_import
from app.imports.service import ImportRequest, Part
from tests import oracle
from tests.support import paid, refund_event, requested

DAYS = (date(2026, 11, 26), date(2026, 11, 12))
STORES = [f"shop-{i:02d}" for i in range(9)]


def _owned(part: Part, store_id: Any) -> bool:
    events = [{"store_id": store_id}] if store_id is not ... else []
    return part.owns(RowResult(row=1, events=events))  # type: ignore[arg-type]


def test_each_store_belongs_to_exactly_one_part_and_storeless_rows_to_part_0() -> None:
    rng = random.Random(5)
    names = [*STORES, "s1", "店铺-1", "x" * 64]
    rows: list[Any] = [rng.choice([*names, None, 17, ...]) for _ in range(500)]
    for count in (2, 3, 5):
        split = [Part(k, count) for k in range(count)]
        owners: dict[Any, set[int]] = {}
        for store in rows:  # every part reads every row, in the file's order
            owning = {p.index for p in split if _owned(p, store)}
            assert len(owning) == 1, (store, count)
            owners.setdefault(store, set()).update(owning)
        for storeless in (None, 17, ...):  # no store id, not a string, no event at all
            assert owners[storeless] == {0}
        # A store keeps its part; stores are dealt round the parts as first named.
        assert all(len(parts) == 1 for parts in owners.values())
        first_named = list(dict.fromkeys(s for s in rows if isinstance(s, str)))
        assert [owners[s] for s in first_named] == [{i % count} for i in range(len(first_named))]


def test_every_line_of_an_events_file_is_exactly_one_parts_read_from_its_text_or_parsed(
    tmp_path: Path,
) -> None:
    """A part decides most lines by their text alone, without parsing them (the other
    parts' lines cost it nothing but the read); the lines the text cannot tell are
    parsed and decided by their event. Either way each line is one part's."""
    rng = random.Random(11)
    tricky = [
        '{"event_id": "a", "store_id": "shop-01", "type": "order.paid"}',
        '{"type":"order.paid","store_id" :  "shop-02"}',
        '{"meta": {"store_id": "shop-03"}, "store_id": "shop-04"}',  # nested one first
        '{"store\\u005fid": "shop-05", "event_id": "escaped key"}',  # parsed: shop-05
        '{"store_id": "bad store!"}',  # not an id the text form knows: parsed
        '{"store_id": 17}',
        '{"note": "\\"store_id\\": \\"shop-06\\"", "store_id": "shop-07"}',
        '{"store_id": "shop-08", broken',  # invalid JSON, decided by its text
        "",
        "[1, 2]",
        '{"event_id": "no store"}',
    ]
    lines = [rng.choice(tricky) for _ in range(400)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(['{"store_id": "shop-00"}', *lines]) + "\n", encoding="utf-8")
    for count in (2, 3):
        split = [Part(k, count) for k in range(count)]
        owned_by: dict[int, set[int]] = {}
        parsed: dict[int, int] = {}
        for part in split:
            with open_import(path) as reader:
                for number, result, decided in reader.rows_deciding(part.decide):
                    owned = decided if decided is not None else part.owns(result)  # type: ignore[arg-type]
                    if owned:
                        owned_by.setdefault(number, set()).add(part.index)
                    if result is not None:
                        parsed[number] = parsed.get(number, 0) + 1
        assert set(owned_by) == set(range(1, len(lines) + 2))
        assert all(len(owners) == 1 for owners in owned_by.values())
        by_text = {n for n, line in enumerate(lines, 2) if '"store_id": "shop' in line}
        # a line decided by its text is parsed by its own part only
        assert all(parsed[n] == 1 for n in by_text)


def test_stores_are_dealt_to_balance_the_parts_by_their_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = {"big": 90, "mid-1": 50, "mid-2": 40, "small-1": 10, "small-2": 10}
    lines = [
        orjson.dumps({"store_id": s, "event_id": f"{s}-{i}"})
        for s, n in sizes.items()
        for i in range(n)
    ]
    random.Random(2).shuffle(lines)
    lines.append(b'{"store_id": "esc\\u0061ped", "event_id": "x"}')  # the scan does not read it
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    dealt = parts.deal_stores(path, "events-jsonl", 2)
    assert dealt == {"big": 0, "mid-1": 1, "mid-2": 1, "small-1": 0, "small-2": 1}  # 100 / 100
    assert parts.deal_stores(path, "events-csv", 2) == {}
    monkeypatch.setattr(parts, "MAX_DEALT_STORES", 2)  # only the largest are kept in the deal
    assert parts.deal_stores(path, "events-jsonl", 2) == {"big": 0, "mid-1": 1}
    monkeypatch.undo()
    assert parts.deal_stores(path, "events-jsonl", 1) == {}
    # A dealt store keeps its part; one the scan missed is dealt as first named.
    split = [Part(k, 2, dealt) for k in range(2)]
    for store, owner in [("small-2", 1), ("escaped", 0), ("new-1", 1), ("big", 0), ("new-2", 0)]:
        assert [_owned(p, store) for p in split] == [owner == 0, owner == 1], store


def _reader(fmt: str) -> Any:
    return type("Reader", (), {"format": fmt})()


def _large(path: Path, head: bytes = b"") -> Path:
    """A file just large enough to be split, beginning with ``head`` (the rest is a hole)."""
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(parts.PARTS_MIN_BYTES)
    return path


PG = Settings(database_url="postgresql://u@127.0.0.1:5432/db")


def test_only_a_large_events_file_of_many_stores_on_postgres_is_split(tmp_path: Path) -> None:
    big = _large(tmp_path / "big.jsonl")
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"{}\n")
    pg = PG
    lite = Settings(database_url=f"sqlite:///{tmp_path}/x.db")
    events = _reader("events-jsonl")

    def choose(settings: Settings, path: Path, reader: Any = events, **kw: Any) -> int:
        jobs = kw.pop("jobs", None)
        record = kw.pop("record", None)
        request = ImportRequest(path=path, filename=path.name, **kw)
        return parts.parts_for(settings, request, reader, record, jobs)

    expected_default = min(2, os.cpu_count() or 1)
    assert choose(pg, big) == expected_default
    assert choose(pg, small) == 1
    assert choose(pg, small, jobs=3) == 3
    assert choose(pg, big, jobs=1) == 1
    assert choose(lite, big) == 1
    assert choose(pg, big, store_id="s1") == 1
    assert choose(pg, big, dry_run=True) == 1
    assert choose(pg, big, reader=_reader("pdd-orders")) == 1
    resumed = type("Record", (), {"part_rows": [[5, 0], [9, 0], [0, 0]], "rows_committed": 0})()
    assert choose(pg, small, record=resumed, jobs=1) == 3  # a resumed import keeps its parts
    one = type("Record", (), {"part_rows": None, "rows_committed": 40})()
    assert choose(pg, big, record=one) == 1


def test_children_are_started_ahead_only_for_what_looks_like_a_split(tmp_path: Path) -> None:
    big = _large(tmp_path / "big.jsonl", b"\xef\xbb\xbf\n {")
    workbook = _large(tmp_path / "big.xlsx", b"PK\x03\x04")
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"{}\n")
    pg = PG
    lite = Settings(database_url=f"sqlite:///{tmp_path}/x.db")

    def ahead(settings: Settings, path: Path, **kw: Any) -> int:
        options: dict[str, Any] = {"store_id": None, "dry_run": False, "jobs": None, **kw}
        return parts.standby_for(settings, [path], **options)

    assert ahead(pg, big) == min(2, os.cpu_count() or 1) - 1
    assert ahead(pg, small) == 0
    assert ahead(pg, workbook) == 0
    assert ahead(pg, workbook, jobs=2) == 0  # a workbook is one store's: never split
    assert ahead(pg, small, jobs=3) == 2
    assert ahead(pg, big, jobs=1) == 0
    assert ahead(lite, big) == 0
    assert ahead(pg, big, store_id="s1") == 0
    assert ahead(pg, big, dry_run=True) == 0
    assert ahead(pg, tmp_path / "missing.jsonl") == 0


async def test_a_child_started_ahead_that_no_part_needs_exits_when_told(
    app_settings: Settings,
) -> None:
    standby = await parts.Standby.start(app_settings, 2)
    assert len(standby) == 2
    waiting = list(standby._waiting)
    await standby.close()
    assert len(standby) == 0 and standby.take() is None
    assert [p.returncode for p in waiting] == [0, 0]


def _cluster_events(seed: int) -> list[dict[str, Any]]:
    """Orders and refunds of nine stores, interleaved as a real file would have them."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(900):
        store = rng.choice(STORES)
        day = rng.randint(1, 25)
        events.append(
            paid(
                f"o{n}",
                product=f"p{n % 5}",
                at=f"2026-11-{day:02d}T10:00:00+08:00",
                store=store,
                event_id=f"{store}:paid:{n}",
            )
        )
        if rng.random() < 0.3:
            events.append(
                requested(
                    f"r{n}",
                    f"o{n}",
                    reason=rng.choice(["quality_issue", "not_as_described", "changed_mind"]),
                    at=f"2026-11-{min(day + 1, 26):02d}T12:00:00+08:00",
                    store=store,
                    event_id=f"{store}:req:{n}",
                )
            )
            if rng.random() < 0.4:
                events.append(
                    refund_event(
                        rng.choice(["withdrawn", "succeeded", "rejected"]),
                        f"r{n}",
                        at=f"2026-11-{min(day + 1, 26):02d}T18:00:00+08:00",
                        store=store,
                        event_id=f"{store}:end:{n}",
                    )
                )
    return events


def _write_file(path: Path, events: list[dict[str, Any]]) -> list[bytes]:
    """The events, with bad lines among them: refused rows of both parts and of none."""
    lines = [orjson.dumps(e) for e in events]
    lines.insert(10, b"{not json")  # no store: part 0's
    lines.insert(200, orjson.dumps({**events[5], "reason": "??"}))  # a repeat of an id, conflicting
    lines.insert(300, orjson.dumps({**events[7], "event_id": "bad-time", "occurred_at": "later"}))
    lines.insert(
        400,
        orjson.dumps(
            {**events[9], "event_id": "bad-time-2", "store_id": STORES[3], "occurred_at": "x"}
        ),
    )
    lines.insert(500, b"")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


async def _import(settings: Settings, path: Path, **kw: Any) -> int:
    options: dict[str, Any] = {
        "store_id": None,
        "format": None,
        "dry_run": False,
        "errors_path": None,
        "reason_map_path": None,
    }
    options.update(kw)
    return await import_files(settings, [path], **options)


async def _assert_figures_match_oracle(
    client: httpx.AsyncClient, events: list[dict[str, Any]]
) -> None:
    for store in STORES:
        for day in DAYS:
            body = (
                await client.get(f"/v1/stores/{store}/metrics", params={"as_of": str(day)})
            ).json()
            want = oracle.figures(events, store_id=store, as_of=day)
            assert (body["orders"], body["quality_refunds"], body["applied_quality_refunds"]) == (
                want.orders,
                want.quality_refunds,
                want.applied_quality_refunds,
            ), (store, day)
            products = (
                await client.get(
                    f"/v1/stores/{store}/products", params={"as_of": str(day), "limit": 500}
                )
            ).json()["items"]
            got = {p["product_id"]: (p["orders"], p["quality_refunds"]) for p in products}
            assert got == {
                pid: (f.orders, f.quality_refunds)
                for pid, f in oracle.products_with_data(events, store_id=store, as_of=day).items()
            }, (store, day)


def _counts(record: dict[str, Any]) -> tuple[int, int, int]:
    events = record["events"]
    return events["accepted"], events["duplicate"], events["rejected"]


def _rows(path: Path) -> list[tuple[str, str, str]]:
    return [
        (r["row"], r["column"], r["code"]) for r in csv.DictReader(path.open(encoding="utf-8-sig"))
    ]


@pytest.mark.postgres
async def test_a_file_imported_in_parts_gives_the_figures_counts_and_refused_rows_of_one(
    client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path
) -> None:
    if app_settings.is_sqlite:
        pytest.skip("parts run on PostgreSQL only")
    events = _cluster_events(3)
    path = tmp_path / "cluster.jsonl"
    _write_file(path, events)
    dry_errors, errors = tmp_path / "dry.csv", tmp_path / "errors.csv"
    assert await _import(app_settings, path, dry_run=True, errors_path=dry_errors) == 1

    assert await _import(app_settings, path, errors_path=errors, jobs=2) == 1
    assert _rows(errors) == _rows(dry_errors)  # every part's refused rows, in the file's order
    assert [r[2] for r in _rows(errors)] == [
        "invalid_json",
        "event_id_conflict",
        "invalid_occurred_at",
        "invalid_occurred_at",
    ]
    imported = (await client.get("/v1/imports")).json()["items"][0]
    assert imported["status"] == "succeeded" and imported["parts"] == 2
    assert imported["events"]["accepted"] == len(events)
    assert imported["events"]["rejected"] == 3
    assert imported["rows_read"] == len(events) + 5
    assert imported["rows_committed"] == len(events) + 5
    await _assert_figures_match_oracle(client, events)

    # The same file again, in parts: nothing new, figures unchanged.
    assert await _import(app_settings, path, jobs=2) == 1
    again = (await client.get("/v1/imports")).json()["items"][0]
    assert again["id"] != imported["id"]
    assert _counts(again) == (0, len(events), 3)
    await _assert_figures_match_oracle(client, events)


@pytest.mark.postgres
async def test_a_part_that_fails_fails_the_import_and_a_rerun_finishes_every_part(
    app: FastAPI,
    client: httpx.AsyncClient,
    app_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if app_settings.is_sqlite:
        pytest.skip("parts run on PostgreSQL only")
    events = _cluster_events(8)
    path = tmp_path / "cluster.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")

    # The child part cannot start: part 0 commits its stores, the import is failed.
    python = sys.executable
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(parts.PartFailed, match="part 1 exited 1"):
        await _import(app_settings, path, jobs=2)
    failed = (await client.get("/v1/imports")).json()["items"][0]
    assert failed["status"] == "failed" and "part 1" in failed["failure"]
    part_0 = Part(0, 2, parts.deal_stores(path, "events-jsonl", 2))
    own = [e for e in events if part_0.owns(RowResult(row=1, events=[e]))]
    assert 0 < len(own) < len(events)
    assert failed["events"]["accepted"] == len(own)

    # The rerun resumes: part 0 has nothing left, part 1 does all of its stores.
    monkeypatch.setattr(sys, "executable", python)
    assert await _import(app_settings, path) == 0
    done = (await client.get(f"/v1/imports/{failed['id']}")).json()
    assert done["status"] == "succeeded"
    assert _counts(done) == (len(events), 0, 0)
    assert done["rows_read"] == len(events)
    await _assert_figures_match_oracle(client, events)


@pytest.mark.postgres
async def test_an_interrupted_part_resumes_from_its_own_last_commit(
    app: FastAPI,
    client: httpx.AsyncClient,
    app_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if app_settings.is_sqlite:
        pytest.skip("parts run on PostgreSQL only")
    from app.clock import SystemClock
    from app.imports import repository

    events = _cluster_events(13)
    path = tmp_path / "cluster.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    db, clock = app.state.db, SystemClock()
    request = ImportRequest(path=path, filename=path.name)
    _ctx, reader = await service.prepare(db, app_settings, request)
    record, _skip = await service.start(db, request, reader, clock, service.file_digest(path))
    assert record is not None
    dealt = parts.deal_stores(path, "events-jsonl", 2)
    async with db.transaction() as session:
        await repository.begin_parts(session, record.id, 2, dealt)

    # Part 1 alone, cut after its second transaction of 150 events (a Ctrl-C).
    monkeypatch.setattr(service, "TRANSACTION_EVENTS", 150)
    real_commit, commits = service._commit, 0

    async def crash_after_two(*args: Any, **kwargs: Any) -> int:
        nonlocal commits
        if commits == 2:
            raise KeyboardInterrupt
        commits += 1
        return await real_commit(*args, **kwargs)

    monkeypatch.setattr(service, "_commit", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        await service.run_import(
            db, app_settings, clock, request, reader, record, part=Part(1, 2, dealt)
        )
    monkeypatch.setattr(service, "_commit", real_commit)
    async with db.transaction() as session:
        await repository.finish(
            session, record.id, service.ImportSummary(record.id), "interrupted", "cut", clock.now()
        )
    cut = (await client.get(f"/v1/imports/{record.id}")).json()
    assert cut["events"]["accepted"] == 300 and cut["rows_committed"] == 0  # part 0: nothing yet

    assert await _import(app_settings, path) == 0  # resumes in its two parts
    done = (await client.get(f"/v1/imports/{record.id}")).json()
    assert done["status"] == "succeeded"
    assert _counts(done) == (len(events), 0, 0)
    assert done["rows_read"] == len(events)
    await _assert_figures_match_oracle(client, events)
