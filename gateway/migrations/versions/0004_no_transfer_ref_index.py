"""`gw_payments.transfer_ref` loses its index.

Statements find the payments a transfer carries through the transfer's reference,
which names the file (`booking.reference_file_id`), and the (file_id, seq) index.
The index on `transfer_ref` was written for every payment of a payroll, every one
of them under the same batch reference, and read by nothing. (Revision 0001 creates the tables as
`gateway/db.py` declares them today, so on a new database there is nothing to drop.)

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_INDEX = "ix_gw_payments_transfer_ref"


def upgrade() -> None:
    present = {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes("gw_payments")}
    if _INDEX in present:
        op.drop_index(_INDEX, table_name="gw_payments")


def downgrade() -> None:
    op.create_index(_INDEX, "gw_payments", ["transfer_ref"])
