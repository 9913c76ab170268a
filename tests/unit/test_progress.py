"""`gateway.progress`: the heartbeat and the progress of a long file, with a fake clock."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import progress
from gateway.clock import FixedClock
from gateway.faults import Active, ClientFault
from gateway.progress import FileProgress, Heartbeat, read_heartbeat, read_progress

START = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


def _progress(spool: Path, clock: FixedClock, total: int | None = 190_000) -> FileProgress:
    return FileProgress(spool, "alpha", "20261125T080000-ab__payroll.xml", "payroll.xml", total,
                        clock)


def test_progress_line_every_interval_with_done_of_total_and_rate(tmp_path: Path) -> None:
    """A long file logs `file.progress` with payments done of total and the rate per second
    at most every interval; chunks in between cost a clock reading and log nothing."""
    clock = FixedClock(START)
    file = _progress(tmp_path, clock)
    with capture_logs() as logged:
        clock.advance(dt.timedelta(seconds=1))
        file.advance(2_000)  # within the first interval: nothing shown
        clock.advance(dt.timedelta(seconds=1.5))
        file.advance(10_000)
        clock.advance(dt.timedelta(seconds=1))
        file.advance(14_000)  # 1 s after the last line: nothing
        clock.advance(dt.timedelta(seconds=1.5))
        file.advance(20_000)
    lines = [e for e in logged if e["event"] == "file.progress"]
    assert [(e["payments_done"], e["payments_total"]) for e in lines] == [
        (10_000, 190_000),
        (20_000, 190_000),
    ]
    assert [e["rate_per_second"] for e in lines] == [4_000.0, 4_000.0]  # 10,000 in 2.5 s …
    assert [e["elapsed_seconds"] for e in lines] == [2.5, 5.0]
    assert lines[0]["client"] == "alpha" and lines[0]["file"] == "payroll.xml"


def test_progress_file_is_written_for_status_and_removed_on_close(tmp_path: Path) -> None:
    """`status` (another process) reads what the run wrote; once the file is done, no trace
    remains; a file done within the interval never writes one."""
    clock = FixedClock(START)
    file = _progress(tmp_path, clock)
    clock.advance(dt.timedelta(seconds=3))
    file.advance(6_000)
    [info] = read_progress(tmp_path)
    assert (info.client_id, info.original_name, info.done, info.total_declared) == (
        "alpha", "payroll.xml", 6_000, 190_000
    )
    assert info.pid == os.getpid() and info.updated_at == START + dt.timedelta(seconds=3)
    assert info.rate_per_second == 2_000.0
    file.close()
    assert read_progress(tmp_path) == []

    quick = _progress(tmp_path, clock, total=None)
    quick.advance(20)
    quick.close()
    assert not progress.progress_dir(tmp_path).exists() or not any(
        progress.progress_dir(tmp_path).iterdir()
    )


def test_zero_interval_shows_every_chunk(tmp_path: Path) -> None:
    """With the interval set to 0 every chunk is shown (how the integration test sees it)."""
    clock = FixedClock(START)
    file = FileProgress(tmp_path, "a", "c__f.xml", "f.xml", 4_000, clock, interval_seconds=0)
    with capture_logs() as logged:
        file.advance(2_000)
        file.advance(4_000)
    assert [e["payments_done"] for e in logged] == [2_000, 4_000]


def test_heartbeat_is_read_back_and_removed_on_a_clean_stop(tmp_path: Path) -> None:
    """The daemon's heartbeat names its pid, start and last beat; it is gone after a stop."""
    clock = FixedClock(START)
    beat = Heartbeat(tmp_path, clock, pid=4242)
    clock.advance(dt.timedelta(seconds=5))
    beat.beat()
    info = read_heartbeat(tmp_path)
    assert info is not None
    assert (info.pid, info.started_at, info.heartbeat_at) == (
        4242, START, START + dt.timedelta(seconds=5)
    )
    written = progress.daemons_dir(tmp_path) / f"{progress.this_host()}-4242.json"
    assert json.loads(written.read_text())["pid"] == 4242
    assert beat.fresh()
    clock.advance(dt.timedelta(seconds=progress.heartbeat_stale_seconds + 1))
    assert not beat.fresh()
    beat.stop()
    assert read_heartbeat(tmp_path) is None


def test_two_daemons_on_one_spool_each_keep_their_own_heartbeat(tmp_path: Path) -> None:
    """Two daemons share a spool (SPEC §9): the second stopping cleanly leaves the first's
    heartbeat, and status still sees it running; the heartbeat a killed daemon left is
    cleared by the next daemon of its host, once its pid is gone."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    clock = FixedClock(START)
    first = Heartbeat(tmp_path, clock, pid=os.getpid())
    first.beat()
    second = Heartbeat(tmp_path, clock, pid=int(gone.stdout))
    second.beat()
    assert {b.pid for b in progress.read_heartbeats(tmp_path)} == {os.getpid(), int(gone.stdout)}
    clock.advance(dt.timedelta(seconds=5))
    first.beat()
    second.stop()
    [left] = progress.read_heartbeats(tmp_path)
    assert left.pid == os.getpid() and left.running(clock.now(), left.alive(clock.now()))
    killed = Heartbeat(tmp_path, clock, pid=int(gone.stdout))
    killed.beat()  # and never stops: killed
    assert len(progress.read_heartbeats(tmp_path)) == 2
    Heartbeat(tmp_path, clock, pid=os.getpid())  # the host's next daemon starts
    assert [b.pid for b in progress.read_heartbeats(tmp_path)] == [os.getpid()]


def test_a_daemon_on_another_host_is_judged_by_the_age_of_its_beat(tmp_path: Path) -> None:
    """Its pid means nothing here: running while it beats, stopped once it does not."""
    clock = FixedClock(START)
    beat = Heartbeat(tmp_path, clock, pid=999_999_999)
    beat.host = "node-b"
    beat.path = progress.daemons_dir(tmp_path) / "node-b-999999999.json"
    beat.beat()
    [info] = progress.read_heartbeats(tmp_path)
    assert info.host == "node-b" and info.alive(START + dt.timedelta(seconds=10))
    assert not info.alive(START + dt.timedelta(minutes=5))
    Heartbeat(tmp_path, clock, pid=os.getpid())  # this host's daemon leaves node-b's alone
    assert [b.host for b in progress.read_heartbeats(tmp_path)] == ["node-b"]


def test_a_heartbeat_is_running_only_while_fresh_and_its_process_exists(tmp_path: Path) -> None:
    """Old beats or a vanished pid mean the daemon is not running, whatever the file says."""
    clock = FixedClock(START)
    Heartbeat(tmp_path, clock, pid=1).beat()
    info = read_heartbeat(tmp_path)
    assert info is not None
    assert info.running(START + dt.timedelta(seconds=10), alive=True)
    assert not info.running(START + dt.timedelta(seconds=10), alive=False)
    assert not info.running(START + dt.timedelta(minutes=5), alive=True)


def test_progress_of_a_process_that_died_is_removed_at_daemon_start(tmp_path: Path) -> None:
    """A run killed mid-file leaves its progress file; the next daemon clears it (only those
    of processes that are gone)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    clock = FixedClock(START)
    mine = FileProgress(tmp_path, "a", "c1__f.xml", "f.xml", 10, clock, interval_seconds=0)
    mine.advance(1)
    dead = progress.progress_dir(tmp_path) / "a__c2__g.xml.json"
    dead.write_text(json.dumps({**json.loads(mine.path.read_text()), "claim_name": "c2__g.xml",
                                "pid": int(gone.stdout)}))
    assert len(read_progress(tmp_path)) == 2
    assert progress.remove_orphaned_progress(tmp_path) == 1
    assert [p.claim_name for p in read_progress(tmp_path)] == ["c1__f.xml"]


def _disk_full(monkeypatch: pytest.MonkeyPatch, *, in_place_too: bool = False) -> None:
    """The spool's disk full, at the write boundary: a new file gets no block (ENOSPC as
    its bytes are written), while a file's own bytes can be written over in place, as on
    ext4, XFS or tmpfs (`in_place_too`: not even those, as on a copy-on-write filesystem)."""

    def no_space(*args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_space)
    if in_place_too:
        monkeypatch.setattr(os, "pwrite", no_space)


def test_on_a_full_spool_disk_the_heartbeat_still_carries_the_fault_to_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the spool's disk is full the daemon's beats still reach `status` (another
    process, reading the heartbeat file): it sees the daemon running, with the disk_full
    fault it waits out, not `not responding`; once there is room the beat is written as
    before."""
    clock = FixedClock(START)
    beat = Heartbeat(tmp_path, clock, pid=os.getpid())
    beat.beat()
    _disk_full(monkeypatch)
    fault = Active("disk_full", "OSError: [Errno 28] No space left on device", START, START,
                   1.0, 1)
    beat.fault = fault
    for _ in range(12):  # a minute of beats on the full disk
        clock.advance(dt.timedelta(seconds=progress.heartbeat_interval_seconds))
        beat.beat()
    now = clock.now()
    [info] = progress.read_heartbeats(tmp_path)
    assert (info.heartbeat_at, info.fault) == (now, fault)
    assert info.running(now, info.alive(now))  # status: `running`, with the FAULT line
    assert beat.fresh()

    monkeypatch.undo()  # space freed: the fault clears
    beat.fault = None
    clock.advance(dt.timedelta(seconds=progress.heartbeat_interval_seconds))
    beat.beat()
    [info] = progress.read_heartbeats(tmp_path)
    assert (info.heartbeat_at, info.fault) == (clock.now(), None)


def test_healthz_judges_the_event_loop_not_whether_its_heartbeat_can_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/healthz` asks the daemon's own process whether its event loop beats: while it
    does it answers 200 even if no beat can be written to the spool at all, and 503 once
    the loop has not beaten for longer than a heartbeat may be stale."""
    clock = FixedClock(START)
    beat = Heartbeat(tmp_path, clock, pid=4242)
    beat.beat()
    _disk_full(monkeypatch, in_place_too=True)
    for _ in range(12):  # a minute of beats the disk refuses
        clock.advance(dt.timedelta(seconds=progress.heartbeat_interval_seconds))
        with pytest.raises(OSError):  # the daemon logs daemon.heartbeat_failed
            beat.beat()
        assert beat.fresh()
    clock.advance(dt.timedelta(seconds=progress.heartbeat_stale_seconds + 1))  # a hung loop
    assert not beat.fresh()


def test_held_counts_survive_the_heartbeat_as_numbers_and_null(tmp_path: Path) -> None:
    """(Outside review.) `status --json` shows the heartbeat's `held`: its counts came
    back as strings ("1"), and a count not known (`files_held: null`, an in/ that refuses
    to be listed) as the string "None". Numbers stay numbers, null stays null."""
    clock = FixedClock(dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC))
    beat = Heartbeat(tmp_path, clock, pid=4242)
    fault = ClientFault("iestade-a", "permissions", "PermissionError", "/x/in", "/x/in",
                        files_claimed=1, files_held=None)
    beat.held = {"iestade-a": fault.to_json()}
    beat.beat()
    info = read_heartbeat(tmp_path)
    assert info is not None
    assert info.held["iestade-a"]["files_claimed"] == 1
    assert info.held["iestade-a"]["files_held"] is None
