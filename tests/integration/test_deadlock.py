"""A deadlock with another writer is a race lost, not a fault (PostgreSQL).

Two workers' groups took the rows of their notification counters (camt.054, SPEC §8) in
opposite orders; PostgreSQL undid one group, and the gateway took the "deadlock detected"
for a database fault: 13 files waited, with an error-level alert each (a tester,
PostgreSQL, two workers). It is a race: the group is done again at once, as when another
process recorded one of its files first (`filerun._lost_race`).

Here the other writer is the test's own transaction, holding the counter row the file's
run takes second and then asking for the one it took first: a deadlock by construction,
which PostgreSQL breaks by undoing the file's run, the one that waited first.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from gateway.pipeline import PassResult
from tests.pipeline_fixtures import A_MAIN, B_MAIN, Batch, Installation, write_config

LOCK_WAIT_SECONDS_MAX = 20


def _with_notifications(base: Path, database_url: str) -> Installation:
    config = write_config(base, database_url=database_url)
    source = config.read_text(encoding="utf-8")
    for number in ("90000000001", "90000000002"):
        marker = f'registration_number = "{number}"'
        source = source.replace(marker, f"{marker}\nnotifications = true")
    config.write_text(source, encoding="utf-8")
    inst = Installation.open(base, config)
    assert all(c.notifications for c in inst.settings.clients)
    return inst


def _waiting_for_a_lock(engine: object) -> bool:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        found = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )).scalar_one()  # fmt: skip
    return bool(found)


def test_a_group_that_loses_a_deadlock_is_run_again_and_answered_once(
    tmp_path: Path, pg_url: str
) -> None:
    """The other writer holds the counter the file's run takes second."""
    inst = _with_notifications(tmp_path / "gw", pg_url)
    other = create_engine(pg_url)
    try:
        first = inst.submit(Batch(msg_id="DL-1").tx("E2E-1", "1.00", B_MAIN).build(), "one.xml")
        assert first.group_status == "ACSC"
        taken_first, taken_second = (f"notification:{iban}" for iban in sorted((A_MAIN, B_MAIN)))
        inst.drop(Batch(msg_id="DL-2").tx("E2E-2", "2.00", B_MAIN).build(), "two.xml")
        result: list[PassResult | BaseException] = []

        def run() -> None:
            try:
                result.append(inst.run())
            except BaseException as exc:  # (the assertion below names it)
                result.append(exc)

        lock = "UPDATE gw_counters SET value = value WHERE name = :name"
        with other.connect() as conn, conn.begin():
            conn.execute(text(lock), {"name": taken_second})
            runner = threading.Thread(target=run)
            runner.start()
            deadline = time.monotonic() + LOCK_WAIT_SECONDS_MAX
            while not _waiting_for_a_lock(other) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert runner.is_alive(), result
            # The file's run holds the counter it took first and waits for this one's: asking
            # for the first closes the circle. This transaction goes through (the file's run,
            # waiting longer, is the one PostgreSQL undoes), then lets the run go again.
            conn.execute(text(lock), {"name": taken_first})
        runner.join(60)
        assert not runner.is_alive()
        [outcome] = result
        assert isinstance(outcome, PassResult), repr(outcome)
        [answer] = inst.new_answers()
        assert (answer.original_msg_id, answer.group_status) == ("DL-2", "ACSC")
    finally:
        other.dispose()
        inst.close()


def test_a_deadlock_where_the_groups_balances_are_written_is_a_race_lost_too(
    tmp_path: Path, pg_url: str
) -> None:
    """The other writer locks the accounts first, in id order, as the day's due run does, and
    then asks for a notification counter the file's run took: the file's run waits for the
    accounts where its group writes their balances, after its own run (a reviewer: that
    deadlock was still a database fault)."""
    inst = _with_notifications(tmp_path / "gw", pg_url)
    other = create_engine(pg_url)
    try:
        inst.submit(Batch(msg_id="DF-1").tx("E2E-1", "1.00", B_MAIN).build(), "one.xml")
        inst.drop(Batch(msg_id="DF-2").tx("E2E-2", "2.00", B_MAIN).build(), "two.xml")
        result: list[PassResult | BaseException] = []

        def run() -> None:
            try:
                result.append(inst.run())
            except BaseException as exc:  # (the assertion below names it)
                result.append(exc)

        accounts = "SELECT id FROM ledger_accounts WHERE iban IN (:a, :b) ORDER BY id FOR UPDATE"
        with other.connect() as conn, conn.begin():
            conn.execute(text(accounts), {"a": A_MAIN, "b": B_MAIN})
            runner = threading.Thread(target=run)
            runner.start()
            deadline = time.monotonic() + LOCK_WAIT_SECONDS_MAX
            while not _waiting_for_a_lock(other) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert runner.is_alive(), result
            conn.execute(
                text("UPDATE gw_counters SET value = value WHERE name = :name"),
                {"name": f"notification:{A_MAIN}"},
            )
        runner.join(60)
        assert not runner.is_alive()
        [outcome] = result
        assert isinstance(outcome, PassResult), repr(outcome)
        [answer] = [a for a in inst.new_answers() if a.original_msg_id == "DF-2"]
        assert answer.group_status == "ACSC"
    finally:
        other.dispose()
        inst.close()
