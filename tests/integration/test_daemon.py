"""The real daemon (`ekase-gateway run`) as operators and clients meet it.

Each test starts `ekase-gateway run -c CONFIG` as a subprocess on a free
loopback port and talks to it with real clients: OpenSSH `sftp` and paramiko.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from bench import workday
from gateway.inbound.reader import inline_bytes_max
from gateway.samples import payroll, write
from gateway.workers import worker_niceness
from ledger import calendar, schema
from tests.integration.daemon_fixtures import (
    FUNDED_MINOR,
    Daemon,
    Install,
    answers,
    answers_per_msg_id,
    batch,
    close_sftp,
    drop,
    iban,
    ledger_balance_minor,
    make_install,
    openssh_sftp,
    running_daemon,
    sftp_client,
    today_riga,
    wait_for,
)

# Big enough that processing takes several seconds on a laptop (~0.3 ms per transaction),
# small enough for the suite's time budget; EKASE_TEST_BIG_BATCH=100000 for the full size.
BIG_BATCH_TRANSACTIONS = int(os.environ.get("EKASE_TEST_BIG_BATCH", "150000"))
LS_SECONDS_MAX = 1.0


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the tests that only add files. The rescan interval is long on purpose:
    files found quickly were found by the upload hook or the watcher, not by the timer."""
    install = make_install(
        tmp_path_factory.mktemp("shared"), rescan_seconds=60, settle_seconds=2
    )
    with running_daemon(install) as daemon:
        daemon.wait_started()
        yield daemon


def _answered(install: Install, client: str, msg_id: str, timeout: float = 15.0) -> list[Path]:
    out = install.folder(client, "out")
    wait_for(lambda: answers_per_msg_id(out)[msg_id] > 0, timeout)
    return [a.path for a in answers(out) if a.original_msg_id == msg_id]


# -- uploads and answers -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_openssh_upload_is_answered_and_answer_downloads(shared: Daemon, tmp_path: Path) -> None:
    """An ERP uploads with OpenSSH `sftp`, and downloads the sealed pain.002 from /out."""
    install = shared.install
    msg_id = f"OSSH-{uuid.uuid4().hex[:8]}"
    (tmp_path / "upload.xml").write_bytes(batch(msg_id, "alpha", 3))
    openssh_sftp(install, "alpha-erp", ["put upload.xml /in/upload.xml"], tmp_path)
    found = _answered(install, "alpha", msg_id)
    assert len(found) == 1, f"no answer for {msg_id}; {shared.tail()}"
    name = found[0].name
    openssh_sftp(install, "alpha-erp", [f"get /out/{name}", f"get /out/{name}.sig"], tmp_path)
    assert (tmp_path / name).read_bytes() == found[0].read_bytes()
    assert (tmp_path / f"{name}.sig").stat().st_size > 0
    assert answers(tmp_path)[0].group_status in ("ACSC", "ACCP")


@pytest.mark.timeout(60)
def test_paramiko_upload_is_answered(shared: Daemon, tmp_path: Path) -> None:
    """A paramiko client's upload is answered in /out within seconds, with every payment listed."""
    install = shared.install
    msg_id = f"PMK-{uuid.uuid4().hex[:8]}"
    client = sftp_client(install, "beta-erp")
    try:
        with client.open("/in/batch.xml", "wb") as handle:
            handle.write(batch(msg_id, "beta", 5))
        assert wait_for(
            lambda: answers_per_msg_id(install.folder("beta", "out"))[msg_id] == 1, 15
        ), shared.tail()
        name = next(
            a.path.name for a in answers(install.folder("beta", "out"))
            if a.original_msg_id == msg_id
        )
        client.get(f"/out/{name}", str(tmp_path / name))
    finally:
        close_sftp(client)
    answer = answers(tmp_path)[0]
    assert sum(answer.tx_statuses.values()) == 5


def _shelved(install: Install, client: str, name: str) -> list[Path]:
    """Every upload of `client` called `name` the gateway has shelved, oldest first (by
    the receipt's time: uploads within one second share the second of their claim name)."""
    found = [
        p
        for kind in ("archive", "rejected", "duplicates")
        for p in (install.spool / kind / client).glob(f"*/*__{name}")
    ]

    def received(path: Path) -> str:
        receipt = path.with_name(path.name + ".receipt.json")
        return str(json.loads(receipt.read_text())["received_at"])

    return sorted(found, key=received)


@pytest.mark.timeout(90)
def test_the_same_file_uploaded_three_times_is_kept_three_times(
    shared: Daemon, tmp_path: Path
) -> None:
    """An ERP puts the same file with OpenSSH `sftp` three times under the same name: each
    upload is answered, and the treasury keeps all three, each with its own receipt
    (when it arrived) and findings; the first stays in archive/ exactly as it was."""
    install = shared.install
    msg_id = f"AGAIN-{uuid.uuid4().hex[:8]}"
    name = f"{msg_id}.xml"
    (tmp_path / name).write_bytes(batch(msg_id, "alpha", 2))
    kept: dict[Path, tuple[bytes, int]] = {}
    for n in range(1, 4):
        openssh_sftp(install, "alpha-erp", [f"put {name} /in/{name}"], tmp_path)
        assert wait_for(lambda n=n: len(_shelved(install, "alpha", name)) == n, 60), shared.tail()
        for path, (data, mtime) in kept.items():
            assert (path.read_bytes(), path.stat().st_mtime_ns) == (data, mtime), path
        for path in _shelved(install, "alpha", name):
            for part in (path, *(path.with_name(path.name + s) for s in SIDECARS)):
                if part.exists():
                    kept.setdefault(part, (part.read_bytes(), part.stat().st_mtime_ns))
    shelved = _shelved(install, "alpha", name)
    assert [p.parts[-4] for p in shelved] == ["archive", "duplicates", "duplicates"]
    assert answers_per_msg_id(install.folder("alpha", "out"))[msg_id] == 3
    received = []
    for path in shelved:
        assert path.read_bytes() == (tmp_path / name).read_bytes()
        receipt = json.loads(path.with_name(path.name + ".receipt.json").read_text())
        assert receipt["file_name"] == name and receipt["sftp_user"] == "alpha-erp"
        findings = path.with_name(path.name + ".findings.txt").read_text()
        assert "by alpha-erp from 127.0.0.1" in findings
        received.append(receipt["received_at"])
    assert len(set(received)) == 3, received
    assert shelved[0].with_name(shelved[0].name + ".sig").exists()


SIDECARS = (".receipt.json", ".findings.txt", ".sig")


@pytest.mark.timeout(60)
def test_file_dropped_into_in_is_picked_up_by_the_watcher(shared: Daemon) -> None:
    """OpenSSH mode: a file that appears in in/ without the built-in server is answered at once,
    not at the next rescan (60 s here)."""
    install = shared.install
    msg_id = f"DROP-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    drop(install.folder("alpha", "in"), "dropped.xml", batch(msg_id, "alpha", 2))
    assert wait_for(
        lambda: answers_per_msg_id(install.folder("alpha", "out"))[msg_id] == 1, 10
    ), shared.tail()
    assert time.monotonic() - started < 10
    # Its log line says which of the workers (two by default) processed it; the line
    # follows the delivery of its answer (and the shelving), so it is waited for too.
    def logged() -> list[dict[str, object]]:
        return [e for e in shared.events("file.processed") if e.get("msg_id") == msg_id]

    assert wait_for(lambda: bool(logged()), 10), shared.tail()
    [line] = logged()
    assert line["worker"] in (0, 1), line


def _answered_whole(shared: Daemon, msg_id: str, payments: int) -> None:
    """The file `msg_id` is answered once, every one of its payments accepted (a file
    taken half written would be FF01)."""
    out = shared.install.folder("alpha", "out")
    assert wait_for(lambda: answers_per_msg_id(out)[msg_id] == 1, 15), shared.tail()
    answer = next(a for a in answers(out) if a.original_msg_id == msg_id)
    assert answer.group_status in ("ACSC", "ACCP"), answer
    assert sum(answer.tx_statuses.values()) == payments


@pytest.mark.timeout(60)
def test_file_written_in_place_waits_until_it_settles(shared: Daemon) -> None:
    """OpenSSH writes uploads in place: a file still being written is not taken half-done
    (which would be rejected as not well-formed); it is taken once it stopped changing."""
    install = shared.install
    msg_id = f"SLOW-{uuid.uuid4().hex[:8]}"
    data = batch(msg_id, "alpha", 20)
    path = install.folder("alpha", "in") / "slow.xml"
    with open(path, "wb") as handle:
        for start in range(0, len(data), len(data) // 3 + 1):
            handle.write(data[start : start + len(data) // 3 + 1])
            handle.flush()
            time.sleep(0.7)  # below settle_seconds = 2
    _answered_whole(shared, msg_id, 20)


@pytest.mark.timeout(60)
def test_file_still_open_for_writing_is_not_taken_however_long_it_pauses(
    shared: Daemon,
) -> None:
    """OpenSSH writes uploads in place: a network stall longer than settle_seconds in the
    middle of one (its file looks settled, even old) does not get the half written file
    taken, answered FF01 and archived while the writer goes on writing into it; it is
    taken once its writer closed it."""
    install = shared.install
    msg_id = f"STALL-{uuid.uuid4().hex[:8]}"
    data = batch(msg_id, "alpha", 20)
    path = install.folder("alpha", "in") / "stalled.xml"
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        old = time.time() - 60
        os.utime(path, (old, old))  # settled by every measure of time
        time.sleep(4)  # settle_seconds = 2, and a rescan or two
        assert answers_per_msg_id(install.folder("alpha", "out"))[msg_id] == 0, shared.tail()
        handle.write(data[len(data) // 2 :])
    _answered_whole(shared, msg_id, 20)


@pytest.mark.timeout(120)
def test_concurrent_clients_every_file_answered_exactly_once(shared: Daemon) -> None:
    """20 clients uploading 10 files each at the same time: every file gets exactly one answer."""
    install = shared.install
    run = uuid.uuid4().hex[:6]
    errors: list[BaseException] = []
    expected: dict[str, str] = {}

    def upload(worker: int) -> None:
        client_id = ("alpha", "beta")[worker % 2]
        try:
            client = sftp_client(install, f"{client_id}-erp")
            try:
                for n in range(10):
                    msg_id = f"C{run}-{worker:02d}-{n}"
                    with client.open(f"/in/{msg_id}.xml", "wb") as handle:
                        handle.write(batch(msg_id, client_id, 2))
            finally:
                close_sftp(client)
        except BaseException as exc:  # reported below
            errors.append(exc)

    for worker in range(20):
        for n in range(10):
            expected[f"C{run}-{worker:02d}-{n}"] = ("alpha", "beta")[worker % 2]
    threads = [threading.Thread(target=upload, args=(w,)) for w in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    outs = (install.folder("alpha", "out"), install.folder("beta", "out"))

    def ours() -> dict[str, int]:
        counts = answers_per_msg_id(*outs)
        return {m: counts[m] for m in expected}

    wait_for(lambda: all(n >= 1 for n in ours().values()), 90, interval=0.5)
    time.sleep(1.0)  # a second answer, if any, would come right after the first
    counts = ours()
    wrong = {m: n for m, n in counts.items() if n != 1}
    assert not wrong, f"{wrong}; {shared.tail()}"


@pytest.mark.timeout(120)
def test_sftp_stays_responsive_during_a_big_batch(shared: Daemon) -> None:
    """While a big batch is processed, a client's `ls` over SFTP still answers within a second."""
    install = shared.install
    inbox = install.folder("bulk", "in")
    tmp = inbox / ".big.xml.writing"
    with open(tmp, "wb") as handle:
        write(payroll(iban("bulk"), BIG_BATCH_TRANSACTIONS, msg_id="BIG-1", amount_minor=100,
                      execution_date=today_riga()), handle)
    past = time.time() - 60
    os.utime(tmp, (past, past))
    os.replace(tmp, inbox / "big.xml")
    work = install.folder("bulk", "work")
    assert wait_for(lambda: any(work.iterdir()), 15, interval=0.01), "big batch never claimed"
    connect_seconds: list[float] = []
    ls_seconds: list[float] = []
    for _ in range(5):
        started = time.monotonic()
        client = sftp_client(install, "alpha-erp")
        connect_seconds.append(time.monotonic() - started)
        try:
            for folder in ("/in", "/out"):
                started = time.monotonic()
                client.listdir(folder)
                ls_seconds.append(time.monotonic() - started)
        finally:
            close_sftp(client)
        time.sleep(0.2)
    still_busy = any(work.iterdir())
    print(f"during the big batch: connect+auth max {max(connect_seconds):.3f}s, "
          f"ls max {max(ls_seconds):.3f}s (n={len(ls_seconds)})")
    assert still_busy, "the batch finished before the measurements: make it bigger"
    assert max(ls_seconds) < LS_SECONDS_MAX, ls_seconds
    assert max(connect_seconds) < LS_SECONDS_MAX, connect_seconds
    assert wait_for(lambda: answers_per_msg_id(install.folder("bulk", "out"))["BIG-1"] == 1, 100,
                    interval=0.5)


# -- stopping --------------------------------------------------------------------------------


class NotifySocket:
    """A stand-in for systemd's notification socket, in the abstract namespace, read while
    the daemon runs, as systemd reads it: the daemon never waits on a full queue (its
    pings are dropped), so a reader that waited for the end lost STOPPING=1 on a slow
    machine, once the watchdog pings of a long run had filled the queue."""

    def __init__(self) -> None:
        self.name = f"@ekase-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self._open = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while self._open:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def drain(self) -> list[str]:
        """What was received, once nothing more has come for a moment."""
        seen = -1
        while seen != len(self.messages):
            seen = len(self.messages)
            time.sleep(0.3)
        return list(self.messages)

    def close(self) -> None:
        self._open = False
        self._reader.join(timeout=2)
        self.sock.close()


@pytest.mark.timeout(90)
def test_sigterm_finishes_the_file_in_hand_and_exits_zero(tmp_path: Path) -> None:
    """SIGTERM during a batch: that batch is finished and answered, no new file is started,
    the daemon exits 0; systemd hears READY=1, WATCHDOG=1 and STOPPING=1."""
    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0)
    inbox = install.folder("bulk", "in")
    drop(inbox, "first.xml", batch("TERM-BIG", "bulk", 6000), age_seconds=120)
    for n in range(3):
        drop(inbox, f"later-{n}.xml", batch(f"TERM-LATER-{n}", "bulk", 2), age_seconds=60)
    notify = NotifySocket()
    try:
        env = {"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "400000"}
        with running_daemon(install, env=env) as daemon:
            work = install.folder("bulk", "work")
            assert wait_for(lambda: any(work.iterdir()), 20, interval=0.01), daemon.tail()
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(60) == 0
        messages = "\n".join(notify.drain()).splitlines()
    finally:
        notify.close()
    assert answers_per_msg_id(install.folder("bulk", "out")) == {"TERM-BIG": 1}
    assert not list(work.iterdir()), "the file in hand was left unfinished"
    assert sorted(p.name for p in inbox.iterdir()) == ["later-0.xml", "later-1.xml", "later-2.xml"]
    assert "READY=1" in messages
    assert "WATCHDOG=1" in messages
    assert messages[-1] == "STOPPING=1" or "STOPPING=1" in messages
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    assert daemon.events("daemon.stopped")


# -- crashes -----------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_kill_9_during_processing_then_restart_answers_each_file_once(
    tmp_path: Path, database_url: str
) -> None:
    """A daemon killed with SIGKILL in the middle of a batch, twice: after restarting, every
    uploaded file has exactly one answer and the ledger moved each booked payment once —
    on a SQLite file and on PostgreSQL. The files are over `inline_bytes_max`, so each has
    a transaction of its own and the kill lands between files too (small files committed
    in groups are killed at random moments in test_crash.py)."""
    install = make_install(
        tmp_path / "gw", rescan_seconds=1, settle_seconds=0, database_url=f'"{database_url}"'
    )
    # The daemons run on a business morning whatever day it is (the bench's pinned clock,
    # one pin for every start): what is killed is always booking payments.
    moment = workday.morning()
    pin = workday.pinned(moment)
    inbox = install.folder("bulk", "in")
    files = 8
    per_file = 3300  # ~1.1 MB: read by a reading child, one file per transaction
    for n in range(files):
        data = batch(f"CRASH-{n:02d}", "bulk", per_file, day=moment.date())
        drop(inbox, f"crash-{n:02d}.xml", data, age_seconds=100 - n)
    assert min(p.stat().st_size for p in inbox.iterdir()) > inline_bytes_max
    out = install.folder("bulk", "out")
    work = install.folder("bulk", "work")
    killed_mid_file = 0
    for crash in range(2):
        with running_daemon(install, env=pin, name=f"crash{crash}") as daemon:
            target = sum(answers_per_msg_id(out).values()) + 2

            def progressed(target: int = target) -> bool:
                return sum(answers_per_msg_id(out).values()) >= target and any(work.iterdir())

            assert wait_for(progressed, 60, interval=0.005), daemon.tail()
            daemon.process.kill()
            daemon.wait(10)
            killed_mid_file += bool(any(work.iterdir()))
    assert killed_mid_file >= 1, "the kill never landed while a file was in work/"
    with running_daemon(install, env=pin, name="final") as daemon:
        daemon.wait_started()
        expected = {f"CRASH-{n:02d}" for n in range(files)}
        assert wait_for(
            lambda: set(answers_per_msg_id(out)) >= expected, 60, interval=0.2
        ), daemon.tail()
        time.sleep(1.5)  # let a wrongly repeated answer show up before counting
        counts = answers_per_msg_id(out)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert {m: counts[m] for m in expected} == dict.fromkeys(expected, 1)
    assert not list(inbox.iterdir()) and not list(work.iterdir())

    booked = sum(a.tx_statuses["ACSC"] for a in answers(out))
    assert booked == files * per_file
    assert ledger_balance_minor(install, "bulk") == FUNDED_MINOR - booked * 100
    engine = create_engine(install.settings.database_url)
    try:
        with engine.connect() as conn:
            account_id = conn.execute(
                select(schema.accounts.c.id).where(schema.accounts.c.iban == iban("bulk"))
            ).scalar_one()
            debited = -conn.execute(
                select(func.coalesce(func.sum(schema.postings.c.amount_minor), 0)).where(
                    schema.postings.c.account_id == account_id, schema.postings.c.amount_minor < 0
                )
            ).scalar_one()
            postings = conn.execute(
                select(func.sum(schema.postings.c.amount_minor))
                .where(schema.postings.c.account_id == account_id)
            ).scalar_one()
    finally:
        engine.dispose()
    # Batch bookings may post one transfer per payment information: compare amounts, not rows.
    assert (debited or 0) == booked * 100, "a payment was posted more (or less) often than reported"
    assert postings == FUNDED_MINOR - booked * 100


@pytest.mark.timeout(90)
def test_the_daemon_starts_for_everyone_when_one_clients_folder_cannot_be_made(
    tmp_path: Path,
) -> None:
    """Client beta's in/ is a file when the daemon starts: it refused to start for every
    client (the SFTP server's start made every client's folders and took the failure for
    "cannot listen", exit 2, which systemd does not restart). Now it starts, holds beta
    (`client.fault`) and answers alpha's upload."""
    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0)
    beta_in = install.folder("beta", "in")
    shutil.rmtree(beta_in)
    beta_in.write_text("not a folder\n")
    with running_daemon(install) as daemon:
        daemon.wait_started()
        msg_id = f"HELD-{uuid.uuid4().hex[:8]}"
        (tmp_path / "upload.xml").write_bytes(batch(msg_id, "alpha", 2))
        openssh_sftp(install, "alpha-erp", ["put upload.xml /in/upload.xml"], tmp_path)
        assert len(_answered(install, "alpha", msg_id)) == 1, daemon.tail()
        assert wait_for(lambda: bool(daemon.events("client.fault")), 15), daemon.tail()
        [fault] = daemon.events("client.fault")
        assert fault["client"] == "beta" and fault["path"] == str(beta_in), fault


@pytest.mark.timeout(90)
def test_names_only_openssh_lets_in_are_answered_and_stop_no_one(tmp_path: Path) -> None:
    """OpenSSH takes any name the filesystem does: 251 bytes (its receipt's name would be
    too long: the daemon failed on every start) or bytes that are not UTF-8 (it failed
    making its claim's name). Both are answered and archived, and the daemon goes on."""
    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0)
    inbox = install.folder("alpha", "in")
    long_name = "Z" * 247 + ".xml"
    (inbox / long_name).write_bytes(batch("LONG-NAME", "alpha", 1))
    with open(os.path.join(os.fsencode(inbox), b"bad\xff.xml"), "wb") as odd:
        odd.write(batch("ODD-NAME", "alpha", 1))
    with running_daemon(install) as daemon:
        daemon.wait_started()
        for msg_id in ("LONG-NAME", "ODD-NAME"):
            assert len(_answered(install, "alpha", msg_id)) == 1, daemon.tail()
        assert daemon.process.poll() is None, daemon.tail()
        # (the answer is in out/ a moment before the worker's line is in the log)
        wanted = {"bad\\xff.xml", long_name}
        assert wait_for(
            lambda: wanted <= {e["file"] for e in daemon.events("file.processed")}, 10
        ), daemon.tail()
    assert os.listdir(os.fsencode(inbox)) == []


def _worker_pids(daemon_pid: int) -> list[int]:
    """The daemon's worker processes (spawned: `multiprocessing.spawn` in their command)."""
    children = subprocess.run(["pgrep", "-P", str(daemon_pid)], capture_output=True, text=True)
    return [
        int(pid) for pid in children.stdout.split()
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]  # fmt: skip


@pytest.mark.timeout(120)
def test_a_worker_killed_stops_the_daemon_in_one_line_and_a_restart_resumes_its_file(
    tmp_path: Path,
) -> None:
    """A worker the OOM killer (here SIGKILL) takes in the middle of a batch: the daemon
    stops, exit 1, saying so in one line and one `daemon.failed` event (it printed a
    Python traceback); started again, it answers the file once."""
    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0)
    moment = workday.morning()
    pin = workday.pinned(moment)
    inbox, work = install.folder("bulk", "in"), install.folder("bulk", "work")
    drop(inbox, "big.xml", batch("WORKER-KILLED", "bulk", 6000, day=moment.date()),
         age_seconds=60)  # fmt: skip
    with running_daemon(install, env=pin, name="killed") as daemon:
        assert wait_for(lambda: any(work.iterdir()), 30, interval=0.01), daemon.tail()
        pids = _worker_pids(daemon.process.pid)
        assert pids, daemon.tail()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert daemon.wait(60) == 1, daemon.tail()
        text = daemon.log_path.read_text()
        assert "Traceback" not in text, daemon.tail()
        assert [e["level"] for e in daemon.events("daemon.failed")] == ["error"], daemon.tail()
        assert "ekase-gateway: worker " in text and "ended (exit code -9)" in text, daemon.tail()
    out = install.folder("bulk", "out")
    with running_daemon(install, env=pin, name="again") as daemon:
        assert wait_for(lambda: "WORKER-KILLED" in answers_per_msg_id(out), 60), daemon.tail()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert answers_per_msg_id(out) == {"WORKER-KILLED": 1}
    assert not list(work.iterdir())


@contextlib.contextmanager
def _a_file_in_hand(
    tmp_path: Path, msg_id: str, payments: int
) -> Iterator[tuple[Install, Daemon, list[int]]]:
    """A running daemon (two workers) whose worker has claimed a big file of client bulk's;
    its workers' process ids."""
    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0)
    moment = workday.morning()
    inbox, work = install.folder("bulk", "in"), install.folder("bulk", "work")
    drop(inbox, "big.xml", batch(msg_id, "bulk", payments, day=moment.date()), age_seconds=60)
    with running_daemon(install, env=workday.pinned(moment), name=msg_id.lower()) as daemon:
        assert wait_for(lambda: any(work.iterdir()), 30, interval=0.01), daemon.tail()
        pids = _worker_pids(daemon.process.pid)
        assert pids, daemon.tail()
        yield install, daemon, pids


@pytest.mark.timeout(120)
def test_a_worker_that_dies_while_the_daemon_stops_is_a_failure_not_a_clean_stop(
    tmp_path: Path,
) -> None:
    """SIGTERM, and a worker killed before it could finish the group in hand: the daemon
    said `daemon.stopped` and exited 0 as if all had ended well (a reviewer), so systemd
    took it for a clean stop. Now it exits 1 with `worker.ended` and `daemon.failed`."""
    with _a_file_in_hand(tmp_path, "STOP-KILLED", 6000) as (_, daemon, pids):
        for pid in pids:  # held where it is: it cannot finish its group and exit 0
            os.kill(pid, signal.SIGSTOP)
        daemon.signal(signal.SIGTERM)
        assert wait_for(lambda: daemon.events("daemon.stopping"), 30), daemon.tail()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert daemon.wait(60) == 1, daemon.tail()
        ended = daemon.events("worker.ended")
        assert [(e["level"], e["exit_code"]) for e in ended] == [("error", -9)] * len(pids), (
            daemon.tail()
        )
        assert [e["level"] for e in daemon.events("daemon.failed")] == ["error"], daemon.tail()
        assert not daemon.events("daemon.stopped"), daemon.tail()


@pytest.mark.timeout(120)
def test_one_ctrl_c_to_the_process_group_is_one_stop_for_every_worker(tmp_path: Path) -> None:
    """Ctrl-C reaches the daemon and its workers alike: the daemon's "stop" can reach a
    busy worker before its own signal, which it took for a second signal and left at once
    with exit 1 (a reviewer) — now a failure of the daemon. A worker counts its own
    signals: the file in hand is finished, and the daemon stops cleanly."""
    with _a_file_in_hand(tmp_path, "GROUP-SIGNAL", 20000) as (install, daemon, pids):
        daemon.signal(signal.SIGINT)
        assert wait_for(lambda: daemon.events("daemon.stopping"), 30), daemon.tail()
        reached = 0
        for pid in pids:  # the same Ctrl-C, reaching the workers after the daemon's word
            with contextlib.suppress(ProcessLookupError):  # (an idle one may have ended)
                os.kill(pid, signal.SIGINT)
                reached += 1
        assert reached, "the worker with the file had ended: nothing was tried"
        assert daemon.wait(60) == 0, daemon.tail()
        assert not daemon.events("worker.ended") and daemon.events("daemon.stopped")
    assert answers_per_msg_id(install.folder("bulk", "out")) == {"GROUP-SIGNAL": 1}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", ["alpha", "beta"])  # of worker 0, of worker 1
def test_a_request_for_yesterdays_statement_finds_it_after_a_night_the_daemon_was_down(
    tmp_path: Path, client: str
) -> None:
    """The daemon was down for twelve business days; started this morning with a request
    for yesterday's camt.053 waiting, it answered "no statement was issued" (admi.002) and
    wrote the statement a moment later (ten days a pass). Every day missed is stated at
    each worker's first pass of the day, before its files: the request gets its copy —
    also from a client of worker 1 (only the leader stated them, and worker 1 answered
    first: a reviewer)."""
    from tests.unit import pull_samples

    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0, workers=2)
    before = workday.morning()
    day = before.date()
    for _ in range(12):  # more than a catch-up call states (`catch_up_business_days_max`)
        day = calendar.next_business_day(day)
    yesterday = calendar.previous_business_day(day)
    inbox, out = install.folder(client, "in"), install.folder(client, "out")
    drop(inbox, "pay.xml", batch("YESTERDAY", client, 1, day=before.date()))
    with running_daemon(install, env=workday.pinned(before), name="before") as daemon:
        assert wait_for(lambda: "YESTERDAY" in answers_per_msg_id(out), 30), daemon.tail()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert not list(out.glob("*camt.053*"))  # stopped before the close: nothing stated
    wanted = pull_samples.Wanted(
        iban=iban(client), from_date=yesterday.isoformat(), to_date=yesterday.isoformat()
    )
    request = pull_samples.to_bytes(pull_samples.camt060("05", (wanted,), msg_id="ASK-1"))
    drop(inbox, "ask.xml", request)
    on_the_day = dt.datetime.combine(day, dt.time(9, 0), before.tzinfo)
    with running_daemon(install, env=workday.pinned(on_the_day), name="day") as daemon:
        def answered() -> bool:
            refused = any(out.glob("*admi.002.001.01_*.xml"))
            copied = any(b"<CpyDplctInd>DUPL" in p.read_bytes() for p in out.glob("*camt.053*.xml"))
            return not list(inbox.iterdir()) and (refused or copied)

        assert wait_for(answered, 60), daemon.tail()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert not list(out.glob("*admi.002*")), [p.name for p in out.iterdir()]
    copies = [p for p in out.glob("*camt.053*.xml") if b"<CpyDplctInd>DUPL" in p.read_bytes()]
    assert len(copies) == 1, [p.name for p in out.iterdir()]


def _niceness(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[16])  # the 19th field of stat(5): after pid, comm, state …


@pytest.mark.timeout(120)
def test_the_workers_book_at_a_lower_priority_than_the_sftp_server(tmp_path: Path) -> None:
    """SPEC §9: an operator's commands answer while a big file keeps the cores busy; the
    workers (and their reading children) run `worker_niceness` below the daemon, whose
    SFTP server stays at the priority it was started with."""
    install = make_install(tmp_path / "gw", rescan_seconds=1, settle_seconds=0)
    with running_daemon(install, env=workday.pinned(workday.morning()), name="nice") as daemon:
        daemon.wait_started()
        base, lower = _niceness(daemon.process.pid), [worker_niceness] * install.settings.workers

        def workers_lower() -> bool:
            return [_niceness(p) - base for p in _worker_pids(daemon.process.pid)] == lower

        assert wait_for(workers_lower, 20), daemon.tail()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
