"""The gateway's own tables, beside the ledger's in the same database.

`gw_files`     one row per inbound file the gateway has answered (unique per client and bytes)
`gw_payments`  one row per transaction of an accepted file: its status, due date, reference
`gw_payment_infos` one row per payment information with a CtrlSum: the value echoed
`gw_outbox`    every message owed to a client, written in the same transaction as the
               ledger effect it reports; delivery into `out/` is a later, repeatable step
`gw_statements` which account statements exist (camt.053 per account and business day)
`gw_counters`  sequences (message ids, statement numbers) that work on SQLite and PostgreSQL
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)

from ledger.schema import Id  # the same id type as the ledger's tables

metadata = MetaData()

# The condition of the pending-payments index. A query must say it in these words
# (`pending_only()`) for SQLite to use the index: a bound parameter would not do.
PENDING_ONLY = "status = 'PDNG'"

files = Table(
    "gw_files",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("original_name", String(255), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    Column("msg_id", String(35), nullable=True),
    Column("accepted_msg_id", String(35), nullable=True),  # set only when file-level checks pass
    Column("message", String(32), nullable=False),
    Column("msg_created_at", String(64), nullable=True),  # GrpHdr/CreDtTm as sent (echoed)
    Column("ctrl_sum", String(64), nullable=True),  # GrpHdr/CtrlSum as sent (echoed)
    Column("group_status", String(4), nullable=False),
    Column("reason", String(4), nullable=True),
    Column("additional_info", Text, nullable=True),
    Column("nb_of_txs", Integer, nullable=False),
    Column("sftp_user", String(64), nullable=True),
    Column("source_ip", String(64), nullable=True),
    Column("key_fingerprint", String(128), nullable=True),
    Column("reports", Integer, nullable=False),  # pain.002 reports issued so far
    Column("first_outbox_id", Id, nullable=True),
    Column("claim_name", String(255), nullable=True),  # its name in work/: recovery knows it
    UniqueConstraint("client_id", "sha256", name="uq_gw_files_bytes"),
    UniqueConstraint("client_id", "accepted_msg_id", name="uq_gw_files_msg_id"),
)

payments = Table(
    "gw_payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Its file, without a foreign key checked per row: a file's 100,000 payments would
    # each cost PostgreSQL a trigger. Files are never deleted (migration 0011's trigger)
    # and `check_references` finds a payment whose file does not exist.
    Column("file_id", Id, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("pmt_seq", Integer, nullable=False),
    Column("pmt_inf_id", String(35), nullable=False),
    Column("msg_id", String(35), nullable=False),
    Column("batch_booking", Boolean, nullable=False),
    Column("instr_id", String(35), nullable=True),
    Column("end_to_end_id", String(35), nullable=False),
    Column("debtor_iban", String(34), nullable=True),
    Column("debtor_name", String(140), nullable=True),
    Column("creditor_iban", String(34), nullable=True),
    Column("creditor_name", String(140), nullable=True),
    Column("creditor_bic", String(11), nullable=True),
    Column("amount_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("remittance", Text, nullable=True),  # the Ustrd lines as sent (USTRD_SEPARATOR)
    Column("remittance_structured", Text, nullable=True),  # the Strd blocks as sent (XML)
    Column("requested_date", Date, nullable=True),
    Column("due_date", Date, nullable=True),
    Column("kind", String(8), nullable=False),  # internal | external
    Column("status", String(4), nullable=False),  # ACSC | PDNG | RJCT
    Column("reason", String(4), nullable=True),
    Column("additional_info", String(105), nullable=True),
    Column("acct_svcr_ref", String(35), nullable=True),  # this payment's own reference
    Column("transfer_ref", String(35), nullable=True),  # the ledger transfer (maybe a batch)
    Column("fingerprint", BigInteger, nullable=True),  # rules.fingerprint (AM05)
    Column("report_no", Integer, nullable=False),  # the pain.002 that last reported it
    Column("budget_codes", Text, nullable=True),  # SPEC §12: EKK/IKK lines (budget.lines)
    Column("large_day_held_on", Date, nullable=True),  # SPEC §14: the day the rule held it
    # SPEC §8: the parties' names and the purpose as sent (`ParsedTx.ultimate_debtor` …)
    Column("ultimate_debtor", String(140), nullable=True),
    Column("ultimate_creditor", String(140), nullable=True),
    Column("purpose", String(48), nullable=True),
    UniqueConstraint("file_id", "seq", name="uq_gw_payments_position"),
    # Only pending payments are looked up by due date (`pending.execute_due`): a partial
    # index, `ix_gw_payments_pending` (due_date) WHERE `PENDING_ONLY`, holds just those,
    # so the accepted 100,000 of a payroll cost nothing. Migration 0003 creates it: its
    # `postgresql_where` here would load the PostgreSQL dialect into every process that
    # imports this module, SQLite or not.
    # An account's AM05 window (a big file reads it whole).
    Index("ix_gw_payments_debtor_status", "debtor_iban", "status", "due_date"),
    # A small file's AM05 look-ups by fingerprint: the index holds every column they ask
    # about, so it is the plan on a database without statistics too (a new installation,
    # a day's payroll not yet analysed), rather than a pass over the accounts' window.
    Index("ix_gw_payments_fingerprint", "fingerprint", "status", "due_date"),
)

outbox = Table(
    "gw_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("message", String(32), nullable=False),  # e.g. pain.002.001.03
    Column("msg_id", String(35), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("body", LargeBinary, nullable=False),  # zlib-compressed XML
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("file_id", Id, nullable=True),
    Column("claim_name", String(255), nullable=True),  # the repeated upload it answers
    # Which of its file's reports it is: 2, 3… a batch's follow-ups or a report request's
    # further copies (`outbox.answers_of`; a request's first says 1); none for other
    # messages. Migration 0016 indexes the numbered ones, `ix_gw_outbox_reports` (file_id,
    # report_no) WHERE report_no IS NOT NULL — there, not here, as `ix_gw_payments_pending`.
    Column("report_no", Integer, nullable=True),
    UniqueConstraint("client_id", "file_name", name="uq_gw_outbox_name"),
    Index("ix_gw_outbox_pending", "delivered_at"),
)

statements = Table(
    "gw_statements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("iban", String(34), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("message", String(32), nullable=False),
    Column("sequence_nb", Integer, nullable=False),
    Column("opening_minor", BigInteger, nullable=False),
    Column("closing_minor", BigInteger, nullable=False),
    Column("outbox_id", Id, nullable=True),
    UniqueConstraint("iban", "business_date", "message", name="uq_gw_statements_day"),
    # a day's statements by the day (`booking_days.hold`, before every booking)
    Index("ix_gw_statements_day", "business_date", "message"),
)

counters = Table(
    "gw_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


def pending_only() -> Any:
    """`WHERE gw_payments.status = 'PDNG'` as the partial index states it."""
    return text(f"gw_payments.{PENDING_ONLY}")


# -- exchange rates and large-payment days (SPEC §13, §14) ---------------------------------

# ECB reference rates (and the hand-set RUB and BYN ones): units of `currency` per 1 EUR,
# kept as exact decimal text. Once a payment has been converted with a rate it is `used`
# and never changes again (`gateway.rates.store`).
rates = Table(
    "gw_rates",
    metadata,
    Column("rate_date", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("rate", String(32), nullable=False),
    Column("source", String(8), nullable=False),  # ecb | manual
    Column("used", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# Large-payment days announced by phone or e-mail (`ekase-gateway announce`): the EUR a
# client announced for a business day beyond the payments the gateway already knows.
# A later announcement for the same client and day replaces the earlier one.
announcements = Table(
    "gw_announcements",
    metadata,
    Column("client_id", String(32), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


# What the large-payment-day gate (SPEC §14) reads of each file, per due date: the EUR of
# its payments that executed (`executed_minor`) and of those executed or still to execute
# (`open_minor`, status ACSC or PDNG), and how many of the latter the rule held (a held
# payment is due the business day after the one it was held on): `large_days.add_file_days`
# of the file's payments' rows, kept by whatever writes them — the first run as it writes
# them, later runs and cancellations after (`announcements.refresh_days`) — so a file's
# gate costs a few rows however many payments the client's day holds.
file_days = Table(
    "gw_file_days",
    metadata,
    Column("file_id", Id, ForeignKey("gw_files.id"), primary_key=True),
    Column("due_date", Date, primary_key=True),
    Column("client_id", String(32), nullable=False),  # the file's
    Column("executed_minor", BigInteger, nullable=False),
    Column("open_minor", BigInteger, nullable=False),
    Column("held", Integer, nullable=False),
    Index("ix_gw_file_days_client", "client_id", "due_date"),
)

# Each payment information's CtrlSum as sent (as DecimalNumber text: `pain002_v03.
# decimal_number`), echoed as the OrgnlCtrlSum of its OrgnlPmtInfAndSts in every pain.002
# about its file: a row per payment information that had one (its position in the file,
# `gw_payments.pmt_seq`), written by the file's first run, never a column per payment.
payment_infos = Table(
    "gw_payment_infos",
    metadata,
    Column("file_id", Id, ForeignKey("gw_files.id"), primary_key=True),
    Column("pmt_seq", Integer, primary_key=True),
    Column("ctrl_sum", String(32), nullable=False),
)

# -- signatory authorisation (SPEC §11) ----------------------------------------------------

# A batch waiting for signatures: its file row says PDNG; its bytes lie in
# `<spool>/awaiting/<client>/<path>` until it is executed or expires. `debited` is the
# accounts it debits with their levels ("IBAN=2;IBAN=1"), so the rule is judged again
# exactly as on arrival. `state`: waiting | executed | expired | annulled (the client
# cancelled it with a camt.055 before it was signed).
awaiting = Table(
    "gw_awaiting",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_id", String(32), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the batch's bytes
    Column("file_id", Id, ForeignKey("gw_files.id"), nullable=False),
    Column("level", Integer, nullable=False),
    Column("debited", Text, nullable=False),
    Column("path", String(255), nullable=False),
    Column("state", String(8), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("expires_on", Date, nullable=False),  # RJCT DS24 at the start of this day
    Column("closed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("client_id", "sha256", name="uq_gw_awaiting_bytes"),
    Index("ix_gw_awaiting_state", "state", "expires_on"),
)

# What every answer about a waiting batch lists (SPEC §6): its transactions, PDNG with why
# they wait and until when, as its first answer rendered them (`FirstReport.dump`), so the
# answer to each signature need not read the batch again. Written with the waiting row,
# deleted when the batch stops waiting; a batch without one is read again.
awaiting_listings = Table(
    "gw_awaiting_listings",
    metadata,
    Column("awaiting_id", Id, ForeignKey("gw_awaiting.id"), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

# Every signature found in a container for a waiting batch, in arrival order, with what
# it did: `reason` is its SPEC §11 code (None: it counted), `verified` whether the
# signature itself checked out (only those are signers for the level rule again).
signatures = Table(
    "gw_signatures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("awaiting_id", Id, ForeignKey("gw_awaiting.id"), nullable=False),
    Column("container_file_id", Id, ForeignKey("gw_files.id"), nullable=False),
    Column("source", String(255), nullable=False),  # META-INF/signatures0.xml
    Column("certificate", LargeBinary, nullable=True),  # DER
    Column("subject", Text, nullable=True),
    Column("serial", String(64), nullable=True),
    Column("signing_time", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("signatory", String(255), nullable=True),
    Column("signatory_right", String(8), nullable=True),
    Column("reason", String(4), nullable=True),
    Column("detail", Text, nullable=False),
    # It counted for the batch (None: written before migration 0017 and not marked by it).
    Column("counted", Boolean, nullable=True),
    Index("ix_gw_signatures_awaiting", "awaiting_id"),
)

# The EUR a batch waiting for signatures instructs per business day (SPEC §14: known,
# hence announced, when it arrived by the deadline; counted while it waits).
awaiting_eur = Table(
    "gw_awaiting_eur",
    metadata,
    Column("awaiting_id", Id, ForeignKey("gw_awaiting.id"), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
)


def check_references(conn: Connection) -> None:
    """The invariant the database does not check row by row (migration 0011): every
    payment names a file that exists."""
    p = payments.c
    orphan = conn.execute(
        select(p.id, p.file_id).where(p.file_id.not_in(select(files.c.id))).limit(1)
    ).first()
    assert orphan is None, f"payment {orphan} names a file that is missing"


def as_utc(value: dt.datetime) -> dt.datetime:
    """A timestamp read back: SQLite returns them naive; every one is stored in UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
