"""`ekase-gateway run`: the long-running daemon.

One asyncio loop in the main thread owns everything that talks to the outside
world and must stay responsive: the SFTP server, signals, systemd
notifications and timers. One worker thread owns everything that blocks: the
pipeline (XML, database, spool). They meet at two points only: the loop *wakes*
the worker, and the worker checks a *stop* flag between files.

    event loop (main thread)                  worker thread (exactly one)
    ------------------------                  ---------------------------
    SFTP server ─ upload closed ─┐            start: recover work/, deliver outbox
    watchdog observer ─ in/ event ┼─► wake ─► pass: recover, process settled files
    rescan timer (rescan_seconds) ┘                 (stop flag checked between files),
    SIGTERM/SIGINT ─► stop flag ──────────►         execute due payments, EOD hook,
    sd_notify READY/STOPPING/WATCHDOG               deliver outbox

Watcher events and upload hooks are hints that save waiting for the timer; the
rescan at start-up and every `rescan_seconds` is the truth, so a lost event
delays a file by one interval at most and never loses it.

A file uploaded through the built-in server has a receipt and is complete when
it becomes visible. A file without a receipt was put there by OpenSSH (written
in place) or by hand, so it is taken only after it has not changed for
`settle_seconds`.

While it runs, the event loop writes a heartbeat (`<spool>/run/daemon.json`: pid,
start, last beat) every few seconds and removes it on a clean stop; `status` reads it,
and `/healthz` answers 200 only while it is fresh. With `[metrics] listen` set, a
thread serves Prometheus metrics there (`gateway.metrics`). SIGHUP reopens the log
file (logrotate).

End-of-day statements (`statements.run_due_eod`, idempotent: it writes what is due
and not yet written) are asked for at start-up, when the local day changes and when
`eod_time` passes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from gateway import faults, logs, metrics, progress
from gateway.environment import Environment, make_reader_engine
from gateway.errors import ConfigError
from gateway.pipeline import fault_of_ours
from gateway.settings import Settings
from gateway.systemd import SystemdNotifier
from gateway.watch import start_watcher
from gateway.worker import Worker

log = structlog.get_logger("gateway.daemon")
T = TypeVar("T")

# A burst of watcher events (a big file written in place) starts one pass, not hundreds.
wake_debounce_seconds = 0.2
# After a fault of ours (disk full, database unreachable, …) wait this long, doubling up to
# once a minute: SPEC §6 retries for as long as the fault lasts.
retry_seconds_min = 1.0
retry_seconds_max = 60.0
# How long a stopping daemon waits for SFTP sessions to close.
sftp_close_seconds_max = 5.0


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
        self.worker = Worker(env, self.stop)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acceptor: Any = None
        self._signals = 0
        self._heartbeat: progress.Heartbeat | None = None
        self.fault: faults.Active | None = None  # the fault of ours being waited out

    # hints and signals: called on the loop, must not block

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake)

    def request_stop(self, reason: str) -> None:
        self._signals += 1
        if self._signals > 1:
            # The pipeline is crash-safe: a second signal need not wait for the file in hand.
            log.warning("daemon.stop_forced", reason=reason)
            os._exit(1)
        log.info("daemon.stopping", reason=reason)
        self.notifier.send("STOPPING=1")
        self.stop.set()
        if self._acceptor is not None:
            self._acceptor.close()  # no new connections; open sessions may finish uploads
        self.wake()

    # the loop

    async def _blocking(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    def reopen_log(self) -> None:
        """SIGHUP: logrotate has moved the log file away; write to a new one."""
        if logs.reopen():
            log.info("log.reopened")

    async def run(self) -> int:
        from gateway.sftp import start_server, stop_server

        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
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
            self._executor.shutdown(wait=True)
            if exporter is not None:
                exporter.close()
                metrics.disable()
                exporter.reader.dispose()
            heartbeat.stop()
            self.env.close()
        log.info("daemon.stopped")
        return 0

    def _serve_metrics(self, heartbeat: progress.Heartbeat) -> metrics.MetricsServer | None:
        """Metrics and /healthz on `[metrics] listen`, if configured."""
        listen = metrics.listen_address(self.settings)
        if listen is None:
            return None
        host, port = listen
        reader = make_reader_engine(self.settings.database_url)
        registry = metrics.enable(self.settings, reader)
        try:
            return metrics.MetricsServer(registry, host, port, heartbeat.fresh)
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
            except OSError as exc:  # a full disk must not stop the daemon; status will tell
                log.warning("daemon.heartbeat_failed", error=str(exc))

    async def _work(self) -> None:
        assert self._wake is not None
        started = False
        retry = retry_seconds_min
        while not self.stop.is_set():
            self._wake.clear()
            try:
                if not started:
                    await self._blocking(self.worker.start_up)
                    started = True
                    continue
                report = await self._blocking(self.worker.run_pass)
            except Exception as exc:
                if not fault_of_ours(exc):
                    raise
                # The work it stopped waits, unanswered; retried until the fault clears.
                self._fault(exc, retry)
                await self._sleep_unless_stopped(retry)
                retry = min(retry * 2, retry_seconds_max)
                continue
            self._fault_cleared()
            retry = retry_seconds_min
            if report.stopped_early:
                break
            timeout = self.settings.rescan_seconds
            if report.recheck_seconds is not None:
                timeout = min(timeout, report.recheck_seconds + 0.05)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                await asyncio.sleep(wake_debounce_seconds)
            except TimeoutError:
                pass  # the rescan: the truth, whatever the hints said

    # faults of ours: alerted while they last (SPEC §6)

    def _fault(self, exc: Exception, retry_seconds: float) -> None:
        """A pass stopped on a fault of ours (disk, database, key): say so at error level,
        count it, and keep it in the heartbeat for `status` until a pass succeeds."""
        now = self.env.clock.now()
        kind = faults.kind(exc)
        waiting = self._files_in_work()
        since = self.fault.since if self.fault is not None else now
        error = faults.describe(exc.__cause__ or exc)
        self.fault = faults.Active(kind, error, since, now, retry_seconds, waiting)
        log.error(
            "pass.fault", kind=kind, error=error, since=since.isoformat(),
            retry_seconds=retry_seconds, files_waiting=waiting,
        )  # fmt: skip
        metrics.fault(kind, waiting)
        self._show_fault()

    def _fault_cleared(self) -> None:
        if self.fault is None:
            return
        seconds = (self.env.clock.now() - self.fault.since).total_seconds()
        log.info("pass.recovered", kind=self.fault.kind, fault_seconds=round(seconds, 1))
        self.fault = None
        metrics.fault_cleared()
        self._show_fault()

    def _files_in_work(self) -> int:
        try:
            return sum(len(self.env.spool.in_work(c.id)) for c in self.settings.clients)
        except OSError:
            return 0  # the spool itself unreadable: the fault says so

    def _show_fault(self) -> None:
        if self._heartbeat is None:
            return
        self._heartbeat.fault = self.fault
        try:
            self._heartbeat.beat()
        except OSError as exc:  # a full disk: the log line and the metric still tell
            log.warning("daemon.heartbeat_failed", error=str(exc))

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        assert self._wake is not None
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    async def _ping_watchdog(self, interval: float) -> None:
        # The loop is what clients depend on; a long file in the worker is not a hang.
        while True:
            self.notifier.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _port(self) -> int:
        return int(self._acceptor.get_port())

    def _log_started(self, watching: bool, exporter: metrics.MetricsServer | None) -> None:
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
        )


def run(settings: Settings) -> int:
    """Open the environment and run the daemon until SIGTERM/SIGINT; exit code 0."""
    from gateway.environment import open_environment

    env = open_environment(settings, need_sealer=True)
    daemon = Daemon(settings, env, notifier=SystemdNotifier.from_environment())
    return asyncio.run(daemon.run())
