"""The ledger's tables (SQLAlchemy Core). Alembic migrations in `ledger/migrations` create them.

Postings are immutable: nothing in the code updates or deletes a posting or a
transfer. `accounts.balance_minor` is a cache of the sum of the account's
postings, and `account_days.debited_minor` of its debit postings per day, both updated
in the same database transaction as the postings and checked against them by
`Ledger.check_invariants`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("iban", String(34), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("owner", String(64), nullable=False),  # client id, or "treasury"
    Column("kind", String(16), nullable=False),  # client | funding | clearing
    Column("status", String(8), nullable=False),  # open | blocked | closed
    Column("overdraft_minor", BigInteger, nullable=False),
    Column("max_payment_minor", BigInteger, nullable=True),
    Column("daily_limit_minor", BigInteger, nullable=True),
    Column("balance_minor", BigInteger, nullable=False),
)

# A transfer is the header of postings that sum to zero per currency: who and how much
# are in its postings (one debit and one or more credits).
transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("reference", String(35), nullable=False, unique=True),  # AcctSvcrRef
    Column("kind", String(16), nullable=False),  # funding | internal | external
    Column("booking_date", Date, nullable=False),
    Column("value_date", Date, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False),
)

postings = Table(
    "ledger_postings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Its transfer and account, without foreign keys checked per row: a payment is one or
    # two postings, and PostgreSQL checks a key with a trigger per row. Transfers and
    # accounts are never deleted (migration 0004's triggers), and `audit.check_invariants`
    # finds a posting that names one that does not exist.
    Column("transfer_id", Id, nullable=False),
    Column("account_id", Id, nullable=False),
    # Signed, from the account's point of view: credit positive, debit negative.
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("booking_date", Date, nullable=False),
    # The entry's own AcctSvcrRef when it is not its transfer's (`core.Posting`).
    Column("reference", String(35), nullable=True),
    # Statements (an account's day).
    Index("ix_ledger_postings_account_day", "account_id", "booking_date"),
    Index("ix_ledger_postings_transfer", "transfer_id"),
)

# What each account was debited per booking day (positive): the sum of its debit
# postings of that day, kept by the unit of work that posts them (`LedgerTx.flush`) so a
# daily limit costs a row, however many payments the account made that day.
account_days = Table(
    "ledger_account_days",
    metadata,
    Column("account_id", Id, ForeignKey("ledger_accounts.id"), primary_key=True),
    Column("booking_date", Date, primary_key=True),
    Column("debited_minor", BigInteger, nullable=False),
)

# Id blocks for transfers and postings: a whole file's transfers get their ids in one
# statement (portable, and no RETURNING round trip per row).
sequences = Table(
    "ledger_sequences",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
