"""Evaluating scopes and recording what changed: tier states, alerts, silences.

Runs inside the caller's transaction (the ingest that moved the figures, an
edit, or a scheduled job). Per-scope advisory locks, taken after the figures
were written, make evaluations of one scope strictly sequential: whoever
evaluates last sees every committed change before it, so no transition is lost
or doubled. The alerts written here are returned, not sent: the road enqueues
their deliveries (``app.webhooks.outbox``) in the same transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import repository
from app.alerts.models import Alert, AlertState, Silence
from app.alerts.payload import alert_data
from app.alerts.rules import reminder_due, silenced, transition_alert
from app.db.dialect import lock_key, lock_keys
from app.errors import field_error
from app.figures.models import STORE_SCOPE
from app.figures.repository import window_figures, window_figures_many
from app.figures.rules import EMPTY, Scope
from app.policies.tiers import TierScope
from app.stores.rules import StoreContext


@dataclass(slots=True)
class Evaluation:
    """What an evaluation did: tiers judged, and the alerts it wrote (not yet sent)."""

    evaluated: int = 0
    alerts: list[Alert] = field(default_factory=list)


async def evaluate_scopes(
    session: AsyncSession,
    contexts: dict[str, StoreContext],
    scopes: Iterable[Scope],
    *,
    now: datetime,
) -> Evaluation:
    """Evaluate every tier of these scopes as of today; write state changes and alerts.

    The caller holds each store's lock (shared, or exclusive for an edit) and read
    ``contexts`` after taking it: a store or policy edit takes the lock exclusively,
    so the lines judged here are the ones in force, never a stale copy.
    """
    ordered = sorted(set(scopes))
    report = Evaluation()
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
    states = await repository.load_states(session, ordered)
    tiers_by_scope: dict[Scope, list[AlertState]] = defaultdict(list)
    for state in states.values():
        tiers_by_scope[(state.store_id, state.product_id)].append(state)
    silences: list[Silence] | None = None  # read only when an alert is written

    state_rows: list[dict[str, Any]] = []
    for store_id, scope in ordered:
        ctx = contexts[store_id]
        scope_figures = figures.get((store_id, scope), EMPTY)
        kind: TierScope = "store" if scope == STORE_SCOPE else "product"
        interval = timedelta(seconds=ctx.policy.reminder_interval_seconds)
        scope_verdicts = ctx.policy.judge(scope_figures, kind)
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
                silences = await repository.active_silences(session, list(by_store), now)
            report.alerts.append(
                Alert(
                    alert_id=str(uuid.uuid4()),
                    type=alert_type,
                    store_id=store_id,
                    product_id=product_id,
                    tier=verdict.tier,
                    state=verdict.state,
                    previous_state=previous,
                    silenced=silenced(silences, store_id, product_id, verdict.tier),
                    created_at=now,
                    payload=data,
                )
            )
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
    await repository.save_states(session, state_rows)
    if report.alerts:
        await repository.insert_alerts(session, report.alerts)
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


async def scopes_to_review(session: AsyncSession, ctx: StoreContext, now: datetime) -> set[Scope]:
    """Every scope of a store whose state could change with time alone.

    That is the store itself, each product with data in the window, and each
    scope whose stored state is not ok (its data may just have left the window).
    """
    start, end = ctx.window(ctx.today(now))
    scopes: set[Scope] = {(ctx.store_id, STORE_SCOPE)}
    in_window = await window_figures(session, ctx.store_id, start, end)
    scopes.update((ctx.store_id, scope) for scope, f in in_window.items() if f.has_data)
    scopes.update(
        (ctx.store_id, scope) for scope in await repository.scopes_at_risk(session, ctx.store_id)
    )
    return scopes


async def create_silence(
    session: AsyncSession,
    *,
    store_id: str | None,
    product_id: str | None,
    tier: str | None,
    until: datetime,
    comment: str | None,
    now: datetime,
) -> Silence:
    """Hold back sending for matching alerts until ``until`` (the states still move)."""
    if until.tzinfo is None:
        raise field_error("body.until", "naive_until", "until needs a UTC offset")
    if until <= now:
        raise field_error("body.until", "until_in_past", "until must be in the future")
    silence = Silence(
        store_id=store_id,
        product_id=product_id,
        tier=tier,
        until=until,
        comment=comment,
        created_at=now,
    )
    session.add(silence)
    await session.flush()
    return silence
