"""A payer is told nothing of the currency of the treasury account it pays into (a client
sees nothing that is not its own; SPEC §13: the answer of a converted payment states the
rate, its date and the amount debited).

A reviewer: client B paying 10.00 EUR into client A's USD account was told, in its own
pain.002, "1 EUR = 1.0552 USD, ECB rate of 2024-11-18: 10.55 USD credited, 10.00 EUR
debited" — and, with no rate stored yet, "no EUR/USD rate for 2024-11-18 …": A's account
currency and what reached it. The payer's answer speaks of the payer's side only; a
conversion on the credit side shows on the creditor account's own statement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import db, fx
from gateway.inbound.findings import Finding
from gateway.reasons import Reason
from tests.integration.test_fx_pipeline import DAY, KNOWN_DAY, NOW, batch, create, import_rates
from tests.pipeline_fixtures import A_USD, B_MAIN, CLIENT_B, RIGA, Installation


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Installation]:
    inst = Installation.create(tmp_path / "gw", now=NOW)
    yield inst
    inst.close()


def _said(inst: Installation, msg_id: str, e2e: str) -> tuple[str, str]:
    data = batch(debtor=B_MAIN, msg_id=msg_id).tx(e2e, "10.00", A_USD).build()
    answer = inst.submit(data, name=f"{msg_id}.xml", client=CLIENT_B)
    return answer.statuses()[e2e], " ".join(answer.tx(e2e).additional_info)


WAITS = (
    f"no credit-side rate for {KNOWN_DAY}: executes once it is stored, rejected if none by "
    "the end of 2024-11-20"
)


def test_a_payment_waiting_for_the_credit_sides_rate_names_no_currency_of_it(
    tmp_path: Path, database_url: str
) -> None:
    """Told, kept and run again as it is: the first wording (130 characters) did not fit
    `gw_payments.additional_info` (105): PostgreSQL cut it at the insert and refused the
    due run's update of the row, which then failed on every pass (a review of the fix)."""
    inst = create(tmp_path, database_url)
    try:
        status, info = _said(inst, "CS-1", "CS-WAIT")
        assert (status, info) == ("PDNG", WAITS)
        with inst.env.engine.connect() as conn:
            kept = conn.execute(sa.select(db.payments.c.additional_info)).scalar_one()
        assert kept == WAITS
        inst.clock.set(dt.datetime(2024, 11, 19, 11, 0, tzinfo=RIGA))
        inst.run()  # still waiting for the same: nothing new to say, and the run goes through
        assert inst.new_answers(CLIENT_B) == []
    finally:
        inst.close()


def test_a_payment_converted_on_the_credit_side_is_answered_without_its_rate(
    inst: Installation,
) -> None:
    import_rates(inst, KNOWN_DAY - dt.timedelta(days=7), KNOWN_DAY)
    before = inst.balance(A_USD)
    status, info = _said(inst, "CS-2", "CS-DONE")
    assert status == "ACSC"
    assert info == "", info
    assert inst.balance(A_USD) > before  # converted into A's USD account all the same


def test_a_credit_side_conversion_that_cannot_be_made_names_no_currency_of_it() -> None:
    """AM12 of the credit side (the amount does not fit, or rounds to nothing there) is
    told in the same words, the creditor's currency left out."""
    for found in (fx.Overflow("EUR", "USD", 1000), fx.BelowMinorUnit("EUR", "JPY", 1)):
        told = fx.creditor_side(found)
        assert "USD" not in told.text and "JPY" not in told.text, told.text
        assert "the credit side's currency" in told.text
    missing = fx.creditor_side(fx.NoRate("EUR/USD", DAY))
    assert "USD" not in missing.text


def test_the_credit_sides_texts_fit_where_they_are_kept_and_shown() -> None:
    """The wait's `AddtlInf` fits its column whatever `fx_wait_days`; the NARR after it is
    not cut (`Finding.short`): it keeps the day the payment waited from."""
    column = db.payments.c.additional_info.type.length
    missing = fx.creditor_side(fx.NoRate("EUR/USD", KNOWN_DAY))
    for wait_days in (1, 2, 5, 20):
        assert len(fx.waiting_text(missing, DAY, wait_days)) <= column
    narr = Finding(Reason.NARR, f"{missing.text}: none came within 2 business day(s) of {DAY}")
    assert narr.short() == narr.info and len(narr.info) <= column
