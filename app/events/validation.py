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
    validator = BatchValidator(now=now, max_future=max_future)
    for raw in raw_events:
        validator.add(raw)
    return validator.batch


class BatchValidator:
    """:func:`validate_batch` one event at a time, so a reader of a long file can let
    each raw event go as soon as it is checked (a file import's chunk of 50,000
    events never holds its raw dicts and their validated events at once).

    A validated event keeps little: its field-set record and its repeated words
    (type, store) are shared between events (the models are frozen, so nothing
    writes to them); about half of an event's bytes otherwise.
    """

    def __init__(self, *, now: datetime, max_future: timedelta) -> None:
        self.batch = ValidatedBatch([], [], [])
        self._seen: set[str] = set()
        self._latest_allowed = now + max_future
        self._shared: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self.batch.results)

    def add(self, raw: Any) -> None:
        """Validate the next event of the batch (its index is the count so far)."""
        results = self.batch.results
        index = len(results)
        results.append(None)
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        try:
            event = EVENT_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            results[index] = _reject(event_id, describe_validation_error(exc))
            return
        if event.occurred_at > self._latest_allowed:
            results[index] = _reject(
                event_id,
                EventError(
                    code="occurred_in_future",
                    field="occurred_at",
                    message="occurred_at is more than 5 minutes in the future",
                ),
            )
            return
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
            return
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        self._share(event)
        if event.event_id in self._seen:
            self.batch.repeats.append(Candidate(index, event, digest, ""))
            return
        self._seen.add(event.event_id)
        self.batch.candidates.append(Candidate(index, event, digest, payload.decode()))

    def _share(self, event: Any) -> None:
        shared = self._shared
        state = event.__dict__
        for name in ("type", "store_id"):
            value = state[name]
            state[name] = shared.setdefault(value, value)
        fields_set = event.__pydantic_fields_set__
        key = frozenset(fields_set)
        object.__setattr__(event, "__pydantic_fields_set__", shared.setdefault(key, fields_set))


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
