"""Re-evaluating scopes: tier states, transitions, alerts and their outbox rows.

Runs inside the caller's transaction (the ingest that moved the figures, or a
scheduled job). Per-scope advisory locks, taken after the figures were
written, make evaluations of one scope strictly sequential: whoever evaluates
last sees every committed change before it, so no transition is lost or
doubled.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import Alert, AlertState, Silence
from app.alerts.payload import alert_data
from app.alerts.rules import AT_RISK, reminder_due, transition_alert
from app.db.dialect import dialect_of, lock_key, lock_keys, pairs_clause, pairs_params, upsert
from app.figures.models import STORE_SCOPE
from app.figures.rebuild import rebuild_store_figures
from app.figures.service import EMPTY, verdicts, window_figures, window_figures_many
from app.stores.service import StoreContext
from app.webhooks.outbox import enqueue_deliveries

Scope = tuple[str, str]


@dataclass(slots=True)
class EvaluationReport:
    evaluated: int = 0
    alerts: int = 0


async def evaluate_scopes(
    session: AsyncSession,
    contexts: dict[str, StoreContext],
    scopes: Iterable[Scope],
    *,
    now: datetime,
) -> EvaluationReport:
    """Evaluate every tier of these scopes as of today; write changes and alerts.

    The caller holds each store's lock (shared, or exclusive for an edit) and read
    ``contexts`` after taking it: a store or policy edit takes the lock exclusively,
    so the lines judged here are the ones in force, never a stale copy.
    """
    ordered = sorted(set(scopes))
    report = EvaluationReport()
    if not ordered:
        return report
    await lock_keys(session, (lock_key("scope", *s) for s in ordered))

    as_of: dict[str, date] = {s: contexts[s].today(now) for s, _ in ordered}
    by_store: dict[str, list[str]] = defaultdict(list)
    for store_id, scope in ordered:
        by_store[store_id].append(scope)
    windows = [
        (store_id, scopes_, *contexts[store_id].window(as_of[store_id]))
        for store_id, scopes_ in by_store.items()
    ]
    figures = await window_figures_many(session, windows)
    states = await _load_states(session, ordered)
    tiers_by_scope: dict[Scope, list[AlertState]] = defaultdict(list)
    for state in states.values():
        tiers_by_scope[(state.store_id, state.product_id)].append(state)
    silences: list[Silence] | None = None  # read only when an alert is written

    state_rows: list[dict[str, Any]] = []
    alerts: list[Alert] = []
    for store_id, scope in ordered:
        ctx = contexts[store_id]
        scope_figures = figures.get((store_id, scope), EMPTY)
        kind = "store" if scope == STORE_SCOPE else "product"
        interval = timedelta(seconds=ctx.reminder_interval_seconds)
        scope_verdicts = verdicts(ctx, scope_figures, kind)
        # A tier removed from the policy has no line left to judge: its state
        # goes back to ok quietly (nothing can be said about a line that is gone).
        judged = {v.tier for v in scope_verdicts}
        for gone in tiers_by_scope.get((store_id, scope), ()):
            if gone.tier not in judged and gone.state != "ok":
                state_rows.append(_state_row(gone, "ok", now, gone.last_alert_at))
        for verdict in scope_verdicts:
            report.evaluated += 1
            stored = states.get((store_id, scope, verdict.tier))
            previous = stored.state if stored is not None else "ok"
            alert_type = transition_alert(previous, verdict.state)
            if (
                alert_type is None
                and stored is not None
                and reminder_due(verdict.state, stored.last_alert_at, now, interval)
            ):
                alert_type = "alert.reminder"
            if alert_type is None:
                if stored is not None and previous != verdict.state:
                    state_rows.append(_state_row(stored, verdict.state, now, stored.last_alert_at))
                continue
            product_id = None if scope == STORE_SCOPE else scope
            data = await alert_data(
                session,
                ctx=ctx,
                product_id=product_id,
                verdict=verdict,
                previous_state=previous,
                figures=scope_figures,
                as_of=as_of[store_id],
            )
            if silences is None:
                silences = await _active_silences(session, list(by_store), now)
            alert = Alert(
                alert_id=str(uuid.uuid4()),
                type=alert_type,
                store_id=store_id,
                product_id=product_id,
                tier=verdict.tier,
                state=verdict.state,
                previous_state=previous,
                silenced=_silenced(silences, store_id, product_id, verdict.tier),
                created_at=now,
                payload=data,
            )
            alerts.append(alert)
            since = stored.since if stored is not None and previous == verdict.state else now
            state_rows.append(
                {
                    "store_id": store_id,
                    "product_id": scope,
                    "tier": verdict.tier,
                    "state": verdict.state,
                    "since": since,
                    "last_alert_at": now,
                    "evaluated_at": now,
                }
            )
    await _save_states(session, state_rows)
    if alerts:
        session.add_all(alerts)
        await session.flush()
        await enqueue_deliveries(session, [a for a in alerts if not a.silenced], now=now)
        report.alerts = len(alerts)
    return report


def _state_row(
    stored: AlertState, state: str, now: datetime, last_alert_at: datetime | None
) -> dict[str, Any]:
    return {
        "store_id": stored.store_id,
        "product_id": stored.product_id,
        "tier": stored.tier,
        "state": state,
        "since": now,
        "last_alert_at": last_alert_at,
        "evaluated_at": now,
    }


@lru_cache(maxsize=8)
def _states_query(dialect: str) -> Any:
    return select(AlertState).where(
        pairs_clause(dialect, AlertState.store_id, AlertState.product_id, "scopes")
    )


async def _load_states(
    session: AsyncSession, scopes: list[Scope]
) -> dict[tuple[str, str, str], AlertState]:
    dialect = dialect_of(session)
    rows = await session.scalars(_states_query(dialect), pairs_params(dialect, "scopes", scopes))
    return {(r.store_id, r.product_id, r.tier): r for r in rows}


async def _save_states(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = upsert(
        session,
        AlertState.__table__,
        ["store_id", "product_id", "tier"],
        ["state", "since", "last_alert_at", "evaluated_at"],
    )
    await session.execute(stmt, rows)


async def _active_silences(
    session: AsyncSession, store_ids: list[str], now: datetime
) -> list[Silence]:
    rows = await session.scalars(
        select(Silence).where(
            Silence.until > now,
            (Silence.store_id.is_(None)) | (Silence.store_id.in_(store_ids)),
        )
    )
    return list(rows)


def _silenced(silences: list[Silence], store_id: str, product_id: str | None, tier: str) -> bool:
    return any(
        (s.store_id is None or s.store_id == store_id)
        and (s.product_id is None or s.product_id == product_id)
        and (s.tier is None or s.tier == tier)
        for s in silences
    )


async def scopes_to_review(session: AsyncSession, ctx: StoreContext, now: datetime) -> set[Scope]:
    """Every scope of a store whose state could change with time alone.

    That is the store itself, each product with data in the window, and each
    scope whose stored state is not ok (its data may just have left the window).
    """

    start, end = ctx.window(ctx.today(now))
    scopes: set[Scope] = {(ctx.store_id, STORE_SCOPE)}
    in_window = await window_figures(session, ctx.store_id, start, end)
    scopes.update((ctx.store_id, scope) for scope, f in in_window.items() if f.has_data)
    rows = await session.execute(
        select(AlertState.product_id).where(
            AlertState.store_id == ctx.store_id, AlertState.state.in_(AT_RISK)
        )
    )
    scopes.update((ctx.store_id, r[0]) for r in rows)
    return scopes


async def refresh_store(
    session: AsyncSession, before: StoreContext, after: StoreContext, now: datetime
) -> None:
    """After a store or policy edit: rebuild figures if their rules changed, re-evaluate.

    The caller holds the store's lock exclusively (see :func:`lock_store_for_edit`).
    """
    if (before.timezone, before.quality_reasons, before.reason_basis) != (
        after.timezone,
        after.quality_reasons,
        after.reason_basis,
    ):
        await rebuild_store_figures(session, after)
    scopes = await scopes_to_review(session, after, now)
    await evaluate_scopes(session, {after.store_id: after}, scopes, now=now)


async def lock_store_for_edit(session: AsyncSession, store_ids: Iterable[str]) -> None:
    """Exclusive store locks, taken before any row lock: no ingest of these stores
    interleaves with the edit, and every later evaluation reads the edited lines."""
    await lock_keys(session, (lock_key("store", s) for s in store_ids))


async def lock_store_for_reading(session: AsyncSession, store_ids: Iterable[str]) -> None:
    """Shared store locks (what ingest takes): an edit waits, readers don't."""
    await lock_keys(session, (lock_key("store", s) for s in store_ids), shared=True)
