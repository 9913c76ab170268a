"""Each payment information's CtrlSum as sent, echoed in every pain.002 about its file.

`gw_payment_infos`: a row per payment information that had a CtrlSum (its file and
position), with the value as its OrgnlPmtInfAndSts/OrgnlCtrlSum echoes it. The answers
used to give the sum of the payments instead (or nothing), which is not what the client
sent when a payment of it was unreadable (SPEC §6). Files accepted before this revision
have no rows: their follow-up reports leave the payment information's OrgnlCtrlSum out
(their pain.001s are in the archive; the value is not worked out again from the payments).

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gw_payment_infos",
        sa.Column("file_id", Id, sa.ForeignKey("gw_files.id"), primary_key=True),
        sa.Column("pmt_seq", sa.Integer, primary_key=True),
        sa.Column("ctrl_sum", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gw_payment_infos")
