"""The due-date index holds pending payments only (a partial index).

`ix_gw_payments_due` (status, due_date) indexed every payment; only pending ones are
ever looked up by due date, so `ix_gw_payments_pending` (due_date) WHERE status =
'PDNG' replaces it: a payroll's accepted payments no longer cost an index entry
each. (Revision 0001 creates the tables as `gateway/db.py` declares them today, which
is without this index: this revision creates it on a new database too.)

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING_ONLY = "status = 'PDNG'"  # gateway.db.PENDING_ONLY, as this revision made it


def _indexes() -> set[str]:
    return {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes("gw_payments")}


def upgrade() -> None:
    present = _indexes()
    if "ix_gw_payments_due" in present:
        op.drop_index("ix_gw_payments_due", table_name="gw_payments")
    if "ix_gw_payments_pending" not in present:
        op.create_index(
            "ix_gw_payments_pending",
            "gw_payments",
            ["due_date"],
            sqlite_where=sa.text(PENDING_ONLY),
            postgresql_where=sa.text(PENDING_ONLY),
        )


def downgrade() -> None:
    op.drop_index("ix_gw_payments_pending", table_name="gw_payments")
    op.create_index("ix_gw_payments_due", "gw_payments", ["status", "due_date"])
