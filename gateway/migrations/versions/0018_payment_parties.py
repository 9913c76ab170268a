"""A payment's ultimate debtor and creditor (their names) and its purpose, as sent
(`gw_payments.ultimate_debtor`, `ultimate_creditor`, `purpose`): the statements of both
sides carry them (SPEC §8: counterparty information). Payments received before this
revision have none.

Revision ID: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_COLUMNS = (("ultimate_debtor", 140), ("ultimate_creditor", 140), ("purpose", 48))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("gw_payments", sa.Column(name, sa.String(length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_payments") as batch:
        for name, _ in _COLUMNS:
            batch.drop_column(name)
