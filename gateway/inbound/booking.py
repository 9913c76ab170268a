"""Booking due payments into the ledger, shared by arrival and by later execution.

Each payment is decided on its own (`execute.execute`: daily limit, funds, account
status, in order). What is written to the ledger follows ISO batch booking: the
external payments of a payment information with `BtchBookg` true (the default)
become ONE transfer of their total to the clearing account, the entry the client
sees on its statement; each payment keeps its own `AcctSvcrRef` and appears as a
transaction detail of that entry. Internal payments (to treasury accounts) and
payment informations with `BtchBookg` false are one transfer each.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.inbound.execute import Due, execute, execute_batch
from gateway.inbound.findings import Finding
from ledger.core import Account, TransferKind, TransferRequest
from ledger.store import LedgerTx


@dataclass(frozen=True, slots=True)
class Batch:
    """Where a batch-booked payment's amount goes: the transfer for its payment information."""

    key: str
    reference: str


@dataclass(slots=True)
class _Open:
    batch: Batch
    debit_iban: str
    credit_iban: str
    currency: str
    amount_minor: int = 0


def payment_key(client_id: str, sha256: str, seq: int) -> str:
    """Idempotency key of one payment: the file's bytes and the payment's position."""
    return f"file:{client_id}:{sha256}:{seq}"


def payment_reference(file_id: int, seq: int) -> str:
    """The payment's own AcctSvcrRef (≤ 35 characters)."""
    return f"EK{file_id:010d}{seq:08d}"


def batch_for(client_id: str, sha256: str, file_id: int, pmt_seq: int, run: int) -> Batch:
    """The batch transfer of one payment information in one execution run."""
    return Batch(
        key=f"file:{client_id}:{sha256}:pmt{pmt_seq}:run{run}",
        reference=f"EB{file_id:010d}P{pmt_seq:05d}R{run:03d}",
    )


class Booker:
    """Decides due payments in order and writes their transfers; `finish` writes the batches.

    `book` answers each payment with the `Finding` that stopped it, or — booked —
    the reference of the ledger transfer that carries it (its own, or its batch's);
    a booked payment's own `AcctSvcrRef` is `Due.reference`.
    """

    def __init__(
        self,
        tx: LedgerTx,
        accounts: dict[str, Account],
        debited: dict[str, int],
        booking_date: dt.date,
        now: dt.datetime,
    ) -> None:
        self.tx = tx
        self.accounts = accounts  # the caller may add accounts between calls to `book`
        self.debited = debited
        self.booking_date = booking_date
        self.now = now
        self.booked: Counter[str] = Counter()
        self.references: list[str] = []  # the ledger transfers written, for notifications
        self._batches: dict[str, _Open] = {}

    def book(self, items: Sequence[tuple[Due, Batch | None]]) -> list[Finding | str]:
        """Decide `items` (due payment, its batch or None), in order. Consecutive
        payments of one batch are decided together (`execute_batch`, equal to one by
        one), so a payroll's 100,000 payments do not each build a transfer."""
        decisions: list[Finding | str] = []
        singles: list[TransferRequest] = []
        start = 0
        while start < len(items):
            batch = items[start][1]
            end = start + 1
            while end < len(items) and items[end][1] == batch:
                end += 1
            dues = [due for due, _ in items[start:end]]
            if batch is None:
                self._book_singles(dues, singles, decisions)
            else:
                self._book_batch(batch, dues, decisions)
            start = end
        self.tx.post(singles, self.accounts, self.now)
        self.references.extend(r.reference for r in singles)
        return decisions

    def _book_singles(
        self, dues: list[Due], singles: list[TransferRequest], decisions: list[Finding | str]
    ) -> None:
        for due, request, finding in execute(dues, self.accounts, self.debited, self.booking_date):
            if finding is not None:
                decisions.append(finding)
                continue
            assert request is not None
            self.booked[due.currency] += due.amount_minor
            singles.append(request)
            decisions.append(due.reference)

    def _book_batch(self, batch: Batch, dues: list[Due], decisions: list[Finding | str]) -> None:
        first = dues[0]
        open_batch = self._batches.get(batch.key)
        if open_batch is None:
            open_batch = self._batches[batch.key] = _Open(
                batch, first.debtor_iban, first.credit_iban, first.currency
            )
        assert (open_batch.debit_iban, open_batch.credit_iban, open_batch.currency) == (
            first.debtor_iban,
            first.credit_iban,
            first.currency,
        ), "a batch has one debtor, one clearing account and one currency"
        total = 0
        for due, finding in zip(
            dues, execute_batch(dues, self.accounts, self.debited), strict=True
        ):
            if finding is not None:
                decisions.append(finding)
            else:
                total += due.amount_minor
                decisions.append(batch.reference)
        if total:
            open_batch.amount_minor += total
            self.booked[first.currency] += total

    def finish(self) -> None:
        """Write the batch transfers, then check the ledger holds what was decided."""
        requests = [
            TransferRequest(
                idempotency_key=b.batch.key,
                reference=b.batch.reference,
                kind=TransferKind.EXTERNAL,
                debit_iban=b.debit_iban,
                credit_iban=b.credit_iban,
                currency=b.currency,
                amount_minor=b.amount_minor,
                booking_date=self.booking_date,
                value_date=self.booking_date,
            )
            for b in self._batches.values()
            if b.amount_minor > 0
        ]
        self.tx.post(requests, self.accounts, self.now)
        self.references.extend(r.reference for r in requests)
        self.tx.assert_balances(self.accounts)
