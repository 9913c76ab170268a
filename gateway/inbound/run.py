"""Deciding and booking the payments of one accepted file, a chunk at a time.

Runs inside the file's database transaction (see `process.py`): each payment is
checked by the rules, given its due date, and — if due now — decided and booked by
the `Booker`; every payment gets its row in `gw_payments`, written in chunks.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from gateway import db
from gateway.inbound import rules
from gateway.inbound.booking import Batch, Booker, batch_for, payment_key, payment_reference
from gateway.inbound.execute import Due
from gateway.inbound.findings import Finding
from gateway.inbound.pain001_v03 import ParsedFile, ParsedPmtInf, ParsedTx
from gateway.settings import Settings
from gateway.spool import Claim
from gateway.statuses import TxStatus
from ledger import calendar
from ledger.bulk import insert_rows
from ledger.core import Account, AccountKind
from ledger.store import LedgerTx

PAYMENT_COLUMNS = tuple(c.name for c in db.payments.c if c.name != "id")
_payment_tuple = operator.itemgetter(*PAYMENT_COLUMNS)
fingerprint_lookups_max = 2000  # above this, a file reads its accounts' whole AM05 window
rejections_listed_max = 1000  # the findings file lists this many rejected payments


class FileRun:
    """Deciding and booking the transactions of one accepted file, a chunk at a time."""

    def __init__(
        self,
        settings: Settings,
        tx: LedgerTx,
        claim: Claim,
        file_id: int,
        sha: str,
        received: dt.datetime,
        now: dt.datetime,
        parsed: ParsedFile,
    ) -> None:
        self.settings = settings
        self.tx = tx
        self.claim = claim
        self.file_id = file_id
        self.sha = sha
        self.parsed = parsed
        self.now = now
        self.received_local = received.astimezone(self.settings.timezone)
        local_now = now.astimezone(self.settings.timezone)
        self.today = local_now.date()
        # After end of day the day's statements are written: nothing more is booked on it.
        self.booking_open = (
            calendar.is_business_day(self.today) and local_now.time() < self.settings.eod_time
        )
        self.references: list[str] = []
        self.counts: Counter[str] = Counter()
        self.booked: Counter[str] = Counter()
        self.rejected: list[tuple[int, str, str, str]] = []
        self.seen_e2e: set[str] = set()

    def _load_accounts(self) -> tuple[dict[str, Account], rules.Context]:
        client = self.settings.client(self.claim.client_id)
        creditor_ibans = {
            t.creditor_iban
            for t in self.parsed.transactions
            if t.creditor_iban and rules.is_treasury_iban(t.creditor_iban)
        }
        own = {a.iban for a in client.accounts}
        clearing = {
            a.iban: a
            for a in (
                self.tx.system_account(AccountKind.CLEARING, c)
                for c in {a.currency for a in client.accounts}
            )
            if a is not None
        }
        locked = self.tx.accounts(own | creditor_ibans | set(clearing))
        client_accounts = {i: a for i, a in locked.items() if i in own and a.owner == client.id}
        # Only client accounts take payments: the treasury's own funding and clearing
        # accounts are not creditors a client can name (AC01, like an unknown account).
        treasury = {
            i: a
            for i, a in locked.items()
            if i in creditor_ibans and a.kind is AccountKind.CLIENT
        }
        # The same payment made (or waiting) from these accounts in the window: AM05.
        recent = recent_fingerprints(
            self.tx.conn,
            sorted(client_accounts),
            rules.window_start(self.today),
            self._candidate_fingerprints(),
        )
        ctx = rules.Context(
            client_accounts=client_accounts,
            treasury_accounts=treasury,
            today=self.today,
            max_future_days=self.settings.max_future_days,
            recent_fingerprints=frozenset(recent),
        )
        return locked, ctx

    def _candidate_fingerprints(self) -> list[str] | None:
        if self.parsed.count > fingerprint_lookups_max:
            return None
        pmts = self.parsed.payment_infos
        found = (rules.candidate_fingerprint(t, pmts[t.pmt_seq]) for t in self.parsed.transactions)
        return sorted({f for f in found if f is not None})

    def execute_all(self) -> None:
        accounts, ctx = self._load_accounts()
        clearing_by_ccy = {
            a.currency: a.iban for a in accounts.values() if a.kind is AccountKind.CLEARING
        }
        booker = Booker(
            self.tx,
            accounts,
            _debited_today(self.tx, ctx.client_accounts, self.today),
            self.today,
            self.now,
            self._rejected,
        )
        client_id = self.claim.client_id
        pmts = self.parsed.payment_infos
        batches: dict[int, Batch] = {}
        for chunk in self.parsed.transactions.chunks():
            rows: list[dict[str, Any]] = []
            dues: list[tuple[Due, Batch | None, dict[str, Any]]] = []
            for t in chunk:
                pmt = pmts[t.pmt_seq]
                checked = rules.check(t, pmt, ctx, self.seen_e2e)
                row = self._row(t, pmt, checked)
                rows.append(row)
                if checked.finding is not None:
                    self._rejected(row, checked.finding)
                    continue
                assert checked.requested_date is not None
                due = rules.due_date(
                    checked.requested_date,
                    checked.internal,
                    self.received_local,
                    self.settings.cutoff_internal,
                    self.settings.cutoff_external,
                )
                if due == self.today and not self.booking_open:
                    due = calendar.next_business_day(self.today)  # today's books are closed
                row["due_date"] = due
                if due > self.today:
                    continue  # PDNG: executed by `pending.execute_due` on its day
                assert pmt.debtor_iban is not None and t.creditor_iban is not None
                credit = t.creditor_iban if checked.internal else clearing_by_ccy[t.currency]
                batch = None
                if not checked.internal and row["batch_booking"]:
                    batch = batches.get(t.pmt_seq)
                    if batch is None:
                        batch = batches[t.pmt_seq] = batch_for(
                            client_id, self.sha, self.file_id, t.pmt_seq, 1
                        )
                payment = Due(
                    key=payment_key(client_id, self.sha, t.seq),
                    reference=payment_reference(self.file_id, t.seq),
                    debtor_iban=pmt.debtor_iban,
                    credit_iban=credit,
                    amount_minor=checked.amount_minor,
                    currency=t.currency,
                    internal=checked.internal,
                )
                dues.append((payment, batch, row))
            booker.book(dues)
            for row in rows:
                self.counts[row["status"]] += 1
            insert_rows(
                self.tx.conn,
                db.payments,
                PAYMENT_COLUMNS,
                [_payment_tuple(row) for row in rows],
            )
        booker.finish()
        self.booked = booker.booked
        self.references = booker.references

    def _rejected(self, row: dict[str, Any], finding: Finding) -> None:
        row["status"] = TxStatus.RJCT.value
        row["reason"] = finding.reason.value
        row["additional_info"] = finding.short()
        if len(self.rejected) < rejections_listed_max:
            self.rejected.append(
                (row["seq"], row["end_to_end_id"], finding.reason.value, finding.short())
            )

    def _row(self, t: ParsedTx, pmt: ParsedPmtInf, checked: rules.Checked) -> dict[str, Any]:
        header = self.parsed.header
        assert header is not None
        return {
            "file_id": self.file_id,
            "seq": t.seq,
            "pmt_seq": t.pmt_seq,
            "pmt_inf_id": pmt.pmt_inf_id,
            "msg_id": header.msg_id,
            "batch_booking": bool(pmt.batch_booking) if pmt.batch_booking is not None else True,
            "instr_id": t.instr_id,
            "end_to_end_id": t.end_to_end_id,
            "debtor_iban": pmt.debtor_iban,
            "debtor_name": pmt.debtor_name,
            "creditor_iban": t.creditor_iban,
            "creditor_name": t.creditor_name,
            "creditor_bic": t.creditor_bic,
            "amount_minor": checked.amount_minor or None,
            "currency": t.currency[:3] if t.currency else None,
            "remittance": t.remittance,
            "requested_date": checked.requested_date,
            "due_date": None,
            "kind": "internal" if checked.internal else "external",
            "status": TxStatus.PDNG.value,
            "reason": None,
            "additional_info": None,
            "acct_svcr_ref": None,
            "transfer_ref": None,
            "fingerprint": checked.fingerprint,
            "report_no": 1,
        }


def _debited_today(tx: LedgerTx, accounts: Mapping[str, Account], day: dt.date) -> dict[str, int]:
    by_id = tx.debits_on([a.id for a in accounts.values()], day)
    return {a.iban: by_id.get(a.id, 0) for a in accounts.values()}


def recent_fingerprints(
    conn: Connection, debtor_ibans: list[str], since: dt.date, candidates: list[str] | None
) -> set[str]:
    """Payments from these accounts booked since `since`, or accepted and still waiting.

    A small file asks about its own payments; a big one reads the accounts' window
    at once (cheaper than thousands of look-ups)."""
    p = db.payments.c
    where = [
        p.debtor_iban.in_(debtor_ibans),
        p.status.in_([TxStatus.ACSC.value, TxStatus.PDNG.value]),
        p.due_date >= since,
        p.fingerprint.is_not(None),
    ]
    if candidates is None:
        return {r[0] for r in conn.execute(select(p.fingerprint).where(*where))}
    found: set[str] = set()
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        found.update(
            r[0]
            for r in conn.execute(select(p.fingerprint).where(p.fingerprint.in_(chunk), *where))
        )
    return found
