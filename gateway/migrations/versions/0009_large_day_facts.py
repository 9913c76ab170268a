"""Large-payment days as facts of their own (SPEC §14).

`gw_payments.large_day_held_on`: the business day on which the large-payment-day rule
held the payment (it then executes the next business day and is never held again);
NULL if it never was. `gw_awaiting_eur`: the EUR a batch waiting for signatures
(SPEC §11) instructs per business day, counted as announced for that day when the
batch arrived by the deadline.

A payment held before this revision is known by its PDNG text: the pending ones whose
text still says so get the business day before their due date (one held and then left
waiting for a rate has lost that text; it cannot be told apart).

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger import calendar

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HELD_PREFIX = "large-payment day not announced by "  # large_days.held_text, as of 0008


def upgrade() -> None:
    op.add_column("gw_payments", sa.Column("large_day_held_on", sa.Date, nullable=True))
    op.create_table(
        "gw_awaiting_eur",
        sa.Column("awaiting_id", Id, sa.ForeignKey("gw_awaiting.id"), primary_key=True),
        sa.Column("business_date", sa.Date, primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
    )
    payments = sa.table(
        "gw_payments",
        sa.column("id", Id),
        sa.column("status", sa.String),
        sa.column("due_date", sa.Date),
        sa.column("additional_info", sa.String),
        sa.column("large_day_held_on", sa.Date),
    )
    p = payments.c
    conn = op.get_bind()
    held = conn.execute(
        sa.select(p.id, p.due_date).where(
            p.status == "PDNG", p.additional_info.startswith(HELD_PREFIX, autoescape=True)
        )
    ).all()
    for row_id, due in held:
        conn.execute(
            sa.update(payments)
            .where(p.id == row_id)
            .values(large_day_held_on=calendar.previous_business_day(due))
        )


def downgrade() -> None:
    op.drop_table("gw_awaiting_eur")
    with op.batch_alter_table("gw_payments") as batch:
        batch.drop_column("large_day_held_on")
