"""`execute_batch` decides a batch's payments together: it must decide exactly what
`execute` decides one payment at a time — the same findings, worded the same, and
the same account balances and daily totals afterwards."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inbound.execute import Due, execute, execute_batch
from gateway.samples import iban_lv
from ledger.core import Account, AccountKind

DAY = dt.date(2026, 11, 25)
DEBTOR = iban_lv("TREL", 9_100_000_000_001)
CREDIT = iban_lv("TREL", 9_000_000_000_002)


@st.composite
def accounts_and_dues(draw: st.DrawFn) -> tuple[dict[str, Account], dict[str, int], list[Due]]:
    def account(iban: str, kind: AccountKind) -> Account:
        return Account(
            id=draw(st.integers(1, 9)),
            iban=iban,
            currency=draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"])),
            owner="client" if kind is AccountKind.CLIENT else "treasury",
            kind=kind,
            status=draw(st.sampled_from(["active", "active", "active", "closed", "blocked"])),
            overdraft_minor=draw(st.sampled_from([0, 0, 50, 10_000])),
            max_payment_minor=None,
            daily_limit_minor=draw(st.one_of(st.none(), st.integers(0, 2_000))),
            balance_minor=draw(st.integers(-100, 3_000)),
        )

    accounts: dict[str, Account] = {}
    if draw(st.integers(0, 9)):  # now and then the debtor is unknown
        accounts[DEBTOR] = account(DEBTOR, draw(st.sampled_from(list(AccountKind))))
    credit_iban = draw(st.sampled_from([CREDIT, CREDIT, CREDIT, DEBTOR]))  # or itself
    if credit_iban == CREDIT and draw(st.integers(0, 9)):
        accounts[CREDIT] = account(CREDIT, AccountKind.CLEARING)
    debited = {DEBTOR: draw(st.integers(0, 1_500))} if draw(st.booleans()) else {}
    amounts = draw(st.lists(st.integers(-2, 900), min_size=1, max_size=12))
    ccy = draw(st.sampled_from(["EUR", "EUR", "USD"]))
    dues = [
        Due(f"k{n}", f"EK{n}", DEBTOR, credit_iban, amount, ccy, internal=False)
        for n, amount in enumerate(amounts)
    ]
    return accounts, debited, dues


@settings(max_examples=1500, deadline=None)
@given(accounts_and_dues())
def test_batch_decides_as_one_by_one(
    case: tuple[dict[str, Account], dict[str, int], list[Due]],
) -> None:
    accounts, debited, dues = case
    one_accounts, one_debited = dict(accounts), dict(debited)
    one_by_one = [f for _, _, f in execute(dues, one_accounts, one_debited, DAY)]
    first = dues[0]
    amounts = [d.amount_minor for d in dues]
    together = execute_batch(
        first.debtor_iban, first.credit_iban, first.currency, amounts, accounts, debited
    )
    assert together == one_by_one
    assert accounts == one_accounts
    assert debited == one_debited


def test_a_batch_that_runs_out_of_funds_refuses_only_what_does_not_fit() -> None:
    accounts = {
        DEBTOR: Account(1, DEBTOR, "EUR", "c", AccountKind.CLIENT, "active", 0, None, None, 500),
        CREDIT: Account(2, CREDIT, "EUR", "t", AccountKind.CLEARING, "active", 0, None, None, 0),
    }
    findings = execute_batch(DEBTOR, CREDIT, "EUR", [300, 300, 200], accounts, {})
    assert [f.reason.value if f else None for f in findings] == [None, "AM04", None]
    assert accounts[DEBTOR].balance_minor == 0 and accounts[CREDIT].balance_minor == 500
