"""Group commit: waiting ingest requests of one process share one transaction,
and each still gets its own answer (app/ingest/group_commit.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.events.schemas import EventError, EventResult, IngestAnswer
from app.events.validation import ValidatedBatch, validate_batch
from app.ingest import road
from app.ingest.group_commit import IngestCommitter, split_answer
from tests.support import paid, post_events, requested


def committer(app: FastAPI) -> IngestCommitter:
    found: IngestCommitter = app.state.ingest
    return found


async def post_all(
    client: httpx.AsyncClient, batches: Sequence[list[dict[str, Any]]]
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(client.post("/v1/events", json={"events": batch}) for batch in batches)
        )
    )


async def metrics(client: httpx.AsyncClient, store: str = "s1") -> dict[str, Any]:
    response = await client.get(f"/v1/stores/{store}/metrics")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_waiting_requests_share_a_transaction_and_keep_their_own_answers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Eight requests at once: the first runs alone, the seven that queued behind it
    # run together in the next transaction.
    batches = [
        [paid(f"o{i}", event_id=f"b{i}-paid"), requested(f"r{i}", f"o{i}", event_id=f"b{i}-req")]
        for i in range(8)
    ]
    batches[3].append(requested("bad", "o3", reason="nonsense", event_id="b3-bad"))
    before = committer(app).transactions

    responses = await post_all(client, batches)

    assert committer(app).transactions - before <= 2
    for i, (batch, response) in enumerate(zip(batches, responses, strict=True)):
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in batch]
        assert body["accepted"] == 2
        assert body["rejected"] == (1 if i == 3 else 0)
        assert body["duplicates"] == 0
    figures = await metrics(client)
    assert (figures["orders"], figures["quality_refunds"]) == (8, 8)


@pytest.mark.parametrize("same_content", [True, False], ids=["resend", "reuse"])
async def test_an_event_id_in_two_waiting_requests_is_accepted_once(
    client: httpx.AsyncClient, same_content: bool
) -> None:
    first = paid("o1", event_id="shared")
    second = dict(first) if same_content else paid("o2", event_id="shared")
    responses = await post_all(client, [[paid("o0")], [first], [second]])

    statuses = [r.json()["results"][0] for r in responses[1:]]
    assert statuses[0]["status"] == "accepted"
    if same_content:
        assert statuses[1]["status"] == "duplicate"
    else:
        assert statuses[1]["status"] == "rejected"
        assert statuses[1]["error"]["code"] == "event_id_conflict"
    assert (await metrics(client))["orders"] == 2


async def test_a_failing_request_fails_alone(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = road.ingest

    async def fail_on_poison(session: Any, batch: ValidatedBatch, **kw: Any) -> Any:
        if any(c.event.event_id == "poison" for c in batch.candidates):
            raise RuntimeError("the database refused this batch")
        return await real(session, batch, **kw)

    monkeypatch.setattr(road, "ingest", fail_on_poison)
    batches = [[paid("o0")], [paid("o1")], [paid("o2", event_id="poison")], [paid("o3")]]

    # A 500 is answered, not raised into the test (as a real server answers it).
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://test",
        headers=client.headers,
    ) as tolerant:
        responses = await post_all(tolerant, batches)

    assert [r.status_code for r in responses] == [200, 200, 500, 200]
    assert responses[2].headers["content-type"].startswith("application/problem+json")
    assert (await metrics(client))["orders"] == 3
    again = await post_events(client, [paid("o2", event_id="poison-fixed")])
    assert again["accepted"] == 1


@pytest.mark.parametrize("ingest_group_max_events", [0])
async def test_group_commit_off_runs_every_request_alone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    before = committer(app).transactions
    responses = await post_all(client, [[paid(f"o{i}")] for i in range(6)])
    assert all(r.status_code == 200 for r in responses)
    assert committer(app).transactions - before == 6
    assert (await metrics(client))["orders"] == 6


@pytest.mark.parametrize("ingest_group_max_events", [10])
async def test_a_transaction_merges_no_more_than_the_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Requests of 6 events: two would make 12 > 10, so each runs alone.
    batches = [[paid(f"o{i}-{j}") for j in range(6)] for i in range(4)]
    before = committer(app).transactions
    responses = await post_all(client, batches)
    assert all(r.status_code == 200 and r.json()["accepted"] == 6 for r in responses)
    assert committer(app).transactions - before == 4
    assert (await metrics(client))["orders"] == 24


def test_split_answer_cuts_results_and_counts_per_request() -> None:
    error = EventError(code="unknown_type", field="type", message="unknown")
    results = [
        EventResult(event_id="a", status="accepted"),
        EventResult(event_id="b", status="duplicate"),
        EventResult(event_id="c", status="rejected", error=error),
        EventResult(event_id="d", status="accepted"),
    ]
    merged = IngestAnswer(accepted=2, duplicates=1, rejected=1, results=results)

    first, second = split_answer(merged, [1, 3])

    assert (first.accepted, first.duplicates, first.rejected) == (1, 0, 0)
    assert [r.event_id for r in first.results] == ["a"]
    assert (second.accepted, second.duplicates, second.rejected) == (1, 1, 1)
    assert [r.event_id for r in second.results] == ["b", "c", "d"]


def test_merged_batches_keep_positions_and_turn_later_uses_of_an_id_into_repeats() -> None:
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    first = validate_batch(
        [paid("o1", event_id="a"), {"type": "nonsense"}], now=now, max_future=timedelta(0)
    )
    second = validate_batch(
        [paid("o2", event_id="b"), paid("o1", event_id="a"), paid("o3", event_id="b")],
        now=now,
        max_future=timedelta(0),
    )

    merged = ValidatedBatch.merge([first, second])

    assert len(merged) == 5
    assert merged.results[1] is not None and merged.results[1].status == "rejected"
    assert [(c.index, c.event.event_id) for c in merged.candidates] == [(0, "a"), (2, "b")]
    assert sorted((r.index, r.event.event_id) for r in merged.repeats) == [(3, "a"), (4, "b")]


@pytest.mark.parametrize("ingest_group_max_events", [2])
async def test_one_transaction_at_a_time_is_at_work(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The next group starts when the previous one reaches its COMMIT (PostgreSQL) or
    # its end (SQLite), never while it still works: 24 one-event requests, at most
    # two events a transaction, so a dozen hand-overs.
    real = road.ingest
    at_work = 0
    most = 0

    async def counting(session: Any, batch: ValidatedBatch, **kw: Any) -> Any:
        nonlocal at_work, most
        at_work += 1
        most = max(most, at_work)
        try:
            return await real(session, batch, **kw)
        finally:
            at_work -= 1

    monkeypatch.setattr(road, "ingest", counting)
    before = committer(app).transactions

    responses = await post_all(client, [[paid(f"o{i}")] for i in range(24)])

    assert all(r.status_code == 200 and r.json()["accepted"] == 1 for r in responses)
    assert most == 1
    assert committer(app).transactions - before >= 12
    assert (await metrics(client))["orders"] == 24


async def test_a_cancelled_transaction_leaves_no_request_waiting(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shutdown cancels the task running the transaction: the request in it and the
    # one queued behind it must both end, not wait forever.
    started = asyncio.Event()

    async def stuck(session: Any, batch: ValidatedBatch, **kw: Any) -> Any:
        started.set()
        await asyncio.Event().wait()  # never set: only cancellation ends it

    monkeypatch.setattr(road, "ingest", stuck)
    ingest = committer(app)
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    running = asyncio.create_task(ingest.ingest([paid("o1")], now))
    await started.wait()
    queued = asyncio.create_task(ingest.ingest([paid("o2")], now))
    await asyncio.sleep(0)  # one loop turn: it validates and queues behind the stuck one
    assert len(ingest._waiting) == 1

    drainer = ingest._drainer
    assert drainer is not None
    drainer.cancel()

    done, pending = await asyncio.wait({running, queued}, timeout=10)
    assert not pending
    assert all(task.cancelled() for task in done)
