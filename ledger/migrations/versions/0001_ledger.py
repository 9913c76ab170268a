"""The ledger: accounts, transfers, postings.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("iban", sa.String(34), nullable=False, unique=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("overdraft_minor", sa.BigInteger, nullable=False),
        sa.Column("max_payment_minor", sa.BigInteger, nullable=True),
        sa.Column("daily_limit_minor", sa.BigInteger, nullable=True),
        sa.Column("balance_minor", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("reference", sa.String(35), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("debit_account_id", Id, sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("credit_account_id", Id, sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("booking_date", sa.Date, nullable=False),
        sa.Column("value_date", sa.Date, nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_ledger_transfers_fingerprint", "ledger_transfers", ["fingerprint", "booking_date"]
    )
    op.create_index(
        "ix_ledger_transfers_debit_day", "ledger_transfers", ["debit_account_id", "booking_date"]
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("transfer_id", Id, sa.ForeignKey("ledger_transfers.id"), nullable=False),
        sa.Column("account_id", Id, sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("booking_date", sa.Date, nullable=False),
    )
    op.create_index(
        "ix_ledger_postings_account_day", "ledger_postings", ["account_id", "booking_date"]
    )
    op.create_index("ix_ledger_postings_transfer", "ledger_postings", ["transfer_id"])
    op.create_table(
        "ledger_sequences",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_sequences")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
