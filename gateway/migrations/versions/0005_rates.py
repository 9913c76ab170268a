"""Exchange rates (`gw_rates`) and large-payment-day announcements (`gw_announcements`).

Revision 0001 creates the tables as `gateway/db.py` declares them today, so on a new
database both exist already and there is nothing to create.

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
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "gw_rates" not in present:
        op.create_table(
            "gw_rates",
            sa.Column("rate_date", sa.Date, primary_key=True),
            sa.Column("currency", sa.String(3), primary_key=True),
            sa.Column("rate", sa.String(32), nullable=False),
            sa.Column("source", sa.String(8), nullable=False),
            sa.Column("used", sa.Boolean, nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "gw_announcements" not in present:
        op.create_table(
            "gw_announcements",
            sa.Column("client_id", sa.String(32), primary_key=True),
            sa.Column("business_date", sa.Date, primary_key=True),
            sa.Column("amount_minor", sa.BigInteger, nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("gw_announcements")
    op.drop_table("gw_rates")
