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
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.inbound import budget, classifier, decide, facts, rules
from gateway.inbound.findings import Finding
from gateway.inbound.parsed import ParsedFile, ParsedHeader, ParsedPmtInf, ParsedTx
from gateway.reasons import FILE_LEVEL, PRECEDENCE, Reason
from gateway.references import FileRefs
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
    debtor_budget: bool = True  # SPEC §12: its payments carry EKK codes
    codes: tuple[tuple[str, str, str, str], ...] | None = None

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
            remittance_structured=None,
            codes=budget.join(self.codes or ()),
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
                {facts.fingerprint(DEBTOR, self.creditor_iban, minor, self.currency, self.e2e)}
            )
        return rules.Context(
            client_accounts=own,
            treasury_accounts=treasury,
            today=TODAY,
            max_future_days=90,
            recent_fingerprints=recent,
            budget_accounts=frozenset({DEBTOR}) if self.debtor_budget else frozenset(),
            classifier=CLASSIFIER,
        )

    def candidate(self, position: int = 0) -> rules.Candidate:
        seen = {self.e2e} if self.e2e_seen_in_file else set()
        tx, pmt, ctx = self.tx(), self.pmt(), self.context()
        said = facts.facts(tx, pmt, *facts.repeats([tx.end_to_end_id], seen))
        return rules.Candidate(position, tx, said, rules.PaymentInfo.of(pmt, ctx))

    def check(self) -> tuple[Finding | None, rules.Candidate]:
        """The finding against this world's payment (None: it passes), and the payment."""
        candidate = self.candidate()
        return rules.findings([candidate], self.context()).get(0), candidate


SHIPPED = Path(__file__).parents[2] / "gateway" / "data" / "classification.csv"
CLASSIFIER = classifier.parse(SHIPPED.read_text(encoding="utf-8"))
SPLIT = (("EKK", "2221", "600.00", "EUR"), ("EKK", "2231", "300.00", "EUR"))

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
    # SPEC §12: a budget account's payment without codes, then each way a code is wrong
    (Reason.RR05, lambda w: replace(w, codes=(("EKK", "9999", "900.00", "EUR"),))),
    (Reason.RR05, lambda w: replace(w, codes=(("EKK", "21.3.9.9", "900.00", "EUR"),))),
    (Reason.RR05, lambda w: replace(w, codes=(("EKK", "2239", "900.00", "EUR"),))),
    (Reason.RR05, lambda w: replace(w, codes=(*SPLIT[:1], ("EKK", "2231", "300.01", "EUR")))),
    (Reason.RR05, lambda w: replace(w, codes=SPLIT)),
]


def test_precedence_ladder() -> None:
    """A payment wrong in many ways is answered with the most important problem first,
    and repairing that one reveals the next, in the documented order, until it passes."""
    world = World()
    reported: list[Reason] = []
    for expected, repair in LADDER:
        finding, _ = world.check()
        assert finding is not None, f"expected {expected}, the payment passed"
        assert finding.reason is expected, (expected, finding)
        assert finding.info, "every finding names what is wrong"
        reported.append(finding.reason)
        world = repair(world)
    assert [PRECEDENCE[r] for r in reported] == sorted(PRECEDENCE[r] for r in reported)
    finding, passed = world.check()
    assert finding is None
    assert passed.facts.amount_minor == 900_00
    assert passed.facts.internal is False
    assert passed.pmt.requested_date == TODAY
    assert passed.facts.fingerprint is not None


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
    codes=SPLIT,
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


def test_a_chunk_is_judged_as_each_payment_alone() -> None:
    """The rules judge a chunk at a time: every payment of a chunk gets exactly the finding
    it gets alone, whatever else the chunk holds (every payment one or two deviations
    from a clean one, judged together). Within a chunk each payment's own context applies;
    the worlds share one context here, so only the payments' own differences vary."""
    shared = [w for w in WORLDS if (w.debtor_owned, w.made_recently) == (True, False)]
    ctx = CLEAN.context()
    chunk = []
    for position, world in enumerate(shared):
        alone = world.candidate()
        chunk.append(alone._replace(position=position))
    together = rules.findings(chunk, ctx)
    passed = 0
    for position, candidate in enumerate(chunk):
        alone = rules.findings([candidate._replace(position=0)], ctx).get(0)
        assert together.get(position) == alone, (shared[position], alone)
        passed += alone is None
    assert passed > 10 and len(together) > 100


def test_ladder_covers_every_arrival_time_code() -> None:
    """Every transaction-level code decided on arrival appears on the ladder, so adding a
    rule without placing it in the order fails here."""
    arrival = {
        r for r in Reason if PRECEDENCE[Reason.AC02] <= PRECEDENCE[r] < PRECEDENCE[Reason.AM14]
    }
    assert {code for code, _ in LADDER} == arrival


def test_file_ladder_follows_the_reason_order() -> None:
    """A file wrong as a whole in every way (broken, MsgId used, counts and sums off) is
    answered with the first code by `Reason` order; repairing one fault at a time gives
    the next, ending with a valid file. Every file-level code is on the ladder."""
    header = ParsedHeader("USED", "2026-11-25T09:00:00", "5", "9.99", None)
    pmt = ParsedPmtInf(1, "P1", None, "5", "9.99", TODAY.isoformat(), None, DEBTOR, None,
                       None, None, count=1, amount_sum=Decimal("1.00"))  # fmt: skip
    parsed = ParsedFile(header, [pmt], Finding(Reason.FF01, "not well-formed"),
                        count=1, amount_sum=Decimal("1.00"))  # fmt: skip
    used = True
    repairs = {
        Reason.FF01: lambda: setattr(parsed, "failure", None),
        Reason.DU01: lambda: None,  # `used` turns false below
        Reason.AM18: lambda: (setattr(header, "nb_of_txs", "1"), setattr(pmt, "nb_of_txs", "1")),
        Reason.AM10: lambda: (setattr(header, "ctrl_sum", "1.00"), setattr(pmt, "ctrl_sum", "1")),
    }
    seen = []
    while (found := rules.file_finding(parsed, used)) is not None:
        seen.append(found.reason)
        repairs[found.reason]()
        used = used and found.reason is not Reason.DU01
    assert seen == [r for r in Reason if r in FILE_LEVEL] == list(repairs)


def _execute(
    amounts: list[int], balance: int, debited: int, status: str = "open"
) -> list[Reason | None]:
    """Execute payments of `amounts` from DEBTOR (`status`) to an external creditor, in order."""
    book = decide.Book(
        {
            DEBTOR: account(DEBTOR, balance=balance, status=status),
            CLEARING: account(CLEARING, owner="treasury", kind=AccountKind.CLEARING),
        },
        {DEBTOR: debited},
    )
    refs = FileRefs("iestade-a", "ab" * 32, 1, 1)
    bookings = decide.Bookings(refs, TODAY, {"EUR": CLEARING})
    orders = [
        decide.Order(n, 0, DEBTOR, EXTERNAL, False, amount, "EUR", batch=False)
        for n, amount in enumerate(amounts)
    ]
    results = decide.execute(orders, book, bookings)
    legs = [leg for t in bookings.take_singles() for leg in t.postings]
    # Each booked payment has its own entry on the debtor's account; the clearing
    # account (the treasury's) one posting for them all.
    booked = [leg for leg in legs if leg.iban == DEBTOR]
    assert {leg.reference for leg in booked} == {r for r in results if isinstance(r, str)}
    clearing = [leg for leg in legs if leg.iban == CLEARING]
    assert len(clearing) == (1 if booked else 0)
    assert sum(leg.amount_minor for leg in clearing) == -sum(leg.amount_minor for leg in booked)
    return [r.reason if isinstance(r, Finding) else None for r in results]


def test_execution_ladder_daily_limit_then_funds_then_booked() -> None:
    """At execution the daily limit (AM14) is judged before the funds (AM04); with both
    in order the payment is booked, drawing on the overdraft."""
    assert _execute([900_00], balance=0, debited=700_00) == [Reason.AM14]  # 700 + 900 > 1500
    assert _execute([900_00], balance=0, debited=600_00) == [Reason.AM04]  # 200 overdraft
    assert _execute([900_00], balance=699_99, debited=600_00) == [Reason.AM04]  # one cent short
    assert _execute([900_00], balance=700_00, debited=600_00) == [None]  # 700 + 200 = 900


@pytest.mark.parametrize(("status", "reason"), [("closed", Reason.AC04), ("blocked", Reason.AC06)])
def test_execution_ladder_an_accounts_status_comes_before_its_daily_limit(
    status: str, reason: Reason
) -> None:
    """A payment that waited executes on an account closed (or blocked) since: that is
    why it fails, whatever its daily limit and funds say — AC04/AC06 come before AM14 in
    `Reason` (the daily limit was judged first: a reviewer)."""
    assert _execute([900_00], balance=0, debited=700_00, status=status) == [reason]
    assert _execute([900_00], balance=0, debited=0, status=status) == [reason]


def test_execution_sees_earlier_payments_of_the_same_run() -> None:
    """Two payments that each fit, but not together: the second is refused (AM04), so a
    batch can never overdraw an account."""
    assert _execute([400_00, 400_00], balance=500_00, debited=0) == [None, Reason.AM04]


# -- when a payment executes -----------------------------------------------------------------


def at(day: str, clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=RIGA)


def due(requested: str, internal: bool, received: dt.datetime) -> dt.date:
    return _due(requested, internal, received).day


def _due(requested: str, internal: bool, received: dt.datetime) -> decide.Due:
    clock = decide.Clock(received, received, CUT_INTERNAL, CUT_EXTERNAL, dt.time(23, 59))
    return clock.due(dt.date.fromisoformat(requested), internal)


@pytest.mark.parametrize(
    ("requested", "internal", "received", "taken", "now"),
    [
        ("2026-11-25", False, at("2026-11-25", "10:00"), at("2026-11-25", "10:00"), True),
        # taken the next morning, it was due on the day received: at once
        ("2026-11-25", False, at("2026-11-25", "10:00"), at("2026-11-26", "09:00"), True),
        # received after the cut-off (or for a later day): it waits, also when taken only
        # on the day it executes, and runs with that day's due payments
        ("2026-11-25", False, at("2026-11-25", "23:47"), at("2026-11-25", "23:47"), False),
        ("2026-11-25", False, at("2026-11-25", "23:47"), at("2026-11-26", "00:00"), False),
        ("2026-11-26", True, at("2026-11-25", "11:00"), at("2026-11-26", "09:00"), False),
        ("2026-11-28", True, at("2026-11-28", "11:00"), at("2026-11-30", "09:00"), False),
    ],
)
def test_a_payment_executes_as_its_file_is_taken_only_if_due_on_the_day_received(
    requested: str, internal: bool, received: dt.datetime, taken: dt.datetime, now: bool
) -> None:
    """A file is decided as of its receipt (SPEC §6): a payment that was to wait when the
    file was received waits, whenever its file is taken (the daemon down overnight)."""
    clock = decide.Clock(received, taken, CUT_INTERNAL, CUT_EXTERNAL, dt.time(23, 59))
    assert clock.now_or_later(clock.due(dt.date.fromisoformat(requested), internal)) is now


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


@pytest.mark.parametrize(
    ("requested", "internal", "received", "why"),
    [
        ("2026-11-25", False, at("2026-11-25", "18:14"),
         "received 18:14, after the 15:30 cut-off for external payments; executes 2026-11-26"),
        ("2026-11-28", True, at("2026-11-28", "09:00"),
         "received on Saturday 2026-11-28, not a business day; executes 2026-11-30"),
        ("2026-12-10", False, at("2026-11-25", "10:00"),
         "requested for 2026-12-10; executes 2026-12-10"),
        ("2026-11-29", False, at("2026-11-25", "10:00"),
         "requested for 2026-11-29 (not a business day); executes 2026-11-30"),
        ("2026-11-25", False, at("2026-11-25", "10:00"), None),
    ],
)  # fmt: skip
def test_a_payment_that_waits_says_why_and_until_when(
    requested: str, internal: bool, received: dt.datetime, why: str | None
) -> None:
    """Every PDNG carries its reason and the day it is expected to execute (SPEC §6)."""
    assert _due(requested, internal, received).why == why


def test_a_cut_off_with_seconds_is_shown_with_them() -> None:
    """A configured time may carry seconds: the text then shows them on both sides (it
    said "received 15:30, after the 15:30 cut-off")."""
    received = dt.datetime(2026, 11, 25, 15, 30, 45, tzinfo=RIGA)
    clock = decide.Clock(received, received, CUT_INTERNAL, dt.time(15, 30, 30), dt.time(18, 30))
    assert clock.due(TODAY, False).why == (
        "received 15:30:45, after the 15:30:30 cut-off for external payments; executes 2026-11-26"
    )


def test_after_end_of_day_nothing_more_is_booked_that_day() -> None:
    """A file processed after the day's books closed (eod_time) waits for the next
    business day even before its cut-off, and says so."""
    received = at("2026-11-25", "10:00")
    clock = decide.Clock(received, at("2026-11-25", "18:45"), CUT_INTERNAL, CUT_EXTERNAL,
                         dt.time(18, 30))  # fmt: skip
    assert clock.due(TODAY, True) == decide.Due(
        dt.date(2026, 11, 26), "the books of 2026-11-25 closed at 18:30; executes 2026-11-26"
    )


@pytest.mark.parametrize(
    ("sent", "day"),
    [
        ("2026-12-15", dt.date(2026, 12, 15)),
        ("2026-12-15+02:00", dt.date(2026, 12, 15)),  # xs:date with a zone (JAXB)
        ("2026-12-16Z", dt.date(2026, 12, 16)),
        ("2026-12-17-11:00", dt.date(2026, 12, 17)),
        ("2026-12-17+14:00", dt.date(2026, 12, 17)),
        ("2026-12-17+14:30", None),  # beyond xs:date's zones
        ("2026-02-30", None),
        ("20261215", None),  # ISO 8601's basic form, not xs:date
        ("2026-W50-1", None),
        ("15.12.2026", None),
    ],
)
def test_requested_date_is_read_as_an_iso_date_with_or_without_zone(
    sent: str, day: dt.date | None
) -> None:
    """ReqdExctnDt is an ISODate (xs:date): a zone after the date is valid and names the
    same day; anything else is not a date (DT01)."""
    assert facts.parse_date(sent) == day


def test_a_debtor_iban_in_small_letters_is_told_to_be_written_in_capitals() -> None:
    """`LV52trel9100000000011` (the XSD lets small letters through) was refused AC02 "is not
    an account of this client", of a client's own account (an outside tester). It stays
    AC02 — the IBAN is not the one configured — and the text says why, for any IBAN, so
    that it tells nothing about whose the account is."""
    assert rules.not_clients_account("LV52trel9100000000011") == (
        "DbtrAcct LV52trel9100000000011 is not an account of this client "
        "(an IBAN is written in capital letters)"
    )
    assert rules.not_clients_account("LV52TREL9100000000011") == (
        "DbtrAcct LV52TREL9100000000011 is not an account of this client"
    )
    assert rules.not_clients_account("erp-7a", iban=False) == (  # an Othr/Id, not an IBAN
        "DbtrAcct erp-7a is not an account of this client"
    )
