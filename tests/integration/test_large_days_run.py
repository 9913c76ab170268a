"""Large-payment days through the real pipeline (SPEC §14), on SQLite and PostgreSQL:
payments known by 12:30 of the previous business day count as announced (across a
weekend: the Friday before), staff's `announce` adds to them, exactly at the limit
executes and one cent above waits with the PDNG text, every later EUR payment of the
client that day waits too, other currencies are exempt, and the held payments run on
the next business day (across Latvia's Proclamation Day, 18 November) without being
held again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway import announcements
from gateway.funding import fund
from gateway.rates import store
from tests.pipeline_fixtures import (
    A_MAIN,
    A_USD,
    CLIENT_A,
    RIGA,
    Batch,
    Installation,
)
from tests.rates_fixtures import some_days

FRIDAY = dt.date(2026, 11, 13)
MONDAY = dt.date(2026, 11, 16)
TUESDAY = dt.date(2026, 11, 17)
THURSDAY = dt.date(2026, 11, 19)  # Wednesday the 18th is a Latvian public holiday


def at(day: dt.date, clock: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), RIGA)


def create(tmp_path: Path, database_url: str, now: dt.datetime) -> Installation:
    inst = Installation.create(tmp_path / "gw", now=now, database_url=database_url)
    fund(inst.env, A_MAIN, "3000000.00", key="large-days")
    return inst


def on(day: dt.date, **kw: Any) -> Batch:
    return Batch(execution_date=day.isoformat(), **kw)


def test_known_payments_announce_the_day_exactly_at_the_limit_executes(
    tmp_path: Path, database_url: str
) -> None:
    inst = create(tmp_path, database_url, at(FRIDAY, "11:00"))
    try:
        # Sent Friday morning for Monday: known by Friday 12:30, so announced.
        early = on(MONDAY, msg_id="LD-EARLY").tx("EARLY", "400000.00").build()
        assert inst.submit(early, name="early.xml").statuses() == {"EARLY": "PDNG"}
        # Sent Friday afternoon for Monday: known too late, it announces nothing.
        late = on(MONDAY, msg_id="LD-LATE").tx("LATE", "1.00").build()
        inst.clock.set(at(FRIDAY, "12:31"))
        assert inst.submit(late, name="late.xml").statuses() == {"LATE": "PDNG"}

        inst.clock.set(at(MONDAY, "09:00"))
        inst.run()  # the pending payments of Monday: 400,001.00 EUR executed
        assert {s for a in inst.new_answers() for s in a.statuses().values()} == {"ACSC"}
        balance = inst.balance(A_MAIN)
        # 400,001.00 + 699,999.00 = 700,000.00 + 400,000.00 announced: exactly the limit.
        data = (
            on(MONDAY, msg_id="LD-MON")
            .tx("AT-LIMIT", "699999.00")
            .tx("CENT-ABOVE", "0.01")
            .tx("SMALL-AFTER", "5.00")
            .build()
        )
        answer = inst.submit(data, name="monday.xml")
        held = f"large-payment day not announced by 12:30 on {FRIDAY}; executes {TUESDAY}"
        assert answer.statuses() == {
            "AT-LIMIT": "ACSC",
            "CENT-ABOVE": "PDNG",
            "SMALL-AFTER": "PDNG",
        }
        assert answer.tx("CENT-ABOVE").additional_info == [held]
        assert answer.tx("SMALL-AFTER").additional_info == [held]
        assert inst.balance(A_MAIN) == balance - 69_999_900
        # The day is tripped for the client: a later EUR file waits too, dollars do not.
        more = on(MONDAY, msg_id="LD-MORE").tx("LATER-EUR", "1.00").build()
        assert inst.submit(more, name="more.xml").statuses() == {"LATER-EUR": "PDNG"}
        usd = on(MONDAY, msg_id="LD-USD", debtor=A_USD).tx("DOLLARS", "5.00", currency="USD")
        assert inst.submit(usd.build(), name="usd.xml").statuses() == {"DOLLARS": "ACSC"}

        # Tuesday: the held payments run first thing, not held again.
        before = inst.balance(A_MAIN)
        inst.clock.set(at(TUESDAY, "09:00"))
        inst.run()
        statuses = {k: v for a in inst.new_answers() for k, v in a.statuses().items()}
        assert statuses == {"CENT-ABOVE": "ACSC", "SMALL-AFTER": "ACSC", "LATER-EUR": "ACSC"}
        assert before - inst.balance(A_MAIN) == 1 + 500 + 100
    finally:
        inst.close()


def test_held_payments_are_not_held_again_and_cross_the_holiday(
    tmp_path: Path, database_url: str
) -> None:
    """Tuesday 14:00: 700,000.01 EUR with nothing announced waits until Thursday (the
    18th is a holiday). It arrived after Tuesday 12:30, so it announces nothing for
    Thursday either, yet on Thursday it executes: a held payment is not held again.
    Then staff record 500,000.00 for Thursday (`announce`): 499,999.99 more fits
    exactly, one cent more waits for Friday."""
    inst = create(tmp_path, database_url, at(TUESDAY, "14:00"))
    try:
        answer = inst.submit(on(TUESDAY, msg_id="LD-T").tx("BIG", "700000.01").build())
        assert answer.statuses() == {"BIG": "PDNG"}
        assert answer.tx("BIG").additional_info == [
            f"large-payment day not announced by 12:30 on {MONDAY}; executes {THURSDAY}"
        ]
        before = inst.balance(A_MAIN)
        inst.clock.set(at(THURSDAY, "09:00"))
        inst.run()
        [follow_up] = inst.new_answers()
        assert follow_up.statuses() == {"BIG": "ACSC"}
        assert before - inst.balance(A_MAIN) == 70_000_001
        announcements.record(inst.env.engine, CLIENT_A, THURSDAY, 50_000_000, inst.clock.now())
        data = on(THURSDAY, msg_id="LD-TH").tx("FITS", "499999.99").tx("OVER", "0.01").build()
        answer = inst.submit(data, name="thursday.xml")
        assert answer.statuses() == {"FITS": "ACSC", "OVER": "PDNG"}
        assert answer.tx("OVER").additional_info == [
            f"large-payment day not announced by 12:30 on {TUESDAY}; executes 2026-11-20"
        ]
    finally:
        inst.close()


def test_a_pending_payment_held_on_its_day_is_reported_with_the_new_date(
    tmp_path: Path, database_url: str
) -> None:
    """Sent Monday 14:00 for Tuesday, after Monday's 12:30 deadline: 700,000.01 EUR is
    PDNG for its date; on Tuesday morning the large-payment-day rule holds it, and a
    further pain.002 says so and that it executes on Thursday (after the holiday)."""
    inst = create(tmp_path, database_url, at(MONDAY, "14:00"))
    try:
        answer = inst.submit(on(TUESDAY, msg_id="LD-P").tx("LATE-BIG", "700000.01").build())
        assert answer.statuses() == {"LATE-BIG": "PDNG"}
        balance = inst.balance(A_MAIN)
        inst.clock.set(at(TUESDAY, "08:00"))
        inst.run()
        [held] = inst.new_answers()
        assert held.statuses() == {"LATE-BIG": "PDNG"}
        assert held.tx("LATE-BIG").additional_info == [
            f"large-payment day not announced by 12:30 on {MONDAY}; executes {THURSDAY}"
        ]
        inst.clock.set(at(TUESDAY, "11:00"))
        inst.run()
        assert inst.new_answers() == []  # nothing new until Thursday
        inst.clock.set(at(THURSDAY, "08:00"))
        inst.run()
        [done] = inst.new_answers()
        assert done.statuses() == {"LATE-BIG": "ACSC"}
        assert balance - inst.balance(A_MAIN) == 70_000_001
    finally:
        inst.close()


def test_a_payment_executed_after_its_day_counts_on_the_day_it_executed(
    tmp_path: Path, database_url: str
) -> None:
    """An EUR payment from a USD account sent on Tuesday 19 November 2024 at 13:00 waits
    for the EUR/USD rate; the rates come on Wednesday and it executes then: its 600,000.00
    EUR count on Wednesday, the day it executed. So a payment of 200,000.00 sent for
    Wednesday passes the limit, and neither was known by Tuesday 12:30: it waits. (The late
    one counted on Tuesday, its due day, and both executed: 800,000.00 EUR on one day.)"""
    tuesday, wednesday = dt.date(2024, 11, 19), dt.date(2024, 11, 20)
    inst = Installation.create(tmp_path / "gw", now=at(tuesday, "13:00"),
                               database_url=database_url)  # fmt: skip
    try:
        fund(inst.env, A_USD, "1000000.00", key="large-days-usd")
        fund(inst.env, A_MAIN, "1000000.00", key="large-days-eur")
        late = on(tuesday, msg_id="LD-FX", debtor=A_USD).tx("LATE", "600000.00").build()
        assert inst.submit(late, name="late.xml").statuses() == {"LATE": "PDNG"}
        inst.clock.set(at(wednesday, "09:00"))
        days = {
            day: {code: Decimal(rate) for code, rate in rates.items()}
            for day, rates in some_days(dt.date(2024, 11, 18), tuesday).items()
        }
        imported = store.store(inst.env.engine, days, source="ecb", form="test",
                               now=inst.clock.now())  # fmt: skip
        assert isinstance(imported, store.Imported), imported
        inst.run()
        assert [a.statuses() for a in inst.new_answers()] == [{"LATE": "ACSC"}]
        data = on(wednesday, msg_id="LD-WED").tx("ON-TIME", "200000.00").build()
        answer = inst.submit(data, name="wednesday.xml")
        assert answer.statuses() == {"ON-TIME": "PDNG"}
        assert answer.tx("ON-TIME").additional_info == [
            f"large-payment day not announced by 12:30 on {tuesday}; executes 2024-11-21"
        ]
        with inst.env.engine.begin() as conn:
            announcements.check_days(conn)
    finally:
        inst.close()
