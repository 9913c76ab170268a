"""Large-payment days (SPEC §14): which EUR payments of a client wait for the next
business day, and what the client is told."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import large_days
from gateway.large_days import DayPayment, DayState

RIGA = ZoneInfo("Europe/Riga")
NOON_THIRTY = dt.time(12, 30)
THRESHOLD = 70_000_000  # 700,000.00 EUR
THURSDAY = dt.date(2027, 11, 25)  # the SPEC's example day


def state(day: dt.date = THURSDAY, announced: int = 0, **kw: object) -> DayState:
    return DayState(day, THRESHOLD, announced, **kw)  # type: ignore[arg-type]


def eur(ref: str, major: int, cents: int = 0, **kw: object) -> DayPayment:
    return DayPayment(ref, "EUR", major * 100 + cents, **kw)  # type: ignore[arg-type]


def held(decision: large_days.Decision) -> list[object]:
    return [h.ref for h in decision.held]


def test_exactly_at_the_threshold_executes_one_cent_above_waits() -> None:
    """700,000.00 EUR on one day is allowed unannounced; 700,000.01 is not."""
    assert held(large_days.decide(state(), [eur("a", 700_000)], NOON_THIRTY)) == []
    assert held(large_days.decide(state(), [eur("a", 700_000, 1)], NOON_THIRTY)) == ["a"]
    split = [eur("a", 400_000), eur("b", 300_000), eur("c", 0, 1)]
    assert held(large_days.decide(state(), split, NOON_THIRTY)) == ["c"]


def test_the_first_payment_over_and_every_later_eur_one_wait() -> None:
    """Once the day goes over, every later EUR payment of the client waits, even a
    small one that would still fit; other currencies are exempt."""
    payments = [
        eur("rent", 500_000),
        eur("big", 300_000),  # 800,000 > 700,000: waits
        DayPayment("usd", "USD", 90_000_000),  # exempt
        eur("small", 10),  # would fit, but the day is over: waits
    ]
    decision = large_days.decide(state(), payments, NOON_THIRTY)
    assert held(decision) == ["big", "small"]
    assert {h.text for h in decision.held} == {
        "large-payment day not announced by 12:30 on 2027-11-24; executes 2027-11-26"
    }
    assert {h.executes_on for h in decision.held} == {dt.date(2027, 11, 26)}
    assert decision.after.executed_minor == 50_000_000 and decision.after.tripped


def test_an_announced_amount_raises_the_limit() -> None:
    """Announced 1,000,000: the day may reach 1,700,000.00 EUR and not a cent more."""
    payments = [eur("a", 1_000_000), eur("b", 700_000), eur("c", 0, 1)]
    decision = large_days.decide(state(announced=100_000_000), payments, NOON_THIRTY)
    assert held(decision) == ["c"]


def test_a_later_run_the_same_day_continues_where_the_first_stopped() -> None:
    """Files arrive through the day: the state handed on carries the day's total, and
    once a payment waited every later EUR payment waits too."""
    first = large_days.decide(state(), [eur("a", 600_000)], NOON_THIRTY)
    second = large_days.decide(first.after, [eur("b", 100_000)], NOON_THIRTY)
    assert held(second) == []
    third = large_days.decide(second.after, [eur("c", 0, 1)], NOON_THIRTY)
    assert held(third) == ["c"]
    fourth = large_days.decide(third.after, [eur("d", 0, 1)], NOON_THIRTY)
    assert held(fourth) == ["d"]


def test_a_carried_over_payment_is_not_held_again_but_counts() -> None:
    """A payment moved here by this rule runs without being held again; it still counts
    towards the day, so new payments wait sooner."""
    payments = [eur("moved", 900_000, carried_over=True), eur("new", 1)]
    decision = large_days.decide(state(), payments, NOON_THIRTY)
    assert held(decision) == ["new"]
    after_trip = large_days.decide(
        state(tripped=True), [eur("moved", 5, carried_over=True)], NOON_THIRTY
    )
    assert held(after_trip) == []


def test_across_a_latvian_holiday_and_a_weekend() -> None:
    """Friday 19 November 2027 follows Proclamation Day (18th): it must have been
    announced by 12:30 on Wednesday 17th, and a held payment runs on Monday 22nd."""
    friday = dt.date(2027, 11, 19)
    decision = large_days.decide(state(friday), [eur("a", 700_001)], NOON_THIRTY)
    (only,) = decision.held
    assert only.text == (
        "large-payment day not announced by 12:30 on 2027-11-17; executes 2027-11-22"
    )
    assert only.executes_on == dt.date(2027, 11, 22)
    assert large_days.deadline(friday, NOON_THIRTY, RIGA) == dt.datetime(
        2027, 11, 17, 12, 30, tzinfo=RIGA
    )
    # Monday's payments: announced by Friday; Wednesday's held ones run on Friday.
    assert large_days.deadline(dt.date(2027, 11, 22), NOON_THIRTY, RIGA).date() == friday
    wednesday = large_days.decide(state(dt.date(2027, 11, 17)), [eur("b", 800_000)], NOON_THIRTY)
    assert wednesday.held[0].executes_on == friday


def test_what_staff_recorded_adds_to_the_payments_known() -> None:
    """The automatic announcement (payments known by the deadline, summed in the
    database) plus what staff recorded; nothing recorded adds nothing."""
    assert large_days.announced_minor(80_000_000, None) == 80_000_000
    assert large_days.announced_minor(80_000_000, 25_000_000) == 105_000_000


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["EUR", "EUR", "USD"]), st.integers(1, 40_000_000)),
        max_size=30,
    ),
    st.integers(0, 30),
    st.integers(0, 50_000_000),
)
def test_deciding_in_parts_is_deciding_at_once(
    raw: list[tuple[str, int]], cut: int, announced: int
) -> None:
    """However the day's payments are split over runs, the same ones wait; those that
    do not wait stay within the limit, and after the first held EUR payment no later
    EUR payment executes."""
    payments = [DayPayment(n, code, amount) for n, (code, amount) in enumerate(raw)]
    at_once = large_days.decide(state(announced=announced), payments, NOON_THIRTY)
    first = large_days.decide(state(announced=announced), payments[:cut], NOON_THIRTY)
    rest = large_days.decide(first.after, payments[cut:], NOON_THIRTY)
    assert at_once.held_refs == first.held_refs | rest.held_refs
    executed = [p for p in payments if p.ref not in at_once.held_refs and p.currency == "EUR"]
    assert sum(p.amount_minor for p in executed) <= THRESHOLD + announced
    assert at_once.after.executed_minor == sum(p.amount_minor for p in executed)
    held_positions = [i for i, p in enumerate(payments) if p.ref in at_once.held_refs]
    if held_positions:
        later = payments[held_positions[0] :]
        assert all(p.ref in at_once.held_refs for p in later if p.currency == "EUR")
    assert all(payments[i].currency == "EUR" for i in held_positions)


def test_what_a_files_payments_put_into_each_day() -> None:
    """EUR payments executed or still to execute count by due date; a rejected, a USD and
    an undated one do not; a held one counts and is counted as held."""
    monday, tuesday = dt.date(2027, 11, 22), dt.date(2027, 11, 23)
    days: dict[dt.date, list[int]] = {}
    large_days.add_file_days(
        days,
        [
            (monday, "EUR", "ACSC", 100, None),
            (monday, "EUR", "PDNG", 20, None),
            (monday, "EUR", "RJCT", 5_000, None),
            (monday, "USD", "ACSC", 7_000, None),
            (None, "EUR", "PDNG", 9_000, None),
            (tuesday, "EUR", "PDNG", 3, monday),
        ],
    )
    large_days.add_file_days(days, [(tuesday, "EUR", "ACSC", 4, None)])  # a later chunk
    assert days == {monday: [100, 120, 0], tuesday: [4, 7, 1]}
