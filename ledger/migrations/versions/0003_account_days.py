"""What each account was debited per booking day, kept (`ledger_account_days`).

Daily limits summed the account's debit postings of the day, so a file from an account
that had made 100,000 payments that day read all of them again. The sum is now kept per
account and day by the unit of work that posts (filled here from the postings).

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_account_days",
        sa.Column("account_id", Id, sa.ForeignKey("ledger_accounts.id"), primary_key=True),
        sa.Column("booking_date", sa.Date, primary_key=True),
        sa.Column("debited_minor", sa.BigInteger, nullable=False),
    )
    postings = sa.table(
        "ledger_postings",
        sa.column("account_id", Id),
        sa.column("booking_date", sa.Date),
        sa.column("amount_minor", sa.BigInteger),
    )
    days = sa.table(
        "ledger_account_days",
        sa.column("account_id", Id),
        sa.column("booking_date", sa.Date),
        sa.column("debited_minor", sa.BigInteger),
    )
    p = postings.c
    debits = (
        sa.select(p.account_id, p.booking_date, -sa.func.sum(p.amount_minor))
        .where(p.amount_minor < 0)
        .group_by(p.account_id, p.booking_date)
    )
    op.get_bind().execute(
        sa.insert(days).from_select(["account_id", "booking_date", "debited_minor"], debits)
    )


def downgrade() -> None:
    op.drop_table("ledger_account_days")
