"""A day's bookings and its statements take turns (`gateway.booking_days`, SPEC §8): a
statement of a day waits for a booking of that day still being written, and a booking
that comes after the day is stated is refused — on SQLite and PostgreSQL. A tester found
80,000 postings of a day in no camt.053 (PostgreSQL: end of day read the day while a big
file's booking of it was committing), and every later end of day failing on it."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import db
from gateway.outbound import statements
from ledger.core import Posting, Transfer, TransferKind
from ledger.tx import BalanceConflict
from tests.pipeline_fixtures import A_MAIN, B_MAIN, RIGA, TODAY, Installation


def _transfer(key: str, day: dt.date, minor: int) -> Transfer:
    legs = (Posting(A_MAIN, -minor, "EUR"), Posting(B_MAIN, minor, "EUR"))
    return Transfer(key, key, TransferKind.INTERNAL, legs, day, day)


def _closing(inst: Installation, iban: str, day: dt.date) -> tuple[int, int]:
    """The (opening, closing) of `iban`'s camt.053 of `day`, as stated."""
    s = db.statements.c
    with inst.env.engine.connect() as conn:
        return tuple(conn.execute(
            select(s.opening_minor, s.closing_minor).where(
                s.iban == iban, s.business_date == day, s.message == statements.STATEMENT
            )
        ).one())  # type: ignore[return-value]


def _balance(inst: Installation, iban: str) -> int:
    with inst.env.ledger.begin() as tx:
        return tx.accounts([iban])[iban].balance_minor


def test_a_statement_waits_for_a_booking_of_its_day_in_flight(
    tmp_path: Path, database_url: str
) -> None:
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        inst.clock.set(dt.datetime.combine(TODAY, dt.time(18, 45), RIGA).astimezone(dt.UTC))
        booked, release = threading.Event(), threading.Event()

        def book() -> None:
            with inst.env.ledger.begin() as tx:
                accounts = tx.accounts([A_MAIN, B_MAIN])
                tx.post([_transfer("LATE-1", TODAY, 12_345)], accounts, inst.clock.now())
                booked.set()
                release.wait(30)

        booking = threading.Thread(target=book)
        booking.start()
        assert booked.wait(30)
        stating = threading.Thread(target=statements.write_statements, args=(inst.env, TODAY))
        stating.start()
        stating.join(1.0)  # it waits for the booking (PostgreSQL: the day's lock;
        release.set()  # SQLite: the one writer), which commits now
        booking.join(30)
        stating.join(60)
        # the booking is on the day's statement: it closes at the balance after it
        assert _closing(inst, B_MAIN, TODAY)[1] == _balance(inst, B_MAIN)
        assert _closing(inst, A_MAIN, TODAY)[1] == _balance(inst, A_MAIN)
    finally:
        inst.close()


def test_a_booking_on_a_stated_day_is_refused(tmp_path: Path, database_url: str) -> None:
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        inst.clock.set(dt.datetime.combine(TODAY, dt.time(18, 45), RIGA).astimezone(dt.UTC))
        assert any(r.written for r in statements.write_statements(inst.env, TODAY))
        with pytest.raises(BalanceConflict, match="stated already"), inst.env.ledger.begin() as tx:
            accounts = tx.accounts([A_MAIN, B_MAIN])
            tx.post([_transfer("AFTER-1", TODAY, 100)], accounts, inst.clock.now())
        tomorrow = TODAY + dt.timedelta(days=1)
        with inst.env.ledger.begin() as tx:  # the next day books
            accounts = tx.accounts([A_MAIN, B_MAIN])
            tx.post([_transfer("AFTER-2", tomorrow, 100)], accounts, inst.clock.now())
    finally:
        inst.close()
