"""A payment names its file without a foreign key checked per row.

A file of 100,000 payments is 100,000 rows of `gw_payments`, and PostgreSQL checked each
one's `file_id` with a trigger per row (a query and a lock of the file's row). The key
goes; files can no longer be deleted (a trigger refuses it), and
`db.check_references` finds any payment that names a file that does not exist
(`ledger/migrations/references.py`).

Revision ID: 0011
"""

from __future__ import annotations

from ledger.migrations import references

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    references.drop_foreign_keys("gw_payments", ["file_id"])
    references.refuse_deletes("gw_files")


def downgrade() -> None:
    references.allow_deletes("gw_files")
    references.add_foreign_keys("gw_payments", [("file_id", "gw_files")])
