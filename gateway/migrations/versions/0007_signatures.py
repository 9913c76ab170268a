"""Batches waiting for signatures (`gw_awaiting`) and the signatures received for them
(`gw_signatures`), SPEC §11.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gw_awaiting",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_id", Id, sa.ForeignKey("gw_files.id"), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("debited", sa.Text, nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_on", sa.Date, nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("client_id", "sha256", name="uq_gw_awaiting_bytes"),
    )
    op.create_index("ix_gw_awaiting_state", "gw_awaiting", ["state", "expires_on"])
    op.create_table(
        "gw_signatures",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("awaiting_id", Id, sa.ForeignKey("gw_awaiting.id"), nullable=False),
        sa.Column("container_file_id", Id, sa.ForeignKey("gw_files.id"), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=True),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("serial", sa.String(64), nullable=True),
        sa.Column("signing_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("signatory", sa.String(255), nullable=True),
        sa.Column("signatory_right", sa.String(8), nullable=True),
        sa.Column("reason", sa.String(4), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_gw_signatures_awaiting", "gw_signatures", ["awaiting_id"])


def downgrade() -> None:
    op.drop_index("ix_gw_signatures_awaiting", "gw_signatures")
    op.drop_table("gw_signatures")
    op.drop_index("ix_gw_awaiting_state", "gw_awaiting")
    op.drop_table("gw_awaiting")
