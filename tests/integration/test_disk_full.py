"""A full disk under the gateway (SPEC §6, issue 14.5): the spool on a small tmpfs, filled up.

A fault of ours is never the client's: a valid file that meets ENOSPC while its answer is
written waits in work/, unanswered and unbooked, while the gateway alerts (log at error,
metrics, `status`) and retries; once there is room it is processed exactly once. What
had committed before the fault stays committed and is delivered when the fault clears.
An upload that meets the full disk is the client's upload failing (an SFTP error), and
leaves nothing behind. The spool stays one filesystem: the whole spool is the tmpfs, with
the database beside it (the daemon) or on it too (`scan --once`, in-process).

These tests mount a tmpfs, so they need root (CI runs as root).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from gateway import db, progress
from gateway.clock import FixedClock
from gateway.errors import TransientError
from gateway.faults import Active
from gateway.outbound import outbox
from tests.conftest import need_root
from tests.integration.daemon_fixtures import (
    FUNDED_MINOR,
    GATEWAY,
    Install,
    answers,
    batch,
    close_sftp,
    drop,
    free_port,
    ledger_balance_minor,
    make_install,
    running_daemon,
    sftp_client,
    wait_for,
)
from tests.integration.test_metrics import parse, scrape_text, with_metrics
from tests.pipeline_fixtures import A_MAIN, Installation
from tests.pipeline_fixtures import batch as small_batch

PAYMENTS = 3_000  # a valid file whose answer (about 1.3 MB) cannot be written
SPOOL_BYTES = 24 * 1024 * 1024
ROOM_BYTES = 64 * 1024  # what is left: log lines and heartbeats fit, an answer does not


@contextlib.contextmanager
def tmpfs(folder: Path, size_bytes: int = SPOOL_BYTES, options: str = "") -> Iterator[Path]:
    """A small tmpfs mounted at `folder` for the block (unmounted even if the test fails)."""
    need_root("mounts a small tmpfs to fill it")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755{options}", "ekase-test",
         str(folder)],
        check=True,
    )  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def fill(folder: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of `folder` until `leave_bytes` (or nothing) are left."""
    filler = folder / ".filler"
    with open(filler, "ab") as handle:
        handle.write(b"\0" * max(0, free_bytes(folder) - leave_bytes))
    return filler


def pages(size_bytes: int, page_bytes: int = 4096) -> int:
    """What a file of `size_bytes` takes on the tmpfs (whole pages)."""
    return -(-size_bytes // page_bytes) * page_bytes


def counts(database_url: str) -> tuple[int, int]:
    """(files recorded, payment rows): what the gateway committed."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            files = conn.execute(select(func.count()).select_from(db.files)).scalar_one()
            payments = conn.execute(select(func.count()).select_from(db.payments)).scalar_one()
    finally:
        engine.dispose()
    return int(files), int(payments)


def status_json(install: Install) -> dict[str, Any]:
    done = subprocess.run(
        [GATEWAY, "status", "-c", str(install.config), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def left_behind(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- the daemon ----------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_the_daemon_waits_out_a_full_disk_and_then_answers_once(tmp_path: Path) -> None:
    """A real `ekase-gateway run` on a spool that fills up: the 3,000-payment file meets
    ENOSPC while its answer is written. It is not answered or booked, it waits in work/;
    the log says so at error level, `ekase_faults_total{kind="disk_full"}` counts it and
    `ekase_fault_waiting_files` shows it, `status` names the fault and the file waiting.
    A client's upload meanwhile fails with an SFTP error and leaves nothing behind, and the
    daemon keeps running. Once space is freed the file is answered exactly once."""
    base = tmp_path / "gw"
    with tmpfs(base / "spool"):
        database = tmp_path / "ledger.sqlite3"  # the database off the full disk
        install = make_install(base, database_url=f'"sqlite:///{database}"')
        database_url = install.settings.database_url
        port = free_port()
        with_metrics(install, port)
        data = batch("FULL-1", "alpha", PAYMENTS)
        with running_daemon(install) as daemon:
            daemon.wait_started()
            filler = fill(install.spool, ROOM_BYTES + pages(len(data)))
            drop(install.folder("alpha", "in"), "big.xml", data)

            assert wait_for(lambda: bool(daemon.events("pass.fault")), 60), daemon.tail()
            [fault, *_] = daemon.events("file.fault")
            assert fault["level"] == "error" and "No space left" in fault["error"]
            assert fault["file"] == "big.xml" and fault["kind"] == "disk_full"
            assert fault["group_files"] == 1
            assert daemon.events("pass.fault")[0]["kind"] == "disk_full"
            out = install.folder("alpha", "out")
            assert answers(out) == [] and counts(database_url) == (0, 0)  # nothing answered
            assert [p.name.split("__")[1] for p in install.folder("alpha", "work").iterdir()] == [
                "big.xml"
            ]  # waiting in work/, not rejected, not quarantined
            assert not (install.spool / "rejected").exists() or not any(
                (install.spool / "rejected").rglob("*big.xml")
            )
            assert not any((install.spool / "quarantine").rglob("*big.xml"))

            samples, _ = parse(scrape_text(port))
            assert samples[("ekase_faults_total", (("kind", "disk_full"),))] >= 1
            assert samples[("ekase_fault_waiting_files", ())] == 1
            shown = status_json(install)
            assert shown["daemon"]["fault"]["kind"] == "disk_full", shown["daemon"]
            assert [(f["file"], f["state"]) for f in shown["in_progress"]] == [
                ("big.xml", "waiting")
            ]

            # An upload that does not fit is the client's upload failing, and leaves nothing.
            before = left_behind(install.folder("alpha", "in"))
            client = sftp_client(install, "alpha-erp")
            try:
                with pytest.raises(OSError), client.open("/in/late.xml", "wb") as handle:
                    handle.set_pipelined(False)
                    for _ in range(8):
                        handle.write(b"<x/>" * 16_384)
            finally:
                close_sftp(client)
            assert left_behind(install.folder("alpha", "in")) == before
            assert not (install.spool / "receipts" / "alpha" / "late.xml.json").exists()
            assert daemon.process.poll() is None, daemon.tail()

            filler.unlink()  # the operator frees space; the daemon's next retry succeeds
            assert wait_for(lambda: len(answers(out)) == 1, 120), daemon.tail()
            [answer] = answers(out)
            assert answer.original_msg_id == "FULL-1"
            assert sum(answer.tx_statuses.values()) == PAYMENTS
            assert counts(database_url) == (1, PAYMENTS)  # booked once
            booked = answer.tx_statuses["ACSC"] * 100  # each payment is 1.00
            assert ledger_balance_minor(install, "alpha") == FUNDED_MINOR - booked
            assert list(install.folder("alpha", "work").iterdir()) == []
            assert wait_for(lambda: bool(daemon.events("pass.recovered")), 30), daemon.tail()
            samples, _ = parse(scrape_text(port))
            assert samples[("ekase_fault_waiting_files", ())] == 0
            assert status_json(install)["daemon"]["fault"] is None
            assert daemon.events("daemon.failed") == []


def test_status_sees_the_daemon_and_its_fault_on_a_spool_with_no_room_at_all(
    tmp_path: Path,
) -> None:
    """The spool full to the last byte, so that not even a heartbeat can be written as a new
    file: the daemon's beat still reaches a real `status`, which shows the daemon running
    with its disk_full fault (not `not responding`, as it did once the last beat that found
    room was 30 s old)."""
    base = tmp_path / "gw"
    with tmpfs(base / "spool", 4 * 1024 * 1024):
        install = make_install(base, database_url=f'"sqlite:///{tmp_path / "ledger.sqlite3"}"')
        now = dt.datetime.now(dt.UTC)
        clock = FixedClock(now - dt.timedelta(minutes=1))
        heartbeat = progress.Heartbeat(install.spool, clock)  # as this process's daemon's
        heartbeat.beat()  # a minute ago, with room
        fill(install.spool, 0)
        with pytest.raises(OSError, match="No space left"):
            (install.spool / "run" / "one-more.json").write_text("{}")
        clock.set(now)
        heartbeat.fault = Active("disk_full", "OSError: [Errno 28] No space left on device",
                                 now, now, 1.0, 0)
        with contextlib.suppress(OSError):  # as the daemon: it logs daemon.heartbeat_failed
            heartbeat.beat()
        shown = status_json(install)["daemon"]
        assert (shown["state"], shown["pid"]) == ("running", os.getpid()), shown
        assert shown["fault"]["kind"] == "disk_full", shown


# -- scan --once, the database on the full disk too --------------------------------------------


def scan(install: Install) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEWAY, "scan", "--once", "-c", str(install.config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("room", "database_on_spool"),
    [(ROOM_BYTES, True), (0, False)],
    ids=["little room, database on the spool", "no room at all, database elsewhere"],
)
def test_scan_once_on_a_full_spool_exits_1_and_the_file_waits(
    tmp_path: Path, room: int, database_on_spool: bool
) -> None:
    """`scan --once` on a full spool: it exits 1 with one line naming the fault (no
    traceback), logs it at error level (`scan.fault`), answers and books nothing, and
    leaves the file in work/ — however often it is run. With the SQLite database on the
    same disk the fault is the database's; with no room left even for the log file the
    lines still reach stderr (`log.file_failed`). Once there is room, the next
    `scan --once` processes the file exactly once."""
    base = tmp_path / "gw"
    with tmpfs(base / "spool"):
        elsewhere = (
            {}
            if database_on_spool
            else {"database_url": f'"sqlite:///{tmp_path / "ledger.sqlite3"}"'}
        )
        install = make_install(base, **elsewhere)
        database_url = install.settings.database_url
        data = batch("SCAN-1", "alpha", PAYMENTS)
        drop(install.folder("alpha", "in"), "big.xml", data)
        filler = fill(install.spool, room)
        for _ in range(4):  # more often than a defect is tried: never quarantined
            done = scan(install)
            assert done.returncode == 1, done.stderr
            last = done.stderr.strip().splitlines()[-1]
            assert last.startswith("ekase-gateway: ") and "Traceback" not in done.stderr, last
            events = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
            faults = [e for e in events if e["event"] == "scan.fault"]
            assert [e["level"] for e in faults] == ["error"], done.stderr
            assert faults[0]["kind"] in ("disk_full", "io"), faults
            if not room:
                told = [e for e in events if e["event"] == "log.file_failed"]
                assert told and "No space left" in told[0]["error"], done.stderr
        assert answers(install.folder("alpha", "out")) == []
        assert len(list(install.folder("alpha", "work").glob("*__big.xml"))) == 1
        assert not any((install.spool / "quarantine").rglob("*big.xml"))

        filler.unlink()
        assert counts(database_url) == (0, 0)  # (read once it can be: the disk is its own)
        done = scan(install)
        assert done.returncode == 0, done.stderr
        [answer] = answers(install.folder("alpha", "out"))
        assert answer.original_msg_id == "SCAN-1"
        assert counts(database_url) == (1, PAYMENTS)
        assert scan(install).returncode == 0  # and again: nothing more
        assert len(answers(install.folder("alpha", "out"))) == 1


# -- a fault after the commit ---------------------------------------------------------------------


def _installation(template: Path, tmp_path: Path, database_on_spool: bool) -> Installation:
    """A copy of the template installation into `tmp_path/gw` (its spool the tmpfs already
    mounted there), with its SQLite database moved off the spool unless it stays on it."""
    staging = tmp_path / "staging"
    shutil.copytree(template, staging)
    if not database_on_spool:
        database = tmp_path / "db" / "ledger.sqlite3"
        database.parent.mkdir()
        for found in (staging / "spool").glob("ledger.sqlite3*"):
            shutil.move(found, database.with_name(found.name))
        config = staging / "gateway.toml"
        text = config.read_text().replace("sqlite:///spool/ledger.sqlite3", f"sqlite:///{database}")
        config.write_text(text)
    return Installation.copy_of(staging, tmp_path / "gw", need_sealer=True)


@pytest.mark.parametrize(
    "database_on_spool", [False, True], ids=["database elsewhere", "database on the spool"]
)
def test_a_full_disk_after_the_commit_delivers_what_committed_once_it_clears(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_on_spool: bool
) -> None:
    """The disk fills up between the commit and the delivery of the answer: the seal (or,
    with the database on the same disk, the database itself) cannot be written. The pass
    stops on the fault, the file waits in work/, nothing reaches out/, and what committed
    stays committed — the payments booked once, the answer owed in the outbox. Once space
    is freed the next pass delivers that same answer and books nothing again."""
    with tmpfs(tmp_path / "gw" / "spool"):
        inst = _installation(template, tmp_path, database_on_spool)
        try:
            filler: list[Path] = []
            deliver = outbox.deliver_pending

            def fill_then_deliver(*args: Any, **kwargs: Any) -> Any:
                if not filler:  # the moment after the commit: the disk is full now
                    inst.env.ledger.settle()  # the WAL copied into the database first
                    filler.append(fill(inst.spool, 0))
                return deliver(*args, **kwargs)

            monkeypatch.setattr(outbox, "deliver_pending", fill_then_deliver)
            before = inst.balance(A_MAIN)
            payments = [(f"D-{n}", "1.00") for n in range(PAYMENTS)]
            inst.drop(small_batch(*payments, msg_id="AFTER-COMMIT"), "after.xml")
            with pytest.raises(TransientError) as fault:
                inst.run()
            # With the database on the spool, whichever writes first meets the full disk:
            # the seal (ENOSPC) or the database (SQLite: "disk I/O error").
            expected = ["No space left"] + (["disk I/O error"] if database_on_spool else [])
            assert any(e in str(fault.value) for e in expected), fault.value
            assert inst.new_answers() == [] and list(inst.outbox().iterdir()) == []
            assert len(list(inst.env.spool.work("iestade-a").glob("*__after.xml"))) == 1
            # A pass while the disk is still full delivers the answer from its row, which
            # meets the full disk too: its temporary is not left behind (a tester found one
            # per retry in tmp/, each taking an inode while the disk was full).
            filler.append(fill(inst.spool, 0))  # what the failed round freed, taken again
            with pytest.raises(OSError, match=r"No space left|disk I/O error"):
                inst.run()
            assert left_behind(inst.env.spool.tmp()) == []

            filler[0].unlink()  # (the one file both fills grew)
            monkeypatch.setattr(outbox, "deliver_pending", deliver)
            assert inst.balance(A_MAIN) == before - PAYMENTS * 100  # committed: stays
            with inst.env.engine.connect() as conn:
                owed = conn.execute(
                    select(func.count()).where(db.outbox.c.delivered_at.is_(None))
                ).scalar_one()
            assert owed == 1
            result = inst.run()
            [answer] = inst.new_answers()
            assert answer.original_msg_id == "AFTER-COMMIT" and answer.group_status == "ACSC"
            assert [o.recovered for o in result.outcomes] == [True]
            assert inst.balance(A_MAIN) == before - PAYMENTS * 100  # not booked again
            assert inst.left_in() == []
            inst.run()
            assert inst.new_answers() == []
        finally:
            inst.close()


# -- an upload onto a full disk --------------------------------------------------------------------


def test_an_upload_onto_a_full_disk_fails_and_leaves_nothing(tmp_path: Path) -> None:
    """The built-in server with the spool full: the client's write fails with an SFTP
    error naming it, the partial upload is discarded at once (no temporary, no receipt),
    and the next upload, once there is room, lands normally."""
    base = tmp_path / "gw"
    with tmpfs(base / "spool", 4 * 1024 * 1024):
        install = make_install(base, database_url=f'"sqlite:///{tmp_path / "ledger.sqlite3"}"')
        with running_daemon(install) as daemon:
            daemon.wait_started()
            inbox = install.folder("alpha", "in")
            filler = fill(install.spool, 32 * 1024)
            client = sftp_client(install, "alpha-erp")
            try:
                handle = client.open("/in/too-much.xml", "wb")
                handle.set_pipelined(False)
                with pytest.raises(OSError) as refused:
                    for _ in range(16):
                        handle.write(b"y" * 16_384)
                assert "upload discarded" in str(refused.value), refused.value
                assert left_behind(inbox) == []  # discarded at the failed write, not later
                with contextlib.suppress(OSError):  # refused again: the upload is gone
                    handle.close()
                assert left_behind(inbox) == []
                assert list((install.spool / "receipts" / "alpha").iterdir()) == []
                filler.unlink()
                name = f"after-{uuid.uuid4().hex[:6]}.xml"
                with client.open(f"/in/{name}", "wb") as good:
                    good.write(b"<x/>")
            finally:
                close_sftp(client)
            assert wait_for(lambda: daemon.events("sftp.upload.closed") != [], 10)
            assert daemon.process.poll() is None, daemon.tail()
            discarded = daemon.events("sftp.upload.discarded")
            assert discarded and "No space left" in discarded[0]["reason"], discarded


def test_an_upload_onto_a_spool_out_of_inodes_is_refused_and_logged(tmp_path: Path) -> None:
    """Bytes to spare but no inode left: the upload cannot even be created. The client's
    open fails with the cause, and the operator reads why in the log (`sftp.upload.refused`,
    once a minute per user and cause): a tester saw nine uploads fail with nothing logged."""
    base = tmp_path / "gw"
    with tmpfs(base / "spool", 4 * 1024 * 1024, ",nr_inodes=400"):
        install = make_install(base, database_url=f'"sqlite:///{tmp_path / "ledger.sqlite3"}"')
        with running_daemon(install) as daemon:
            daemon.wait_started()
            stuffing = install.spool / ".inodes"
            stuffing.mkdir()
            with contextlib.suppress(OSError):
                for n in range(1_000):
                    (stuffing / str(n)).touch()
            client = sftp_client(install, "alpha-erp")
            try:
                for attempt in range(2):
                    with pytest.raises(OSError) as refused:
                        client.open(f"/in/no-inode-{attempt}.xml", "wb")
                    assert "No space left" in str(refused.value), refused.value
                shutil.rmtree(stuffing)
                with client.open("/in/after.xml", "wb") as good:
                    good.write(b"<x/>")
            finally:
                close_sftp(client)
            assert wait_for(lambda: daemon.events("sftp.upload.closed") != [], 10)
            assert daemon.process.poll() is None, daemon.tail()
            [logged] = daemon.events("sftp.upload.refused")  # the second one held back
            assert logged["level"] == "warning" and "No space left" in logged["reason"], logged
            assert logged["file"] == "no-inode-0.xml" and logged["user"] == "alpha-erp", logged
