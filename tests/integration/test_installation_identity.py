"""One spool, one database (`gateway.installation`): a spool pointed at another database
would number files and MsgIds again from where that database stands and send a client a
second pain.002 under a MsgId it already holds. Every command that writes refuses it in
one line, before an account is made or a file processed; a new spool, or one from before the
check, takes the database's identity."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.keys import init_signing_key
from gateway.settings import load
from tests.conftest import need_root
from tests.pipeline_fixtures import write_config

EXE = str(Path(sys.executable).with_name("ekase-gateway"))


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def installation(base: Path, **settings: object) -> Path:
    config = write_config(base, **settings)
    now = dt.datetime.now(dt.UTC)
    init_signing_key(base / "signing/gateway.key", base / "signing/gateway.crt", now=now)
    assert gateway("db", "upgrade", "-c", str(config)).returncode == 0
    return config


def identity_in(database: Path) -> int | None:
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT value FROM gw_counters WHERE name = 'installation'").fetchone()
    return None if row is None else int(row[0])


def test_the_first_start_writes_one_identity_into_both(tmp_path: Path) -> None:
    installation(tmp_path)
    marker = tmp_path / "spool/installation"
    written = int(marker.read_text().split("#")[0])
    assert written == identity_in(tmp_path / "spool/ledger.sqlite3")
    assert written > 0


@pytest.mark.parametrize("command", [["scan", "--once"], ["eod"], ["db", "upgrade"], ["run"]],
                         ids=lambda w: w[0])  # fmt: skip
def test_a_spool_pointed_at_another_database_is_refused_before_anything_is_written(
    tmp_path: Path, command: list[str]
) -> None:
    """The spool of a used installation, its `database_url` changed to a new database:
    one line naming the spool's file and what to do, exit 2; no database is made (it was
    made and migrated, then refused)."""
    config = installation(tmp_path)
    other = tmp_path / "elsewhere.sqlite3"
    moved = tmp_path / "moved.toml"
    moved.write_text(
        config.read_text().replace("sqlite:///spool/ledger.sqlite3", f"sqlite:///{other}")
    )
    done = gateway(*command, "-c", str(moved))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    marker = tmp_path / "spool/installation"
    assert f"remove {marker}" in line and "database_url" in line, line
    assert not other.exists()
    empty = tmp_path / "empty.sqlite3"  # a database there, not yet migrated: left so
    sqlite3.connect(empty).close()
    moved.write_text(
        config.read_text().replace("sqlite:///spool/ledger.sqlite3", f"sqlite:///{empty}")
    )
    assert gateway(*command, "-c", str(moved)).returncode == 2
    with sqlite3.connect(empty) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_two_databases_that_both_have_an_identity_are_told_apart(tmp_path: Path) -> None:
    """Two used installations: the first's spool with the second's database."""
    first = installation(tmp_path / "first")
    installation(tmp_path / "second")
    crossed = tmp_path / "first/crossed.toml"
    crossed.write_text(
        first.read_text().replace(
            "sqlite:///spool/ledger.sqlite3", f"sqlite:///{tmp_path}/second/spool/ledger.sqlite3"
        )
    )
    done = gateway("scan", "--once", "-c", str(crossed))
    assert done.returncode == 2, done.stderr
    theirs = identity_in(tmp_path / "second/spool/ledger.sqlite3")
    ours = int((tmp_path / "first/spool/installation").read_text().split("#")[0])
    assert f"belongs to installation {ours} and the database to {theirs}" in done.stderr


def test_an_installation_from_before_the_check_gets_one_identity_in_both(
    tmp_path: Path,
) -> None:
    """Neither the spool's file nor the database's counter (an installation from before
    this check): the next start writes one identity into both and goes on."""
    config = installation(tmp_path)
    database = tmp_path / "spool/ledger.sqlite3"
    marker = tmp_path / "spool/installation"
    marker.unlink()
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM gw_counters WHERE name = 'installation'")
    assert gateway("scan", "--once", "-c", str(config)).returncode == 0
    assert int(marker.read_text().split("#")[0]) == identity_in(database)


def test_a_database_pointed_at_another_spool_is_refused(tmp_path: Path) -> None:
    """A used database, its `spool_dir` mistyped (or the spool's disk not mounted: an
    empty folder): it was taken as a new spool — the answers written where no client
    reads. Refused in one line, exit 2, with nothing made there; a spool given the
    database's number on purpose is taken."""
    config = installation(tmp_path)
    database = tmp_path / "spool/ledger.sqlite3"
    typo = tmp_path / "typo.toml"
    typo.write_text(
        config.read_text()
        .replace('spool_dir = "spool"', 'spool_dir = "spool-2"')
        .replace("sqlite:///spool/ledger.sqlite3", f"sqlite:///{database}")
    )
    done = gateway("scan", "--once", "-c", str(typo))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    marker = tmp_path / "spool-2/installation"
    assert f"write {identity_in(database)} into {marker}" in line, line
    assert not (tmp_path / "spool-2").exists()
    (tmp_path / "spool-2").mkdir()  # a mount point without its disk
    assert gateway("scan", "--once", "-c", str(typo)).returncode == 2
    assert gateway("status", "-c", str(typo)).returncode == 2
    marker.write_text(f"{identity_in(database)}\n")
    assert gateway("scan", "--once", "-c", str(typo)).returncode == 0
    assert load(typo).spool_dir == tmp_path / "spool-2"


def test_status_refuses_a_spool_that_is_not_there_or_not_the_databases(tmp_path: Path) -> None:
    """`status` shows the spool beside the database: a mistyped `spool_dir` (or a spool
    disk not mounted) said "daemon: not running" and showed every client idle; a spool of
    another database showed that spool's files beside this database's. Both are one
    line, exit 2; `ledger balance` refuses the other database's spool too, and answers
    without a spool (an auditor's copy of the database)."""
    config = installation(tmp_path)
    typo = tmp_path / "typo.toml"
    typo.write_text(config.read_text().replace('spool_dir = "spool"', 'spool_dir = "spoool"'))
    done = gateway("status", "-c", str(typo))
    assert done.returncode == 2 and done.stdout == "", done.stdout
    [line] = done.stderr.splitlines()
    assert f"gateway.spool_dir: no spool at {tmp_path / 'spoool'}" in line, line
    balance = gateway("ledger", "balance", "-c", str(typo), "--iban", "LV31TREL9100000000001")
    assert balance.returncode == 0, balance.stderr

    other = installation(tmp_path / "other")
    crossed = tmp_path / "other/crossed.toml"
    crossed.write_text(
        other.read_text().replace(
            "sqlite:///spool/ledger.sqlite3", f"sqlite:///{tmp_path}/spool/ledger.sqlite3"
        )
    )
    for command in (["status"], ["ledger", "balance", "--iban", "LV31TREL9100000000001"]):
        done = gateway(*command, "-c", str(crossed))
        assert done.returncode == 2, done.stdout  # `ledger balance` said 0.00 EUR of it
        assert "belongs to installation" in done.stderr and len(done.stderr.splitlines()) == 1
    # A wrong database that is empty: the spool's identity is the news, not "db upgrade"
    # (which would be refused anyway).
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    blank = tmp_path / "blank.toml"
    blank.write_text(
        config.read_text().replace("sqlite:///spool/ledger.sqlite3", f"sqlite:///{empty}")
    )
    missing = tmp_path / "missing.toml"  # a mistyped path: no file there at all
    missing.write_text(
        config.read_text().replace("sqlite:///spool/ledger.sqlite3", f"sqlite:///{tmp_path}/x.db")
    )
    for command, toml in itertools.product(
        (["status"], ["ledger", "balance", "--iban", "LV31TREL9100000000001"]), (blank, missing)
    ):
        done = gateway(*command, "-c", str(toml))
        assert done.returncode == 2, done.stdout
        [line] = done.stderr.splitlines()
        assert "belongs to installation" in line and "db upgrade" not in line, line
    assert not (tmp_path / "x.db").exists()
    assert gateway("status", "-c", str(config)).returncode == 0


def test_root_is_refused_in_a_spool_that_is_the_services(tmp_path: Path) -> None:
    """`sudo ekase-gateway scan --once` in an installation whose spool is the service
    user's left root's shelves, answers and SQLite WAL behind, which the daemon could not
    move or write. Every command that writes refuses it in one line, naming the user to
    run it as, before anything is made; `status` (which writes nothing) still answers."""
    need_root("a spool owned by another user, a command run as root")
    config = installation(tmp_path)
    spool = tmp_path / "spool"
    nobody = 65534
    for path in [spool, *spool.rglob("*")]:
        os.lchown(path, nobody, nobody)
    (spool / "clients/iestade-a/in/batch.xml").write_bytes(b"<x/>")
    os.lchown(spool / "clients/iestade-a/in/batch.xml", nobody, nobody)
    for command in (["scan", "--once"], ["eod"], ["db", "upgrade"], ["keys", "init"]):
        done = gateway(*command, "-c", str(config))
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert f"the spool {spool} is " in line and "run it as" in line, line
        assert f"(sudo -u nobody {EXE} {' '.join(command)} -c {config})" in line, line
    assert [p for p in [spool, *spool.rglob("*")] if p.lstat().st_uid != nobody] == []
    assert gateway("status", "-c", str(config)).returncode == 0
    # OpenSSH mode (spool/clients the link to the chroots): the uploads are the SFTP users',
    # so a bare `sudo -u` cannot tell one still written (no read lease) — the README's
    # `setpriv` line is named instead (it named the bare sudo: an outside tester)
    (spool / "sftp").mkdir()
    os.replace(spool / "clients", spool / "sftp" / "clients")
    os.symlink("sftp/clients", spool / "clients")
    os.lchown(spool / "clients", nobody, nobody)
    done = gateway("scan", "--once", "-c", str(config))
    [line] = done.stderr.splitlines()
    assert done.returncode == 2 and "sudo" not in line, line
    assert (
        "(setpriv --reuid=nobody --regid=nobody --init-groups --inh-caps=+lease,+dac_read_search"
        f" --ambient-caps=+lease,+dac_read_search {EXE} scan --once -c {config})" in line
    ), line


def test_two_first_starts_at_once_agree(tmp_path: Path, database_url: str) -> None:
    """Two processes starting at once on a new database and spool (a daemon and a command,
    two nodes): on PostgreSQL one failed inserting the same accounts as the other
    (UniqueViolation); both go on now, with one identity."""
    config = write_config(tmp_path, database_url=database_url)
    now = dt.datetime.now(dt.UTC)
    init_signing_key(tmp_path / "signing/gateway.key", tmp_path / "signing/gateway.crt", now=now)
    for _ in range(3):
        runs = [
            subprocess.Popen([EXE, "db", "upgrade", "-c", str(config)], stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err.decode()[-2000:]
    assert int((tmp_path / "spool/installation").read_text().split("#")[0]) > 0
