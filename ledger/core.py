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
    POSITION = "position"  # the treasury's currency position: where conversions balance


class TransferKind(StrEnum):
    FUNDING = "funding"
    INTERNAL = "internal"
    EXTERNAL = "external"
    PAYMENTS = "payments"  # several payments of a run, each with postings of its own


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


class Posting(NamedTuple):
    """One leg of a transfer: an amount on one account, signed from the account's point of
    view (credit positive, debit negative), in the account's currency. A posting is one
    entry on its account's statement; its `reference` (AcctSvcrRef) is the transfer's
    unless it has its own (several payments booked as one transfer, each its own pair
    of entries)."""

    iban: str
    amount_minor: int
    currency: str
    reference: str | None = None


class Transfer(NamedTuple):
    """One balanced movement of money: postings that sum to zero per currency.

    A payment is one debit and one credit; a batch-booked payment information is one
    debit of its total and a credit per creditor account (SPEC §6); a conversion adds
    the treasury's position accounts so each currency balances on its own. The first
    posting is the (first) debit."""

    idempotency_key: str
    reference: str
    kind: TransferKind
    postings: tuple[Posting, ...]
    booking_date: dt.date
    value_date: dt.date

    @classmethod
    def between(
        cls,
        *,
        idempotency_key: str,
        reference: str,
        kind: TransferKind,
        debit_iban: str,
        credit_iban: str,
        currency: str,
        amount_minor: int,
        booking_date: dt.date,
        value_date: dt.date,
    ) -> Transfer:
        """The usual transfer: `amount_minor` from one account to another."""
        return cls(
            idempotency_key,
            reference,
            kind,
            (
                Posting(debit_iban, -amount_minor, currency),
                Posting(credit_iban, amount_minor, currency),
            ),
            booking_date,
            value_date,
        )


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

    @property
    def text(self) -> str:
        """The refusal in English, for an operator (`ledger fund`)."""
        return _REFUSAL_TEXTS[self]


_REFUSAL_TEXTS = {
    Refusal.UNKNOWN_ACCOUNT: "no such account in the ledger",
    Refusal.CURRENCY_MISMATCH: "the amount is not in the account's currency",
    Refusal.DEBIT_CLOSED: "the account to debit is closed",
    Refusal.DEBIT_BLOCKED: "the account to debit is blocked",
    Refusal.CREDIT_CLOSED: "the account to credit is closed",
    Refusal.CREDIT_BLOCKED: "the account to credit is blocked",
    Refusal.INSUFFICIENT_FUNDS: "not enough funds on the account to debit",
    Refusal.NOT_POSITIVE: "the amount is not above zero",
}
assert set(_REFUSAL_TEXTS) == set(Refusal), "every refusal has its text"


def check(transfer: Transfer, accounts: Mapping[str, Account]) -> Refusal | None:
    """Whether `transfer` may be posted against the given account states: each debit leg
    is judged as a payment to every credit leg of its currency and reference (for a
    two-legged transfer that is exactly `refusal(debit, credit, …)`). The first posting
    is a debit: a transfer whose first leg is not negative moves nothing positive
    (`NOT_POSITIVE`)."""
    legs = transfer.postings
    if legs[0].amount_minor >= 0 or any(leg.amount_minor == 0 for leg in legs):
        return Refusal.NOT_POSITIVE
    for leg in legs:
        if leg.amount_minor >= 0:
            continue
        credits = [
            c
            for c in legs
            if c.amount_minor > 0 and (c.currency, c.reference) == (leg.currency, leg.reference)
        ]
        if not credits:
            return Refusal.CURRENCY_MISMATCH
        debit = accounts.get(leg.iban)
        for credit in credits:
            found = refusal(debit, accounts.get(credit.iban), leg.currency, -leg.amount_minor)
            if found is not None:
                return found
    return None


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


def apply(transfer: Transfer, accounts: dict[str, Account]) -> Refusal | None:
    """Check `transfer` and, if it fits, move the balances in `accounts` (in place)."""
    found = check(transfer, accounts)
    if found is not None:
        return found
    for leg in transfer.postings:
        accounts[leg.iban] = accounts[leg.iban].moved(leg.amount_minor)
    return None


def assert_balanced(transfers: Iterable[Transfer]) -> None:
    """Every transfer's postings sum to zero per currency; amounts are non-zero integers."""
    for transfer in transfers:
        sums: dict[str, int] = {}
        for leg in transfer.postings:
            assert isinstance(leg.amount_minor, int) and leg.amount_minor != 0, transfer
            sums[leg.currency] = sums.get(leg.currency, 0) + leg.amount_minor
        assert len(transfer.postings) >= 2 and not any(sums.values()), transfer
