"""A daemon worker's pass: everything that blocks (XML, database, spool), for the clients
of its `Share` (`gateway.workers` runs it in a process of its own, woken by the daemon).

A pass: at the first of the day, state the business days missed while the daemon was
down; recover what a stopped run left in work/, take the settled files of its clients
in turn, in groups that commit together (the stop flag checked between groups), in the
order of the day (`dayorder`: those received before the business day began, its clients'
payments due today, those received since); the leader (worker 0) also imports rates,
expires waiting batches and writes end-of-day statements; then deliver the outbox.
A fault confined to one client's folders holds that client alone (`faults.Held`: tried
again each pass, its new files left in in/ meanwhile); any other fault of ours stops the
pass (`TransientError`, a database or OS error): `workers.WorkerLoop` retries it, backing
off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gateway import dayorder, faults
from gateway.dayorder import DueRun
from gateway.environment import Environment
from gateway.faults import ClientFault
from gateway.filerun import fault_of_ours
from gateway.outbound import budget_summary, statements
from gateway.pipeline import Pipeline
from gateway.rates import drop
from gateway.settings import ClientSettings, Settings
from gateway.watch import SettleTracker

log = structlog.get_logger("gateway.daemon")
held_back_seconds = 0.5  # files of the day waiting for another worker's due run: looked at again


@dataclass(frozen=True, slots=True)
class Share:
    """The clients of worker `index` of `count`: every `count`-th in the configuration's
    order, so each client's files go to one worker and keep their order, and so do their
    payments due each day (`due`: a worker runs them between the files that arrived
    before the day began and those since; so do their batches waiting for signatures
    expire). Worker 0 leads: rates and end-of-day statements (all clients') are its."""

    index: int = 0
    count: int = 1

    def clients(self, settings: Settings) -> tuple[ClientSettings, ...]:
        return settings.clients[self.index :: self.count]

    def due(self, settings: Settings) -> DueRun:
        """The run of this worker's clients' due payments; the leader's takes those of
        clients no longer configured too (accepted before they were removed)."""
        every = [c.id for c in settings.clients]
        mine = tuple(every[self.index :: self.count])
        # The workers' marks of the day are of this plan: restarted with clients added or
        # moved between workers, marks noted under another plan do not count (`dayorder`).
        plan = hashlib.sha256(f"{chr(31).join(every)}/{self.count}".encode()).hexdigest()[:12]
        if not self.leader:
            return DueRun(only=mine, index=self.index, count=self.count, plan=plan)
        others = tuple(c for c in every if c not in mine)
        return DueRun(but=others, index=self.index, count=self.count, plan=plan)

    @property
    def leader(self) -> bool:
        return self.index == 0


@dataclass(frozen=True, slots=True)
class PassReport:
    processed: int
    stopped_early: bool
    # Seconds until a file now settling should be looked at again; None if none is.
    recheck_seconds: float | None
    # Clients held by a fault of their own folders (`faults.Held`), retried every pass.
    held: dict[str, ClientFault] = field(default_factory=dict)
    # Files of the day wait for another worker's part of the day's order (`dayorder`).
    held_back: bool = False


class Worker:
    """Everything that blocks; runs on the daemon's single worker thread only."""

    def __init__(self, env: Environment, stop: threading.Event, share: Share = Share()) -> None:
        self.env = env
        self.stop = stop
        self.share = share
        self.clients = share.clients(env.settings)
        # The clients held are told the daemon (`PassReport.held`), which logs them.
        self.pipeline = Pipeline(
            env, clients=self.clients, tell_holds=False, due=share.due(env.settings)
        )
        self.settle = SettleTracker(env.settings.settle_seconds)
        self._eod_done_for: tuple[dt.date, bool] | None = None
        self._eod_defect: str | None = None  # the end of day's last failure, logged once
        self._business_day: dt.date | None = None
        self._missed_done_for: dt.date | None = None  # `_missed_days` ran on this day

    def start_up(self) -> int:
        """Finish what a stopped run left: files in work/, undelivered answers — after the
        days missed while the daemon was down are stated (`_missed_days`): a request for
        yesterday's statement a crash left in work/ finds it."""
        leader = self.share.leader
        delivered = len(self.pipeline.deliver(every_client=leader))
        self._missed_days()
        recovered = len(self.pipeline.recover())
        delivered += len(self.pipeline.deliver(every_client=leader))
        log.info("daemon.recovered", files=recovered, delivered=delivered)
        return recovered

    def run_pass(self) -> PassReport:
        # A client held in the last pass (its folder refused its answers) is tried first:
        # its new files are taken only once what it is owed was delivered.
        leader = self.share.leader
        self.pipeline.begin_pass()
        self.pipeline.deliver(every_client=leader)
        if leader:  # ECB files dropped into rates/ (SPEC §13): before the files and due run
            drop.import_dropped(self.env)
        if not self.stop.is_set():
            self._missed_days()
        # A sibling daemon on the same spool may have died holding a file; its lock is free now.
        processed = len(self.pipeline.recover())
        recheck: float | None = None
        ready: list[tuple[str, Path]] = []
        for client_id, path, left in self._candidates():
            if left > 0:  # settling: looked at again then (`dayorder` waits for it too,
                # if it was received before the day began)
                recheck = left if recheck is None else min(recheck, left)
            else:
                ready.append((client_id, path))
        if leader:
            self._tell_day()
        day = dayorder.run(self.pipeline, ready, stop=self.stop.is_set)
        processed += len(day.outcomes)
        # Files of the day wait for another worker's due run, or a client's files for its
        # earlier one that another process runs: looked at again soon. (Not behind its own
        # failed file: that is tried again at the rescans, as before quarantine.)
        if day.held_back or self.pipeline.elsewhere:
            recheck = min(recheck or held_back_seconds, held_back_seconds)
        if not day.stopped and leader:
            self._end_of_day()
        self.pipeline.deliver(every_client=leader)
        held = self.pipeline.end_pass()
        return PassReport(processed, day.stopped, recheck, held, day.held_back)

    def _candidates(self) -> list[tuple[str, Path, float]]:
        """Waiting files, oldest first per client, taking clients in turn (fairness)."""
        wall_now = self.env.clock.wall()
        queues: list[list[tuple[str, Path, float]]] = []
        present: set[str] = set()
        for client in self.clients:
            queue = []
            for path in self.pipeline.waiting_of(client.id):
                present.add(str(path))
                queue.append((client.id, path, self._settle_left(client.id, path, wall_now)))
            queues.append(queue)
        self.settle.forget_except(present)
        turns: list[tuple[str, Path, float]] = []
        for index in range(max((len(q) for q in queues), default=0)):
            turns.extend(q[index] for q in queues if index < len(q))
        return turns

    def _settle_left(self, client_id: str, path: Path, wall_now: float) -> float:
        spool = self.env.spool
        receipts = spool.receipts(client_id)
        if path.parent == spool.trial_box(client_id):  # a trial's receipt (/test)
            receipts = receipts / "test"
        if _exists(receipts / f"{path.name}.json"):
            return 0.0  # the built-in server closed and renamed it: complete
        try:
            info = path.stat()
        except FileNotFoundError:
            return 0.0  # gone; claiming it will simply find nothing
        return self.settle.remaining(path, info.st_size, info.st_mtime_ns, wall_now)

    def _tell_day(self) -> None:
        """`day.started` in the log at the leader's first pass of each day."""
        today = self.env.local_now().date()
        if today != self._business_day:
            self._business_day = today
            log.info("day.started", day=today.isoformat())

    def _missed_days(self) -> None:
        """Business days before today still unstated (the daemon was down when they closed)
        are stated at each worker's first pass of the day, before its files: a request
        for yesterday's statement from any client finds it. Every worker looks (a query;
        a second finds the first's work done, or waits for the account's statement
        number and then finds it: `statements._statement`), so that no client's request
        is answered before the leader got round to it. Today's close is the leader's,
        after its files (`_end_of_day`), which also logs and retries a defect of stating."""
        today = self.env.local_now().date()
        if self._missed_done_for == today:
            return
        try:
            # all of them before its files, however many: the books of the days missed are
            # closed before the day's requests are answered
            stated = True
            while stated and not self.stop.is_set():
                stated = statements.run_due_eod(self.env, before=today) > 0  # ten days a call
        except Exception as exc:
            if fault_of_ours(exc):
                raise  # the machine's or a service's (the database): the pass's fault
            return
        self._missed_done_for = today

    def _end_of_day(self) -> None:
        now = self.env.clock.now()
        local = now.astimezone(self.env.settings.timezone)
        state = (local.date(), local.time() >= self.env.settings.eod_time)
        if state == self._eod_done_for:
            return
        try:
            stated = statements.run_due_eod(self.env)  # logs each day (a restart catches up)
            # It stated days and more are missing (after an outage, ten days a call): the
            # next pass goes on. A day it could not state waits for the next state, as before.
            more = stated > 0 and statements.next_due_day(self.env) is not None
            if not more:
                budget_summary.run_due(self.env)  # SPEC §12: once the days are stated
        except Exception as exc:
            if fault_of_ours(exc):
                raise  # the machine's or a service's (the database): the pass's fault
            # A defect: statements are retried on the next pass, payments keep flowing
            # meanwhile; its traceback is logged once, not on every pass.
            error = faults.describe(exc)
            if error != self._eod_defect:
                self._eod_defect = error
                log.exception("eod.failed", day=local.date().isoformat())
            return
        self._eod_defect = None
        if not more:
            self._eod_done_for = state


def _exists(path: Path) -> bool:
    """Whether `path` is there; False too where no such name can be (an OpenSSH upload's
    name too long to carry a receipt's suffix), which `Path.exists` raises for."""
    try:
        os.stat(path)
    except OSError:
        return False
    return True
