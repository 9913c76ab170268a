"""A camt.052 is one moment of a day that other work goes on booking (SPEC §15, §8): on
PostgreSQL, whose transactions read each statement afresh, a report counted the day's
entries and then read them a page at a time, and whatever another worker committed in
between was read but not counted: the report failed its own check, and the worker with it,
taking the daemon down. (On SQLite a report is written while its writer holds the lock: no
one commits in between.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Connection

from gateway import funding
from gateway.outbound import budget_summary, reports
from gateway.outbound.entries import Entries
from tests.budget_fixtures import budget_installation
from tests.integration.test_statements import CAMT052, Validate, read_camt, riga
from tests.pipeline_fixtures import A_MAIN, CLIENT_A, TODAY, Batch, Installation


def test_a_report_counts_and_reads_the_same_moment_while_others_book(
    tmp_path: Path, pg_url: str, assert_valid: Validate, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        inst.clock.set(riga(TODAY, "10:00"))
        inst.submit(Batch(msg_id="BEFORE").tx("B-1", "40.00").build())
        counted = Entries.totals
        meanwhile: list[object] = []

        def counted_then_another_books(self: Entries) -> object:
            found = counted(self)
            if not meanwhile:  # another worker commits a credit between count and read
                meanwhile.append(funding.fund(inst.env, A_MAIN, "1.00", key="meanwhile"))
            return found

        monkeypatch.setattr(Entries, "totals", counted_then_another_books)
        report = read_camt(inst.outbox(CLIENT_A) / reports.intraday_report(inst.env, A_MAIN))
        assert meanwhile, "the credit was booked while the report was being made"
        assert_valid(report.path, CAMT052)
        assert report.balances["OPBD"][0] + report.net == report.balances["ITBD"][0]
        assert report.balances["ITBD"][0] == inst.balance(A_MAIN) - 100  # not the credit
        later = read_camt(inst.outbox(CLIENT_A) / reports.intraday_report(inst.env, A_MAIN))
        assert later.balances["ITBD"][0] == inst.balance(A_MAIN)  # the next one has it
    finally:
        inst.close()


def test_a_summary_of_a_running_month_reads_one_moment_while_others_book(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the budget summary of a period still running: its movements and its
    closing balance were read apart, and a credit committed in between failed its
    reconciliation (an AssertionError, exit 1 with a traceback)."""
    inst = budget_installation(tmp_path / "gw", pg_url, need_sealer=True)
    try:
        read = budget_summary.balance_before
        meanwhile: list[object] = []

        def read_then_another_books(conn: Connection, account_id: int, day: dt.date) -> int:
            found = read(conn, account_id, day)
            if not meanwhile:  # between the opening balance and the closing one
                meanwhile.append(funding.fund(inst.env, A_MAIN, "1.00", key="meanwhile"))
            return found

        monkeypatch.setattr(budget_summary, "balance_before", read_then_another_books)
        name = budget_summary.write_summary(inst.env, CLIENT_A, TODAY.replace(day=1), TODAY)
        assert meanwhile and name.endswith(".csv")
    finally:
        inst.close()
