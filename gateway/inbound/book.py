"""The accounts an execution run touches, in memory (the pure part of `decide`): their
balances and today's debits as the run moves them, and the rules that stop a movement
(the daily limit, then the ledger's own: funds, status), as findings with their reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from gateway.inbound.findings import Finding
from gateway.reasons import Reason
from ledger import core, currency
from ledger.core import Account, AccountKind, Refusal


class Book:
    """The accounts an execution run touches, as read at its start (by the
    shell), and what the run has done to them so far: balances and today's debits."""

    def __init__(self, accounts: Mapping[str, Account], debited_today: Mapping[str, int]) -> None:
        self.accounts: dict[str, Account] = {}
        self.balance: dict[str, int] = {}
        self.debited = dict(debited_today)
        self.add(accounts.values())

    def add(self, accounts: Iterable[Account]) -> None:
        """More accounts (creditors come into view chunk by chunk); one already held
        keeps the balance the run has left it with."""
        for account in accounts:
            if account.iban not in self.accounts:
                self.accounts[account.iban] = account
                self.balance[account.iban] = account.balance_minor

    def state(self) -> dict[str, Account]:
        """Every account with its balance now (what the ledger must hold afterwards)."""
        return {i: a._replace(balance_minor=self.balance[i]) for i, a in self.accounts.items()}

    def execute(
        self, debtor_iban: str, credit_iban: str, ccy: str, amount: int,
        instructed: Instructed | None = None,
    ) -> Finding | None:
        """Move `amount` if the debtor's daily limit (AM14) and the ledger's rules (funds
        AM04, status AC04/AC06) allow it; otherwise the finding that stops it.

        `instructed` is the payment's own amount when `amount` is that converted into the
        debtor's currency (SPEC §13): a finding then names both (SPEC §6)."""
        debtor = self.accounts.get(debtor_iban)
        credit = self.accounts.get(credit_iban)
        spent = self.debited.get(debtor_iban, 0)
        limit = debtor.daily_limit_minor if debtor is not None else None
        if limit is not None and spent + amount > limit:
            info = _above_daily_limit(amount, ccy, limit, debtor_iban, instructed)
            return Finding(Reason.AM14, info)
        available = None
        if debtor is not None and debtor.kind is AccountKind.CLIENT:
            available = self.balance[debtor_iban] + debtor.overdraft_minor
        refusal = core.refusal(debtor, credit, ccy, amount, available)
        if refusal is not None:
            info = _refusal_info(refusal, amount, ccy, debtor_iban, credit, instructed)
            return Finding(REFUSAL_REASONS[refusal], info)
        self.balance[debtor_iban] -= amount
        self.balance[credit_iban] += amount
        self.debited[debtor_iban] = spent + amount
        return None


REFUSAL_REASONS: dict[Refusal, Reason] = {
    Refusal.UNKNOWN_ACCOUNT: Reason.AC01,
    Refusal.CURRENCY_MISMATCH: Reason.AM03,
    Refusal.DEBIT_CLOSED: Reason.AC04,
    Refusal.CREDIT_CLOSED: Reason.AC04,
    Refusal.DEBIT_BLOCKED: Reason.AC06,
    Refusal.CREDIT_BLOCKED: Reason.AC06,
    Refusal.INSUFFICIENT_FUNDS: Reason.AM04,
    Refusal.NOT_POSITIVE: Reason.AM12,
}


class Instructed(NamedTuple):
    """A payment's InstdAmt, in its own currency, when another currency is debited."""

    amount_minor: int
    currency: str


def converted_text(instructed: Instructed, amount: int, ccy: str) -> str:
    """`InstdAmt 1200.00 USD is 1030.04 EUR`: what a converted payment's finding starts with."""
    return (
        f"InstdAmt {currency.format_minor(instructed.amount_minor, instructed.currency)} "
        f"{instructed.currency} is {currency.format_minor(amount, ccy)} {ccy}"
    )


def _above_daily_limit(
    amount: int, ccy: str, limit: int, debtor_iban: str, instructed: Instructed | None
) -> str:
    left_of = f"what is left of the daily limit {currency.format_minor(limit, ccy)}"
    if instructed is not None:
        # Without the debtor's IBAN (the payment's own DbtrAcct): both amounts must fit the
        # 105 characters of AddtlInf.
        return f"{converted_text(instructed, amount, ccy)}, above {left_of} {ccy}"
    return f"InstdAmt {currency.format_minor(amount, ccy)} exceeds {left_of} on {debtor_iban}"


def _refusal_info(
    refusal: Refusal, amount: int, ccy: str, debtor_iban: str, credit: Account | None,
    instructed: Instructed | None,
) -> str:
    shown = currency.format_minor(amount, ccy)
    if refusal is Refusal.INSUFFICIENT_FUNDS:
        amounts = (
            f"InstdAmt {shown} {ccy}" if instructed is None
            else converted_text(instructed, amount, ccy)
        )
        return f"{amounts}: insufficient funds on {debtor_iban}"
    if refusal in (Refusal.CREDIT_CLOSED, Refusal.CREDIT_BLOCKED) and credit is not None:
        return f"CdtrAcct {credit.iban} is {credit.status}"
    if refusal in (Refusal.DEBIT_CLOSED, Refusal.DEBIT_BLOCKED):
        return f"DbtrAcct {debtor_iban} is {refusal.value.split('_')[1]}"
    return f"cannot book {shown} {ccy}: {refusal.value}"
