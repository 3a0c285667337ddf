"""Alert states, alerts and silences: the rows of DESIGN §5."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.alerts.models import Alert, AlertSequence, AlertState, Silence
from app.alerts.rules import AT_RISK
from app.db.dialect import dialect_of, pairs_clause, pairs_params, upsert

StateKey = tuple[str, str, str]  # (store_id, product_id or "", tier)


@lru_cache(maxsize=8)
def _states_query(dialect: str) -> Any:
    return select(AlertState).where(
        pairs_clause(dialect, AlertState.store_id, AlertState.product_id, "scopes")
    )


async def load_states(
    session: AsyncSession, scopes: Sequence[tuple[str, str]]
) -> dict[StateKey, AlertState]:
    dialect = dialect_of(session)
    rows = await session.scalars(
        _states_query(dialect), pairs_params(dialect, "scopes", list(scopes))
    )
    return {(r.store_id, r.product_id, r.tier): r for r in rows}


async def save_states(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = upsert(
        session,
        AlertState.__table__,
        ["store_id", "product_id", "tier"],
        ["state", "since", "last_alert_at", "evaluated_at"],
    )
    await session.execute(stmt, rows)


_UNNUMBERED = "refundwatch.unnumbered_alerts"


async def insert_alerts(session: AsyncSession, alerts: Sequence[Alert]) -> None:
    """Write alerts; they get their ``seq`` when the transaction commits."""
    session.add_all(alerts)
    await session.flush()
    session.sync_session.info.setdefault(_UNNUMBERED, []).extend(alerts)


@event.listens_for(Session, "before_commit")
def _number_alerts_at_commit(session: Session) -> None:
    """Give the transaction's alerts the next numbers of the commit order.

    ``id`` and ``created_at`` are taken when an alert is written, which may be a
    while before its transaction commits: a poller reading "after the last one I
    saw" by either could pass over an alert that commits later with a smaller
    one. The counter row is updated as the last statement before COMMIT, and its
    row lock is held until the commit ends, so transactions that write alerts
    commit in the order of their numbers: once ``seq = n`` is visible, every
    smaller number is too. Taken last, the lock never waits on anything else.
    """
    alerts: list[Alert] | None = session.info.pop(_UNNUMBERED, None)
    if not alerts:
        return
    last = session.execute(
        update(AlertSequence)
        .where(AlertSequence.id == 1)
        .values(last_seq=AlertSequence.last_seq + len(alerts))
        .returning(AlertSequence.last_seq)
    ).scalar_one()
    first = last - len(alerts) + 1
    for offset, alert in enumerate(sorted(alerts, key=lambda a: a.id)):
        alert.seq = first + offset  # flushed by the commit that follows


@event.listens_for(Session, "after_rollback")
def _forget_unnumbered(session: Session) -> None:
    session.info.pop(_UNNUMBERED, None)


async def active_silences(
    session: AsyncSession, store_ids: Sequence[str], now: datetime
) -> list[Silence]:
    rows = await session.scalars(
        select(Silence).where(
            Silence.until > now,
            (Silence.store_id.is_(None)) | (Silence.store_id.in_(list(store_ids))),
        )
    )
    return list(rows)


async def scopes_at_risk(session: AsyncSession, store_id: str) -> list[str]:
    """The product ids ("" = the store) of a store's scopes whose state is at risk."""
    rows = await session.execute(
        select(AlertState.product_id).where(
            AlertState.store_id == store_id, AlertState.state.in_(AT_RISK)
        )
    )
    return [r[0] for r in rows]


async def states_at_risk(
    session: AsyncSession, *, store_id: str | None = None, alerted_before: datetime | None = None
) -> list[AlertState]:
    query = select(AlertState).where(AlertState.state.in_(AT_RISK))
    if store_id is not None:
        query = query.where(AlertState.store_id == store_id)
    if alerted_before is not None:
        query = query.where(AlertState.last_alert_at <= alerted_before)
    return list(await session.scalars(query))


async def find_alert(session: AsyncSession, alert_id: str) -> Alert | None:
    return await session.scalar(select(Alert).where(Alert.alert_id == alert_id))


def alerts_query(
    *,
    store_id: str | None,
    product_id: str | None,
    tier: str | None,
    type: str | None,
    since: datetime | None,
    after: int | None = None,
) -> Any:
    """The alert history with these filters, for keyset paging on ``Alert.id``
    (or on ``Alert.seq`` when reading ``after`` a sequence number)."""
    query = select(Alert)
    if after is not None:
        query = query.where(Alert.seq > after)
    if store_id is not None:
        query = query.where(Alert.store_id == store_id)
    if product_id is not None:
        query = query.where(Alert.product_id == product_id)
    if tier is not None:
        query = query.where(Alert.tier == tier)
    if type is not None:
        query = query.where(Alert.type == type)
    if since is not None:
        query = query.where(Alert.created_at >= since)
    return query


def silences_query(*, active_at: datetime | None) -> Any:
    query = select(Silence)
    if active_at is not None:
        query = query.where(Silence.until > active_at)
    return query
