"""The daemon's workers: processes of their own that run the pipeline for a share of the
clients (`worker.Share`), so that parsing, booking and sealing never wait for the SFTP
server's interpreter (nor it for them), and on PostgreSQL files commit side by side.

    daemon (main process, event loop)             worker i of n (a child process)
    ---------------------------------             -------------------------------
    upload closed, watcher event ──── wake ────►  pass over its clients (`worker.Worker`)
    SIGTERM/SIGINT ────────────────── stop ────►  finish the group in hand, exit 0
    SIGHUP ───────────────────────── reopen ───►  reopen its log file
    metrics, heartbeat, `status` ◄── file / fault / recovered ──┘

A worker waits out a fault of ours itself (`WorkerLoop`: the pass retried after 1 s,
doubling to once a minute) and tells the daemon, which shows it in `status` and the
metrics. A worker that ends on its own (a broken invariant, a crash) stops the daemon
with exit 1: systemd restarts it and the crash-safe pipeline resumes. A worker dies with
the daemon (`PR_SET_PDEATHSIG`): killed, the daemon leaves nothing running on the spool.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

import structlog

from gateway import faults, heap, logs
from gateway.clock import Clock, SystemClock
from gateway.filerun import fault_of_ours
from gateway.settings import ClientSettings, Settings
from gateway.spool import Spool
from gateway.worker import PassReport, Share

log = structlog.get_logger("gateway.workers")

# After a wake-up, wait this long before the pass: a burst of watcher events (a big file
# written in place) starts one pass, not hundreds.
wake_debounce_seconds = 0.02
# After a fault of ours (disk full, database unreachable, …) wait this long, doubling up to
# once a minute: SPEC §6 retries for as long as the fault lasts.
retry_seconds_min = 1.0
retry_seconds_max = 60.0

Report = Callable[[tuple[Any, ...]], None]  # a message to the daemon


class Passes(Protocol):
    """What `WorkerLoop` runs (`worker.Worker`)."""

    def start_up(self) -> int: ...

    def run_pass(self) -> PassReport: ...


class WorkerLoop:
    """A worker's life: start-up, then a pass whenever woken or `rescan_seconds` have
    passed (or a settling file is due), and at once after a pass that processed files,
    until told to stop; a fault of ours is logged, reported and retried, backing off."""

    def __init__(
        self,
        start: Callable[[], Passes],
        *,
        settings: Settings,
        clock: Clock,
        stop: threading.Event,
        wake: threading.Event,
        report: Report,
        files_in_work: Callable[[], int],
    ) -> None:
        self.start = start  # opens the database: a fault there is waited out like any
        self.settings = settings
        self.clock = clock
        self.stop = stop
        self.wake = wake
        self.report = report
        self.files_in_work = files_in_work
        self.fault: faults.Active | None = None
        self.held: dict[str, faults.HoldJson] = {}  # the clients held, as last told the daemon

    def run(self) -> None:
        passes: Passes | None = None
        started = False
        retry = retry_seconds_min
        held_back = False
        while not self.stop.is_set():
            self.wake.clear()
            try:
                if passes is None:
                    passes = self.start()
                if not started:
                    passes.start_up()
                    started = True
                    continue
                report = passes.run_pass()
            except Exception as exc:
                if not fault_of_ours(exc):
                    raise
                # The work it stopped waits, unanswered; retried until the fault clears.
                self._fault(exc, retry)
                self.back_off(retry)
                retry = min(retry * 2, retry_seconds_max)
                continue
            self._fault_cleared()
            self._tell_held(report)
            if report.held_back and not held_back:  # the others are woken, once, to do
                self.report(("held back",))  # their part (`dayorder`); it looks again itself
            held_back = report.held_back
            retry = retry_seconds_min
            if report.stopped_early:
                break
            if report.processed:
                # Files may have come while it ran: look at once. Under load the next pass
                # starts on its own, not on a hint (the watcher's come late: it holds every
                # event behind a claim's move out of in/ for half a second, to pair moves).
                continue
            heap.give_back()  # idle: what the last files' runs freed goes back to the system
            timeout = self.settings.rescan_seconds
            if report.recheck_seconds is not None:
                timeout = min(timeout, report.recheck_seconds + 0.05)
            if self.sleep(timeout):
                self.stop.wait(wake_debounce_seconds)

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds` for a wake-up (or a stop); whether one came."""
        return self.wake.wait(seconds)

    def back_off(self, seconds: float) -> None:
        """Wait out a fault for `seconds`: only a stop ends the wait early. An upload's
        wake-up does not: a pass it started would meet the same fault and double the wait
        at once (per upload, not per retry), so that after the fault clears every client
        would wait up to a minute. The files uploaded meanwhile are taken by the next pass."""
        self.stop.wait(seconds)

    def _fault(self, exc: Exception, retry_seconds: float) -> None:
        """A pass stopped on a fault of ours (disk, database, key): say so at error level
        and tell the daemon, which counts it and shows it until a pass succeeds."""
        now = self.clock.now()
        waiting = self.files_in_work()
        since = self.fault.since if self.fault is not None else now
        error = faults.describe(exc.__cause__ or exc)
        self.fault = faults.Active(faults.kind(exc), error, since, now, retry_seconds, waiting)
        log.error(
            "pass.fault", kind=self.fault.kind, error=error, since=since.isoformat(),
            retry_seconds=retry_seconds, files_waiting=waiting,
        )  # fmt: skip
        self.report(("fault", self.fault.to_json()))

    def _tell_held(self, report: PassReport) -> None:
        """Tell the daemon which clients the pass held (a fault of their own folders), when
        that changed: its heartbeat and `status` show them while they last."""
        held = {client_id: fault.to_json() for client_id, fault in report.held.items()}
        if held != self.held:
            self.held = held
            self.report(("held", held))

    def _fault_cleared(self) -> None:
        if self.fault is None:
            return
        seconds = (self.clock.now() - self.fault.since).total_seconds()
        log.info("pass.recovered", kind=self.fault.kind, fault_seconds=round(seconds, 1))
        self.fault = None
        self.report(("recovered",))


# -- the worker process ------------------------------------------------------------------------


# Files are booked at a lower priority than the daemon's SFTP server and an operator's
# commands (`status`, `ledger balance`: SPEC §9) run: on a machine whose cores a big file
# keeps busy, those answer first; with nothing else to run, the workers lose nothing.
worker_niceness = 5


def serve(settings: Settings, share: Share, conn: Connection, daemon_pid: int) -> None:
    """The worker process's main function (started by `WorkerProcess`)."""
    _die_with(daemon_pid)
    os.nice(worker_niceness)  # and its reading children with it
    logs.configure(settings.log_file)
    structlog.contextvars.bind_contextvars(worker=share.index)  # on its every log line
    stop, wake = threading.Event(), threading.Event()
    _on_signals(stop, wake)
    sending = threading.Lock()

    def report(message: tuple[Any, ...]) -> None:
        with sending, contextlib.suppress(OSError):  # the daemon gone: we are stopping
            conn.send(message)

    threading.Thread(target=_listen, args=(conn, stop, wake), daemon=True).start()
    from gateway import metrics
    from gateway.environment import Environment, open_environment
    from gateway.worker import Worker

    heap.settle()  # what the worker runs with is loaded by now
    metrics.forward(report)
    clock, spool, clients = SystemClock(), Spool(settings.spool_dir), share.clients(settings)
    opened: list[Environment] = []

    def start() -> Worker:
        opened.append(open_environment(settings, clock=clock, need_sealer=True))
        return Worker(opened[0], stop, share)

    loop = WorkerLoop(
        start, settings=settings, clock=clock, stop=stop, wake=wake, report=report,
        files_in_work=lambda: files_in_work(spool, clients),
    )  # fmt: skip
    try:
        loop.run()
    except BaseException:
        log.exception("worker.failed", worker=share.index)
        os._exit(1)  # no clean-up that could hang: the daemon stops and systemd restarts
    for env in opened:
        env.close()


def files_in_work(spool: Spool, clients: Sequence[ClientSettings]) -> int:
    """The files claimed in these clients' work/, as a fault's line counts them (a work/
    that refuses to be listed counts none: the spool's own tree, the fault itself)."""
    return sum(len(faults.listed(spool.in_work, c.id) or []) for c in clients)


def _listen(conn: Connection, stop: threading.Event, wake: threading.Event) -> None:
    """The daemon's messages: wake, stop, reopen (the log). Its end means it is gone."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = "stop"
        if message == "stop":
            stop.set()
            wake.set()
            return
        if message == "reopen":
            logs.reopen()
        wake.set()


def _on_signals(stop: threading.Event, wake: threading.Event) -> None:
    """SIGTERM/SIGINT reach a worker too (Ctrl-C, `kill` of the process group): the first
    finishes the group in hand, a second exits at once (the pipeline is crash-safe).
    SIGHUP is ignored: the daemon hears it and sends "reopen" (`_listen`). A handler that
    reopened the log itself ran inside whatever the main thread was doing — a log line's
    write, holding the log's lock — and waited for that lock for ever (a reviewer)."""

    signals = 0  # its own: "stop" from the daemon, whom the same Ctrl-C reached, is no second

    def handle(signum: int, frame: object) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            os._exit(1)
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


_PR_SET_PDEATHSIG = 1


def _die_with(daemon_pid: int) -> None:
    """Be killed when the daemon dies, however it dies (Linux); elsewhere a worker notices
    the closed pipe and stops after the group in hand."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != daemon_pid:  # it died before the line above
        os._exit(1)


# -- the daemon's side -----------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A worker as the daemon holds it: its process and its end of the pipe."""

    share: Share
    process: BaseProcess
    conn: Connection
    stopping: bool = False  # "stop" sent: it reads no more messages (`_listen` returned)

    @classmethod
    def start(cls, settings: Settings, share: Share) -> WorkerProcess:
        # spawn: a fresh interpreter, none of the daemon's threads, sockets or connections
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve, args=(settings, share, theirs, os.getpid()),
            name=f"ekase-worker-{share.index}", daemon=False,
        )  # fmt: skip
        process.start()
        theirs.close()
        return cls(share, process, ours)

    def send(self, message: str) -> None:
        """`message` to the worker; nothing once it was told to stop: it reads no more, and a
        pipe filled with wakes (~280) would block the daemon's loop until the worker ends."""
        if self.stopping:
            return
        self.stopping = message == "stop"
        with contextlib.suppress(OSError):  # it has ended: the daemon learns from its sentinel
            self.conn.send(message)

    def stop_waiting(self, seconds: float) -> int | None:
        """Wait up to `seconds` for it to end; its exit code (None: still running)."""
        deadline = time.monotonic() + seconds
        while self.process.exitcode is None and time.monotonic() < deadline:
            self.process.join(min(0.5, max(0.0, deadline - time.monotonic())))
        return self.process.exitcode

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGKILL)
