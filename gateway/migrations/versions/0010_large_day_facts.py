"""Large-payment days as facts of their own (SPEC §14).

`gw_payments.large_day_held_on`: the business day on which the large-payment-day rule
held the payment (it then executes the next business day and is never held again);
NULL if it never was. `gw_awaiting_eur`: the EUR a batch waiting for signatures
(SPEC §11) instructs per business day, counted as announced for that day when the
batch arrived by the deadline.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("gw_payments", sa.Column("large_day_held_on", sa.Date, nullable=True))
    op.create_table(
        "gw_awaiting_eur",
        sa.Column("awaiting_id", Id, sa.ForeignKey("gw_awaiting.id"), primary_key=True),
        sa.Column("business_date", sa.Date, primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gw_awaiting_eur")
    with op.batch_alter_table("gw_payments") as batch:
        batch.drop_column("large_day_held_on")
