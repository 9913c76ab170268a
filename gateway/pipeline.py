"""One pass of the gateway's work, shared by `scan --once` and the daemon's loop.

Order: finish anything a stopped run left behind (undelivered answers, files in
work/), then take the new files in the order of the day (`dayorder`): those received
before today's business day began, the payments that have fallen due, those received
since. Each step is safe to repeat. (`scan --once` may have claimed the first new file
already and started reading it, `gateway.readahead`: it takes its place in that order.)

Faults (SPEC §6). A fault of ours — the disk full, an I/O error, the database away,
the signing key unusable — is never the client's: the file's run is rolled back, the
file waits in work/ unanswered, and the pass stops with `TransientError` so that the
caller retries (the daemon backing off to once a minute; `scan --once` exits 1). Any
other error is a defect of ours that the file's content provokes: the file waits in
work/ for the next pass and the others go on; the third time the same file fails so,
it is set aside in `quarantine/` with the error, for a person — never answered with a
business reason code. A broken invariant (`AssertionError`) stops the process.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gateway import arrival, authorisation, dayorder, faults, filerun, pending
from gateway.environment import Environment
from gateway.errors import RunAgain, TransientError
from gateway.filerun import Job, fault_of_ours
from gateway.files import locked
from gateway.inbound.reader import inline_bytes_max
from gateway.outbound.outbox import deliver_pending
from gateway.planner_stats import PlannerStats
from gateway.rates import drop
from gateway.readahead import BatchAhead, ReadAhead
from gateway.settings import ClientSettings
from gateway.shelving import Outcome
from gateway.spool import Claim, claimed_as
from ledger.tx import BalanceConflict

log = structlog.get_logger("gateway.pipeline")
RunFiles = Callable[[Environment, Sequence[Job]], list[Job]]
attempts_max = 3  # a file that makes our code fail this often goes to quarantine/
group_files_max = 64  # small files sharing one transaction (one commit, one delivery round)
conflict_retries_max = 5  # a group run again at once when another writer debited its accounts


@dataclass
class PassResult:
    outcomes: list[Outcome] = field(default_factory=list)
    files_with_pending_executed: list[int] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    held: dict[str, faults.ClientFault] = field(default_factory=dict)  # clients held

    def summary(self) -> str:
        """What `scan --once` says of the pass: every file under what became of it."""
        shelves = Counter(o.shelf for o in self.outcomes)
        said = [f"{shelves[shelf]} {words}" for shelf, words in _SHELVES_SAID.items()
                if shelves[shelf] or shelf in ("archive", "rejected", "duplicates")]  # fmt: skip
        held = "".join(
            f"; client {client} held: its {fault.kind} fault at {fault.folder}"
            for client, fault in sorted(self.held.items())
        )
        return (
            f"processed {len(self.outcomes)} file(s): {', '.join(said)}; "
            f"pending payments decided for {len(self.files_with_pending_executed)} file(s)"
            + held
        )


# What `PassResult.summary` says of the files that went to each shelf.
_SHELVES_SAID = {
    "archive": "answered",  # batches payment by payment, requests, signature containers
    "rejected": "rejected as a whole",
    "duplicates": "repeated",
    "awaiting": "waiting for signatures",
    "trials": "trial run(s)",
}


class Pipeline:
    """The pass's steps for `clients` (default: every client of the configuration)."""

    def __init__(
        self,
        env: Environment,
        run_files: RunFiles = filerun.process,
        clients: Sequence[ClientSettings] | None = None,
        *,
        tell_holds: bool = True,
        due: dayorder.DueRun | None = None,
    ) -> None:
        self.env = env
        self.due = due or dayorder.DueRun()  # whose payments due each day it runs (`dayorder`)
        self.tell_holds = tell_holds
        self.run_files = run_files
        self.clients = tuple(clients if clients is not None else env.settings.clients)
        self.batch_ahead: BatchAhead | None = None  # `scan --once`: a signed batch read ahead
        self.planner_stats = PlannerStats(env.engine)
        self.held = faults.Held(env.spool)  # clients whose own folder failed in this pass
        # Clients whose earlier file did not run in this pass (another process has it; it
        # failed and waits in work/): their later files wait for the next (`arrival`).
        self.behind: set[str] = set()
        self.elsewhere: set[str] = set()  # … because another process runs its earlier file
        self._held_before: dict[str, faults.ClientFault] = {}
        self._housekept_at: float | None = None  # wall clock, `_housekeeping`
        self._resumed: set[str] = set()  # names in work/ told `file.resumed` (`_claim`)

    def deliver(self, *, every_client: bool = True) -> list[str]:
        """Deliver what the outbox owes to these clients (`every_client`: to all); a
        client whose folder refuses it is held."""
        return deliver_pending(
            self.env.engine.connect, self.env.spool, self.env.sealer, self.env.clock.now(),
            clients=None if every_client else {c.id for c in self.clients},
            isolate=self.held.isolate,
        )  # fmt: skip

    def begin_pass(self) -> None:
        """Every client is tried afresh in each pass: a held one is released as soon as
        its answers are delivered and its files shelved again (and its SFTP folders are
        there: `restore_folders`)."""
        self._held_before = dict(self.held)
        self.held.clear()
        self.behind.clear()
        self.elsewhere.clear()
        self.restore_folders()

    def end_pass(self) -> dict[str, faults.ClientFault]:
        """The clients held now, said in the log when that changed (`faults.tell_holds`;
        a daemon's worker leaves that to the daemon, which hears every worker's)."""
        held = {c: fault.counted(self.env.spool) for c, fault in self.held.items()}
        if self.tell_holds:
            faults.tell_holds(self._held_before, held)
        return held

    def run(self, jobs: list[Job]) -> list[Outcome]:
        """Claimed files through their stages together (`filerun.process`); the outcomes
        of those that were answered. A file whose run failed waits in work/ (or goes to
        quarantine). Raises `TransientError` on a fault of ours: every file waits."""
        try:
            done = self._run_again_on_conflict(jobs)
        except AssertionError:
            raise
        except Exception as exc:
            if not fault_of_ours(exc):
                raise
            # Each waits in work/. The files run together (`group_files`) share one error,
            # which may be another of them's (the statement that failed names it).
            kind, error = faults.kind(exc), faults.describe(exc)
            for job in jobs:
                log.error("file.fault", client=job.claim.client_id, file=job.claim.original_name,
                          kind=kind, error=error, group_files=len(jobs))  # fmt: skip
            if isinstance(exc, TransientError):
                raise
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        failed = [(j.claim, j.failure) for j in done if j.failure is not None]
        set_aside = {claim.client_id for claim, exc in failed if self._defect(claim, exc)}
        again = []  # files that waited behind one now in quarantine/: nothing holds them
        for job in done:
            client_id, waited = job.claim.client_id, job.failure is None and job.held is None
            if job.held is not None:  # answered once its client's folder works again
                self.held.setdefault(client_id, job.held)
            if job.outcome is None and waited and client_id in set_aside:
                again.append(Job(job.claim, batch_ahead=self.batch_ahead))
            elif job.outcome is None and client_id not in set_aside:
                self.behind.add(client_id)  # it waits in work/, and its client's later files
        outcomes = [job.outcome for job in done if job.outcome is not None and job.held is None]
        self.planner_stats.wrote(sum(sum(o.counts.values()) for o in outcomes))
        return outcomes + (self.run(again) if again else [])

    def _run_again_on_conflict(self, jobs: list[Job]) -> list[Job]:
        """Another writer took money from an account the group debits before it committed
        (PostgreSQL, `BalanceConflict`), or recorded one of its files first (`RunAgain`):
        nothing was committed; run the group afresh."""
        for _ in range(conflict_retries_max):
            try:
                return self.run_files(self.env, jobs)
            except (BalanceConflict, RunAgain) as exc:
                log.info("group.conflict", files=len(jobs), error=str(exc))
                # read again, decided again
                jobs = [Job(job.claim, batch_ahead=job.batch_ahead) for job in jobs]
        return self.run_files(self.env, jobs)

    def _defect(self, claim: Claim, exc: Exception) -> bool:
        """Count a failed run of `claim`; the third goes to quarantine/ (True)."""
        error = "".join(traceback.format_exception(exc))
        attempts = self.env.spool.count_attempt(claim, error)
        log.error("file.failed", client=claim.client_id, file=claim.original_name,
                  attempt=attempts, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        if attempts >= attempts_max:
            target = self.env.spool.quarantine(claim, error)
            log.error("file.quarantined", client=claim.client_id, file=claim.original_name,
                      path=str(target))  # fmt: skip
        return attempts >= attempts_max

    def recover(self, but: Job | None = None) -> list[Outcome]:
        """Files left in work/ by a run that stopped (or that failed) and received before
        today's business day began: process them again (their lock is free; those received
        since come after the day's due payments, `dayorder.run`); batches no longer
        waiting for signatures out of awaiting/. `but`: a file claimed by this pass."""
        self._housekeeping()
        began = pending.day_began(self.env, self.env.clock.now())
        found, _ = dayorder.split(self.env, began, self.in_work(but), claimed=True)
        outcomes = self.process(found, claimed=True)
        # A batch executed or expired by a run that stopped before moving it (SPEC §11).
        for client in self.clients:
            self.held.confined(client.id, authorisation.tidy, self.env, [client.id])
        return outcomes

    def _housekeeping(self) -> None:
        """Temporaries a killed run left (an hour old; a receipt alone, a minute) and hidden
        uploads no session writes any more, removed: at the first pass, then once a
        `rescan_seconds` at most (under load the passes follow each other at once, and
        looking in every client's folders was a third of an empty pass)."""
        now = self.env.clock.wall()
        last = self._housekept_at
        if last is not None and abs(now - last) < self.env.settings.rescan_seconds:
            return
        spool = self.env.spool
        spool.remove_stale_temporaries(now)
        for client in self.clients:
            self.held.confined(client.id, spool.remove_client_temporaries, client.id, now)
        self._housekept_at = now  # not after a fault: that stays until it clears

    def in_work(self, but: Job | None = None) -> list[tuple[str, Path]]:
        """The files in these clients' work/ (`but` that of a file this pass claimed)."""
        look, held = self.env.spool.in_work, self.held
        found = [(c.id, p) for c in self.clients for p in held.confined(c.id, look, c.id) or ()]
        return [f for f in found if but is None or f[1] != but.claim.path]

    def process(
        self, files: Sequence[tuple[str, Path]], *, claimed: bool = False,
        stop: Callable[[], bool] = lambda: False,
    ) -> list[Outcome]:
        """Claim waiting files (or, `claimed`, take over files in work/) and process them
        in groups (`groups`), asking `stop` before each; files another process holds are
        left to it."""
        outcomes: list[Outcome] = []
        for group in groups(files):
            if stop():
                break
            with contextlib.ExitStack() as locks:
                jobs = []
                for client_id, path in group:
                    if self.waits(client_id):
                        continue
                    lock = self._lock(locks, client_id, path)
                    claim = lock and self._claim(client_id, path, claimed, lock)
                    if not claim:  # another process has it, or its client is held now
                        if not self.waits(client_id) and self._another_has(client_id, path):
                            self.behind.add(client_id)
                            self.elsewhere.add(client_id)
                        continue
                    jobs.append(Job(claim, batch_ahead=self.batch_ahead))
                if jobs:
                    outcomes += self.run(jobs)
        if claimed and self._resumed:  # told once while it stays in work/, again if it comes back
            self._resumed &= {p.name for _, p in self.in_work()}
        return outcomes

    def waits(self, client_id: str) -> bool:
        """Whether a client's files wait for the next pass: it is held (nothing is booked
        that could not be answered) or `behind` an earlier file of its."""
        return client_id in self.held or client_id in self.behind

    def _another_has(self, client_id: str, path: Path) -> bool:
        """Whether a file this pass could not take is another process's to run: locked
        where it lies, or claimed into work/ — not deleted by its client, nor (one of
        work/) done meanwhile: those hold none of the client's later files back."""
        if path.exists():
            return True
        claims = self.held.confined(client_id, self.env.spool.in_work, client_id) or []
        name = claimed_as(path.name)
        return path.parent != self.env.spool.work(client_id) and any(
            p.name.partition("__")[2] == name for p in claims
        )

    def _lock(
        self, locks: contextlib.ExitStack, client_id: str, path: Path
    ) -> os.stat_result | None:
        """The file's lock: the file locked (None: another process has it); a file its
        client made unreadable (an OpenSSH upload's mode 000) holds that client alone."""
        try:
            return locks.enter_context(locked(path))
        except OSError as exc:
            if not self.held.isolate(client_id, exc):
                raise
            return None

    def _claim(
        self, client_id: str, path: Path, claimed: bool, lock: os.stat_result
    ) -> Claim | None:
        """The claim of a waiting file (`claimed`: of a file in work/); None if another
        took it, or if the client's in/ or work/ refuses it (the client is held)."""
        try:
            if claimed:
                claim = self.env.spool.reclaim(client_id, path)
                # What a stopped (or failed) run did not commit was rolled back: it runs
                # again. Told once: a file its client's folder holds is taken up each pass.
                if path.name not in self._resumed:
                    self._resumed.add(path.name)
                    log.info("file.resumed", client=client_id, file=claim.original_name,
                             work=path.name)  # fmt: skip
                return claim
            return self.env.spool.claim(client_id, path, self.env.clock.now(), lock)
        except OSError as exc:
            if not self.held.isolate(client_id, exc):
                raise
            return None

    def process_waiting(self) -> list[Outcome]:
        return self.process(self.waiting())

    def waiting(self) -> list[tuple[str, Path]]:
        """The files waiting in these clients' in/ and test/, each client's in its order."""
        return [(c.id, p) for c in self.clients for p in self.waiting_of(c.id)]

    def waiting_of(self, client_id: str) -> list[Path]:
        """The files waiting in one client's in/ and test/; none, with the client held, if
        its folder refuses to be listed."""
        spool, held = self.env.spool, self.held
        waiting = held.confined(client_id, spool.waiting, client_id) or []
        trials = held.confined(client_id, spool.waiting_trials, client_id) or []
        if not trials:
            return waiting
        # A trial is checked against the moment it came (SPEC §15): in turn with the rest.
        receipt_of = spool.receipt_of(client_id)
        return held.confined(client_id, arrival.in_order, waiting + trials, receipt_of) or []

    def restore_folders(self) -> None:
        """A client's `in/`, `out/` or `test/` that someone removed (an operator's slip) is
        made again, as at start: uploads to it would fail and its answers could not be
        delivered. One that cannot be made (an OpenSSH installation's are root's; a file in
        the way) holds the client, logged once, until it is back."""
        for client in self.clients:
            problem = self.env.spool.make_sftp_folders(client.id, log)
            if problem is not None:
                folder, exc = problem
                fault = faults.ClientFault(
                    client.id, faults.kind(exc), faults.describe(exc), str(folder), str(folder)
                )
                self.held.setdefault(client.id, fault)

    def run_once(self, first: ReadAhead | BatchAhead | None = None) -> PassResult:
        """A whole pass: what a stopped run left, then the files in the order of the day
        (`dayorder`: those received before today's start, the payments due today, those
        received since); delivery before and after."""
        self.begin_pass()
        result = PassResult()
        result.delivered += self.deliver()
        # ECB files dropped into rates/ (SPEC §13), as the daemon imports them: before
        # the files and the due payments, which may convert at them in this pass.
        drop.import_dropped(self.env)
        ahead = first if isinstance(first, ReadAhead) else None
        if isinstance(first, BatchAhead):
            self.batch_ahead = first  # for the container that completes its batch
        with contextlib.ExitStack() as stack:
            job = None
            if ahead is not None:
                stack.callback(ahead.release)
                job = Job(ahead.claim, ahead.reader)
            result.outcomes += self.recover(but=job)
            day = dayorder.run(self, self.waiting(), first=job)
        result.outcomes += day.outcomes
        result.files_with_pending_executed = day.due_files
        result.delivered += self.deliver()
        result.held = self.end_pass()
        return result


def groups(files: Sequence[tuple[str, Path]]) -> Iterator[list[tuple[str, Path]]]:
    """Files in order, in groups that share one database transaction: small files (read
    in-process) up to `group_files_max` together, a bigger file on its own (it has a
    reading child of its own and a transaction of its size)."""
    group: list[tuple[str, Path]] = []
    for client_id, path in files:
        try:
            small = path.stat().st_size <= inline_bytes_max
        except FileNotFoundError:
            small = True  # taken meanwhile: its lock says so, and its client waits
        if not small:
            if group:
                yield group
                group = []
            yield [(client_id, path)]
            continue
        group.append((client_id, path))
        if len(group) >= group_files_max:
            yield group
            group = []
    if group:
        yield group
