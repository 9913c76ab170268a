"""What a file's run reads of the client's day costs by the file, not by the day.

`gw_file_days`: each file's EUR per due date — executed (`executed_minor`), executed
or still to execute (`open_minor`) — and how many of those the large-payment-day rule
(SPEC §14) held. The gate read every payment of the client's day instead, so a small
file after a big payroll paid for the whole payroll again. Filled here from
`gw_payments` by the rule of `large_days.add_file_days` as of this revision; the runs
keep it from then on.

`ix_gw_payments_fingerprint` gains the status and due date that AM05's look-ups by
fingerprint ask about: without statistics, a database preferred reading the accounts'
whole window through `ix_gw_payments_debtor_status`.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gw_file_days",
        sa.Column("file_id", Id, sa.ForeignKey("gw_files.id"), primary_key=True),
        sa.Column("due_date", sa.Date, primary_key=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("executed_minor", sa.BigInteger, nullable=False),
        sa.Column("open_minor", sa.BigInteger, nullable=False),
        sa.Column("held", sa.Integer, nullable=False),
    )
    op.create_index("ix_gw_file_days_client", "gw_file_days", ["client_id", "due_date"])
    op.drop_index("ix_gw_payments_fingerprint", table_name="gw_payments")
    op.create_index(
        "ix_gw_payments_fingerprint", "gw_payments", ["fingerprint", "status", "due_date"]
    )
    payments = sa.table(
        "gw_payments",
        sa.column("file_id", Id),
        sa.column("due_date", sa.Date),
        sa.column("currency", sa.String),
        sa.column("status", sa.String),
        sa.column("amount_minor", sa.BigInteger),
        sa.column("large_day_held_on", sa.Date),
    )
    files = sa.table("gw_files", sa.column("id", Id), sa.column("client_id", sa.String))
    days = sa.table(
        "gw_file_days",
        *(sa.column(n) for n in ("file_id", "due_date", "client_id", "executed_minor",
                                 "open_minor", "held")),
    )  # fmt: skip
    p = payments.c
    totals = (
        sa.select(
            p.file_id, p.due_date, files.c.client_id,
            sa.func.sum(sa.case((p.status == "ACSC", p.amount_minor), else_=0)),
            sa.func.sum(p.amount_minor), sa.func.count(p.large_day_held_on),
        )
        .select_from(payments.join(files, files.c.id == p.file_id))
        .where(p.currency == "EUR", p.status.in_(["ACSC", "PDNG"]), p.due_date.is_not(None))
        .group_by(p.file_id, p.due_date, files.c.client_id)
    )  # fmt: skip
    op.get_bind().execute(sa.insert(days).from_select(list(days.c.keys()), totals))


def downgrade() -> None:
    op.drop_index("ix_gw_payments_fingerprint", table_name="gw_payments")
    op.create_index("ix_gw_payments_fingerprint", "gw_payments", ["fingerprint"])
    op.drop_index("ix_gw_file_days_client", table_name="gw_file_days")
    op.drop_table("gw_file_days")
