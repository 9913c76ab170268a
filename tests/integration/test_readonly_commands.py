"""Read-only commands (`status`, `ledger balance`) on a real spool and database (SPEC §3, §9).

They never take a write lock, never write, never create: they answer while a file is
being booked, and on a database that is missing or behind they say "run db upgrade".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text, update

from gateway import migrations as gateway_migrations
from gateway.environment import make_reader_engine, open_reader
from gateway.progress import FileProgress, Heartbeat
from gateway.status import collect
from ledger import calendar
from ledger.migrations import alembic_config
from ledger.schema import accounts as t_accounts
from tests.pipeline_fixtures import (
    A_LIMITS,
    A_MAIN,
    CLIENT_A,
    CLIENT_B,
    TODAY,
    Batch,
    Installation,
    write_config,
)

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
# Shorter than the 30 s a writer's lock makes SQLite wait: a command that waits for the
# lock fails here rather than answering late.
COMMAND_SECONDS_MAX = 25


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=COMMAND_SECONDS_MAX
    )


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime, and every folder; the database's
    files aside (SQLite opens a WAL database's `-wal` and `-shm` files even to read it)."""
    found = {}
    for path in folder.rglob("*"):
        if path.name.startswith("ledger.sqlite3"):
            continue
        info = path.lstat()
        kept = (0, 0) if path.is_dir() else (info.st_size, info.st_mtime_ns)
        found[str(path.relative_to(folder))] = kept
    return found


class _Rollback(Exception):
    pass


def test_a_fresh_configuration_is_not_given_a_spool_or_database(tmp_path: Path) -> None:
    """`status`, `ledger balance` and `rates show` on a configuration nobody has started
    yet say to run `db upgrade` (exit 2, one line) and leave nothing behind: no spool, no
    database (`rates show` made both, and 51 accounts)."""
    config = write_config(tmp_path)
    before = tree(tmp_path)
    commands = (["status"], ["ledger", "balance", "--iban", A_MAIN],
                ["rates", "show", "--date", "2026-12-07"])  # fmt: skip
    for args in commands:
        done = gateway(*args, "-c", str(config))
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "ekase-gateway db upgrade" in lines[0], lines
        assert done.stdout == ""
    assert not (tmp_path / "spool").exists()
    assert tree(tmp_path) == before


def test_status_refuses_an_account_moved_to_another_currency_as_a_start_does(
    tmp_path: Path,
) -> None:
    """README: check an edited configuration with `status` before restarting. An account
    given another currency (or client) than the ledger holds is refused by a start, and
    `status` said nothing of it (exit 0: a tester; systemd does not restart after exit 2,
    so the gateway stayed down). Now `status` and `ledger balance` refuse it in the same
    line, and leave the ledger as it was."""
    inst = Installation.create(tmp_path / "gw")
    inst.close()
    config = inst.config.read_text()
    usd = config.replace('currency = "EUR"', 'currency = "USD"', 1)
    assert usd != config
    inst.config.write_text(usd)
    start = gateway("scan", "-c", str(inst.config), "--once")
    assert start.returncode == 2, start.stderr
    for args in (["status"], ["ledger", "balance", "--iban", A_MAIN]):
        done = gateway(*args, "-c", str(inst.config))
        assert (done.returncode, done.stdout) == (2, ""), (args, done.stdout, done.stderr)
        assert done.stderr == start.stderr, (args, done.stderr, start.stderr)
        assert "client[0].account[0].currency" in done.stderr and "in EUR" in done.stderr
    reader = make_reader_engine(inst.settings.database_url)
    with reader.connect() as conn:
        held = conn.execute(
            t_accounts.select().with_only_columns(t_accounts.c.currency)
            .where(t_accounts.c.iban == A_MAIN)
        ).scalar_one()  # fmt: skip
    reader.dispose()
    assert held == "EUR"


def test_an_old_schema_is_not_migrated_by_a_read(tmp_path: Path) -> None:
    """On a database one revision behind, read-only commands exit 2 with "run db upgrade"
    and the schema stays where it was; `db upgrade` then makes them work."""
    inst = Installation.create(tmp_path / "gw")
    try:
        from alembic import command

        command.downgrade(
            alembic_config(
                inst.env.engine,
                Path(gateway_migrations.__file__).parent,
                gateway_migrations.VERSION_TABLE,
            ),
            "0003",
        )
    finally:
        inst.env.close()  # not `inst.close()`: the old schema has no kept totals to check
    config = str(inst.config)
    for args in (["status"], ["ledger", "balance", "--iban", A_MAIN]):
        done = gateway(*args, "-c", config)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "db upgrade" in done.stderr and done.stdout == ""
    version_sql = f"SELECT version_num FROM {gateway_migrations.VERSION_TABLE}"
    reader = make_reader_engine(inst.settings.database_url)  # no schema check: it is old
    with reader.connect() as conn:
        assert conn.execute(text(version_sql)).scalar_one() == "0003"
    reader.dispose()
    assert gateway("db", "upgrade", "-c", config).returncode == 0
    assert gateway("status", "-c", config).returncode == 0


@pytest.mark.timeout(120)
def test_read_only_commands_answer_while_a_writer_holds_its_lock(
    tmp_path: Path, database_url: str
) -> None:
    """While a file run holds the write lock (SQLite `BEGIN IMMEDIATE`; PostgreSQL its
    accounts `FOR UPDATE`) with a balance changed but not committed, `status` and
    `ledger balance` answer at once with the committed state, on SQLite and PostgreSQL
    (before, they waited for the lock and failed with "database is locked")."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    config = str(inst.config)
    committed = inst.balance(A_MAIN)
    try:
        with inst.env.ledger.begin() as tx:
            tx.accounts([A_MAIN, A_LIMITS])  # locked, as a file's run locks its accounts
            tx.conn.execute(
                update(t_accounts)
                .where(t_accounts.c.iban == A_MAIN)
                .values(balance_minor=t_accounts.c.balance_minor + 1)
            )
            balance = gateway("ledger", "balance", "-c", config, "--iban", A_MAIN)
            status = gateway("status", "-c", config, "--json")
            raise _Rollback
    except _Rollback:
        pass
    finally:
        inst.close()
    assert balance.returncode == 0, balance.stderr
    assert balance.stdout.strip() == f"{committed // 100}.{committed % 100:02d} EUR"
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert [c["client_id"] for c in report["clients"]] == [CLIENT_A, CLIENT_B]


def test_read_only_commands_wait_for_a_table_lock_a_few_seconds_only(
    tmp_path: Path, pg_url: str
) -> None:
    """A session holding a table of ours in ACCESS EXCLUSIVE mode (a DBA's `LOCK TABLE`,
    a `VACUUM FULL`) holds `status` and `ledger balance` a few seconds at most: they
    say that the database could not be read and why, as when it is down. They waited as
    long as the lock was held, saying nothing (tester D, stop 45)."""
    inst = Installation.create(tmp_path / "gw", database_url=pg_url)
    config = str(inst.config)
    try:
        with inst.env.engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE gw_files, ledger_accounts IN ACCESS EXCLUSIVE MODE")
            status = gateway("status", "-c", config)
            balance = gateway("ledger", "balance", "-c", config, "--iban", A_MAIN)
    finally:
        inst.close()
    assert status.returncode == 1, status.stderr
    assert "DATABASE unreachable" in status.stdout and "lock timeout" in status.stdout
    assert balance.returncode == 1 and "lock timeout" in balance.stderr, balance.stderr
    assert len(balance.stderr.strip().splitlines()) == 1, balance.stderr


def test_status_shows_progress_daemon_pending_duplicates_and_stale_uploads(
    tmp_path: Path,
) -> None:
    """What an operator needs in one look, each from where it really lies: the file in
    progress (payments done of total), the daemon's heartbeat, pending payments per
    account with their sum, today's duplicates, and an upload abandoned hours ago shown
    as stale rather than `uploading` forever. Collecting it changes nothing on disk."""
    inst = Installation.create(tmp_path / "gw")
    try:
        later = calendar.next_business_day(calendar.next_business_day(TODAY)).isoformat()
        waiting = Batch(msg_id="LATER", execution_date=later)
        waiting.tx("W-1", "1000.25").tx("W-2", "500.24")
        assert set(inst.submit(waiting.build()).statuses().values()) == {"PDNG"}
        same = Batch(msg_id="TWICE").tx("T-1", "1.00").build()
        inst.submit(same, name="first.xml")
        inst.submit(same, name="again.xml")

        now = inst.clock.now()
        epoch = now.timestamp()
        inbox = inst.inbox()
        for name, age in ((".big.xml.filepart", 2 * 3600), ("fresh.xml.part", 60)):
            (inbox / name).write_bytes(b"<Document")
            os.utime(inbox / name, (epoch - age, epoch - age))
        claim = inst.env.spool.work(CLIENT_A) / "20261125T100000-abcd__payroll.xml"
        claim.write_bytes(b"<Document/>")
        running = FileProgress(inst.spool, CLIENT_A, claim.name, "payroll.xml", 190_000,
                               inst.clock, interval_seconds=0)
        inst.clock.advance(dt.timedelta(seconds=3))
        running.advance(120_000)
        Heartbeat(inst.spool, inst.clock).beat()

        before = tree(inst.base)
        reader = open_reader(inst.settings, clock=inst.clock)
        try:
            status = collect(reader, inst.clock)
        finally:
            reader.close()
        assert tree(inst.base) == before
    finally:
        inst.close()

    assert status.daemon.state == "running" and status.daemon.pid == os.getpid()
    started = status.daemon.started_at  # shown in the treasury's time, as the rest is
    assert started is not None and started.utcoffset() == inst.clock.now().astimezone(
        inst.settings.timezone
    ).utcoffset()
    [file] = status.in_progress
    assert (file.file, file.state, file.done, file.total) == (
        "payroll.xml", "processing", 120_000, 190_000
    )
    assert file.rate_per_second == 40_000.0
    [pending] = status.pending
    assert (pending.iban, pending.count, pending.amount, pending.currency) == (
        A_MAIN, 2, "1500.49", "EUR"
    )
    a = next(c for c in status.clients if c.client_id == CLIENT_A)
    assert (a.uploading, a.stale_uploads, a.in_progress) == (1, 1, 1)
    assert (a.processed_today, a.duplicates_today) == (2, 1)
    assert [u.name for u in status.stale_uploads] == [".big.xml.filepart"]
