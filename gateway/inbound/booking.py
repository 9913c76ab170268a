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
from typing import NamedTuple, cast

from gateway.inbound.execute import Due, execute, execute_batch
from gateway.inbound.findings import Finding
from ledger.core import Account, TransferKind, TransferRequest
from ledger.store import LedgerTx


@dataclass(frozen=True, slots=True)
class Batch:
    """Where a batch-booked payment's amount goes: the transfer for its payment
    information, from the debtor to the clearing account of the currency."""

    key: str
    reference: str
    debit_iban: str
    credit_iban: str
    currency: str


class Batched(NamedTuple):
    """A batch-booked payment to execute now: its share of the batch transfer."""

    batch: Batch
    amount_minor: int


@dataclass(slots=True)
class _Open:
    batch: Batch
    amount_minor: int = 0


def payment_key(client_id: str, sha256: str, seq: int) -> str:
    """Idempotency key of one payment: the file's bytes and the payment's position."""
    return f"file:{client_id}:{sha256}:{seq}"


def payment_reference(file_id: int, seq: int) -> str:
    """The payment's own AcctSvcrRef (≤ 35 characters)."""
    return f"{payment_reference_prefix(file_id)}{seq:08d}"


def payment_reference_prefix(file_id: int) -> str:
    """What the references of a file's payments start with; the position follows as
    eight digits (a loop over 100,000 payments formats only that)."""
    return f"EK{file_id:010d}"


def reference_file_id(reference: str) -> int | None:
    """The file whose payments a ledger transfer carries, read from the transfer's
    reference (`payment_reference`, `batch_for`); None for any other transfer (funding).
    Statements find a transfer's payments by it (`gw_payments` has no index on
    `transfer_ref`: 100,000 equal batch references cost ~0.05 s to index)."""
    if reference[:2] in ("EK", "EB") and reference[2:12].isdigit():
        return int(reference[2:12])
    return None


def batch_for(
    client_id: str,
    sha256: str,
    file_id: int,
    pmt_seq: int,
    run: int,
    *,
    debit_iban: str,
    credit_iban: str,
    currency: str,
) -> Batch:
    """The batch transfer of one payment information in one execution run."""
    return Batch(
        key=f"file:{client_id}:{sha256}:pmt{pmt_seq}:run{run}",
        reference=f"EB{file_id:010d}P{pmt_seq:05d}R{run:03d}",
        debit_iban=debit_iban,
        credit_iban=credit_iban,
        currency=currency,
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

    def book(self, items: Sequence[Due | Batched]) -> list[Finding | str]:
        """Decide `items` in order: payments that are transfers of their own (`Due`) and
        shares of batch transfers (`Batched`). Consecutive shares of one batch are
        decided together (`execute_batch`, equal to one by one), so a payroll's
        100,000 payments do not each build a transfer."""
        decisions: list[Finding | str] = []
        singles: list[TransferRequest] = []
        start = 0
        while start < len(items):
            first = items[start]
            end = start + 1
            if isinstance(first, Batched):
                while (
                    end < len(items)
                    and isinstance(item := items[end], Batched)
                    and item.batch == first.batch
                ):
                    end += 1
                shares = cast(Sequence[Batched], items[start:end])
                self._book_batch(first.batch, [b.amount_minor for b in shares], decisions)
            else:
                while end < len(items) and not isinstance(items[end], Batched):
                    end += 1
                dues = cast(Sequence[Due], items[start:end])
                self._book_singles(dues, singles, decisions)
            start = end
        self.tx.post(singles, self.accounts, self.now)
        self.references.extend(r.reference for r in singles)
        return decisions

    def _book_singles(
        self, dues: Sequence[Due], singles: list[TransferRequest], decisions: list[Finding | str]
    ) -> None:
        for due, request, finding in execute(dues, self.accounts, self.debited, self.booking_date):
            if finding is not None:
                decisions.append(finding)
                continue
            assert request is not None
            self.booked[due.currency] += due.amount_minor
            singles.append(request)
            decisions.append(due.reference)

    def _book_batch(self, batch: Batch, amounts: list[int], decisions: list[Finding | str]) -> None:
        open_batch = self._batches.get(batch.key)
        if open_batch is None:
            open_batch = self._batches[batch.key] = _Open(batch)
        assert open_batch.batch == batch, "a batch has one debtor, credit account and currency"
        total = 0
        findings = execute_batch(
            batch.debit_iban,
            batch.credit_iban,
            batch.currency,
            amounts,
            self.accounts,
            self.debited,
        )
        for amount, finding in zip(amounts, findings, strict=True):
            if finding is not None:
                decisions.append(finding)
            else:
                total += amount
                decisions.append(batch.reference)
        if total:
            open_batch.amount_minor += total
            self.booked[batch.currency] += total

    def finish(self) -> None:
        """Write the batch transfers, then check the ledger holds what was decided."""
        requests = [
            TransferRequest(
                idempotency_key=b.batch.key,
                reference=b.batch.reference,
                kind=TransferKind.EXTERNAL,
                debit_iban=b.batch.debit_iban,
                credit_iban=b.batch.credit_iban,
                currency=b.batch.currency,
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
