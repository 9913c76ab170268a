"""A transfer is a header; who pays whom and how much are its postings, each an entry.

A batch-booked payment information is one transfer with one debit and a credit per
creditor account (SPEC §6), so a transfer no longer has one debit and one credit
account, one currency or one amount: those columns go, with the transfer fingerprint
(never used: AM05 is the gateway's) and their indexes. Daily limits sum an account's
debit postings of the day (`ix_ledger_postings_account_day`). A posting may carry its
own reference (the AcctSvcrRef of its entry), when several payments are one transfer.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_index("ix_ledger_transfers_fingerprint", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_debit_day", table_name="ledger_transfers")
    with op.batch_alter_table("ledger_transfers") as batch:
        for column in ("fingerprint", "debit_account_id", "credit_account_id", "amount_minor",
                       "currency"):  # fmt: skip
            batch.drop_column(column)
    with op.batch_alter_table("ledger_postings") as batch:
        batch.add_column(sa.Column("reference", sa.String(35), nullable=True))


def downgrade() -> None:
    """The columns come back empty (nullable): a transfer of several credits has no single
    credit account to put in them."""
    with op.batch_alter_table("ledger_postings") as batch:
        batch.drop_column("reference")
    with op.batch_alter_table("ledger_transfers") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("amount_minor", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("debit_account_id", Id, nullable=True))
        batch.add_column(sa.Column("credit_account_id", Id, nullable=True))
        batch.add_column(sa.Column("fingerprint", sa.String(32), nullable=True))
    op.create_index(
        "ix_ledger_transfers_debit_day", "ledger_transfers", ["debit_account_id", "booking_date"]
    )
    op.create_index(
        "ix_ledger_transfers_fingerprint", "ledger_transfers", ["fingerprint", "booking_date"]
    )
