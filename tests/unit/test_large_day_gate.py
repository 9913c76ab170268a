"""The run's large-payment-day gate (`large_days.Gate`): payment by payment it decides
exactly as `large_days.decide` does for the whole day at once, a refused payment (one
the run did not pass) does not count, and a carried-over payment is never held."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import large_days
from gateway.large_days import DayPayment, DayState, Gate

NOON_THIRTY = dt.time(12, 30)
THURSDAY = dt.date(2027, 11, 25)
THRESHOLD = 70_000_000


@settings(max_examples=300, deadline=None)
@given(
    announced=st.integers(0, 50_000_000),
    executed=st.integers(0, 80_000_000),
    tripped=st.booleans(),
    payments=st.lists(
        st.tuples(st.integers(1, 40_000_000), st.booleans()), min_size=1, max_size=12
    ),
)
def test_the_gate_agrees_with_the_whole_day_rule(
    announced: int, executed: int, tripped: bool, payments: list[tuple[int, bool]]
) -> None:
    state = DayState(THURSDAY, THRESHOLD, announced, executed, tripped)
    day = [DayPayment(n, "EUR", amount, carried) for n, (amount, carried) in enumerate(payments)]
    expected = large_days.decide(state, day, NOON_THIRTY)
    gate = Gate(state, NOON_THIRTY)
    held = []
    for payment in day:
        found = gate.judge(payment.ref, payment.amount_minor, payment.carried_over)
        if found is None:
            gate.passed(payment.amount_minor)
        else:
            held.append(found)
    assert tuple(held) == expected.held
    assert gate.state.executed_minor + gate.passed_minor == expected.after.executed_minor


def test_exactly_at_the_limit_passes_a_cent_more_is_held_and_trips_the_day() -> None:
    gate = Gate(DayState(THURSDAY, THRESHOLD, 10_000), NOON_THIRTY)
    assert gate.judge("a", 70_010_000, False) is None  # not passed: refused (AM04)
    assert gate.judge("b", 70_010_000, False) is None
    gate.passed(70_010_000)
    found = gate.judge("c", 1, False)
    assert found is not None and found.executes_on == dt.date(2027, 11, 26)
    assert (
        found.text == "large-payment day not announced by 12:30 on 2027-11-24; executes 2027-11-26"
    )
    assert gate.judge("d", 1, False) is not None  # tripped: every later EUR payment
    assert gate.judge("e", 90_000_000, True) is None  # held before: never again
