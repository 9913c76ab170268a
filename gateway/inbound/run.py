"""Deciding and booking the payments of one file, a chunk at a time as it is read.

Runs inside the file's database transaction (see `process.py`): each payment is
checked by the rules, given its due date, and — if due now — decided and booked by
the `Booker`; every payment gets its row in `gw_payments`, written per chunk.
Chunks arrive while the rest of the file is still being read, so what a chunk
needs (the treasury accounts its creditors name, earlier payments that would make
it a duplicate) is looked up when the chunk arrives. If the file as a whole turns
out invalid, the caller rolls the transaction back: nothing of it remains.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from gateway import db
from gateway.inbound import rules
from gateway.inbound.answers import FirstReport
from gateway.inbound.booking import (
    Batch,
    Batched,
    Booker,
    batch_for,
    payment_key,
    payment_reference,
    payment_reference_prefix,
)
from gateway.inbound.execute import Due
from gateway.inbound.findings import Finding
from gateway.inbound.pain001_v03 import ParsedHeader, ParsedPmtInf, ParsedTx
from gateway.outbound import pain002_v03
from gateway.reasons import Reason
from gateway.settings import Settings
from gateway.spool import Claim
from gateway.statuses import TxStatus
from ledger import calendar
from ledger.bulk import insert_rows
from ledger.core import Account, AccountKind
from ledger.store import LedgerTx

PAYMENT_COLUMNS = tuple(c.name for c in db.payments.c if c.name != "id")
# A payment row is a list in PAYMENT_COLUMNS order (`FileRun._row`): 100,000 dicts
# would cost more than the INSERT itself.
assert PAYMENT_COLUMNS == (
    "file_id", "seq", "pmt_seq", "pmt_inf_id", "msg_id", "batch_booking", "instr_id",
    "end_to_end_id", "debtor_iban", "debtor_name", "creditor_iban", "creditor_name",
    "creditor_bic", "amount_minor", "currency", "remittance", "requested_date", "due_date",
    "kind", "status", "reason", "additional_info", "acct_svcr_ref", "transfer_ref",
    "fingerprint", "report_no",
), "FileRun._row builds rows in this order"  # fmt: skip
_SEQ, _PMT_SEQ, _PMT_INF_ID, _E2E, _AMOUNT, _CURRENCY, _DUE = (
    PAYMENT_COLUMNS.index(name)
    for name in (
        "seq", "pmt_seq", "pmt_inf_id", "end_to_end_id", "amount_minor", "currency", "due_date",
    )
)  # fmt: skip
_STATUS, _REASON, _INFO, _ACCT_REF, _TRANSFER_REF = (
    PAYMENT_COLUMNS.index(name)
    for name in ("status", "reason", "additional_info", "acct_svcr_ref", "transfer_ref")
)
fingerprint_lookups_max = 2000  # above this, a file reads its accounts' whole AM05 window
rejections_listed_max = 1000  # the findings file lists this many rejected payments
_PDNG, _ACSC, _RJCT = TxStatus.PDNG.value, TxStatus.ACSC.value, TxStatus.RJCT.value


class FileRun:
    """Deciding and booking the transactions of one file, a chunk at a time."""

    def __init__(
        self,
        settings: Settings,
        tx: LedgerTx,
        claim: Claim,
        file_id: int,
        sha: str,
        received: dt.datetime,
        now: dt.datetime,
        header: ParsedHeader,
        report: FirstReport,
    ) -> None:
        self.settings = settings
        self.tx = tx
        self.claim = claim
        self.file_id = file_id
        self.sha = sha
        self.header = header
        self.now = now
        self.received_local = received.astimezone(self.settings.timezone)
        local_now = now.astimezone(self.settings.timezone)
        self.today = local_now.date()
        # After end of day the day's statements are written: nothing more is booked on it.
        self.booking_open = (
            calendar.is_business_day(self.today) and local_now.time() < self.settings.eod_time
        )
        self.counts: Counter[str] = Counter()
        self.rejected: list[tuple[int, str, str, str]] = []
        self.seen_e2e: set[str] = set()
        self.payment_infos: dict[int, ParsedPmtInf] = {}
        self._batches: dict[int, Batch] = {}
        self._creditors_looked_up: set[str] = set()
        self._treasury: dict[str, Account] = {}
        self._recent: set[int] = set()
        self._due_dates: dict[tuple[dt.date, bool], dt.date] = {}
        self.report = report
        declared = int(header.nb_of_txs) if header.nb_of_txs.isdigit() else None
        self._lookup_per_chunk = declared is not None and declared <= fingerprint_lookups_max

        client = self.settings.client(self.claim.client_id)
        own = {a.iban for a in client.accounts}
        clearing = [
            a
            for a in (
                self.tx.system_account(AccountKind.CLEARING, c)
                for c in {a.currency for a in client.accounts}
            )
            if a is not None
        ]
        # The booker's accounts: locked, balances kept current as payments are decided.
        self.accounts = self.tx.accounts(own | {a.iban for a in clearing})
        self._own = {i: a for i, a in self.accounts.items() if i in own and a.owner == client.id}
        self._clearing_by_ccy = {a.currency: a.iban for a in clearing}
        self._debtors = sorted(self._own)
        if not self._lookup_per_chunk:
            # A big file reads the accounts' whole AM05 window at once.
            self._recent = recent_fingerprints(
                self.tx.conn, self._debtors, rules.window_start(self.today), None, file_id
            )
        self.ctx = rules.Context(
            client_accounts=self._own,
            treasury_accounts=self._treasury,
            today=self.today,
            max_future_days=self.settings.max_future_days,
            recent_fingerprints=self._recent,
        )
        self.booker = Booker(
            self.tx,
            self.accounts,
            _debited_today(self.tx, self._own, self.today),
            self.today,
            self.now,
        )

    @property
    def booked(self) -> Counter[str]:
        return self.booker.booked

    @property
    def references(self) -> list[str]:
        return self.booker.references

    def add_payment_info(self, pmt: ParsedPmtInf) -> None:
        self.payment_infos[pmt.seq] = pmt

    def _look_up(self, chunk: list[tuple[ParsedTx, rules.Facts]]) -> None:
        """What this chunk's rules need beyond what is known: the treasury accounts its
        creditors name (locked, like the client's own) and, for a small file, earlier
        payments with the same fingerprint."""
        named = {t.creditor_iban for t, f in chunk if f.internal and t.creditor_iban}
        new = {iban for iban in named if iban is not None} - self._creditors_looked_up
        if new:
            self._creditors_looked_up |= new
            for iban, account in self.tx.accounts(new).items():
                # Only client accounts take payments: the treasury's own funding and
                # clearing accounts are not creditors a client can name (AC01).
                if account.kind is AccountKind.CLIENT:
                    # An account already held (the client paying itself) keeps the
                    # balance the payments before this chunk left it with.
                    self._treasury[iban] = self.accounts.setdefault(iban, account)
        if self._lookup_per_chunk:
            found = (f.fingerprint for _, f in chunk)
            candidates = sorted({f for f in found if f is not None})
            self._recent |= recent_fingerprints(
                self.tx.conn,
                self._debtors,
                rules.window_start(self.today),
                candidates,
                self.file_id,
            )

    def execute_chunk(
        self, transactions: list[ParsedTx], iban_problems: list[str | None]
    ) -> None:
        """Decide, book and record a chunk; `iban_problems` are the reader's IBAN checks
        of the transactions (`reader.Chunk`)."""
        pmts = self.payment_infos
        facts = rules.facts
        # What each transaction says on its own (amount, IBAN check, AM05 fingerprint).
        chunk = [
            (t, facts(t, pmts[t.pmt_seq], problem))
            for t, problem in zip(transactions, iban_problems, strict=True)
        ]
        self._look_up(chunk)
        client_id = self.claim.client_id
        ctx = self.ctx
        rows: list[list[Any]] = []
        due_rows: list[list[Any]] = []
        items: list[Due | Batched] = []
        for t, f in chunk:
            pmt = pmts[t.pmt_seq]
            checked = rules.check(t, pmt, ctx, self.seen_e2e, f)
            row = self._row(t, pmt, checked)
            rows.append(row)
            if checked.finding is not None:
                self._reject(row, checked.finding)
                continue
            assert checked.requested_date is not None
            due = self._due_date(checked.requested_date, checked.internal)
            row[_DUE] = due
            if due > self.today:
                continue  # PDNG: executed by `pending.execute_due` on its day
            assert pmt.debtor_iban is not None and t.creditor_iban is not None
            if not checked.internal and (pmt.batch_booking is None or pmt.batch_booking):
                batch = self._batches.get(t.pmt_seq)
                if batch is None:
                    batch = self._batches[t.pmt_seq] = batch_for(
                        client_id,
                        self.sha,
                        self.file_id,
                        t.pmt_seq,
                        1,
                        debit_iban=pmt.debtor_iban,
                        credit_iban=self._clearing_by_ccy[t.currency],
                        currency=t.currency,
                    )
                items.append(Batched(batch, checked.amount_minor))
            else:
                credit = t.creditor_iban if checked.internal else self._clearing_by_ccy[t.currency]
                items.append(
                    Due(
                        key=payment_key(client_id, self.sha, t.seq),
                        reference=payment_reference(self.file_id, t.seq),
                        debtor_iban=pmt.debtor_iban,
                        credit_iban=credit,
                        amount_minor=checked.amount_minor,
                        currency=t.currency,
                        internal=checked.internal,
                    )
                )
            due_rows.append(row)
        decisions = self.booker.book(items)
        reference = payment_reference_prefix(self.file_id)
        for row, decision in zip(due_rows, decisions, strict=True):
            if isinstance(decision, Finding):
                self._reject(row, decision)
            else:
                row[_STATUS] = _ACSC
                row[_ACCT_REF] = f"{reference}{row[_SEQ]:08d}"
                row[_TRANSFER_REF] = decision
        statuses = [row[_STATUS] for row in rows]
        self.counts.update(statuses)
        self.report.add_chunk(
            [row[_PMT_SEQ] for row in rows],
            [row[_PMT_INF_ID] for row in rows],
            statuses,
            [row[_AMOUNT] for row in rows],
            [row[_CURRENCY] for row in rows],
            [_report_text(row, t, f) for row, (t, f) in zip(rows, chunk, strict=True)],
        )
        insert_rows(
            self.tx.conn,
            db.payments,
            PAYMENT_COLUMNS,
            rows,
            convert_in_place=True,
            leave_out_null_columns=True,
        )

    def _due_date(self, requested: dt.date, internal: bool) -> dt.date:
        """When a payment accepted now executes (one answer per date and kind in a file)."""
        key = (requested, internal)
        due = self._due_dates.get(key)
        if due is None:
            due = rules.due_date(
                requested,
                internal,
                self.received_local,
                self.settings.cutoff_internal,
                self.settings.cutoff_external,
            )
            if due == self.today and not self.booking_open:
                due = calendar.next_business_day(self.today)  # today's books are closed
            self._due_dates[key] = due
        return due

    def finish(self) -> None:
        """Write the batch transfers and check the ledger (after the last chunk)."""
        self.booker.finish()

    def _reject(self, row: list[Any], finding: Finding) -> None:
        row[_STATUS] = _RJCT
        row[_REASON] = finding.reason.value
        row[_INFO] = info = finding.short()
        if len(self.rejected) < rejections_listed_max:
            self.rejected.append((row[_SEQ], row[_E2E], finding.reason.value, info))

    def _row(self, t: ParsedTx, pmt: ParsedPmtInf, checked: rules.Checked) -> list[Any]:
        """The payment's gw_payments row, in PAYMENT_COLUMNS order, as pending."""
        return [
            self.file_id,
            t.seq,
            t.pmt_seq,
            pmt.pmt_inf_id,
            self.header.msg_id,
            pmt.batch_booking is None or pmt.batch_booking,
            t.instr_id,
            t.end_to_end_id,
            pmt.debtor_iban,
            pmt.debtor_name,
            t.creditor_iban,
            t.creditor_name,
            t.creditor_bic,
            checked.amount_minor or None,
            t.currency[:3] if t.currency else None,
            t.remittance,
            checked.requested_date,
            None,  # due_date
            "internal" if checked.internal else "external",
            _PDNG,
            None,  # reason
            None,  # additional_info
            None,  # acct_svcr_ref
            None,  # transfer_ref
            checked.fingerprint,
            1,  # report_no
        ]


_STATUSES = {s.value: s for s in TxStatus}
_REASONS = {r.value: r for r in Reason}


def _report_text(row: list[Any], t: ParsedTx, f: rules.Facts) -> str:
    """The payment's TxInfAndSts, as the pain.002 writer renders it from its row."""
    reason = row[_REASON]
    return pain002_v03.transaction_text(
        t.instr_id,
        t.end_to_end_id,
        _STATUSES[row[_STATUS]],
        _REASONS[reason] if reason is not None else None,
        row[_INFO],
        row[_ACCT_REF],
        f.amount_minor,
        t.currency,
        f.requested_date,
        t.creditor_name,
        t.creditor_iban,
    )


def _debited_today(tx: LedgerTx, accounts: Mapping[str, Account], day: dt.date) -> dict[str, int]:
    by_id = tx.debits_on([a.id for a in accounts.values()], day)
    return {a.iban: by_id.get(a.id, 0) for a in accounts.values()}


def recent_fingerprints(
    conn: Connection,
    debtor_ibans: list[str],
    since: dt.date,
    candidates: list[int] | None,
    file_id: int,
) -> set[int]:
    """Payments from these accounts booked since `since`, or accepted and still waiting,
    in files other than `file_id`.

    A small file asks about its own payments; a big one reads the accounts' window
    at once (cheaper than thousands of look-ups)."""
    p = db.payments.c
    where = [
        p.debtor_iban.in_(debtor_ibans),
        p.status.in_([TxStatus.ACSC.value, TxStatus.PDNG.value]),
        p.due_date >= since,
        p.fingerprint.is_not(None),
        p.file_id != file_id,
    ]
    if candidates is None:
        return {r[0] for r in conn.execute(select(p.fingerprint).where(*where))}
    found: set[int] = set()
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        found.update(
            r[0]
            for r in conn.execute(select(p.fingerprint).where(p.fingerprint.in_(chunk), *where))
        )
    return found
