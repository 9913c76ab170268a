"""Budget classification codes per payment (SPEC §12).

`gw_payments.budget_codes`: the payment's EKK/IKK code lines as accepted, JSON
`[[side, code, amount], …]` in the order sent (`gateway.inbound.budget.lines`); the
statements carry them in AddtlTxInf and the budget summary adds them up by code.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("gw_payments", sa.Column("budget_codes", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_payments") as batch:
        batch.drop_column("budget_codes")
