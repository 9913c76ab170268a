"""A deadlock with another writer is a race lost, not a fault (PostgreSQL).

Two workers' groups took the rows of their notification counters (camt.054, SPEC §8) in
opposite orders; PostgreSQL undid one group, and the gateway took the "deadlock detected"
for a database fault: 13 files waited, with an error-level alert each (a tester,
PostgreSQL, two workers). It is a race: the group is done again at once, as when another
process recorded one of its files first (`filerun._lost_locks`).

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


def _waiting_for(engine: object, holder: int) -> bool:
    """Whether a backend waits for a lock the backend `holder` holds (not another test's)."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
            ),
            {"holder": holder},
        ).scalar_one()
    return bool(found)


Statement = tuple[str, dict[str, str]]
COUNTER = "UPDATE gw_counters SET value = value WHERE name = :name"
ACCOUNTS = "SELECT id FROM ledger_accounts WHERE iban IN (:a, :b) ORDER BY id FOR UPDATE"


def _second_file_beside(tmp_path: Path, pg_url: str, first: Statement, then: Statement) -> None:
    """A file paying A_MAIN -> B_MAIN (after one that made the counters) is run while the
    other writer holds what `first` locks; once the run waits for it, the other asks for
    what `then` locks, which the run holds: PostgreSQL undoes the run, the one that waited
    longer. The other's transaction goes through and lets the run go again: the file is
    answered once, ACSC, and the pass ends without a fault."""
    inst = _with_notifications(tmp_path / "gw", pg_url)
    other = create_engine(pg_url)
    try:
        inst.submit(Batch(msg_id="DL-1").tx("E2E-1", "1.00", B_MAIN).build(), "one.xml")
        inst.drop(Batch(msg_id="DL-2").tx("E2E-2", "2.00", B_MAIN).build(), "two.xml")
        result: list[PassResult | BaseException] = []

        def run() -> None:
            try:
                result.append(inst.run())
            except BaseException as exc:  # (the assertion below names it)
                result.append(exc)

        with other.connect() as conn, conn.begin():
            holder = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(text(first[0]), first[1])
            runner = threading.Thread(target=run)
            runner.start()
            deadline = time.monotonic() + LOCK_WAIT_SECONDS_MAX
            while not _waiting_for(other, holder) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert runner.is_alive() and _waiting_for(other, holder), result
            conn.execute(text(then[0]), then[1])
        runner.join(60)
        assert not runner.is_alive()
        [outcome] = result
        assert isinstance(outcome, PassResult), repr(outcome)
        [answer] = inst.new_answers()
        assert (answer.original_msg_id, answer.group_status) == ("DL-2", "ACSC")
    finally:
        other.dispose()
        inst.close()


def test_a_group_that_loses_a_deadlock_is_run_again_and_answered_once(
    tmp_path: Path, pg_url: str
) -> None:
    """The other writer holds the notification counter the file's run takes second (they
    are taken in IBAN order), then asks for the one it took first."""
    taken_first, taken_second = (f"notification:{iban}" for iban in sorted((A_MAIN, B_MAIN)))
    _second_file_beside(
        tmp_path, pg_url, (COUNTER, {"name": taken_second}), (COUNTER, {"name": taken_first})
    )


def test_a_deadlock_where_the_groups_balances_are_written_is_a_race_lost_too(
    tmp_path: Path, pg_url: str
) -> None:
    """The other writer locks the accounts first, in id order, as the day's due run does, and
    then asks for a notification counter the file's run took: the file's run waits for the
    accounts where its group writes their balances, after its own run (a reviewer: that
    deadlock was still a database fault)."""
    _second_file_beside(
        tmp_path, pg_url, (ACCOUNTS, {"a": A_MAIN, "b": B_MAIN}),
        (COUNTER, {"name": f"notification:{A_MAIN}"}),
    )  # fmt: skip
