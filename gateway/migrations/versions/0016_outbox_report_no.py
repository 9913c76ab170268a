"""Which of its file's reports an outbox message is, so that the same bytes uploaded
again get the file's reports once more as they were sent (SPEC §6, §8: a re-delivery
keeps its original's MsgId).

`gw_outbox.report_no`: 1 the first; 2, 3, … a batch's follow-up pain.002s of later runs
(what booked, refused or cancelled a payment the first said was waiting), or a report
request's further copies; none for any other message (a signature's answer, a copy given
to a repeated upload). Messages written before this revision have none: a file answered
then is answered again with its first report alone.

Revision ID: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("gw_outbox", sa.Column("report_no", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_outbox") as batch:
        batch.drop_column("report_no")
