"""What an account was debited per day is kept up to 18 digits (`tx.day_debits_kept_max`).

The daily limits compare with amounts under 18 digits, so past them every limit is exceeded
alike; kept exactly, a busy day's sum could pass the column's 64 bits and fail the booking
that adds to it. Rows written before (only by fundings past 18 digits, which `ledger fund`
now refuses) are brought down to that bound, so that adding to them stays within 64 bits.

Revision ID: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

KEPT_MAX = 10**18  # `ledger.tx.day_debits_kept_max` when this was written


def upgrade() -> None:
    op.execute(
        f"UPDATE ledger_account_days SET debited_minor = {KEPT_MAX} "
        f"WHERE debited_minor > {KEPT_MAX}"
    )


def downgrade() -> None:
    pass  # the rows kept stay what every limit reads them as
