"""What every answer about a batch waiting for signatures lists, kept with it.

`gw_awaiting_listings`: for a batch waiting for signatures, its transactions as its first
answer listed them (PDNG, why they wait and until when; `FirstReport.dump`, compressed), so
that the answer to each signature lists them again without reading the batch again. A
batch that was waiting before this revision has none: its answers read it, as before.

Revision ID: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gw_awaiting_listings",
        sa.Column("awaiting_id", Id, sa.ForeignKey("gw_awaiting.id"), primary_key=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gw_awaiting_listings")
