"""the figures explained: SKU and breakdown buckets, platform figures, count basis, daily reports

Orders now keep their courier (the earliest order.shipped naming one) and the
parts of their contribution the breakdowns split by; refunds keep the SKU of
their earliest refund.requested. Both are filled here from the raw events.
Stores are marked as built with the previous bucket rules (figures_version 1):
`refundwatch migrate` (and serve, worker) rebuilds them from their folded
state right after, which fills the new bucket tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("courier", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("courier_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("courier_event_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("c_sku_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("c_courier", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("c_ship_band", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("c_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("c_kind", sa.String(length=32), nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("sku_id", sa.String(length=128), nullable=True))
    op.create_table(
        "daily_sku_figures",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("sku_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("applied_quality_refunds", sa.Integer(), nullable=False),
        sa.Column("quality_refunds", sa.Integer(), nullable=False),
        sa.Column("pending_quality_refunds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "store_id", "product_id", "sku_id", "day", name=op.f("pk_daily_sku_figures")
        ),
    )
    op.create_table(
        "daily_breakdowns",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("quality_refunds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "store_id", "product_id", "dimension", "key", "day", name=op.f("pk_daily_breakdowns")
        ),
    )
    op.create_table(
        "platform_figures",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("quality_refund_rate", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("quality_refunds", sa.Integer(), nullable=True),
        sa.Column("orders", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "day", name=op.f("pk_platform_figures")),
    )
    for table, column in (
        ("policies", sa.Column("count_basis", sa.String(length=16), server_default="counted")),
        (
            "webhooks",
            sa.Column("report_timezone", sa.String(length=64), server_default="Asia/Shanghai"),
        ),
        ("stores", sa.Column("figures_version", sa.Integer(), server_default="1")),
    ):
        column.nullable = False
        with op.batch_alter_table(table) as batch:
            batch.add_column(column)
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column.name, server_default=None)
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("daily_report_at", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("last_report_on", sa.Date(), nullable=True))
    _fill_from_raw_events()


def _fill_from_raw_events() -> None:
    """Couriers of orders and SKUs of refunds, from the raw events they came in."""
    bind = op.get_bind()
    events = sa.table(
        "events",
        sa.column("event_id"),
        sa.column("type"),
        sa.column("occurred_at"),
        sa.column("payload"),
    )
    earliest: dict[tuple[str, str], tuple[Any, str, str]] = {}
    rows = bind.execute(
        sa.select(events.c.event_id, events.c.occurred_at, events.c.payload).where(
            events.c.type == "order.shipped"
        )
    )
    for event_id, occurred_at, payload in rows:
        event = json.loads(payload)
        courier = event.get("courier")
        if not courier:
            continue
        at = _aware(occurred_at)
        key = (event["store_id"], event["order_id"])
        if key not in earliest or (at, event_id) < earliest[key][:2]:
            earliest[key] = (at, event_id, courier)
    orders = sa.table(
        "orders",
        sa.column("store_id"),
        sa.column("order_id"),
        sa.column("courier"),
        sa.column("courier_at", sa.DateTime(timezone=True)),
        sa.column("courier_event_id"),
    )
    update = (
        orders.update()
        .where(
            orders.c.store_id == sa.bindparam("s"),
            orders.c.order_id == sa.bindparam("o"),
        )
        .values(
            courier=sa.bindparam("c"),
            courier_at=sa.bindparam("a", type_=sa.DateTime(timezone=True)),
            courier_event_id=sa.bindparam("e"),
        )
    )
    params = [
        {"s": s, "o": o, "c": c, "a": _stored(bind, at), "e": e}
        for (s, o), (at, e, c) in earliest.items()
    ]
    for start in range(0, len(params), BATCH):
        bind.execute(update, params[start : start + BATCH])

    refunds = sa.table(
        "refunds",
        sa.column("store_id"),
        sa.column("refund_id"),
        sa.column("requested_event_id"),
        sa.column("sku_id"),
    )
    requested = bind.execute(
        sa.select(refunds.c.store_id, refunds.c.refund_id, events.c.payload)
        .join(events, events.c.event_id == refunds.c.requested_event_id)
        .where(events.c.type == "refund.requested")
    )
    skus = []
    for store_id, refund_id, payload in requested:
        sku = json.loads(payload).get("sku_id")
        if isinstance(sku, str) and sku:
            skus.append({"s": store_id, "r": refund_id, "k": sku})
    set_sku = (
        refunds.update()
        .where(refunds.c.store_id == sa.bindparam("s"), refunds.c.refund_id == sa.bindparam("r"))
        .values(sku_id=sa.bindparam("k"))
    )
    for start in range(0, len(skus), BATCH):
        bind.execute(set_sku, skus[start : start + BATCH])


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stored(bind: Any, moment: datetime) -> datetime:
    # SQLite keeps naive UTC text (as the application's UTCDateTime does).
    return moment.replace(tzinfo=None) if bind.dialect.name == "sqlite" else moment


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("last_report_on")
        batch.drop_column("daily_report_at")
        batch.drop_column("report_timezone")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("figures_version")
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("count_basis")
    op.drop_table("platform_figures")
    op.drop_table("daily_breakdowns")
    op.drop_table("daily_sku_figures")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("sku_id")
    with op.batch_alter_table("orders") as batch:
        for name in (
            "c_kind",
            "c_reason",
            "c_ship_band",
            "c_courier",
            "c_sku_id",
            "courier_event_id",
            "courier_at",
            "courier",
        ):
            batch.drop_column(name)
