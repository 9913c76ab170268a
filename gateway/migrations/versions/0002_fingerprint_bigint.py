"""AM05 fingerprints become 64-bit integers (they were 32 hexadecimal characters).

A database made by revision 0001 before this change holds text fingerprints; they
are recomputed from the payments' own columns, so duplicates made before the
upgrade are still recognised after it. (Revision 0001 creates the tables as
`gateway/db.py` declares them today, so on a new database there is nothing to do.)

Revision ID: 0002
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_INDEX = "ix_gw_payments_fingerprint"


def fingerprint(debtor: str, creditor: str, amount_minor: int, ccy: str, e2e: str) -> int:
    """The AM05 fingerprint as revision 0002 defined it (`rules.fingerprint` then; a
    migration keeps its own copy so that it means the same whatever the code becomes)."""
    raw = f"{debtor}|{creditor}|{amount_minor}|{ccy}|{e2e}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


def upgrade() -> None:
    bind = op.get_bind()
    columns = sa.inspect(bind).get_columns("gw_payments")
    column = next(c for c in columns if c["name"] == "fingerprint")
    if isinstance(column["type"], sa.Integer):
        return
    payments = sa.table(
        "gw_payments",
        sa.column("id", sa.Integer),
        sa.column("debtor_iban", sa.String),
        sa.column("creditor_iban", sa.String),
        sa.column("amount_minor", sa.BigInteger),
        sa.column("currency", sa.String),
        sa.column("end_to_end_id", sa.String),
        sa.column("fingerprint", sa.BigInteger),
    )
    had = [
        row
        for row in bind.execute(
            sa.select(
                payments.c.id,
                payments.c.debtor_iban,
                payments.c.creditor_iban,
                payments.c.amount_minor,
                payments.c.currency,
                payments.c.end_to_end_id,
            ).where(sa.text("fingerprint IS NOT NULL"))
        )
    ]
    op.drop_index(_INDEX, table_name="gw_payments")
    with op.batch_alter_table("gw_payments") as batch:
        batch.alter_column(
            "fingerprint",
            existing_type=sa.String(32),
            type_=sa.BigInteger(),
            existing_nullable=True,
            postgresql_using="NULL::bigint",
        )
    bind.execute(sa.update(payments).values(fingerprint=None))
    if had:
        bind.execute(
            sa.update(payments)
            .where(payments.c.id == sa.bindparam("row_id"))
            .values(fingerprint=sa.bindparam("print_")),
            [
                {
                    "row_id": r.id,
                    "print_": fingerprint(
                        r.debtor_iban, r.creditor_iban, r.amount_minor, r.currency, r.end_to_end_id
                    ),
                }
                for r in had
            ],
        )
    op.create_index(_INDEX, "gw_payments", ["fingerprint"])


def downgrade() -> None:
    raise NotImplementedError("fingerprints cannot be turned back into their old text form")
