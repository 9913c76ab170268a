"""Postings name their account and transfer without a foreign key checked per row.

A payment is one or two postings, and PostgreSQL checks each posting's two foreign keys
with a trigger per row (a query and a lock of the row named): on a 100,000-payment run
that was more of the server's time than writing the postings and their indexes. The
keys go; accounts and transfers, the rows they named, can no longer be deleted (a
trigger refuses it), and `audit.check_invariants` finds any posting that names one that
does not exist (`references.py`).

Revision ID: 0004
"""

from __future__ import annotations

from ledger.migrations import references

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEYS = (("account_id", "ledger_accounts"), ("transfer_id", "ledger_transfers"))


def upgrade() -> None:
    references.drop_foreign_keys("ledger_postings", [column for column, _ in KEYS])
    for _, table in KEYS:
        references.refuse_deletes(table)


def downgrade() -> None:
    for _, table in KEYS:
        references.allow_deletes(table)
    references.add_foreign_keys("ledger_postings", KEYS)
