"""The accounts an execution run touches, in memory (the pure part of `decide`): their
balances and today's debits as the run moves them, and the rules that stop a movement
(the ledger's own, the daily limit, the funds: in `Reason` order), as findings with
their reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from gateway.inbound.findings import Finding, account_in_status
from gateway.reasons import Reason
from ledger import core, currency
from ledger.core import Account, AccountKind, Refusal

if TYPE_CHECKING:
    from gateway.pricing import Priced


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

    def execute(self, debtor_iban: str, credit_iban: str, ccy: str, amount: int) -> Finding | None:
        """Move `amount` if `refused` finds nothing to stop it; else that finding."""
        found = self.refused(debtor_iban, credit_iban, ccy, amount)
        if found is None:
            self.balance[debtor_iban] -= amount
            self.balance[credit_iban] += amount
            self.debited[debtor_iban] = self.debited.get(debtor_iban, 0) + amount
        return found

    def exchange(self, debtor_iban: str, credit_iban: str, priced: Priced) -> Finding | None:
        """Move a converted payment (SPEC §13) if nothing stops either side; else the
        finding that stops it. Each side is a payment of its own currency through that
        currency's position account: the debit side (in the debtor's currency) is judged
        like any payment — daily limit, funds, the debtor's status, naming both amounts
        when the debit is converted —,
        the credit side by the creditor's status. Together they move each position account
        by what the route's postings do (the instructed currency's legs cancel, or stand
        in for a side that is not converted); the run's end asserts that the ledger holds
        exactly the book's balances."""
        debit, credited, route = priced.debit_minor, priced.credit_minor, priced.route
        debit_position, credit_position = route.via
        converted = priced if route.debit is not None else None
        found = self.refused(debtor_iban, debit_position, route.debit_ccy, debit, converted)
        if found is None:
            found = self.refused(credit_position, credit_iban, route.credit_ccy, credited)
        if found is None:
            balance = self.balance
            balance[debtor_iban] -= debit
            balance[debit_position] += debit
            balance[credit_position] -= credited
            balance[credit_iban] += credited
            self.debited[debtor_iban] = self.debited.get(debtor_iban, 0) + debit
        return found

    def refused(
        self, debtor_iban: str, credit_iban: str, ccy: str, amount: int,
        converted: Priced | None = None,
    ) -> Finding | None:
        """What stops moving `amount`, in `Reason` order: the ledger's rules but the funds
        (status AC04/AC06 — a payment that waited may find its account closed since —
        …), the debtor's daily limit (AM14), then the funds (AM04); None if nothing does.

        `converted` is the payment as priced when `amount` is its instructed amount
        converted into the debtor's currency (SPEC §13): a finding then names both (SPEC §6)."""
        debtor = self.accounts.get(debtor_iban)
        credit = self.accounts.get(credit_iban)
        available = None
        if debtor is not None and debtor.kind is AccountKind.CLIENT:
            available = self.balance[debtor_iban] + debtor.overdraft_minor
        refusal = core.refusal(debtor, credit, ccy, amount, available)
        limit = debtor.daily_limit_minor if debtor is not None else None
        over = limit is not None and self.debited.get(debtor_iban, 0) + amount > limit
        if over and refusal in (None, Refusal.INSUFFICIENT_FUNDS):
            assert limit is not None
            info = _above_daily_limit(amount, ccy, limit, debtor_iban, converted)
            return Finding(Reason.AM14, info)
        if refusal is not None:
            info = _refusal_info(refusal, amount, ccy, debtor_iban, credit, converted)
            return Finding(REFUSAL_REASONS[refusal], info)
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


def converted_text(converted: Priced, amount: int, ccy: str) -> str:
    """`InstdAmt 1200.00 USD is 1030.04 EUR`: what a converted payment's finding starts with."""
    instructed = converted.route.instructed
    return (
        f"InstdAmt {currency.format_minor(converted.instructed_minor, instructed)} "
        f"{instructed} is {currency.format_minor(amount, ccy)} {ccy}"
    )


def _above_daily_limit(
    amount: int, ccy: str, limit: int, debtor_iban: str, converted: Priced | None
) -> str:
    left_of = f"what is left of the daily limit {currency.format_minor(limit, ccy)}"
    if converted is not None:
        # Without the debtor's IBAN (the payment's own DbtrAcct): both amounts must fit the
        # 105 characters of AddtlInf.
        return f"{converted_text(converted, amount, ccy)}, above {left_of} {ccy}"
    return f"InstdAmt {currency.format_minor(amount, ccy)} exceeds {left_of} on {debtor_iban}"


def _refusal_info(
    refusal: Refusal, amount: int, ccy: str, debtor_iban: str, credit: Account | None,
    converted: Priced | None,
) -> str:
    shown = currency.format_minor(amount, ccy)
    if refusal is Refusal.INSUFFICIENT_FUNDS:
        amounts = (
            f"InstdAmt {shown} {ccy}" if converted is None
            else converted_text(converted, amount, ccy)
        )
        return f"{amounts}: insufficient funds on {debtor_iban}"
    if refusal in (Refusal.CREDIT_CLOSED, Refusal.CREDIT_BLOCKED) and credit is not None:
        return account_in_status("CdtrAcct", credit.iban, credit.status)
    if refusal in (Refusal.DEBIT_CLOSED, Refusal.DEBIT_BLOCKED):
        return account_in_status("DbtrAcct", debtor_iban, refusal.value.split("_")[1])
    return f"cannot book {shown} {ccy}: {refusal.text}"
