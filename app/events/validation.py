"""Validating a batch event by event, before any database work (DESIGN §2).

Each event is validated on its own: a bad one is rejected with a code and the
field it concerns, and the good ones of the same batch go on. The canonical
content (sorted-key JSON) and its hash decide later whether a known id is a
``duplicate`` or an ``event_id_conflict``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from app.events.schemas import (
    EVENT_ADAPTER,
    EventError,
    EventResult,
    describe_validation_error,
)


@dataclass(slots=True)
class Candidate:
    """One valid event of a batch, at its input position, with its canonical content."""

    index: int
    event: Any
    content_hash: bytes
    payload: str


def _reject(event_id: str | None, error: EventError) -> EventResult:
    return EventResult(event_id=event_id, status="rejected", error=error)


@dataclass(slots=True)
class ValidatedBatch:
    """A batch checked event by event, before any database work.

    ``results`` holds the answers known already (rejections), ``None`` elsewhere;
    ``candidates`` the first use of each event id, to store; ``repeats`` the later
    uses of an id, judged once the id's meaning is known.
    """

    results: list[EventResult | None]
    candidates: list[Candidate]
    repeats: list[Candidate]

    def __len__(self) -> int:
        return len(self.results)

    @classmethod
    def merge(cls, parts: Sequence[ValidatedBatch]) -> ValidatedBatch:
        """The batches one after the other, as one: an id first used in an earlier
        part is a repeat in a later one."""
        merged = cls([], [], [])
        seen: set[str] = set()
        for part in parts:
            offset = len(merged.results)
            merged.results.extend(part.results)
            for c in part.candidates:
                moved = Candidate(c.index + offset, c.event, c.content_hash, c.payload)
                if c.event.event_id in seen:
                    merged.repeats.append(moved)
                else:
                    seen.add(c.event.event_id)
                    merged.candidates.append(moved)
            merged.repeats.extend(
                Candidate(r.index + offset, r.event, r.content_hash, r.payload)
                for r in part.repeats
            )
        return merged


def validate_batch(
    raw_events: Sequence[Any], *, now: datetime, max_future: timedelta
) -> ValidatedBatch:
    """Validate each event on its own; set aside in-batch repeats of an event_id.

    A repeat is judged later, against what the id ends up meaning: the stored
    event if the id was known before this batch, else its first use here.
    """
    results: list[EventResult | None] = [None] * len(raw_events)
    candidates: list[Candidate] = []
    repeats: list[Candidate] = []
    seen: set[str] = set()
    latest_allowed = now + max_future
    for index, raw in enumerate(raw_events):
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        try:
            event = EVENT_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            results[index] = _reject(event_id, describe_validation_error(exc))
            continue
        if event.occurred_at > latest_allowed:
            results[index] = _reject(
                event_id,
                EventError(
                    code="occurred_in_future",
                    field="occurred_at",
                    message="occurred_at is more than 5 minutes in the future",
                ),
            )
            continue
        try:
            payload = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, RecursionError):
            # Unknown fields are kept in the raw event; one nested beyond what can be
            # stored (orjson stops at 254 levels) makes this event unstorable, not the batch.
            results[index] = _reject(
                event_id,
                EventError(
                    code="invalid_event",
                    message="the event nests too deep to be stored (at most 254 levels)",
                ),
            )
            continue
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if event.event_id in seen:
            repeats.append(Candidate(index, event, digest, ""))
            continue
        seen.add(event.event_id)
        candidates.append(Candidate(index, event, digest, payload.decode()))
    return ValidatedBatch(results, candidates, repeats)


def duplicate_or_conflict(event_id: str, same_content: bool) -> EventResult:
    if same_content:
        return EventResult(event_id=event_id, status="duplicate")
    return _reject(
        event_id,
        EventError(
            code="event_id_conflict",
            field="event_id",
            message="this event_id was already used for an event with other content",
        ),
    )
