"""Which reason a client gets when one payment breaks several rules, and when it executes.

The ladder starts from a payment that is wrong in almost every way and repairs one
thing at a time; at every rung the reported code must be the next one in the
precedence order of `gateway.reasons.Reason` (SPEC §6), ending with a payment
that is booked. The execution-date tests pin the cut-offs (internal 18:00,
external 15:30, Riga time), weekends and Latvian holidays (18 November).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pytest

from gateway.inbound import rules
from gateway.inbound.execute import Due, execute
from gateway.inbound.pain001_v03 import ParsedPmtInf, ParsedTx
from gateway.reasons import PRECEDENCE, Reason
from gateway.samples import iban_lv
from ledger import currency
from ledger.core import Account, AccountKind

RIGA = ZoneInfo("Europe/Riga")
TODAY = dt.date(2026, 11, 25)  # a Wednesday
CUT_INTERNAL = dt.time(18, 0)
CUT_EXTERNAL = dt.time(15, 30)

DEBTOR = iban_lv("TREL", 9_100_000_000_001)
CREDITOR_TREL = iban_lv("TREL", 9_100_000_000_101)
EXTERNAL = iban_lv("HABA", 1_234_567)
CLEARING = iban_lv("TREL", 9_980_000_000_005)


def account(
    iban: str,
    *,
    owner: str = "iestade-a",
    status: str = "open",
    balance: int = 0,
    kind: AccountKind = AccountKind.CLIENT,
) -> Account:
    return Account(
        id=abs(hash(iban)) % 10_000,
        iban=iban,
        currency="EUR",
        owner=owner,
        kind=kind,
        status=status,
        overdraft_minor=200_00,
        max_payment_minor=1000_00,
        daily_limit_minor=1500_00,
        balance_minor=balance,
    )


@dataclass(frozen=True)
class World:
    """Everything one rung of the ladder varies: the payment and what the gateway knows."""

    debtor_owned: bool = False
    debtor_status: str = "closed"
    creditor_iban: str = CREDITOR_TREL
    creditor_status: str = "closed"
    creditor_bic: str = "HABAXX22"
    currency: str = "XAU"
    amount: str = "2000.001"
    requested: str = "2026-02-30"
    e2e: str = "E2E-1"
    e2e_seen_in_file: bool = True
    made_recently: bool = True
    debtor_bic: str | None = "TRELLV22"
    debtor_currency: str | None = None

    def tx(self) -> ParsedTx:
        return ParsedTx(
            seq=0,
            pmt_seq=0,
            instr_id=None,
            end_to_end_id=self.e2e,
            amount=self.amount,
            currency=self.currency,
            creditor_name="Saņēmējs",
            creditor_iban=self.creditor_iban,
            creditor_other_id=None,
            creditor_bic=self.creditor_bic,
            remittance=None,
        )

    def pmt(self) -> ParsedPmtInf:
        return ParsedPmtInf(
            seq=0,
            pmt_inf_id="P1",
            batch_booking=None,
            nb_of_txs="1",
            ctrl_sum=None,
            requested_date=self.requested,
            debtor_name="Iestāde",
            debtor_iban=DEBTOR,
            debtor_other_id=None,
            debtor_currency=self.debtor_currency,
            debtor_bic=self.debtor_bic,
        )

    def context(self) -> rules.Context:
        own = {DEBTOR: account(DEBTOR, status=self.debtor_status)} if self.debtor_owned else {}
        treasury = {
            CREDITOR_TREL: account(CREDITOR_TREL, owner="iestade-b", status=self.creditor_status)
        }
        recent: frozenset[str] = frozenset()
        if self.made_recently:
            try:
                minor = currency.to_minor(self.amount, self.currency)
            except currency.AmountError:
                minor = 0
            recent = frozenset(
                {rules.fingerprint(DEBTOR, self.creditor_iban, minor, self.currency, self.e2e)}
            )
        return rules.Context(
            client_accounts=own,
            treasury_accounts=treasury,
            today=TODAY,
            max_future_days=90,
            recent_fingerprints=recent,
        )

    def check(self) -> rules.Checked:
        seen = {self.e2e} if self.e2e_seen_in_file else set()
        return rules.check(self.tx(), self.pmt(), self.context(), seen)


# Each rung: the code expected now, and the one repair that leads to the next rung.
LADDER: list[tuple[Reason, Callable[[World], World]]] = [
    (Reason.AC02, lambda w: replace(w, debtor_owned=True)),
    (Reason.AC04, lambda w: replace(w, debtor_status="blocked")),  # debtor closed
    (Reason.AC04, lambda w: replace(w, creditor_status="blocked")),  # creditor closed
    # closed (AC04) outranks blocked (AC06), whichever side it is on
    (Reason.AC06, lambda w: replace(w, debtor_status="open")),  # debtor blocked
    (Reason.AC06, lambda w: replace(w, creditor_iban="LV00HABA0000001234567")),
    (Reason.AC01, lambda w: replace(w, creditor_iban=EXTERNAL)),  # bad check digits
    (Reason.RC01, lambda w: replace(w, creditor_bic="HABALV22")),
    (Reason.AM03, lambda w: replace(w, currency="EUR")),
    (Reason.AM12, lambda w: replace(w, amount="2000.00")),  # three decimals
    (Reason.AM02, lambda w: replace(w, amount="900.00")),  # above max_payment 1000.00
    (Reason.DT01, lambda w: replace(w, requested="2027-06-01")),  # 30 February
    (Reason.CH03, lambda w: replace(w, requested=TODAY.isoformat())),  # 188 days ahead
    (Reason.AM05, lambda w: replace(w, e2e_seen_in_file=False)),  # repeated in the file
    (Reason.AM05, lambda w: replace(w, made_recently=False)),  # same payment lately
]


def test_precedence_ladder() -> None:
    """A payment wrong in many ways is answered with the most important problem first,
    and repairing that one reveals the next, in the documented order, until it passes."""
    world = World()
    reported: list[Reason] = []
    for expected, repair in LADDER:
        checked = world.check()
        assert checked.finding is not None, f"expected {expected}, the payment passed"
        assert checked.finding.reason is expected, (expected, checked.finding)
        assert checked.finding.info, "every finding names what is wrong"
        reported.append(checked.finding.reason)
        world = repair(world)
    assert [PRECEDENCE[r] for r in reported] == sorted(PRECEDENCE[r] for r in reported)
    passed = world.check()
    assert passed.finding is None
    assert passed.amount_minor == 900_00
    assert passed.internal is False
    assert passed.requested_date == TODAY
    assert passed.fingerprint is not None


CLEAN = World(
    debtor_owned=True,
    debtor_status="open",
    creditor_iban=EXTERNAL,
    creditor_status="open",
    creditor_bic="HABALV22",
    currency="EUR",
    amount="900.00",
    requested=TODAY.isoformat(),
    e2e_seen_in_file=False,
    made_recently=False,
)
# Every way a payment or its context can differ from CLEAN, field by field.
VARIANTS: dict[str, list[object]] = {
    "debtor_owned": [False],
    "debtor_status": ["closed", "blocked"],
    "creditor_iban": [CREDITOR_TREL, "LV00HABA0000001234567", iban_lv("TREL", 9_100_000_000_999)],
    "creditor_status": ["closed", "blocked"],
    "creditor_bic": ["HABAXX22"],
    "currency": ["USD", "XAU"],
    "amount": ["1000.00", "1000.01", "2000.001", "0.00", "0.01", ""],
    "requested": ["2026-02-30", "2027-02-23", "2027-02-24", "2020-01-01"],
    "debtor_bic": [None, "TREL22"],
    "debtor_currency": ["EUR", "USD"],
}
WORLDS = [CLEAN] + [
    replace(CLEAN, **{a: x, b: y})
    for a, b in itertools.combinations_with_replacement(VARIANTS, 2)
    for x in VARIANTS[a]
    for y in VARIANTS[b]
]


def test_the_quick_pass_never_waves_through_what_a_rule_would_stop() -> None:
    """`rules.passes` answers the usual payment in one step: it passes exactly the
    payments in which no rule finds anything (otherwise `check` asks them one by one).
    Checked for every payment that differs from a clean one in one or two ways."""
    quick = 0
    for world in WORLDS:
        tx, pmt, ctx = world.tx(), world.pmt(), world.context()
        f = rules.facts(tx, pmt)
        first = None
        for rule in rules.TRANSACTION_RULES:  # in order: a rule may rely on the ones before
            if (first := rule(tx, f, pmt, ctx)) is not None:
                break
        passed = rules.passes(tx, f, pmt, ctx)
        assert passed == (first is None), (world, first)
        quick += passed
    assert quick > 10


def test_ladder_covers_every_arrival_time_code() -> None:
    """Every transaction-level code decided on arrival appears on the ladder, so adding a
    rule without placing it in the order fails here."""
    arrival = {
        r for r in Reason if PRECEDENCE[Reason.AC02] <= PRECEDENCE[r] < PRECEDENCE[Reason.AM14]
    }
    assert {code for code, _ in LADDER} == arrival


def test_execution_ladder_daily_limit_then_funds_then_booked() -> None:
    """At execution the daily limit (AM14) is judged before the funds (AM04); with both
    in order the payment is booked, drawing on the overdraft."""

    def run(debited: int, balance: int) -> Reason | None:
        accounts = {
            DEBTOR: account(DEBTOR, balance=balance),
            CLEARING: account(CLEARING, owner="treasury", kind=AccountKind.CLEARING),
        }
        due = Due(
            key="k",
            reference="EK1",
            debtor_iban=DEBTOR,
            credit_iban=CLEARING,
            amount_minor=900_00,
            currency="EUR",
            internal=False,
        )
        [(_, request, finding)] = list(execute([due], accounts, {DEBTOR: debited}, TODAY))
        assert (request is None) == (finding is not None)
        return finding.reason if finding else None

    assert run(debited=700_00, balance=0) is Reason.AM14  # 700 + 900 > 1500, and no funds
    assert run(debited=600_00, balance=0) is Reason.AM04  # 0 + 200 overdraft < 900
    assert run(debited=600_00, balance=699_99) is Reason.AM04  # one cent short
    assert run(debited=600_00, balance=700_00) is None  # 700 + 200 overdraft = 900


def test_execution_sees_earlier_payments_of_the_same_run() -> None:
    """Two payments that each fit, but not together: the second is refused (AM04), so a
    batch can never overdraw an account."""
    accounts = {
        DEBTOR: account(DEBTOR, balance=500_00),
        CLEARING: account(CLEARING, owner="treasury", kind=AccountKind.CLEARING),
    }
    dues = [
        Due(
            key=f"k{n}",
            reference=f"EK{n}",
            debtor_iban=DEBTOR,
            credit_iban=CLEARING,
            amount_minor=400_00,
            currency="EUR",
            internal=False,
        )
        for n in range(2)
    ]
    results = [f.reason if f else None for _, _, f in execute(dues, accounts, {}, TODAY)]
    assert results == [None, Reason.AM04]


# -- when a payment executes -----------------------------------------------------------------


def at(day: str, clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=RIGA)


def due(requested: str, internal: bool, received: dt.datetime) -> dt.date:
    return rules.due_date(
        dt.date.fromisoformat(requested), internal, received, CUT_INTERNAL, CUT_EXTERNAL
    )


@pytest.mark.parametrize(
    ("requested", "internal", "received", "expected"),
    [
        # today, internal: cut-off 18:00
        ("2026-11-25", True, at("2026-11-25", "17:59:59"), "2026-11-25"),
        ("2026-11-25", True, at("2026-11-25", "18:00:00"), "2026-11-26"),
        # today, external: cut-off 15:30
        ("2026-11-25", False, at("2026-11-25", "15:29:59"), "2026-11-25"),
        ("2026-11-25", False, at("2026-11-25", "15:30:00"), "2026-11-26"),
        ("2026-11-25", False, at("2026-11-25", "16:00:00"), "2026-11-26"),
        ("2026-11-25", True, at("2026-11-25", "16:00:00"), "2026-11-25"),
        # a past date counts as today
        ("2026-11-20", False, at("2026-11-25", "09:00"), "2026-11-25"),
        ("2026-11-20", False, at("2026-11-25", "15:45"), "2026-11-26"),
        # after cut-off on Friday: Monday
        ("2026-11-27", False, at("2026-11-27", "15:31"), "2026-11-30"),
        # received on a Saturday, before any cut-off by the clock: Monday
        ("2026-11-28", False, at("2026-11-28", "09:00"), "2026-11-30"),
        ("2026-11-28", True, at("2026-11-28", "09:00"), "2026-11-30"),
        # 18 November is a public holiday (Proclamation Day)
        ("2026-11-17", True, at("2026-11-17", "18:30"), "2026-11-19"),
        ("2026-11-18", False, at("2026-11-18", "10:00"), "2026-11-19"),
        ("2026-11-18", False, at("2026-11-16", "10:00"), "2026-11-19"),
        # future dates: that day, even when received after the cut-off ...
        ("2026-11-26", False, at("2026-11-25", "20:00"), "2026-11-26"),
        # ... or the next business day when it is a weekend or holiday
        ("2026-11-29", False, at("2026-11-25", "10:00"), "2026-11-30"),
        ("2026-12-24", False, at("2026-11-25", "10:00"), "2026-12-28"),
    ],
)
def test_due_date(requested: str, internal: bool, received: dt.datetime, expected: str) -> None:
    """The business day a payment is booked on, as a client planning a payroll sees it."""
    assert due(requested, internal, received) == dt.date.fromisoformat(expected)


def test_cut_off_is_riga_wall_clock_time_in_summer_and_winter() -> None:
    """13:00 UTC is 15:00 in Riga in winter (before the external cut-off) but 16:00 in
    summer (after it): the cut-off follows the treasury's clock, not UTC."""
    winter = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC).astimezone(RIGA)
    summer = dt.datetime(2026, 7, 1, 13, 0, tzinfo=dt.UTC).astimezone(RIGA)
    assert due("2026-11-25", False, winter) == dt.date(2026, 11, 25)
    assert due("2026-07-01", False, summer) == dt.date(2026, 7, 2)
