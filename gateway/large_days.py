"""Large-payment days (SPEC §14): the pure rule.

A client whose EUR-instructed payments executing on one business day would exceed
`large_day_threshold` must have announced them by `large_day_announce_by` on the
previous business day. Announced are (a) the payments the gateway knew by then for
that day — future-dated, pending, awaiting signatures (their file arrived by the
deadline: `deadline`; the database sums them, `announcements.gate`) — and (b)
what treasury staff recorded with `ekase-gateway announce`: the amount the client
announced beyond those (`announced_minor`).

In execution order, the first EUR payment that would take the day's total above the
threshold plus the announced amount waits, and so does every later EUR payment of
that client that day: each is moved to the next business day, with the `PDNG` text
"large-payment day not announced by 12:30 on 2027-11-24; executes 2027-11-26", and
is not held by this rule again there (it still counts towards that day's total).
A payment that brings the day exactly to the limit executes. Other currencies are
exempt. The check comes before the execution-time limits (AM14, AM04).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from gateway.statuses import TxStatus
from gateway.text import time_of_day
from ledger import calendar

CURRENCY = "EUR"  # only EUR-instructed payments count; the others are exempt


def deadline(day: dt.date, announce_by: dt.time, timezone: ZoneInfo) -> dt.datetime:
    """When payments executing on `day` must have been announced: `announce_by` on the
    business day before it, in the treasury's time zone."""
    before = calendar.previous_business_day(day)
    return dt.datetime.combine(before, announce_by, tzinfo=timezone)


HELD_PREFIX = "large-payment day not announced by "


def held_text(day: dt.date, announce_by: dt.time) -> str:
    """The `PDNG` text of a payment held on `day` (under 105 characters)."""
    return (
        f"{HELD_PREFIX}{time_of_day(announce_by)} on "
        f"{calendar.previous_business_day(day)}; executes {calendar.next_business_day(day)}"
    )


def announced_minor(automatic_minor: int, manual_minor: int | None) -> int:
    """What a client announced for a day: the payments known by the deadline plus what
    staff recorded from a call or an e-mail (which names the amount beyond those)."""
    return automatic_minor + (manual_minor or 0)


# What a payment's row says that matters here: due date, currency, status, amount (its
# instructed currency's minor units) and the day this rule held it (None: never).
PaymentDay = tuple[dt.date | None, str | None, str, int | None, dt.date | None]
_COUNTED = frozenset({TxStatus.ACSC.value, TxStatus.PDNG.value})


def add_file_days(days: dict[dt.date, list[int]], payments: Iterable[PaymentDay]) -> None:
    """THE rule of what a file's payments put into each day: the EUR-instructed ones that
    executed or are still to execute, by due date (a rejected or cancelled one puts
    nothing), as [executed, executed or still to execute, how many this rule held] (a
    held payment is due the business day after the one that held it). Added to `days`."""
    for due, code, status, amount, held_on in payments:
        if code != CURRENCY or status not in _COUNTED or due is None or amount is None:
            continue
        day = days.get(due)
        if day is None:
            day = days[due] = [0, 0, 0]
        if status == TxStatus.ACSC.value:
            day[0] += amount
        day[1] += amount
        if held_on is not None:
            day[2] += 1


@dataclass(frozen=True, slots=True)
class DayState:
    """A client's business day as far as this rule is concerned, before a decision."""

    day: dt.date
    threshold_minor: int
    announced_minor: int
    executed_minor: int = 0  # EUR of this client that has passed the rule for `day` so far
    tripped: bool = False  # a payment already waits: every later EUR one waits too

    @property
    def limit_minor(self) -> int:
        return self.threshold_minor + self.announced_minor


@dataclass(frozen=True, slots=True)
class DayPayment:
    """A payment of the client executing on the day, in execution order."""

    ref: Hashable  # the caller's handle for it (e.g. the gw_payments id)
    currency: str  # the instructed currency
    amount_minor: int
    carried_over: bool = False  # held by this rule before: never held again


@dataclass(frozen=True, slots=True)
class Held:
    ref: Hashable
    executes_on: dt.date
    text: str


@dataclass(frozen=True, slots=True)
class Decision:
    held: tuple[Held, ...]
    after: DayState  # to hand to the next decision for the same client and day

    @property
    def held_refs(self) -> frozenset[Hashable]:
        return frozenset(h.ref for h in self.held)


def decide(
    state: DayState, payments: Sequence[DayPayment], announce_by: dt.time
) -> Decision:
    """Which of `payments` (one client's, executing on `state.day`, in execution order)
    wait for the next business day, and the day's state after them: the `Gate`'s rule
    applied to each in turn."""
    gate = Gate(state, announce_by)
    held: list[Held] = []
    for payment in payments:
        if payment.currency != CURRENCY:
            continue
        verdict = gate.judge(payment.ref, payment.amount_minor, payment.carried_over)
        if verdict is None:
            gate.passed(payment.amount_minor)
        else:
            held.append(verdict)
    return Decision(tuple(held), gate.after)


@dataclass(slots=True)
class Gate:
    """A client's business day under this rule during one run: the state it started
    from, the EUR its payments have taken since, and the deadline's time of day. The
    common case — a payment within the limit of an untripped day — costs a comparison."""

    state: DayState
    announce_by: dt.time
    passed_minor: int = 0

    def judge(self, ref: Hashable, amount_minor: int, carried_over: bool) -> Held | None:
        """THE rule, for a EUR payment in execution order: it waits for the next business
        day (and the day is tripped: every later one waits too) when the day is already
        tripped or it would take the day's EUR over the threshold plus what was announced
        — unless this rule held it before. None: it may execute (`passed` when it did)."""
        state = self.state
        executed = state.executed_minor + self.passed_minor
        if carried_over or (not state.tripped and executed + amount_minor <= state.limit_minor):
            return None
        self.state = replace(state, executed_minor=executed, tripped=True)
        self.passed_minor = 0
        day = state.day
        return Held(ref, calendar.next_business_day(day), held_text(day, self.announce_by))

    @property
    def after(self) -> DayState:
        """The day's state after the payments judged so far."""
        return replace(self.state, executed_minor=self.state.executed_minor + self.passed_minor)

    def passed(self, amount_minor: int) -> None:
        self.passed_minor += amount_minor
