"""The pure part of the ledger: values and the rules that move money between them.

Nothing here touches the database or the clock. `apply` is the one function
that decides whether a transfer fits, and it is the same function the store
uses when it writes: the store asserts afterwards what `apply` promised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import NamedTuple


class AccountKind(StrEnum):
    CLIENT = "client"
    FUNDING = "funding"  # where money enters the system (`ledger fund`)
    CLEARING = "clearing"  # where payments leaving the treasury are booked


class TransferKind(StrEnum):
    FUNDING = "funding"
    INTERNAL = "internal"
    EXTERNAL = "external"


TREASURY_OWNER = "treasury"


class Account(NamedTuple):
    """An account's state. Immutable: a moved balance is a new value (`moved`).
    (Named tuples, not frozen dataclasses: a big file makes hundreds of thousands of
    these, and a frozen dataclass costs four times as much to create.)"""

    id: int
    iban: str
    currency: str
    owner: str
    kind: AccountKind
    status: str
    overdraft_minor: int
    max_payment_minor: int | None
    daily_limit_minor: int | None
    balance_minor: int

    def moved(self, delta: int) -> Account:
        """This account with its balance moved by `delta`."""
        return Account(
            self.id,
            self.iban,
            self.currency,
            self.owner,
            self.kind,
            self.status,
            self.overdraft_minor,
            self.max_payment_minor,
            self.daily_limit_minor,
            self.balance_minor + delta,
        )

    @property
    def available_minor(self) -> int:
        """What may still be debited: balance plus overdraft (unlimited for system accounts)."""
        return self.available_after(0)

    def available_after(self, delta: int) -> int:
        """What may still be debited once the balance has moved by `delta`."""
        if self.kind is not AccountKind.CLIENT:
            return 2**62
        return self.balance_minor + delta + self.overdraft_minor


class TransferRequest(NamedTuple):
    """One transfer to post: debit one account, credit another, same currency."""

    idempotency_key: str
    reference: str
    kind: TransferKind
    debit_iban: str
    credit_iban: str
    currency: str
    amount_minor: int
    booking_date: dt.date
    value_date: dt.date
    fingerprint: str | None = None


class Refusal(StrEnum):
    """Why `apply` will not post a transfer. The gateway maps these to reason codes."""

    UNKNOWN_ACCOUNT = "unknown_account"
    CURRENCY_MISMATCH = "currency_mismatch"
    DEBIT_CLOSED = "debit_closed"
    DEBIT_BLOCKED = "debit_blocked"
    CREDIT_CLOSED = "credit_closed"
    CREDIT_BLOCKED = "credit_blocked"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NOT_POSITIVE = "not_positive"


def check(request: TransferRequest, accounts: Mapping[str, Account]) -> Refusal | None:
    """Whether `request` may be posted against the given account states."""
    debit = accounts.get(request.debit_iban)
    credit = accounts.get(request.credit_iban)
    return refusal(debit, credit, request.currency, request.amount_minor)


def refusal(
    debit: Account | None,
    credit: Account | None,
    currency: str,
    amount_minor: int,
    available_minor: int | None = None,
) -> Refusal | None:
    """Whether `amount_minor` may move from `debit` to `credit`: the one place of these
    rules. `available_minor` is what the debtor may still spend if it is not
    `debit.available_minor` (payments decided since `debit` was read, not yet moved)."""
    if debit is None or credit is None:
        return Refusal.UNKNOWN_ACCOUNT
    if amount_minor <= 0:
        return Refusal.NOT_POSITIVE
    if debit.currency != currency or credit.currency != currency:
        return Refusal.CURRENCY_MISMATCH
    if debit.status == "closed":
        return Refusal.DEBIT_CLOSED
    if debit.status == "blocked":
        return Refusal.DEBIT_BLOCKED
    if credit.status == "closed":
        return Refusal.CREDIT_CLOSED
    if credit.status == "blocked":
        return Refusal.CREDIT_BLOCKED
    if amount_minor > (debit.available_minor if available_minor is None else available_minor):
        return Refusal.INSUFFICIENT_FUNDS
    return None


def apply(request: TransferRequest, accounts: dict[str, Account]) -> Refusal | None:
    """Check `request` and, if it fits, move the balances in `accounts` (in place)."""
    refusal = check(request, accounts)
    if refusal is not None:
        return refusal
    debit = accounts[request.debit_iban]
    credit = accounts[request.credit_iban]
    if debit.iban == credit.iban:
        return None
    accounts[debit.iban] = debit.moved(-request.amount_minor)
    accounts[credit.iban] = credit.moved(request.amount_minor)
    return None


def assert_balanced(requests: Iterable[TransferRequest]) -> None:
    """Every transfer's two postings sum to zero per currency; amounts are positive integers."""
    for request in requests:
        assert isinstance(request.amount_minor, int), request
        assert request.amount_minor > 0, request


def postings_of(request: TransferRequest) -> tuple[tuple[str, int], tuple[str, int]]:
    """The (iban, signed amount) pair of postings for a transfer; they sum to zero."""
    amount = request.amount_minor
    pair = ((request.debit_iban, -amount), (request.credit_iban, amount))
    assert pair[0][1] + pair[1][1] == 0
    return pair
