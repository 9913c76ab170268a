"""Which of its file's reports an outbox message is, so that the same bytes uploaded
again get the original final pain.002 as it was sent, with its MsgId (SPEC §6, §8: a
re-delivery keeps its original's MsgId), and a report request all its copies.

`gw_outbox.report_no`: 2, 3, … a file's further reports — a batch's follow-up pain.002s
of later runs (what booked, refused or cancelled a payment its first said was waiting),
a report request's further copies; none for the first (the file's `first_outbox_id`)
and for any other message (a signature's answer about a batch, a copy given to a
repeated upload). A partial index finds a file's further reports.

The messages written before this revision are numbered here: a file's further reports
are its messages after its first that answer no repeated upload (`claim_name`) and are
no other file's first answer (a signature container's answer about its batch is the
container's first).

Revision ID: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_outbox = sa.table(
    "gw_outbox", sa.column("id"), sa.column("file_id"), sa.column("claim_name"),
    sa.column("report_no"),
)  # fmt: skip
_files = sa.table("gw_files", sa.column("id"), sa.column("first_outbox_id"))


def upgrade() -> None:
    op.add_column("gw_outbox", sa.Column("report_no", sa.Integer, nullable=True))
    op.create_index(
        "ix_gw_outbox_reports", "gw_outbox", ["file_id", "report_no"],
        sqlite_where=sa.text("report_no IS NOT NULL"),
        postgresql_where=sa.text("report_no IS NOT NULL"),
    )  # fmt: skip
    _number_further_reports(op.get_bind())


def _number_further_reports(conn: sa.Connection) -> None:
    """In one pass over each table (no index on `first_outbox_id`) and one executemany."""
    o, f = _outbox.c, _files.c
    later = conn.execute(
        sa.select(o.id, o.file_id)
        .join(_files, f.id == o.file_id)
        .where(o.claim_name.is_(None), f.first_outbox_id.is_not(None), o.id > f.first_outbox_id)
        .order_by(o.file_id, o.id)
    ).all()  # fmt: skip
    if not later:
        return
    lowest = min(row.id for row in later)  # a first answer among them is no older than this
    firsts = set(conn.execute(
        sa.select(f.first_outbox_id).where(f.first_outbox_id >= lowest)
    ).scalars())  # fmt: skip
    number: dict[int, int] = {}
    rows = []
    for outbox_id, file_id in later:
        if outbox_id not in firsts:  # another file's first answer: a container's
            number[file_id] = number.get(file_id, 1) + 1
            rows.append({"outbox_id": outbox_id, "report_no": number[file_id]})
    if rows:
        conn.execute(
            sa.update(_outbox).where(o.id == sa.bindparam("outbox_id"))
            .values(report_no=sa.bindparam("report_no")),
            rows,
        )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_gw_outbox_reports", table_name="gw_outbox")
    with op.batch_alter_table("gw_outbox") as batch:
        batch.drop_column("report_no")
