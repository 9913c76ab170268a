"""The ledger's pure rules: which transfers fit, and how balances move when they do."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import core
from ledger.core import Account, AccountKind, Refusal, Transfer, TransferKind

DAY = dt.date(2026, 11, 25)


def account(
    iban: str,
    balance: int = 0,
    *,
    currency: str = "EUR",
    kind: AccountKind = AccountKind.CLIENT,
    status: str = "open",
    overdraft: int = 0,
    account_id: int = 1,
) -> Account:
    return Account(
        id=account_id,
        iban=iban,
        currency=currency,
        owner="treasury" if kind is not AccountKind.CLIENT else "iestade-a",
        kind=kind,
        status=status,
        overdraft_minor=overdraft,
        max_payment_minor=None,
        daily_limit_minor=None,
        balance_minor=balance,
    )


def request(
    debit: str, credit: str, amount: int, *, currency: str = "EUR", key: str = "k1"
) -> Transfer:
    return Transfer.between(
        idempotency_key=key,
        reference=f"REF-{key}",
        kind=TransferKind.INTERNAL,
        debit_iban=debit,
        credit_iban=credit,
        currency=currency,
        amount_minor=amount,
        booking_date=DAY,
        value_date=DAY,
    )


def book(*accounts: Account) -> dict[str, Account]:
    return {a.iban: a for a in accounts}


def test_apply_moves_exactly_the_amount() -> None:
    """A booked payment takes exactly its amount from the debtor and gives it to the creditor."""
    accounts = book(account("A", 10_000, account_id=1), account("B", 250, account_id=2))
    assert core.apply(request("A", "B", 1_234), accounts) is None
    assert accounts["A"].balance_minor == 10_000 - 1_234
    assert accounts["B"].balance_minor == 250 + 1_234


def test_apply_allows_spending_down_to_the_overdraft_exactly() -> None:
    """A client may use its whole overdraft, to the last cent, but not one cent more."""
    accounts = book(account("A", 100, overdraft=50), account("B", account_id=2))
    assert core.apply(request("A", "B", 150, key="k1"), accounts) is None
    assert accounts["A"].balance_minor == -50
    assert core.apply(request("A", "B", 1, key="k2"), accounts) is Refusal.INSUFFICIENT_FUNDS
    assert accounts["A"].balance_minor == -50
    assert accounts["B"].balance_minor == 150


@pytest.mark.parametrize(
    ("debit", "credit", "req", "refusal"),
    [
        pytest.param(
            account("A", 100), account("B"), request("A", "B", 101),
            Refusal.INSUFFICIENT_FUNDS, id="insufficient-funds",
        ),
        pytest.param(
            account("A", 100, overdraft=20), account("B"), request("A", "B", 121),
            Refusal.INSUFFICIENT_FUNDS, id="beyond-overdraft",
        ),
        pytest.param(
            account("A", 100, status="closed"), account("B"), request("A", "B", 1),
            Refusal.DEBIT_CLOSED, id="debtor-closed",
        ),
        pytest.param(
            account("A", 100, status="blocked"), account("B"), request("A", "B", 1),
            Refusal.DEBIT_BLOCKED, id="debtor-blocked",
        ),
        pytest.param(
            account("A", 100), account("B", status="closed"), request("A", "B", 1),
            Refusal.CREDIT_CLOSED, id="creditor-closed",
        ),
        pytest.param(
            account("A", 100), account("B", status="blocked"), request("A", "B", 1),
            Refusal.CREDIT_BLOCKED, id="creditor-blocked",
        ),
        pytest.param(
            account("A", 100), account("B", currency="JPY"), request("A", "B", 1),
            Refusal.CURRENCY_MISMATCH, id="creditor-other-currency",
        ),
        pytest.param(
            account("A", 100), account("B"), request("A", "B", 1, currency="USD"),
            Refusal.CURRENCY_MISMATCH, id="payment-in-other-currency",
        ),
        pytest.param(
            account("A", 100), account("B"), request("A", "B", 0),
            Refusal.NOT_POSITIVE, id="zero-amount",
        ),
        pytest.param(
            account("A", 100), account("B"), request("A", "B", -5),
            Refusal.NOT_POSITIVE, id="negative-amount",
        ),
        pytest.param(
            account("A", 100), account("B"), request("A", "NOPE", 1),
            Refusal.UNKNOWN_ACCOUNT, id="unknown-creditor",
        ),
        pytest.param(
            account("A", 100), account("B"), request("NOPE", "B", 1),
            Refusal.UNKNOWN_ACCOUNT, id="unknown-debtor",
        ),
    ],
)  # fmt: skip
def test_apply_refuses_and_leaves_balances_alone(
    debit: Account, credit: Account, req: Transfer, refusal: Refusal
) -> None:
    """A payment that cannot be booked is refused with its reason and moves no money."""
    accounts = book(debit, credit._replace(id=2))
    before = dict(accounts)
    assert core.apply(req, accounts) is refusal
    assert accounts == before


def test_closed_debtor_is_reported_before_missing_funds() -> None:
    """A closed account is reported as closed (AC04), not as lacking funds (AM04)."""
    accounts = book(account("A", 0, status="closed"), account("B", account_id=2))
    assert core.apply(request("A", "B", 10_000), accounts) is Refusal.DEBIT_CLOSED


def test_funding_account_may_go_negative_without_limit() -> None:
    """Money enters through the funding account, which has no balance floor."""
    accounts = book(account("FUND", 0, kind=AccountKind.FUNDING), account("A", account_id=2))
    assert core.apply(request("FUND", "A", 10**15), accounts) is None
    assert accounts["FUND"].balance_minor == -(10**15)
    assert accounts["A"].balance_minor == 10**15


def test_postings_of_a_transfer_sum_to_zero() -> None:
    """Each transfer is a debit and a credit of the same amount: the books stay balanced."""
    debit, credit = request("A", "B", 777).postings
    assert (debit.iban, debit.amount_minor, credit.iban, credit.amount_minor) == (
        "A", -777, "B", 777,
    )  # fmt: skip
    core.assert_balanced([request("A", "B", 777)])


def test_a_batch_is_one_debit_and_a_credit_per_creditor() -> None:
    """A batch-booked payment information moves its total from the debtor once and each
    creditor's share to it; the debtor's funds are judged against the total."""
    accounts = book(account("A", 1_000), account("B", account_id=2), account("C", account_id=3))
    batch = core.Transfer(
        "k", "R", TransferKind.INTERNAL,
        (core.Posting("A", -900, "EUR"), core.Posting("B", 600, "EUR"),
         core.Posting("C", 300, "EUR")),
        DAY, DAY,
    )  # fmt: skip
    assert core.apply(batch, accounts) is None
    assert [accounts[i].balance_minor for i in "ABC"] == [100, 600, 300]
    assert core.apply(batch, accounts) is Refusal.INSUFFICIENT_FUNDS
    closed = book(account("A", 1_000), account("B", account_id=2), account("C", status="closed"))
    assert core.check(batch, closed) is Refusal.CREDIT_CLOSED


IBANS = ("A", "B", "C", "D")
FUND = "FUND"


@st.composite
def books(draw: st.DrawFn) -> dict[str, Account]:
    accounts = {
        FUND: account(FUND, 0, kind=AccountKind.FUNDING, account_id=100),
    }
    for index, iban in enumerate(IBANS):
        accounts[iban] = account(
            iban,
            draw(st.integers(0, 5_000)),
            overdraft=draw(st.integers(0, 1_000)),
            status=draw(st.sampled_from(["open", "open", "open", "blocked", "closed"])),
            currency=draw(st.sampled_from(["EUR", "EUR", "EUR", "JPY"])),
            account_id=index + 1,
        )
    return accounts


transfers = st.lists(
    st.tuples(
        st.sampled_from((*IBANS, FUND)),
        st.sampled_from((*IBANS, FUND)),
        st.integers(-10, 3_000),
        st.sampled_from(["EUR", "EUR", "JPY"]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(books(), transfers)
def test_any_sequence_keeps_money_constant_and_above_overdraft(
    accounts: dict[str, Account],
    moves: list[tuple[str, str, int, str]],
) -> None:
    """Whatever payments are tried, no money appears or vanishes per currency, and no client
    ever goes below minus its overdraft; a refused payment changes nothing."""
    start = {a.iban: a.balance_minor for a in accounts.values()}

    def totals(book_: dict[str, Account]) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in book_.values():
            out[a.currency] = out.get(a.currency, 0) + a.balance_minor
        return out

    initial_totals = totals(accounts)
    booked: dict[str, int] = dict.fromkeys(accounts, 0)
    for number, (debit, credit, amount, code) in enumerate(moves):
        before = dict(accounts)
        refusal = core.apply(
            request(debit, credit, amount, currency=code, key=str(number)), accounts
        )
        if refusal is None:
            assert amount > 0
            booked[debit] -= amount
            booked[credit] += amount
        else:
            assert accounts == before
        assert totals(accounts) == initial_totals
        for a in accounts.values():
            if a.kind is AccountKind.CLIENT:
                assert a.balance_minor >= -a.overdraft_minor, a
    for iban, a in accounts.items():
        assert a.balance_minor == start[iban] + booked[iban]
