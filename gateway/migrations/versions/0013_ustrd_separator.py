"""The Ustrd lines of a payment kept apart by U+001E instead of a line break.

`gw_payments.remittance` joined a payment's Ustrd lines with a line break, so a line that
held one of its own (`<Ustrd>line&#10;break</Ustrd>`) reached the statements as two lines
(SPEC §6: remittance as sent). Lines are now joined by U+001E, which XML text cannot hold
(`parsed.USTRD_SEPARATOR`). The rows written before are converted: every line break in
them was a separator (what a line of their own held is not known any more).

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_PAYMENTS = sa.table("gw_payments", sa.column("remittance", sa.Text))


def _replace(old: str, new: str) -> None:
    op.execute(
        _PAYMENTS.update()
        .where(_PAYMENTS.c.remittance.contains(old, autoescape=True))
        .values(remittance=sa.func.replace(_PAYMENTS.c.remittance, old, new))
    )


def upgrade() -> None:
    _replace("\n", "\x1e")


def downgrade() -> None:
    _replace("\x1e", "\n")
