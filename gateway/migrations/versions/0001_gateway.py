"""The gateway's tables: files, payments, outbox, statements, counters.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

from gateway import db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision creates the tables exactly as gateway/db.py declares them;
    # later revisions will use explicit op.* changes.
    bind = op.get_bind()
    db.metadata.create_all(bind)


def downgrade() -> None:
    db.metadata.drop_all(op.get_bind())
