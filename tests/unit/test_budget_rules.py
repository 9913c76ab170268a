"""The EKK/IKK rule (SPEC §12) as a budget institution sees it in its pain.002: `RJCT RR05`
with an `AddtlInf` naming the code, the date or the difference of the split; codes on a
payment that needs none are kept, not judged."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from gateway.inbound import budget, classifier, decide, rules
from gateway.reasons import Reason
from gateway.references import FileRefs
from gateway.statuses import TxStatus
from ledger.core import AccountKind
from tests.unit.test_rules_ladder import (
    CLASSIFIER,
    CLEAN,
    CLEARING,
    CREDITOR_TREL,
    DEBTOR,
    SPLIT,
    TODAY,
    World,
    account,
)

EUR = "EUR"


def ekk(code: str, amount: str, ccy: str = EUR) -> tuple[str, str, str, str]:
    return ("EKK", code, amount, ccy)


def ikk(code: str, amount: str, ccy: str = EUR) -> tuple[str, str, str, str]:
    return ("IKK", code, amount, ccy)


@pytest.mark.parametrize(
    ("codes", "info"),
    [
        (None, "EKK code lines missing"),
        ((ikk("21.3.9.9", "900.00"),), "EKK code lines missing"),
        ((ekk("9999", "900.00"),), "EKK 9999 is not in the classifier"),
        ((ekk("21.3.9.9", "900.00"),), "EKK 21.3.9.9 is a revenue code, not expense or financing"),
        ((ekk("2239", "900.00"),),
         "EKK 2239 is not valid on 2026-11-25 (valid 2010-01-01–2026-06-30)"),
        ((ekk("2221", "600.00"), ekk("2231", "300.01")),
         "EKK lines add up to 900.01, 0.01 more than InstdAmt 900.00"),
        ((ekk("2221", "600.00"), ekk("2231", "299.99")),
         "EKK lines add up to 899.99, 0.01 less than InstdAmt 900.00"),
        ((ekk("2221", "900.00", "USD"),), "EKK 2221 Amt in USD, not the instructed EUR"),
        ((ekk("2221", "899.999"), ekk("2231", "0.001")),
         "EKK 2221 Amt: 899.999 has more than 2 decimals"),
        ((ekk("", "900.00"),), "EKK line without Cd"),
        (tuple(ekk("2221", "45.00") for _ in range(21)), "more than 20 EKK code lines"),
    ],
)  # fmt: skip
def test_each_coding_mistake_is_rr05_naming_it(
    codes: tuple[tuple[str, str, str, str], ...] | None, info: str
) -> None:
    finding, _ = replace(CLEAN, codes=codes).check()
    assert finding is not None and finding.reason is Reason.RR05
    assert finding.short().startswith(info), finding.short()


def test_twenty_lines_and_a_financing_code_pass() -> None:
    lines = (*tuple(ekk("2221", "45.00") for _ in range(19)), ekk("F22010000", "45.00"))
    finding, _ = replace(CLEAN, codes=lines).check()
    assert finding is None


def test_a_code_valid_until_yesterday_is_refused_and_until_today_accepted() -> None:
    text = (
        "code;name;kind;valid_from;valid_until\n"
        f"2221;Siltums;expense;2020-01-01;{TODAY - dt.timedelta(days=1)}\n"
        f"2231;Administratīvie;expense;2020-01-01;{TODAY}\n"
    )
    world = replace(CLEAN, codes=(ekk("2221", "900.00"),))
    ctx = replace(world.context(), classifier=classifier.parse(text))
    finding = rules.findings([world.candidate()], ctx).get(0)
    assert finding is not None and finding.reason is Reason.RR05
    assert "2221 is not valid on 2026-11-25" in finding.info
    world = replace(CLEAN, codes=(ekk("2231", "900.00"),))
    assert rules.findings([world.candidate()], ctx) == {}


def test_codes_are_judged_on_the_execution_date_not_the_arrival_date() -> None:
    """A payment arriving today for a date after the code's last day is refused: the
    code must be valid when the money moves (the due date worked out on arrival)."""
    text = "code;name;kind;valid_from;valid_until\n2221;Siltums;expense;2020-01-01;2026-11-30\n"
    world = replace(CLEAN, codes=(ekk("2221", "900.00"),), requested="2026-12-01")
    ctx = replace(world.context(), classifier=classifier.parse(text))
    finding = rules.findings([world.candidate()], ctx).get(0)
    assert finding is not None and "not valid on 2026-12-01" in finding.info
    late = replace(ctx, execution_day=lambda day, internal: dt.date(2026, 11, 30))
    assert rules.findings([world.candidate()], late) == {}


def _to_budget(
    codes: tuple[tuple[str, str, str, str], ...] | None, *, debtor_budget: bool
) -> World:
    return replace(CLEAN, creditor_iban=CREDITOR_TREL, debtor_budget=debtor_budget, codes=codes)


def _with_budget_creditor(world: World) -> rules.Context:
    ctx = world.context()
    return replace(ctx, budget_accounts=ctx.budget_accounts | {CREDITOR_TREL})


def test_a_payment_to_a_budget_account_needs_ikk_whatever_it_comes_from() -> None:
    for debtor_budget in (False, True):
        codes = SPLIT if debtor_budget else None
        world = _to_budget(codes, debtor_budget=debtor_budget)
        finding = rules.findings([world.candidate()], _with_budget_creditor(world)).get(0)
        assert finding is not None and finding.reason is Reason.RR05
        assert finding.info == "IKK code lines missing"
        paid = (codes or ()) + (ikk("21.3.9.9", "800.00"), ikk("F40020010", "100.00"))
        world = _to_budget(paid, debtor_budget=debtor_budget)
        assert rules.findings([world.candidate()], _with_budget_creditor(world)) == {}
    world = _to_budget((*SPLIT, ikk("2221", "900.00")), debtor_budget=True)
    finding = rules.findings([world.candidate()], _with_budget_creditor(world)).get(0)
    assert finding is not None
    assert finding.info == "IKK 2221 is an expense code, not financing or revenue"


def test_codes_on_a_non_budget_account_are_accepted_and_kept_as_sent() -> None:
    odd = (ekk("9999", "1.5"), ikk("X", "3"))
    world = replace(CLEAN, debtor_budget=False, codes=odd)
    finding, passed = world.check()
    assert finding is None
    assert budget.read(passed.tx.codes) == [
        ("EKK", "9999", "1.5", "EUR"),
        ("IKK", "X", "3", "EUR"),
    ]
    assert budget.addtl_tx_inf(passed.tx.codes, "EKK") == "EKK 9999 1.50"
    kept = budget.join(SPLIT)
    assert budget.addtl_tx_inf(kept, "EKK") == "EKK 2221 600.00; EKK 2231 300.00"
    assert budget.addtl_tx_inf(kept, "IKK") is None
    # Lines no rule judged may lack a code or an amount: counted, never shown half empty
    # (it was `EKK 2221 ; EKK  1.00`).
    halves = budget.join((ekk("2221", ""), ekk("", "1.00"), ekk("2231", "2.00")))
    assert budget.addtl_tx_inf(halves, "EKK") == "EKK 2231 2.00; +2 more"
    assert budget.addtl_tx_inf(budget.join((ekk("", "1.00"),)), "EKK") == "+1 more"


def test_statements_carry_whole_code_lines_and_count_those_that_do_not_fit() -> None:
    """20 lines of long codes and big amounts (allowed) are more than a camt AddtlTxInf
    holds (500 characters): whole lines, then how many more, never a line cut short."""
    lines = [("EKK", f"F400200{n:02d}", "1000000000.00", "JPY") for n in range(20)]
    text = budget.addtl_tx_inf(budget.join(lines), "EKK")
    assert text is not None and len(text) <= budget.statement_chars_max
    *whole, more = text.split("; ")
    assert whole == [f"EKK F400200{n:02d} 1000000000" for n in range(len(whole))]
    assert more == f"+{20 - len(whole)} more" and 10 < len(whole) < 20
    fits = [("EKK", f"{n:04d}", "1.00", "EUR") for n in range(20)]
    assert budget.addtl_tx_inf(budget.join(fits), "EKK") == "; ".join(
        f"EKK {n:04d} 1.00" for n in range(20)
    )


def test_rr05_ranks_before_the_execution_time_codes() -> None:
    """A payment with bad codes on an account without the funds for it is RR05, never
    AM04: it is refused on arrival and nothing is booked for it."""
    world = replace(CLEAN, codes=(ekk("2221", "899.00"),))
    candidate = world.candidate()
    book = decide.Book(
        {DEBTOR: account(DEBTOR, balance=0),
         CLEARING: account(CLEARING, owner="treasury", kind=AccountKind.CLEARING)},
        {DEBTOR: 1400_00},
    )  # fmt: skip
    bookings = decide.Bookings(FileRefs("iestade-a", "ab" * 32, 1, 1), TODAY, {EUR: CLEARING})
    received = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
    clock = decide.Clock(received, received, dt.time(18), dt.time(15, 30), dt.time(23, 59))
    (decision,) = decide.decide([candidate], world.context(), clock, book, bookings)
    assert (decision.status, decision.reason) == (TxStatus.RJCT, Reason.RR05)
    assert bookings.take_singles() == [] and bookings.batches() == []
    fixed = replace(world, codes=(ekk("2221", "900.00"),))
    (decision,) = decide.decide([fixed.candidate()], fixed.context(), clock, book, bookings)
    assert decision.reason is Reason.AM14
    assert CLASSIFIER.on("2221", TODAY) is not None
