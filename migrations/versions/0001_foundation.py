"""foundation: policies (with the default one), stores, events, refund/order state,
daily buckets, API keys, alert states, alerts, silences

Revision ID: 0001
Revises:
Create Date: 2026-11-26 03:41:46.476483
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

DEFAULT_TIERS = [
    {"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 5},
    {"tier": "listing_ban", "scope": "store", "rate_threshold": "0.02", "min_count": 10},
    {"tier": "delisting", "scope": "product", "rate_threshold": "0.03", "min_count": 5},
]


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "product_id", "tier", name=op.f("pk_alert_states")),
    )
    op.create_index(
        op.f("ix_alert_states_state_last_alert_at"),
        "alert_states",
        ["state", "last_alert_at"],
        unique=False,
    )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("previous_state", sa.String(length=16), nullable=False),
        sa.Column("silenced", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_alerts_alert_id")),
    )
    op.create_index(op.f("ix_alerts_store_id_id"), "alerts", ["store_id", "id"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "daily_figures",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("applied_quality_refunds", sa.Integer(), nullable=False),
        sa.Column("quality_refunds", sa.Integer(), nullable=False),
        sa.Column("pending_quality_refunds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "product_id", "day", name=op.f("pk_daily_figures")),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    op.create_index(
        op.f("ix_events_store_id_occurred_at"), "events", ["store_id", "occurred_at"], unique=False
    )

    op.create_table(
        "orders",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_event_id", sa.String(length=128), nullable=True),
        sa.Column("paid_product_id", sa.String(length=128), nullable=True),
        sa.Column("sku_id", sa.String(length=128), nullable=True),
        sa.Column("amount", sa.String(length=32), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("c_product_id", sa.String(length=128), nullable=True),
        sa.Column("c_paid_day", sa.Date(), nullable=True),
        sa.Column("c_applied_day", sa.Date(), nullable=True),
        sa.Column("c_quality_day", sa.Date(), nullable=True),
        sa.Column("c_pending", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "order_id", name=op.f("pk_orders")),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("quality_reasons", sa.JSON(), nullable=False),
        sa.Column("reason_basis", sa.String(length=16), nullable=False),
        sa.Column("warn_ratio", sa.Numeric(precision=8, scale=6), nullable=False),
        sa.Column("warn_headroom", sa.Integer(), nullable=False),
        sa.Column("min_orders", sa.Integer(), nullable=False),
        sa.Column("reminder_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_policies_name")),
    )
    op.create_table(
        "refunds",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("product_id", sa.String(length=128), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_event_id", sa.String(length=128), nullable=True),
        sa.Column("first_reason", sa.String(length=32), nullable=True),
        sa.Column("first_reason_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_reason_event_id", sa.String(length=128), nullable=True),
        sa.Column("latest_reason", sa.String(length=32), nullable=True),
        sa.Column("latest_reason_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latest_reason_event_id", sa.String(length=128), nullable=True),
        sa.Column("stage", sa.SmallInteger(), nullable=True),
        sa.Column("stage_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_event_id", sa.String(length=128), nullable=True),
        sa.Column("appeal", sa.String(length=16), nullable=True),
        sa.Column("appeal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appeal_event_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("store_id", "refund_id", name=op.f("pk_refunds")),
    )
    op.create_index(
        op.f("ix_refunds_store_id_order_id"), "refunds", ["store_id", "order_id"], unique=False
    )
    op.create_index(
        op.f("ix_refunds_store_id_requested_at"),
        "refunds",
        ["store_id", "requested_at"],
        unique=False,
    )

    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("product_id", sa.String(length=128), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_table(
        "stores",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name=op.f("fk_stores_policy_id_policies")
        ),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_stores")),
    )
    op.create_index(op.f("ix_stores_policy_id"), "stores", ["policy_id"], unique=False)

    policies = sa.table(
        "policies",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("window_days", sa.Integer),
        sa.column("quality_reasons", sa.JSON),
        sa.column("reason_basis", sa.String),
        sa.column("warn_ratio", sa.Numeric(8, 6)),
        sa.column("warn_headroom", sa.Integer),
        sa.column("min_orders", sa.Integer),
        sa.column("reminder_interval_seconds", sa.Integer),
        sa.column("tiers", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    created = datetime(2026, 11, 26, tzinfo=UTC)
    op.bulk_insert(
        policies,
        [
            {
                "id": 1,
                "name": "default",
                "window_days": 30,
                "quality_reasons": ["quality_issue", "not_as_described"],
                "reason_basis": "first",
                "warn_ratio": Decimal("0.8"),
                "warn_headroom": 1,
                "min_orders": 0,
                "reminder_interval_seconds": 24 * 3600,
                "tiers": DEFAULT_TIERS,
                "created_at": created,
                "updated_at": created,
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('policies', 'id'), 1)")


def downgrade() -> None:
    op.drop_index(op.f("ix_stores_policy_id"), table_name="stores")

    op.drop_table("stores")
    op.drop_table("silences")
    op.drop_index(op.f("ix_refunds_store_id_requested_at"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_store_id_order_id"), table_name="refunds")

    op.drop_table("refunds")
    op.drop_table("policies")
    op.drop_table("orders")
    op.drop_index(op.f("ix_events_store_id_occurred_at"), table_name="events")

    op.drop_table("events")
    op.drop_table("daily_figures")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_alerts_store_id_id"), table_name="alerts")

    op.drop_table("alerts")
    op.drop_index(op.f("ix_alert_states_state_last_alert_at"), table_name="alert_states")

    op.drop_table("alert_states")
