"""Announcing large-payment days (SPEC §14): `ekase-gateway announce` as staff type it,
and the payments the gateway already knew by the deadline, read from a real run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import structlog

from gateway import announcements, cli
from ledger import calendar
from tests.pipeline_fixtures import (
    A_MAIN,
    A_USD,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    RIGA,
    TREL_MISSING,
    Batch,
    Installation,
    write_config,
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    finally:
        structlog.reset_defaults()  # `main` pointed it at this test's captured stdout
    out, err = capsys.readouterr()
    return code, out, err


def _future_business_day(weekday_wanted: bool = True) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=10)
    while calendar.is_business_day(day) is not weekday_wanted:
        day += dt.timedelta(days=1)
    return day


def test_announce_records_and_a_later_one_replaces_it(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Staff record a phoned announcement; a second one for the same client and day
    replaces the first; another client's day is its own."""
    config = str(write_config(tmp_path, database_url=database_url))
    day = _future_business_day()
    base = ["announce", "-c", config, "--date", day.isoformat()]
    code, out, err = run(capsys, *base, "--client", CLIENT_A, "--amount", "1000000")
    assert (code, out) == (0, f"{CLIENT_A} {day}: 1000000.00 EUR announced\n"), err
    code, out, err = run(capsys, *base, "--client", CLIENT_A, "--amount", "2500000.50")
    assert (code, out) == (
        0, f"{CLIENT_A} {day}: 2500000.50 EUR announced (replaces 1000000.00 EUR)\n"
    ), err  # fmt: skip
    code, out, err = run(capsys, *base, "--client", CLIENT_B, "--amount", "10")
    assert code == 0, err
    from gateway.settings import load
    from ledger.engine import make_engine

    engine = make_engine(load(config).database_url)
    with engine.connect() as conn:
        assert announcements.manual_minor(conn, CLIENT_A, day) == 250_000_050
        assert announcements.manual_minor(conn, CLIENT_B, day) == 1000
        assert announcements.manual_minor(conn, CLIENT_A, day + dt.timedelta(days=1)) is None
    engine.dispose()


@pytest.mark.parametrize(
    ("client", "date", "amount", "words"),
    [
        ("nobody", None, "10", "--client nobody: no such client"),
        (CLIENT_A, "2020-01-06", "10", "--date 2020-01-06 is in the past"),
        (CLIENT_A, "weekend", "10", "is not a business day"),
        # A day no payment can execute on (requested beyond max_future_days, 90 here, it
        # is CH03): a typo stored as an announcement (an outside tester's 2099-01-05 was).
        (CLIENT_A, "2099-01-05", "10", "the last day a payment may execute (max_future_days: 90)"),
        (CLIENT_A, None, "-5", "--amount -5: amount must not be negative"),
        (CLIENT_A, None, "10.001", "more than 2 decimals"),
        (CLIENT_A, None, "ten", "not a number"),
        (CLIENT_A, "25.11.2027", "10", "expected YYYY-MM-DD"),
    ],
)
def test_a_bad_announcement_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], client: str, date: str | None,
    amount: str, words: str,
) -> None:
    config = str(write_config(tmp_path))
    if date is None:
        date = _future_business_day().isoformat()
    elif date == "weekend":
        date = _future_business_day(weekday_wanted=False).isoformat()
    code, out, err = run(
        capsys, "announce", "-c", config, "--client", client, "--date", date, "--amount", amount
    )
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err


def test_the_last_day_a_payment_may_execute_on_can_be_announced_and_no_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A payment requested `max_future_days` (90) ahead on a weekend or holiday executes
    on the next business day: that day can be announced (a review found it refused), the
    business day after it cannot."""
    config = str(write_config(tmp_path))
    latest = calendar.business_day_on_or_after(dt.date.today() + dt.timedelta(days=90))
    after = calendar.next_business_day(latest)
    for day, accepted in ((latest, True), (after, False)):
        code, _, err = run(capsys, "announce", "-c", config, "--client", CLIENT_A,
                           "--date", day.isoformat(), "--amount", "10")  # fmt: skip
        assert (code == 0) is accepted, (day, err)
    assert f"is after {latest}, the last day a payment may execute" in err, err


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (dt.datetime(2026, 12, 10, 12, 30), True),  # Thursday at the deadline for Friday
        (dt.datetime(2026, 12, 10, 12, 31), False),
        (dt.datetime(2026, 12, 11, 9, 0), False),  # the day itself
    ],
)
def test_an_announcement_after_the_deadline_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    now: dt.datetime, accepted: bool,
) -> None:
    """SPEC §14: a large-payment day must be announced by 12:30 on the business day before
    it; one recorded later would count as if made in time (it was accepted, even on the
    day itself, and replaced one made in time)."""
    from gateway.clock import SystemClock

    at = now.replace(tzinfo=RIGA).astimezone(dt.UTC)
    monkeypatch.setattr(SystemClock, "now", lambda self: at)
    config = str(write_config(tmp_path))
    code, out, err = run(capsys, "announce", "-c", config, "--client", CLIENT_A,
                         "--date", "2026-12-11", "--amount", "500000")  # fmt: skip
    if accepted:
        assert (code, out) == (0, f"{CLIENT_A} 2026-12-11: 500000.00 EUR announced\n"), err
    else:
        assert code == 2 and out == "" and err == (
            "ekase-gateway: --date 2026-12-11: too late, announcements for it were due by "
            "12:30 on "
            "2026-12-10\n"
        ), err


def test_payments_known_by_the_deadline_are_announced_automatically(tmp_path: Path) -> None:
    """A EUR payment for Friday sent on Wednesday is known by Thursday 12:30 and counts
    as announced; one sent Thursday afternoon, a USD one and a rejected one do not; a
    recorded announcement adds to what was known."""
    friday = dt.date(2026, 11, 27)
    inst = Installation.create(tmp_path)  # Wednesday 25 November 2026, 10:00 in Riga
    try:
        early = Batch(execution_date=friday.isoformat()).tx("BIG", "500000.00", EXTERNAL)
        early.tx("NOWHERE", "7.00", TREL_MISSING)  # AC01: rejected, never executes
        answer = inst.submit(early.build())
        assert answer.statuses() == {"BIG": "PDNG", "NOWHERE": "RJCT"}
        usd = Batch(debtor=A_USD, execution_date=friday.isoformat())
        inst.submit(usd.tx("DOLLARS", "900000.00", EXTERNAL, currency="USD").build())
        inst.clock.set(dt.datetime(2026, 11, 26, 13, 0, tzinfo=RIGA).astimezone(dt.UTC))
        late = Batch(debtor=A_MAIN, execution_date=friday.isoformat())
        assert inst.submit(late.tx("LATE", "100.00", EXTERNAL).build()).statuses() == {
            "LATE": "PDNG"
        }
        assert _announced(inst, CLIENT_A, friday) == 50_000_000
        assert _announced(inst, CLIENT_B, friday) == 0
        announcements.record(inst.env.engine, CLIENT_A, friday, 20_000_000, inst.clock.now())
        assert _announced(inst, CLIENT_A, friday) == 70_000_000
    finally:
        inst.close()


def test_a_file_arriving_exactly_at_the_deadline_is_known_in_time(tmp_path: Path) -> None:
    """Thursday 12:30:00 is still in time for Friday; a second later is not."""
    friday = dt.date(2026, 11, 27)
    deadline = dt.datetime(2026, 11, 26, 12, 30, tzinfo=RIGA).astimezone(dt.UTC)
    inst = Installation.create(tmp_path, now=deadline)
    try:
        on_time = Batch(execution_date=friday.isoformat()).tx("ON-TIME", "300000.00", EXTERNAL)
        assert inst.submit(on_time.build()).statuses() == {"ON-TIME": "PDNG"}
        inst.clock.set(deadline + dt.timedelta(seconds=1))
        late = Batch(execution_date=friday.isoformat()).tx("LATE", "200000.00", EXTERNAL)
        assert inst.submit(late.build()).statuses() == {"LATE": "PDNG"}
        assert _announced(inst, CLIENT_A, friday) == 30_000_000
    finally:
        inst.close()


def _announced(inst: Installation, client_id: str, day: dt.date) -> int:
    """What the gate of `client_id` on `day` counts as announced."""
    settings = inst.env.settings
    with inst.env.engine.connect() as conn:
        gate = announcements.gate(
            conn, client_id, day, threshold_minor=settings.large_day_threshold_minor,
            announce_by=settings.large_day_announce_by, timezone=settings.timezone,
        )  # fmt: skip
    return gate.state.announced_minor
