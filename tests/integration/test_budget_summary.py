"""The revenue and expenditure summary a budget institution reconciles (SPEC §12), through
the real pipeline on SQLite and PostgreSQL: `ekase-gateway summary` and the daemon's
monthly run write a sealed CSV into the client's `out/`; read back here with the `csv`
module and checked against the ledger to the cent."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.outbound import budget_summary, outbox
from gateway.outbound.seal import verify_file
from tests.budget_fixtures import budget_installation
from tests.integration.test_statements import ledger_balance_through, riga
from tests.pipeline_fixtures import (
    A_LIMITS,
    A_MAIN,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    TODAY,
    Batch,
    Installation,
)

EKASE = Path(sys.executable).parent / "ekase-gateway"
NOVEMBER = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
Row = dict[str, str]


@pytest.fixture
def budget_inst(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    inst = budget_installation(tmp_path / "gw", database_url, need_sealer=True)
    yield inst
    inst.close()


def summary_paths(inst: Installation, client: str, start: dt.date, end: dt.date) -> list[Path]:
    """The client's summaries for the period in out/, oldest first (by their stamp)."""
    return sorted(inst.outbox(client).glob(f"*_budget-summary_{client}_{start}_{end}.csv"))


def summary_rows(inst: Installation, client: str, start: dt.date, end: dt.date) -> list[Row]:
    """The client's summary for the period as found in out/, its seal checked."""
    (path,) = summary_paths(inst, client, start, end)
    return read_summary(inst, path)


def read_summary(inst: Installation, path: Path) -> list[Row]:
    verdict = verify_file(
        path, trusted_certs=[inst.settings.signing.certificate], now=dt.datetime.now(dt.UTC)
    )
    assert verdict.ok, verdict.problem
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert rows and list(rows[0]) == ["account", "currency", "line", "code", "name", "amount"]
    return rows


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def check_against_ledger(inst: Installation, rows: list[Row], start: dt.date, end: dt.date) -> None:
    """Per account: opening and closing are the ledger's balances, the movement lines add
    up from one to the other, and the check line is 0.00."""
    for iban, group in itertools.groupby(rows, key=lambda r: r["account"]):
        lines = list(group)
        kinds = [r["line"] for r in lines]
        assert kinds[0] == "opening" and kinds[-2:] == ["closing", "check"], kinds
        opening, closing = cents(lines[0]["amount"]), cents(lines[-2]["amount"])
        assert opening == ledger_balance_through(inst, iban, start - dt.timedelta(days=1))
        assert closing == ledger_balance_through(inst, iban, end)
        assert opening + sum(cents(r["amount"]) for r in lines[1:-2]) == closing
        assert lines[-1]["amount"] == "0.00"


def by_code(rows: list[Row], iban: str, line: str) -> dict[str, str]:
    return {r["code"]: r["amount"] for r in rows if r["account"] == iban and r["line"] == line}


def test_summary_shows_every_euro_under_its_code(budget_inst: Installation) -> None:
    """An ERP file with codes executes; the summary command's CSV shows each code's
    revenue and expenditure, the funding as uncoded, and reconciles with the ledger."""
    inst = budget_inst
    paid = (
        Batch(debtor=A_MAIN)
        .tx("HEAT", "150.00", EXTERNAL, codes=(("EKK", "2221", "120.00"), ("EKK", "2222", "30.00")))
        .tx("TO-B", "150.00", B_MAIN,
            codes=(("EKK", "2231", "150.00"), ("IKK", "21.3.9.9", "100.00"),
                   ("IKK", "F40020010", "50.00")))
    )  # fmt: skip
    assert set(inst.submit(paid.build()).statuses().values()) == {"ACSC"}
    back = Batch(debtor=B_MAIN).tx(
        "FROM-B", "40.00", A_MAIN, codes=(("EKK", "1100", "40.00"), ("IKK", "12.3.9.9", "40.00"))
    )
    assert inst.submit(back.build(), client=CLIENT_B).statuses() == {"FROM-B": "ACSC"}
    not_budget = Batch(debtor=A_LIMITS).tx("PLAIN", "5.00", EXTERNAL)
    assert inst.submit(not_budget.build(), "c.xml").statuses() == {"PLAIN": "ACSC"}
    start, end = NOVEMBER
    done = subprocess.run(
        [str(EKASE), "summary", "-c", str(inst.config), "--client", CLIENT_A,
         "--from", str(start), "--to", str(end)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"_budget-summary_{CLIENT_A}_{start}_{end}.csv")
    rows = summary_rows(inst, CLIENT_A, start, end)
    assert {r["account"] for r in rows} == {A_MAIN}  # budget accounts only, its own only
    assert by_code(rows, A_MAIN, "expenditure") == {
        "2221": "-120.00", "2222": "-30.00", "2231": "-150.00",
    }  # fmt: skip
    assert by_code(rows, A_MAIN, "revenue") == {"12.3.9.9": "40.00"}
    uncoded = [(r["name"], r["amount"]) for r in rows if r["line"] == "uncoded"]
    assert uncoded == [("credits without codes", "100000.00"), ("debits without codes", "0.00")]
    names = {r["code"]: r["name"] for r in rows}
    assert names["2221"].startswith("Izdevumi par siltumenerģiju")
    # the command runs on today's clock, when November is over
    assert [r["name"] for r in rows if r["line"] == "closing"] == [budget_summary.CLOSING_NAME]
    check_against_ledger(inst, rows, start, end)
    # the same period for the other institution: its own revenue under its own codes
    budget_summary.write_summary(inst.env, CLIENT_B, start, end)
    rows = summary_rows(inst, CLIENT_B, start, end)
    # on the installation's clock (the 25th) November is not over: the balance so far
    assert [r["name"] for r in rows if r["line"] == "closing"] == [budget_summary.SO_FAR_NAME]
    assert by_code(rows, B_MAIN, "revenue") == {"21.3.9.9": "100.00", "F40020010": "50.00"}
    assert by_code(rows, B_MAIN, "expenditure") == {"1100": "-40.00"}
    check_against_ledger(inst, rows, start, end)


def test_the_daemon_writes_last_months_summary_once_on_the_first_business_day(
    budget_inst: Installation,
) -> None:
    inst = budget_inst
    batch = Batch(debtor=A_MAIN).tx("P1", "12.34", EXTERNAL, codes=(("EKK", "2231", "12.34"),))
    assert inst.submit(batch.build()).statuses() == {"P1": "ACSC"}
    inst.clock.set(riga(dt.date(2026, 11, 30), "20:00"))
    # October was over before the accounts were made (the 25th): nothing to sum, no file
    assert budget_summary.run_due(inst.env) == 0
    inst.clock.set(riga(dt.date(2026, 12, 1), "08:00"))  # Tuesday, the first business day
    assert budget_summary.run_due(inst.env) == 2
    assert budget_summary.run_due(inst.env) == 0
    rows = summary_rows(inst, CLIENT_A, *NOVEMBER)
    assert [r["name"] for r in rows if r["line"] == "closing"] == [budget_summary.CLOSING_NAME]
    assert by_code(rows, A_MAIN, "expenditure") == {"2231": "-12.34"}
    check_against_ledger(inst, rows, *NOVEMBER)


def test_a_daemon_back_after_months_away_writes_every_month_it_missed_on_a_business_day(
    budget_inst: Installation,
) -> None:
    """Not on a holiday (Christmas Eve: the first business day of the month was earlier,
    but a holiday is none), and after an absence every month that has no final summary
    yet, oldest first: back on Monday 1 February 2027, November's, December's and
    January's for both institutions. (Only the previous month was ever looked at:
    November's and December's were never written.)"""
    inst = budget_inst
    batch = Batch(debtor=A_MAIN).tx("P1", "12.34", EXTERNAL, codes=(("EKK", "2231", "12.34"),))
    assert inst.submit(batch.build()).statuses() == {"P1": "ACSC"}
    inst.clock.set(riga(dt.date(2026, 12, 24), "10:00"))
    assert budget_summary.run_due(inst.env) == 0
    inst.clock.set(riga(dt.date(2027, 2, 1), "08:00"))
    assert budget_summary.run_due(inst.env) == 3 * 2
    assert budget_summary.run_due(inst.env) == 0
    months = [NOVEMBER, (dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
              (dt.date(2027, 1, 1), dt.date(2027, 1, 31))]  # fmt: skip
    for client in (CLIENT_A, CLIENT_B):
        assert [len(summary_paths(inst, client, *month)) for month in months] == [1, 1, 1]
    rows = summary_rows(inst, CLIENT_A, *NOVEMBER)
    assert [r["name"] for r in rows if r["line"] == "closing"] == [budget_summary.CLOSING_NAME]
    assert by_code(rows, A_MAIN, "expenditure") == {"2231": "-12.34"}


def test_a_summary_of_the_running_month_does_not_stand_in_for_the_final_one(
    budget_inst: Installation,
) -> None:
    """An operator's summary asked for while the month runs (its closing line says the
    balance so far) is not the month's summary: on the first business day of the next
    month the daemon still writes the final one, with the month's closing balance, for
    that client as for the others, and a second run writes nothing more."""
    inst = budget_inst
    first = Batch(debtor=A_MAIN).tx("P1", "12.34", EXTERNAL, codes=(("EKK", "2231", "12.34"),))
    assert inst.submit(first.build()).statuses() == {"P1": "ACSC"}
    budget_summary.write_summary(inst.env, CLIENT_A, *NOVEMBER)  # the 25th: November runs
    (early,) = summary_paths(inst, CLIENT_A, *NOVEMBER)
    rows = read_summary(inst, early)
    assert [r["name"] for r in rows if r["line"] == "closing"] == [budget_summary.SO_FAR_NAME]
    later = Batch(debtor=A_MAIN).tx("P2", "7.66", EXTERNAL, codes=(("EKK", "2231", "7.66"),))
    assert inst.submit(later.build(), "later.xml").statuses() == {"P2": "ACSC"}
    inst.clock.set(riga(dt.date(2026, 12, 1), "08:00"))  # Tuesday, the first business day
    assert budget_summary.run_due(inst.env) == 2
    assert budget_summary.run_due(inst.env) == 0
    paths = summary_paths(inst, CLIENT_A, *NOVEMBER)
    assert len(paths) == 2 and paths[0] == early
    rows = read_summary(inst, paths[1])
    assert [r["name"] for r in rows if r["line"] == "closing"] == [budget_summary.CLOSING_NAME]
    assert by_code(rows, A_MAIN, "expenditure") == {"2231": "-20.00"}
    check_against_ledger(inst, rows, *NOVEMBER)
    assert len(summary_paths(inst, CLIENT_B, *NOVEMBER)) == 1


def test_summaries_asked_for_in_one_second_each_get_a_file(budget_inst: Installation) -> None:
    """The same summary asked for twice within a second (an operator's second try, or
    the command beside the daemon's monthly run) stopped on the outbox's unique file name
    with a raw IntegrityError (an outside tester): the second takes the next free second,
    as a repeated answer does."""
    inst = budget_inst
    names = [budget_summary.write_summary(inst.env, CLIENT_A, *NOVEMBER) for _ in range(3)]
    assert len(set(names)) == 3, names
    assert len(summary_paths(inst, CLIENT_A, *NOVEMBER)) == 3


def test_a_summary_whose_name_another_process_took_meanwhile_takes_the_next(
    budget_inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two writers (the daemon's monthly run, an operator's command) do not
    see each other's name before it commits: the one that then finds it taken (the unique
    name) tries again and takes the next free second (a review)."""
    inst = budget_inst
    first = budget_summary.write_summary(inst.env, CLIENT_A, *NOVEMBER)
    real, looked = outbox.first_free, []

    def blind(taken, local):  # type: ignore[no-untyped-def]
        looked.append(local)  # the first look does not see the other's row yet
        return local if len(looked) == 1 else real(taken, local)

    monkeypatch.setattr(outbox, "first_free", blind)
    second = budget_summary.write_summary(inst.env, CLIENT_A, *NOVEMBER)
    assert second != first and len(looked) == 2
    assert len(summary_paths(inst, CLIENT_A, *NOVEMBER)) == 2


def test_summary_refusals_are_one_line(budget_inst: Installation) -> None:
    inst = budget_inst
    for args, problem in (
        (["--client", "nobody", "--from", "2026-11-01", "--to", "2026-11-30"], "no such client"),
        (["--client", CLIENT_A, "--from", "2026-11-30", "--to", "2026-11-01"], "is after --to"),
        (["--client", CLIENT_A, "--from", "2026-11-31", "--to", "2026-12-01"], "YYYY-MM-DD"),
        (["--client", CLIENT_A, "--from", "2999-01-01", "--to", "2999-01-31"], "after today"),
    ):
        done = subprocess.run(
            [str(EKASE), "summary", "-c", str(inst.config), *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 2 and problem in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1
    assert not list(inst.outbox(CLIENT_A).glob("*budget-summary*"))


Split = list[tuple[str, int]]  # (code, cents)
EXPENSE = ("1100", "2221", "2222", "2223", "2231", "2312", "3000", "5238", "7000", "F22010000")
REVENUE = ("12.3.9.9", "21.3.8.0", "21.3.9.9", "F40020010")


@st.composite
def splits(draw: st.DrawFn, codes: tuple[str, ...]) -> list[tuple[str, int]]:
    parts = draw(st.lists(st.integers(min_value=1, max_value=20_000), min_size=1, max_size=6))
    return [(draw(st.sampled_from(codes)), part) for part in parts]


def test_random_splits_over_random_codes_always_reconcile(
    budget_inst: Installation,
) -> None:
    """Hypothesis: whatever payments split over whatever codes a budget institution
    sends, its summary shows each code's total to the cent and reconciles."""
    inst = budget_inst
    spent: Counter[str] = Counter()
    received: Counter[str] = Counter()
    numbers = itertools.count()

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(splits(EXPENSE), st.none() | splits(REVENUE)), min_size=1,
                    max_size=4))  # fmt: skip
    def one_file(payments: list[tuple[Split, Split | None]]) -> None:
        batch = Batch(debtor=A_MAIN)
        for expense, revenue in payments:
            total = sum(part for _, part in expense)
            codes = [("EKK", code, f"{Decimal(part) / 100:.2f}") for code, part in expense]
            if revenue is not None:  # to B's budget account: its revenue split the same total
                scale = [part for _, part in revenue]
                shares = budget_summary.allocate([Decimal(s) for s in scale], total)
                assert shares is not None
                revenue = [(code, share) for (code, _), share in zip(revenue, shares, strict=True)
                           if share > 0]  # fmt: skip
                codes += [("IKK", code, f"{Decimal(s) / 100:.2f}") for code, s in revenue]
            creditor = B_MAIN if revenue else EXTERNAL
            batch.tx(f"H{next(numbers)}", f"{Decimal(total) / 100:.2f}", creditor,
                     codes=tuple(codes))  # fmt: skip
            for code, part in expense:
                spent[code] += part
            for code, part in revenue or ():
                received[code] += part
        assert set(inst.submit(batch.build(), f"h{next(numbers)}.xml").statuses().values()) == {
            "ACSC"
        }

    one_file()
    for client, iban, codes, line, sign in (
        (CLIENT_A, A_MAIN, spent, "expenditure", -1),
        (CLIENT_B, B_MAIN, received, "revenue", 1),
    ):
        for old in inst.outbox(client).glob("*budget-summary*"):
            old.unlink()
        budget_summary.write_summary(inst.env, client, TODAY, TODAY)
        rows = summary_rows(inst, client, TODAY, TODAY)
        assert by_code(rows, iban, line) == {
            code: f"{Decimal(sign * total) / 100:.2f}" for code, total in codes.items() if total
        }
        check_against_ledger(inst, rows, TODAY, TODAY)
