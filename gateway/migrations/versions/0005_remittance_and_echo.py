"""Remittance as sent, and what a file's group header said (echoed in its answers).

- `gw_payments.remittance` holds every Ustrd line (text, no longer cut at 140), and
  `remittance_structured` the Strd blocks as sent, for the statements (SPEC §6).
- `gw_files.msg_created_at` and `ctrl_sum`: GrpHdr/CreDtTm and CtrlSum as sent, echoed
  as OrgnlCreDtTm and OrgnlCtrlSum in every pain.002 about the file.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_payments") as batch:
        batch.alter_column(
            "remittance", existing_type=sa.String(140), type_=sa.Text(), existing_nullable=True
        )
        batch.add_column(sa.Column("remittance_structured", sa.Text, nullable=True))
    with op.batch_alter_table("gw_files") as batch:
        batch.add_column(sa.Column("msg_created_at", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ctrl_sum", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_files") as batch:
        batch.drop_column("ctrl_sum")
        batch.drop_column("msg_created_at")
    with op.batch_alter_table("gw_payments") as batch:
        batch.drop_column("remittance_structured")
        batch.alter_column(
            "remittance", existing_type=sa.Text(), type_=sa.String(140), existing_nullable=True
        )
