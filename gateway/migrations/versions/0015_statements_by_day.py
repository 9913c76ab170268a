"""The statements of a day found by the day.

A transaction that books on a day first asks whether the day is stated already
(`booking_days.hold`): by its date alone, which `uq_gw_statements_day` (IBAN first) does
not serve — without this index every booking read the whole table, a row per account and
business day.

Revision ID: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_gw_statements_day", "gw_statements", ["business_date", "message"])


def downgrade() -> None:
    op.drop_index("ix_gw_statements_day", table_name="gw_statements")
