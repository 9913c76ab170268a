"""Whether a signature counted for its batch (SPEC §11), as judged when its container was
received: `gw_signatures.counted`. A signature without a reason code either counted or
was not needed (the batch was authorised without it); the findings said "counted" of
both, and the level rule's count of the signatures kept read a not-needed one as counted.

The rows written before this revision are marked as the count read them then (verified,
a signatory's, no reason code): a not-needed signature among them cannot be told apart.

Revision ID: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_signatures = sa.table(
    "gw_signatures", sa.column("verified"), sa.column("signatory"), sa.column("reason"),
    sa.column("counted"),
)  # fmt: skip


def upgrade() -> None:
    op.add_column("gw_signatures", sa.Column("counted", sa.Boolean, nullable=True))
    s = _signatures.c
    op.get_bind().execute(
        sa.update(_signatures).values(
            counted=sa.and_(s.verified, s.signatory.is_not(None), s.reason.is_(None))
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("gw_signatures") as batch:
        batch.drop_column("counted")
