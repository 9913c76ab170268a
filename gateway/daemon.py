"""`ekase-gateway run`: the long-running daemon.

One asyncio loop in the main process owns everything that talks to the outside world
and must stay responsive: the SFTP server, signals, systemd notifications, the
heartbeat and the metrics. The pipeline (XML, database, spool) runs in worker
processes (`gateway.workers`, `[gateway] workers`), each for a share of the clients.
They meet at a pipe each: the loop *wakes* a worker and tells it to *stop*; a worker
tells the loop what it processed and the faults it waits out.

    event loop (main process)                 worker processes (`[gateway] workers`, 2 by default)
    -------------------------                 -----------------------------------------------
    SFTP server ─ upload closed ─┐            start: recover work/, deliver outbox
    watchdog observer ─ in/ event ┼─► wake ─► pass: recover, process settled files in groups
    rescan (each worker's timer) ┘                  in the order of the day, its clients'
    SIGTERM/SIGINT ─► stop ───────────────►         due payments between (`dayorder`),
    sd_notify READY/STOPPING/WATCHDOG               worker 0: EOD statements; deliver outbox
    metrics, heartbeat ◄──────────────────── file processed, fault, recovered

Watcher events and upload hooks are hints that save waiting for the timer; the
rescan at start-up and every `rescan_seconds` is the truth, so a lost event
delays a file by one interval at most and never loses it. Under load a worker needs
neither: after a pass that processed files the next one starts at once.

A file uploaded through the built-in server has a receipt and is complete when
it becomes visible. A file without a receipt was put there by OpenSSH (written
in place) or by hand, so it is taken only after it has not changed for
`settle_seconds`.

While it runs, the event loop writes a heartbeat (`<spool>/run/daemons/<host>-<pid>.json`: pid,
start, last beat, the fault being waited out) every few seconds and removes it on a
clean stop; `status` reads it, the fault included when the disk is full (a beat that
fits no new file is written over the old one: `progress.Heartbeat`). `/healthz` answers
200 while the loop beats, whether or not the beat could be written, 503 once it has not
beaten for 30 s. With `[metrics] listen` set, a thread serves Prometheus metrics there
(`gateway.metrics`).
SIGHUP reopens the log file (logrotate), in every process.

End-of-day statements (`statements.run_due_eod`, idempotent: it writes what is due
and not yet written) are asked for at start-up, when the local day changes and when
`eod_time` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import threading
from typing import Any

import structlog

from gateway import faults, logs, metrics, metrics_http, progress
from gateway.environment import Environment, make_reader_engine
from gateway.errors import ConfigError, GatewayError
from gateway.settings import Settings
from gateway.systemd import SystemdNotifier
from gateway.watch import start_watcher
from gateway.worker import Share
from gateway.workers import WorkerProcess

log = structlog.get_logger("gateway.daemon")

# How long a stopping daemon waits for SFTP sessions to close.
sftp_close_seconds_max = 5.0
# How long a daemon that stops because of a failure waits for its other workers.
workers_stop_seconds_max = 30.0


_STOPPED = (0, -signal.SIGINT, -signal.SIGTERM)  # a worker's exit codes that are a stop


class WorkerEnded(GatewayError):
    """A worker process ended while the daemon was not stopping (the OOM killer, a kill):
    the daemon stops too, exit 1, and its service manager starts it again, which resumes
    the file the worker had. Said in one line: no traceback of ours to show."""


# -- the daemon (event-loop side) ----------------------------------------------------------


class Daemon:
    def __init__(
        self,
        settings: Settings,
        env: Environment,
        *,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.env = env
        self.notifier = notifier or SystemdNotifier(None)
        self.stop = threading.Event()
        self.workers: list[WorkerProcess] = []
        self._ended: asyncio.Event | None = None  # every worker has ended
        self._failed: WorkerProcess | None = None  # one that ended on its own
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acceptor: Any = None
        self._signals = 0
        self._heartbeat: progress.Heartbeat | None = None
        self._faults: dict[int, faults.Active] = {}  # by worker: the faults being waited out
        self._held: dict[int, dict[str, faults.ClientFault]] = {}  # by worker: the clients held
        self._counting: set[asyncio.Task[None]] = set()

    @property
    def fault(self) -> faults.Active | None:
        """The fault of ours being waited out (the longest-standing, if several workers are),
        with the files waiting on it in every worker."""
        first = min(self._faults.values(), key=lambda f: f.since, default=None)
        if first is None:
            return None
        waiting = sum(f.files_waiting for f in self._faults.values())
        last = max(f.last for f in self._faults.values())
        return dataclasses.replace(first, files_waiting=waiting, last=last)

    # hints and signals: called on the loop, must not block

    def wake(self, but: WorkerProcess | None = None) -> None:
        for worker in (w for w in self.workers if w is not but):
            worker.send("wake")

    def wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake)

    def request_stop(self, reason: str) -> None:
        self._signals += 1
        if self._signals > 1:
            # The pipeline is crash-safe: a second signal need not wait for the files in hand.
            log.warning("daemon.stop_forced", reason=reason)
            for worker in self.workers:
                worker.kill()
            os._exit(1)
        log.info("daemon.stopping", reason=reason)
        self.notifier.send("STOPPING=1")
        self.stop.set()
        if self._acceptor is not None:
            self._acceptor.close()  # no new connections; open sessions may finish uploads
        for worker in self.workers:
            worker.send("stop")
        if self._ended is not None and not self.workers:
            self._ended.set()

    def reopen_log(self) -> None:
        """SIGHUP: logrotate has moved the log file away; write to a new one (every process)."""
        if logs.reopen():
            log.info("log.reopened")
        for worker in self.workers:
            worker.send("reopen")

    async def run(self) -> int:
        from gateway.sftp import start_server, stop_server

        self._loop = asyncio.get_running_loop()
        self._ended = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self.request_stop, sig.name)
        self._loop.add_signal_handler(signal.SIGHUP, self.reopen_log)
        heartbeat = self._heartbeat = progress.Heartbeat(self.settings.spool_dir, self.env.clock)
        heartbeat.beat()
        progress.remove_orphaned_progress(self.settings.spool_dir)
        cfg = self.settings.sftp
        exporter = self._serve_metrics(heartbeat)
        try:
            self._acceptor = await start_server(
                self.settings, on_upload=lambda _r: self.wake(), clock=self.env.clock
            )
        except OSError as exc:
            if exporter is not None:
                exporter.close()
                metrics.disable()
                exporter.reader.dispose()
            heartbeat.stop()
            raise ConfigError(
                "sftp.listen", f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from exc
        observer = start_watcher(self.settings, self.env, self.wake_threadsafe)
        pinger: asyncio.Task[None] | None = None
        beating = asyncio.create_task(self._beat(heartbeat))
        try:
            self._log_started(observer is not None, exporter)
            self.notifier.send("READY=1", f"STATUS=listening on {cfg.host}:{self._port()}")
            interval = self.notifier.watchdog_interval_seconds
            if interval is not None:
                pinger = asyncio.create_task(self._ping_watchdog(interval))
            if not self.stop.is_set():
                await self._work()
            if self._failed is not None:
                code = self._failed.process.exitcode
                raise WorkerEnded(f"worker {self._failed.share.index} ended (exit code {code})")
        except WorkerEnded as exc:
            log.error("daemon.failed", error=str(exc))
            raise
        except Exception:
            # A violated invariant or an unexpected fault stops the process; systemd
            # restarts it and the idempotent pipeline resumes where it stopped.
            log.exception("daemon.failed")
            raise
        finally:
            if pinger is not None:
                pinger.cancel()
            beating.cancel()
            if observer is not None:
                observer.stop()
                await asyncio.to_thread(observer.join, 5)
            await stop_server(self._acceptor, timeout_seconds=sftp_close_seconds_max)
            await self._stop_workers()
            if exporter is not None:
                exporter.close()
                metrics.disable()
                exporter.reader.dispose()
            heartbeat.stop()
            self.env.close()
        log.info("daemon.stopped")
        return 0

    def _serve_metrics(self, heartbeat: progress.Heartbeat) -> metrics_http.MetricsServer | None:
        """Metrics and /healthz on `[metrics] listen`, if configured."""
        listen = self.settings.metrics_listen
        if listen is None:
            return None
        host, port = listen
        reader = make_reader_engine(self.settings.database_url)
        registry = metrics.enable(self.settings, reader)
        try:
            return metrics_http.MetricsServer(registry, host, port, heartbeat.fresh)
        except OSError as exc:
            metrics.disable()
            reader.dispose()
            heartbeat.stop()
            raise ConfigError(
                "metrics.listen", f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc

    async def _beat(self, heartbeat: progress.Heartbeat) -> None:
        # On the loop, like the systemd watchdog: the loop is what must stay alive.
        while True:
            await asyncio.sleep(progress.heartbeat_interval_seconds)
            try:
                heartbeat.beat()
            except OSError as exc:  # not even in place (progress.Heartbeat): logged
                log.warning("daemon.heartbeat_failed", error=str(exc))

    async def _work(self) -> None:
        """Start the workers and wait until every one has ended: stopped, or (one ended on
        its own) the others stopped because of it."""
        assert self._loop is not None and self._ended is not None
        count = self.settings.workers
        for index in range(count):
            worker = WorkerProcess.start(self.settings, Share(index, count))
            self.workers.append(worker)
            self._loop.add_reader(worker.conn.fileno(), self._on_message, worker)
            self._loop.add_reader(worker.process.sentinel, self._on_exit, worker)
        if self.stop.is_set():  # a signal came while they started
            for worker in self.workers:
                worker.send("stop")
        await self._ended.wait()

    def _on_message(self, worker: WorkerProcess) -> None:
        while True:
            try:
                if not worker.conn.poll():
                    return
                message = worker.conn.recv()
            except (EOFError, OSError):
                assert self._loop is not None
                self._loop.remove_reader(worker.conn.fileno())  # it ended: `_on_exit` follows
                return
            try:
                self._handle(worker, message)
            except Exception:  # a defect here must not stop the daemon hearing the worker
                log.exception("daemon.message_failed", worker=worker.share.index)

    def _handle(self, worker: WorkerProcess, message: tuple[Any, ...]) -> None:
        kind, *values = message
        if kind in metrics.FORWARDED and metrics.enabled():
            # A file's payments are read from the database: not on the loop.
            task = asyncio.create_task(asyncio.to_thread(metrics.from_worker, kind, *values))
            self._counting.add(task)
            task.add_done_callback(self._counting.discard)
        elif kind == "fault":
            fault = faults.Active.from_json(values[0])
            if fault is not None:
                self._faults[worker.share.index] = fault
                metrics.fault(fault.kind)
                self._show_fault()
        elif kind == "held":
            held = {c: faults.ClientFault.from_json(c, f) for c, f in values[0].items()}
            before = self._holds()
            self._held[worker.share.index] = held
            faults.tell_holds(before, self._holds())
            self._show_fault()
        elif kind == "recovered":
            self._faults.pop(worker.share.index, None)
            self._show_fault()
        elif kind == "held back":  # waits for the others' part of the day's order: wake them
            self.wake(but=worker)

    def _on_exit(self, worker: WorkerProcess) -> None:
        assert self._loop is not None and self._ended is not None
        self._loop.remove_reader(worker.process.sentinel)
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(worker.conn.fileno())
        self._on_message(worker)  # what it said last
        worker.process.join()
        # Told to stop, a worker ends with 0 once its group is done, or by the stop signal
        # itself (a Ctrl-C reaching the process group while it was starting, or leaving:
        # Python's default action then); any other end (killed, crashed while finishing) is
        # a failure even then, for systemd to see.
        if not self.stop.is_set() or worker.process.exitcode not in _STOPPED:
            log.error("worker.ended", worker=worker.share.index, exit_code=worker.process.exitcode)
            self._failed = self._failed or worker
            if not self.stop.is_set():
                self.request_stop(f"worker {worker.share.index} ended")
        if all(w.process.exitcode is not None for w in self.workers):
            self._ended.set()

    async def _stop_workers(self) -> None:
        """Workers still running when the daemon leaves (a failure elsewhere) are told to
        stop, waited for a while, then killed."""
        running = [w for w in self.workers if w.process.exitcode is None]
        for worker in running:
            worker.send("stop")
        for worker in running:
            if await asyncio.to_thread(worker.stop_waiting, workers_stop_seconds_max) is None:
                worker.kill()
        if self._counting:
            await asyncio.gather(*self._counting, return_exceptions=True)

    # faults of ours, waited out by the workers, and the clients held by a fault of their own
    # folders: shown while they last (SPEC §6)

    def _holds(self) -> dict[str, faults.ClientFault]:
        """The clients held by any worker: one fault each, the last worker's where two
        hold one client (at one folder: the leader delivering to its out/ as its own
        worker does; at two, either is the one to mend first)."""
        return {client: fault for held in self._held.values() for client, fault in held.items()}

    def _show_fault(self) -> None:
        fault, held = self.fault, self._holds()
        metrics.fault_waiting(fault.files_waiting if fault is not None else 0)
        metrics.clients_held(held)
        if self._heartbeat is None:
            return
        self._heartbeat.fault = fault
        self._heartbeat.held = {c: f.to_json() for c, f in held.items()}
        try:
            self._heartbeat.beat()
        except OSError as exc:  # a full disk: the log line and the metric still tell
            log.warning("daemon.heartbeat_failed", error=str(exc))

    async def _ping_watchdog(self, interval: float) -> None:
        # The loop is what clients depend on; a long file in the worker is not a hang.
        while True:
            self.notifier.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _port(self) -> int:
        return int(self._acceptor.get_port())

    def _log_started(self, watching: bool, exporter: metrics_http.MetricsServer | None) -> None:
        import asyncssh

        fingerprint = asyncssh.read_private_key(self.settings.sftp.host_key).get_fingerprint(
            "sha256"
        )
        log.info(
            "daemon.started",
            pid=os.getpid(),
            listen=f"{self.settings.sftp.host}:{self._port()}",
            host_key_fingerprint=fingerprint,
            clients=len(self.settings.clients),
            spool=str(self.settings.spool_dir),
            database=self.settings.database_url.split("@")[-1],
            watcher="inotify" if watching else "rescan only",
            rescan_seconds=self.settings.rescan_seconds,
            settle_seconds=self.settings.settle_seconds,
            metrics="off" if exporter is None else f"{exporter.host}:{exporter.port}",
            workers=self.settings.workers,
        )
        from gateway.signature_checks import unusable_signatories

        for client, name, problem in unusable_signatories(self.settings, self.env.clock.now()):
            log.warning("config.signatory_unusable", client=client, signatory=name, problem=problem)


def run(settings: Settings) -> int:
    """Open the environment and run the daemon until SIGTERM/SIGINT; exit code 0."""
    from gateway.environment import open_environment

    try:
        env = open_environment(settings, need_sealer=True)
    except Exception as exc:  # said on stderr too (`cli.main`): the log file says it as well
        log.error("daemon.start_failed", kind=faults.kind(exc), error=faults.describe(exc))
        raise
    daemon = Daemon(settings, env, notifier=SystemdNotifier.from_environment())
    return asyncio.run(daemon.run())
