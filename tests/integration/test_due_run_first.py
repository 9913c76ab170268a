"""The run of the day's due payments comes first (SPEC §6: "at the start of that business
day"), also while other workers book files from the same accounts (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway import pending
from ledger import calendar
from ledger.core import Posting, Transfer, TransferKind
from ledger.tx import BalanceConflict
from tests.pipeline_fixtures import A_MAIN, B_MAIN, RIGA, TODAY, Batch, Installation


def test_a_file_booked_meanwhile_waits_for_the_due_run(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file another worker booked from the same account while the due run was deciding
    made the run fail at its end (`BalanceConflict`: debited by another writer meanwhile);
    the run backed off and tried again, and lost again for as long as uploads kept coming
    (a tester: two minutes, 2,076 payments due still waiting). The run locks what it moves
    first: the other booking waits for it, and is the one that is done again."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        tomorrow = calendar.next_business_day(TODAY)
        inst.submit(Batch(msg_id="DUE-1", execution_date=tomorrow.isoformat())
                    .tx("D-1", "10.00", B_MAIN).build())  # fmt: skip
        inst.clock.set(dt.datetime.combine(tomorrow, dt.time(9), RIGA).astimezone(dt.UTC))
        other: list[Any] = []
        real = pending._execute

        def meanwhile() -> None:  # another worker's file from A_MAIN, committed at once
            try:
                with inst.env.ledger.begin() as tx:
                    accounts = tx.accounts([A_MAIN, B_MAIN])
                    legs = (Posting(A_MAIN, -500, "EUR"), Posting(B_MAIN, 500, "EUR"))
                    key = "OTHER-WORKER-1"
                    transfer = Transfer(key, key, TransferKind.INTERNAL, legs, tomorrow, tomorrow)
                    tx.post([transfer], accounts, inst.clock.now())
                other.append("committed")
            except BalanceConflict as conflict:  # its group is run again at once
                other.append(conflict)

        def execute(*args: Any, **kwargs: Any) -> Any:  # once the run has read its accounts
            if not threads:
                booking = threading.Thread(target=meanwhile)
                booking.start()
                booking.join(2.0)  # committed by now, unless it waits for this run
                threads.append(booking)
            return real(*args, **kwargs)

        threads: list[threading.Thread] = []
        monkeypatch.setattr(pending, "_execute", execute)
        inst.new_answers()
        assert inst.run().files_with_pending_executed  # the due run was not refused
        for thread in threads:
            thread.join(30)
        [answer] = inst.new_answers()
        assert answer.statuses() == {"D-1": "ACSC"}
        assert len(other) == 1 and isinstance(other[0], BalanceConflict), other
    finally:
        inst.close()


def test_a_lock_list_longer_than_a_statement_is_taken_in_id_order(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locks go in id order, as every flush takes them (no deadlock between the two): a
    list of accounts longer than one statement's parameters is locked in chunks of it
    sorted by id, not by IBAN."""
    from ledger import tx as ledger_tx

    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    try:
        monkeypatch.setattr(ledger_tx, "params_per_statement_max", 1)
        with inst.env.ledger.begin() as tx:
            ibans = [A_MAIN, B_MAIN]
            assert tx._in_id_order(sorted(ibans, reverse=True)) == sorted(
                ibans, key=lambda i: tx.accounts([i])[i].id
            )
            locked = tx.accounts([*ibans, "LV00NOSUCHACCOUNT0000"], lock=True)
            assert sorted(locked) == sorted(ibans)
    finally:
        inst.close()
