"""The daemon's pure decisions: when a file without a receipt is complete, the EOD hook."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from gateway import heap
from gateway.clock import SystemClock
from gateway.settings import load
from gateway.systemd import SystemdNotifier
from gateway.watch import SettleTracker
from gateway.worker import PassReport
from gateway.workers import WorkerLoop

FILE = Path("/spool/clients/a/in/batch.xml")


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_old_file_is_taken_at_once() -> None:
    """A file that has not changed for settle_seconds (by its mtime) is processed right away."""
    tracker = SettleTracker(2.0, Ticks())
    assert tracker.remaining(FILE, 10, int(95e9), wall_now=100.0) == 0.0


def test_file_still_being_written_waits_and_is_taken_once_it_stops_changing() -> None:
    """OpenSSH writes in place: a fresh file waits; growing restarts the wait; then it's taken."""
    ticks = Ticks()
    tracker = SettleTracker(2.0, ticks)
    assert tracker.remaining(FILE, 10, int(100e9), wall_now=100.5) == pytest.approx(1.5)
    ticks.now += 1.0
    assert tracker.remaining(FILE, 20, int(101.4e9), wall_now=101.5) == pytest.approx(1.9)
    ticks.now += 2.0
    assert tracker.remaining(FILE, 20, int(101.4e9), wall_now=103.5) == 0.0


def test_file_with_mtime_in_the_future_is_taken_after_it_stays_unchanged() -> None:
    """A wrong clock on the writer's side (mtime ahead) delays a file by settle_seconds only."""
    ticks = Ticks()
    tracker = SettleTracker(2.0, ticks)
    future = int(10_000e9)
    assert tracker.remaining(FILE, 10, future, wall_now=100.0) == pytest.approx(2.0)
    ticks.now += 2.5
    assert tracker.remaining(FILE, 10, future, wall_now=102.5) == 0.0


def test_zero_settle_takes_everything() -> None:
    """settle_seconds = 0 turns the wait off (all uploads come through the built-in server)."""
    assert SettleTracker(0.0, Ticks()).remaining(FILE, 1, int(100e9), wall_now=100.0) == 0.0


def test_notifier_is_silent_without_systemd() -> None:
    """Outside systemd (no NOTIFY_SOCKET) the daemon sends nothing and needs no watchdog."""
    notifier = SystemdNotifier.from_environment({})
    assert notifier.send("READY=1") is False
    assert notifier.watchdog_interval_seconds is None


def test_watchdog_pings_twice_per_period_and_only_for_this_process() -> None:
    """WATCHDOG_USEC=60 s means a ping every 30 s; a WATCHDOG_PID of another process: none."""
    mine = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "60000000"})
    assert mine.watchdog_interval_seconds == 30.0
    other = SystemdNotifier.from_environment(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval_seconds is None


@pytest.mark.timeout(10)
def test_notifier_never_waits_for_a_receiver_that_does_not_read() -> None:
    """The event loop sends the watchdog pings: when the receiver's queue is full (it does not
    read), a ping is dropped and reported, never waited for — a blocking send hung the
    daemon once its test's stand-in for systemd had stopped reading."""
    name = f"@ekase-test-{uuid.uuid4().hex}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name[1:])
    try:
        notifier = SystemdNotifier(name)
        sent = [notifier.send("WATCHDOG=1") for _ in range(5000)]
        assert sent[0] is True
        assert sent[-1] is False  # the queue filled up: dropped, not waited for
        assert receiver.recv(64) == b"WATCHDOG=1"
    finally:
        receiver.close()


def test_a_pass_that_processed_files_is_followed_at_once_by_another(tmp_path: Path) -> None:
    """Under load a worker does not wait for a hint (the watcher's can come half a second
    late) nor for the rescan (an hour here): after a pass that processed files, the next
    starts at once; after one that found nothing, it waits again (no busy loop)."""
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nspool_dir = "spool"\nrescan_seconds = 3600\n')
    stop, wake = threading.Event(), threading.Event()
    processed = [0, 3, 0]  # start-up, then two passes; a third waits for a wake-up

    class Passes:
        passes = 0

        def start_up(self) -> int:
            return processed[0]

        def run_pass(self) -> PassReport:
            Passes.passes += 1
            return PassReport(processed[min(Passes.passes, 2)], False, None)

    loop = WorkerLoop(
        Passes, settings=load(config), clock=SystemClock(), stop=stop, wake=wake,
        report=lambda message: None, files_in_work=lambda: 0,
    )  # fmt: skip
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while Passes.passes < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Passes.passes == 2, "the pass after the files waited for a wake-up"
        time.sleep(1)
        assert Passes.passes == 2, "a pass that found nothing was followed by another"
        wake.set()  # an upload: one more pass
        deadline = time.monotonic() + 10
        while Passes.passes < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Passes.passes == 3
    finally:
        stop.set()
        wake.set()
        runner.join(timeout=10)


def test_a_worker_going_idle_gives_back_the_memory_its_files_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After its last pass with files, before it waits: an idle worker does not hold the
    memory of a 1,000,000-payment file (`heap.give_back`); not between busy passes."""
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nspool_dir = "spool"\nrescan_seconds = 3600\n')
    stop, wake = threading.Event(), threading.Event()
    calls: list[str] = []
    monkeypatch.setattr(heap, "give_back", lambda: calls.append("give back"))

    class Passes:
        def start_up(self) -> int:
            return 0

        def run_pass(self) -> PassReport:
            calls.append("pass")
            return PassReport(2 if calls.count("pass") < 3 else 0, False, None)

    def sleep(seconds: float) -> bool:
        calls.append("sleep")
        stop.set()
        return False

    loop = WorkerLoop(
        Passes, settings=load(config), clock=SystemClock(), stop=stop, wake=wake,
        report=lambda message: None, files_in_work=lambda: 0,
    )  # fmt: skip
    monkeypatch.setattr(loop, "sleep", sleep)
    loop.run()
    assert calls == ["pass", "pass", "pass", "give back", "sleep"]
