"""alerts in commit order (a cursor a poller can rely on); a robot's refusal on its webhook

`alerts.seq` numbers alerts in the order their transactions commit: the last
number handed out lives in the one row of `alert_sequence`, which every
alert-writing transaction updates as it commits (its row lock orders those
commits). Alerts stored before this revision are numbered by id.

`webhooks.refusal_*` keep the last time a group robot refused a message for a
configuration reason (bad signature, missing keyword, address not allowed,
unknown token), with the robot's own code and message.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("seq", sa.Integer(), nullable=True))
    op.execute("UPDATE alerts SET seq = id")
    op.create_index(op.f("ix_alerts_seq"), "alerts", ["seq"], unique=True)
    op.create_table(
        "alert_sequence",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_sequence")),
    )
    op.execute(
        "INSERT INTO alert_sequence (id, last_seq) SELECT 1, COALESCE(MAX(id), 0) FROM alerts"
    )
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("refusal_code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("refusal_message", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("refused_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("refused_at")
        batch.drop_column("refusal_message")
        batch.drop_column("refusal_code")
    op.drop_table("alert_sequence")
    op.drop_index(op.f("ix_alerts_seq"), table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("seq")
