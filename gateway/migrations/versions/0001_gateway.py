"""The gateway's tables: files, payments, outbox, statements, counters.

Revision ID: 0001

A frozen snapshot of the tables as they stood at revision 0004 (this revision used to
create them from `gateway/db.py` as it was at the time, which made every later revision
check what was already there). Databases made before keep their version; new ones pass
through 0002–0004, which find nothing to do, and every later revision is explicit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gw_files",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("original_name", sa.String(255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("msg_id", sa.String(35), nullable=True),
        sa.Column("accepted_msg_id", sa.String(35), nullable=True),
        sa.Column("message", sa.String(32), nullable=False),
        sa.Column("group_status", sa.String(4), nullable=False),
        sa.Column("reason", sa.String(4), nullable=True),
        sa.Column("additional_info", sa.Text, nullable=True),
        sa.Column("nb_of_txs", sa.Integer, nullable=False),
        sa.Column("sftp_user", sa.String(64), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("key_fingerprint", sa.String(128), nullable=True),
        sa.Column("reports", sa.Integer, nullable=False),
        sa.Column("first_outbox_id", Id, nullable=True),
        sa.Column("claim_name", sa.String(255), nullable=True),
        sa.UniqueConstraint("client_id", "sha256", name="uq_gw_files_bytes"),
        sa.UniqueConstraint("client_id", "accepted_msg_id", name="uq_gw_files_msg_id"),
    )
    op.create_table(
        "gw_payments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("file_id", Id, sa.ForeignKey("gw_files.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("pmt_seq", sa.Integer, nullable=False),
        sa.Column("pmt_inf_id", sa.String(35), nullable=False),
        sa.Column("msg_id", sa.String(35), nullable=False),
        sa.Column("batch_booking", sa.Boolean, nullable=False),
        sa.Column("instr_id", sa.String(35), nullable=True),
        sa.Column("end_to_end_id", sa.String(35), nullable=False),
        sa.Column("debtor_iban", sa.String(34), nullable=True),
        sa.Column("debtor_name", sa.String(140), nullable=True),
        sa.Column("creditor_iban", sa.String(34), nullable=True),
        sa.Column("creditor_name", sa.String(140), nullable=True),
        sa.Column("creditor_bic", sa.String(11), nullable=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("remittance", sa.String(140), nullable=True),
        sa.Column("requested_date", sa.Date, nullable=True),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("status", sa.String(4), nullable=False),
        sa.Column("reason", sa.String(4), nullable=True),
        sa.Column("additional_info", sa.String(105), nullable=True),
        sa.Column("acct_svcr_ref", sa.String(35), nullable=True),
        sa.Column("transfer_ref", sa.String(35), nullable=True),
        sa.Column("fingerprint", sa.BigInteger, nullable=True),
        sa.Column("report_no", sa.Integer, nullable=False),
        sa.UniqueConstraint("file_id", "seq", name="uq_gw_payments_position"),
    )
    op.create_index(
        "ix_gw_payments_debtor_status", "gw_payments", ["debtor_iban", "status", "due_date"]
    )
    op.create_index("ix_gw_payments_fingerprint", "gw_payments", ["fingerprint"])
    op.create_table(
        "gw_outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("message", sa.String(32), nullable=False),
        sa.Column("msg_id", sa.String(35), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_id", Id, nullable=True),
        sa.Column("claim_name", sa.String(255), nullable=True),
        sa.UniqueConstraint("client_id", "file_name", name="uq_gw_outbox_name"),
    )
    op.create_index("ix_gw_outbox_pending", "gw_outbox", ["delivered_at"])
    op.create_table(
        "gw_statements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("iban", sa.String(34), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("message", sa.String(32), nullable=False),
        sa.Column("sequence_nb", sa.Integer, nullable=False),
        sa.Column("opening_minor", sa.BigInteger, nullable=False),
        sa.Column("closing_minor", sa.BigInteger, nullable=False),
        sa.Column("outbox_id", Id, nullable=True),
        sa.UniqueConstraint("iban", "business_date", "message", name="uq_gw_statements_day"),
    )
    op.create_table(
        "gw_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("gw_counters", "gw_statements", "gw_outbox", "gw_payments", "gw_files"):
        op.drop_table(table)
