"""import parts: an events file of many stores imported by several processes at once

Each part owns the rows of its stores and commits on its own; `part_rows` keeps
each part's last committed row and how far it has read, so a rerun of a
cut-short import resumes every part where it stopped; `part_stores` the
stores dealt to each part before it began (by their sizes in the file), so a
rerun deals them alike. NULL for an import of one part (every import before
this revision).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("part_rows", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("part_stores", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("part_stores")
        batch.drop_column("part_rows")
