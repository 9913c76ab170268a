"""Statements of a day whose turnover is beyond what 64 bits or ISO's 18 digits hold, while
each balance and entry fits a statement (funding is bounded so): the day is still stated,
valid and exact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree

from gateway import funding
from gateway.outbound import reports
from ledger.core import Transfer, TransferKind
from tests.integration.test_statements import (
    CAMT052,
    Validate,
    close_day,
    read_camt,
    riga,
    statements_of,
)
from tests.pipeline_fixtures import A_MAIN, B_MAIN, CLIENT_A, TODAY, Installation

# Each way this many times: the credits to A_MAIN add up past 2**63 minor units.
ROUND_TRIPS = 11
AMOUNT = 9 * 10**17  # minor units: 9,000,000,000,000,000.00 EUR


def _digits_fit(path: Path) -> bool:
    """Every amount in the file within ISO's 18 digits (libxml2's XSD check of totalDigits
    lets some longer ones through, so it is counted here as well)."""
    amounts = etree.parse(str(path)).xpath("//*[local-name()='Amt' or local-name()='Sum']")
    return all(len(a.text.replace(".", "")) <= 18 for a in amounts) and len(amounts) > 0


def _move(inst: Installation, debit: str, credit: str, n: int) -> None:
    request = Transfer.between(
        idempotency_key=f"extreme-{debit}-{n}", reference=f"EXTREME{n:04d}{debit == A_MAIN:d}",
        kind=TransferKind.INTERNAL, debit_iban=debit, credit_iban=credit, currency="EUR",
        amount_minor=AMOUNT, booking_date=TODAY, value_date=TODAY,
    )  # fmt: skip
    _, refusal = inst.env.ledger.transfer(request, riga(TODAY, "11:00"))
    assert refusal is None, refusal


def test_a_day_turning_over_more_than_64_bits_is_stated_exactly(
    tmp_path: Path, database_url: str, assert_valid: Validate
) -> None:
    """The day's totals were SQL sums, which SQLite refuses past 64 bits ("integer
    overflow"): end of day failed for that account for good, and each later day was refused
    as following an unstated one. Now the entries are stated, valid against the XSD, the
    balances chain, and the optional TxsSummry, whose sums ISO cannot hold, is left out."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        inst.clock.set(riga(TODAY, "10:00"))
        funding.fund(inst.env, A_MAIN, "9000000000000000.00", key="extreme")
        for n in range(ROUND_TRIPS):
            _move(inst, A_MAIN, B_MAIN, n)
            _move(inst, B_MAIN, A_MAIN, n)
        inst.clock.set(riga(TODAY, "12:00"))
        intraday = read_camt(inst.outbox(CLIENT_A) / reports.intraday_report(inst.env, A_MAIN))
        assert_valid(intraday.path, CAMT052)
        assert intraday.summary_count is None and _digits_fit(intraday.path)
        assert intraday.balances["ITBD"][0] == inst.balance(A_MAIN)
        results = close_day(inst, TODAY)
        assert all(r.written for r in results)
        found = statements_of(inst, CLIENT_A, assert_valid)
        day = found[(A_MAIN, TODAY)]
        assert day.summary_count is None and _digits_fit(day.path)  # no TxsSummry
        assert len(day.entries) == 2 * ROUND_TRIPS + 2  # the template's funding, ours, the trips
        assert day.closing == day.opening + day.net == inst.balance(A_MAIN)
        quiet = close_day(inst, TODAY + dt.timedelta(days=1))
        assert all(r.written for r in quiet)
        assert statements_of(inst, CLIENT_A, assert_valid)[
            (A_MAIN, TODAY + dt.timedelta(days=1))
        ].opening == day.closing
        inst.env.ledger.check_invariants()  # the day's debits kept as far as limits tell
    finally:
        inst.close()
