"""The summary's arithmetic (SPEC §12): code lines spread over what was booked add up to
it exactly, and an account's lines reconcile with its balances."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.inbound import budget
from gateway.outbound.account_report import SENT_SEPA, Entry, EntryDetail, ReportInvariantError
from gateway.outbound.budget_summary import account_lines, allocate, is_final, render

DAY = dt.date(2026, 11, 25)


@given(
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=20),
    st.integers(min_value=0, max_value=10**11),
)
def test_allocated_parts_add_up_and_stay_within_a_cent(weights: list[int], total: int) -> None:
    """A converted payment's code lines, booked at its rate: the parts add up to the booked
    amount exactly and none is more than a cent from its exact share."""
    parts = allocate([Decimal(w) / 100 for w in weights], total)
    assert parts is not None and sum(parts) == total
    whole = sum(weights)
    for w, part in zip(weights, parts, strict=True):
        assert abs(Decimal(part) - Decimal(w) * total / whole) < 1


def test_equal_amounts_keep_their_lines_exactly() -> None:
    assert allocate([Decimal("120.00"), Decimal("30.00")], 150_00) == [120_00, 30_00]
    assert allocate([], 100) is None


def entry(amount: int, credit: bool, *details: tuple[int, str | None]) -> Entry:
    return Entry(
        entry_ref="1", amount_minor=amount, currency="EUR", credit=credit, booking_date=DAY,
        value_date=DAY, acct_svcr_ref="R", bank_tx_code=SENT_SEPA,
        details=tuple(EntryDetail(amount_minor=a, budget_codes=c) for a, c in details),
        batch_booked=len(details) > 1,
    )  # fmt: skip


def test_an_entry_whose_transactions_do_not_add_up_is_refused() -> None:
    """The summary reads the entries the statements do and checks them as they do: an
    entry whose transactions do not add up to it (a converted batch worked out again at
    other rates) is a fault, not an uncoded remainder."""
    booked = [entry(200_00, False, (150_00, None), (40_00, None))]
    with pytest.raises(ReportInvariantError, match="sum 19000"):
        account_lines("LV1", "EUR", 0, booked, -200_00, None, DAY)


def test_lines_by_code_uncoded_and_the_check() -> None:
    split = budget.join((("EKK", "2221", "120.00", "EUR"), ("EKK", "2222", "30.00", "EUR")))
    revenue = budget.join((("IKK", "21.3.9.9", "80.00", "EUR"),))
    booked = [
        entry(200_00, False, (150_00, split), (50_00, None)),  # a batch: one payment uncoded
        entry(80_00, True, (80_00, revenue)),
        entry(1000_00, True),  # funding: no payment behind it
        entry(10_00, True, (10_00, split)),  # EKK lines on a credit are not revenue
    ]
    lines = account_lines("LV1", "EUR", 5_00, booked, 5_00 - 200_00 + 1090_00, None, DAY)
    shown = [(x.line, x.code, x.amount_minor) for x in lines]
    assert shown == [
        ("opening", "", 5_00),
        ("revenue", "21.3.9.9", 80_00),
        ("expenditure", "2221", -120_00),
        ("expenditure", "2222", -30_00),
        ("uncoded", "", 1010_00),
        ("uncoded", "", -50_00),
        ("closing", "", 895_00),
        ("check", "", 0),
    ]
    text = render(lines).decode("utf-8")
    assert text.splitlines()[0] == "account;currency;line;code;name;amount"
    assert "LV1;EUR;expenditure;2221;;-120.00" in text.splitlines()


def test_only_a_summary_of_a_period_over_is_final() -> None:
    """What the daemon's monthly run reads back: a summary written while its period ran
    (the balance so far, on any of its accounts) does not stand for the period's."""
    booked = [entry(10_00, True)]
    over = account_lines("LV1", "EUR", 0, booked, 10_00, None, DAY)
    running = account_lines("LV2", "EUR", 0, booked, 10_00, None, DAY, over=False)
    assert is_final(render(over))
    assert not is_final(render(running))
    assert not is_final(render(over + running))
