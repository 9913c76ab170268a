"""The order of a pass's files around the start of the business day.

SPEC §6: payments accepted for a day (future-dated, or after a cut-off) execute "at the
start of that business day". A pass therefore takes its files in the order of the day:
those received before today's business day began (00:00 in Riga, on a business day
before `eod_time`), then the payments due today, then those received since. A file of
the morning (a daemon down overnight finds it waiting, or it came as the day turned)
cannot spend the money a payment accepted earlier for the day counted on, and a
cancellation sent the evening before still reaches the payment it cancels.

A file was received when its receipt says (the built-in server's), else when it arrived
in in/ (`intake.received_at`); one a stopped run left in work/ is ordered the same way
(its receipt moved with it; without one, when it was claimed). While a file received
before the day began is still in a client's in/ or work/ once the pass took what it
could (an OpenSSH upload still settling, a file another process runs: a `scan --once`
beside the daemon, a second node), neither the due payments nor the files since run:
they come after it. A client held by a fault of its folders is not waited for; its own
due payments wait with its files. A pass that began before midnight runs no due
payments: the next one keeps the new day's order.

A daemon's workers each run their own clients' due payments (`DueRun`) and keep the order
between them: no worker runs its due payments until every worker has taken its files
received before the day began, and none takes a file received since until every worker
has run its due payments (a payment of one client may pay into another's account,
whichever worker has it); a worker held back so asks the daemon, once, to wake the others
(`PassReport.held_back`), rather than wait for an idle one's next rescan, and looks again
itself in a moment. A worker that cannot (its database gone) holds the others until it
can; the log says what a worker waits for (`day.held_back`). A file is decided as of its
receipt (`decide.Clock.now_or_later`): a payment that was to wait when it was received
runs with its day's due payments.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from gateway import authorisation, counters, pending
from gateway.clock import on_clock
from gateway.environment import Environment
from gateway.faults import Held
from gateway.inbound.intake import received_at
from gateway.shelving import Outcome

if TYPE_CHECKING:
    from gateway.filerun import Job
    from gateway.pipeline import Pipeline

Files = list[tuple[str, Path]]
log = structlog.get_logger("gateway.pipeline")


@dataclass
class DayPass:
    """What a pass in the order of the day did, and whether what comes next in the order
    was left waiting (`held_back`, for what `waiting_for` says; taken once that is done)."""

    outcomes: list[Outcome] = field(default_factory=list)
    due_files: list[int] = field(default_factory=list)
    stopped: bool = False
    waiting_for: str = ""

    @property
    def held_back(self) -> bool:
        return bool(self.waiting_for)

    def hold(self, waiting_for: str) -> DayPass:
        self.waiting_for = waiting_for
        return self


BEFORE, DUE = "before_taken", "due_run"  # what a worker notes of a day (`DueRun.note`)


@dataclass(slots=True)
class DueRun:
    """Whose due payments a process runs, and who else runs theirs: a daemon's worker
    `index` of `count` runs its own clients' (`only`; the leader: every client `but` the
    others', those no longer configured included), `scan --once` every client's.

    The workers keep the order of the day between them: each notes in `gw_counters`
    (`<what>:<index>/<count>:<plan>`, the day as YYYYMMDD) when it has taken its
    files received before the day began (`BEFORE`) and when it has run its due payments
    (`DUE`); none runs its due payments until every worker has taken those files (one may
    pay into its clients' accounts), none takes a file received since the day began until
    every worker has run them (they may pay into its clients' accounts)."""

    only: tuple[str, ...] | None = None
    but: tuple[str, ...] = ()
    index: int = 0
    count: int = 1
    plan: str = ""  # which clients each worker has: a new plan, new marks
    waiting_for: str = ""  # what this worker's last pass was held back for (`dayorder`)
    _noted: dict[str, dt.date] = field(default_factory=dict)  # what this worker noted last
    _seen: dict[str, dt.date] = field(default_factory=dict)  # what it found all had noted

    def run(self, env: Environment, now: dt.datetime, held: Collection[str] = ()) -> list[int]:
        """This process's due payments run (`execute_due`) as of `now`, but those of
        clients `held` (their files wait for their folders: their due payments with them)."""
        return pending.execute_due(env, now, **self._whose(held))

    def expire(self, env: Environment, now: dt.datetime, held: Held) -> int:
        """This process's clients' batches whose waiting time is over expire (SPEC §11),
        but those of clients `held`: their files wait for their folders — a signature
        received in time among them — and their batches wait with them."""
        return authorisation.expire_due(env, now, held, **self._whose(held))

    def _whose(self, held: Collection[str]) -> dict[str, Any]:
        """This process's clients but those `held`, as `only=` or `but=` of a due run."""
        if self.only is not None:
            return {"only": tuple(c for c in self.only if c not in held)}
        return {"but": (*self.but, *held)}

    def noted(self, what: str, day: dt.date) -> bool:
        """Whether this process has noted `what` on `day`."""
        return self._noted.get(what) == day

    def note(self, env: Environment, what: str, day: dt.date) -> None:
        """Note that this worker has done `what` on `day` (once a day)."""
        if self._noted.get(what) == day:
            return
        if self.count > 1:
            with env.engine.begin() as conn:
                counters.note_day(conn, self._mark(what, self.index), day)
        self._noted[what] = day

    def everyone(self, env: Environment, what: str, day: dt.date) -> bool:
        """Whether every worker has done `what` on `day` (noted it)."""
        if self.count == 1 or self._seen.get(what) == day:
            return True  # this process is the only one, or all were seen to have done it
        names = [self._mark(what, i) for i in range(self.count)]
        with env.engine.connect() as conn:
            noted = counters.days(conn, names)
        if len(noted) == self.count and min(noted.values()) >= day:
            self._seen[what] = day
        return self._seen.get(what) == day

    def _mark(self, what: str, index: int) -> str:
        return f"{what}:{index}/{self.count}:{self.plan}"


def run(
    pipeline: Pipeline,
    ready: Sequence[tuple[str, Path]],
    *,
    first: Job | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> DayPass:
    """The files of a pass in the order of the day: `ready` (waiting in in/ or test/,
    complete), those a stopped run left in work/ and received since the day began
    (`Pipeline.recover` takes the others first), and `first` (`scan --once`'s file read
    ahead), each before or after the payments due today; before the due run, this
    process's clients' batches whose signatures came too late expire (SPEC §11).
    `stop` is asked between groups. A pass held back says so in the log, once, and once
    it goes on."""
    done = _run(pipeline, ready, first, stop)
    due = pipeline.due
    if done.waiting_for != due.waiting_for:
        if done.waiting_for:
            log.info("day.held_back", waiting_for=done.waiting_for, worker=due.index)
        else:
            log.info("day.went_on", waited_for=due.waiting_for, worker=due.index)
        due.waiting_for = done.waiting_for
    return done


def _run(
    pipeline: Pipeline, ready: Sequence[tuple[str, Path]], first: Job | None,
    stop: Callable[[], bool],
) -> DayPass:
    env = pipeline.env
    began = pending.day_began(env, env.clock.now())
    before, since = split(env, began, ready)
    _, late_work = split(env, began, pipeline.in_work(but=first), claimed=True)
    late_first = first is not None and _since(env, began, first.claim.receipt, first.claim.arrived)
    done = DayPass()
    if first is not None and not late_first and not pipeline.waits(first.claim.client_id):
        done.outcomes += pipeline.run([first])
    if not _take(pipeline, before, done, stop):
        return done
    due = pipeline.due
    if began is not None:
        day = began.date()
        if not due.noted(BEFORE, day) and _left_before(pipeline, began):
            return done.hold("files received before the day began, not yet run")
        due.note(env, BEFORE, day)
        if not due.everyone(env, BEFORE, day):
            return done.hold("another worker's files received before the day began")
    now = env.clock.now()
    if pending.day_began(env, now) != began:  # the pass began on another day (midnight)
        return done.hold("the day changed during the pass")
    due.expire(env, now, pipeline.held)
    done.due_files = due.run(env, now, held=pipeline.held)
    if began is not None:
        due.note(env, DUE, began.date())
        if not due.everyone(env, DUE, began.date()):
            return done.hold("another worker's clients' due payments")
    if late_work:
        done.outcomes += pipeline.process(late_work, claimed=True)
    if first is not None and late_first and not pipeline.waits(first.claim.client_id):
        done.outcomes += pipeline.run([first])
    _take(pipeline, since, done, stop)
    return done


def _take(pipeline: Pipeline, files: Files, done: DayPass, stop: Callable[[], bool]) -> bool:
    """`files`, group by group as long as no stop is asked for; whether it was not."""
    done.outcomes += pipeline.process(files, stop=stop)
    done.stopped = stop()
    return not done.stopped


def _left_before(pipeline: Pipeline, began: dt.datetime) -> bool:
    """Whether a file received before the day `began` is still in these clients' in/ or
    work/ after the pass took those it could: settling, or being run by another process
    (a `scan --once` beside the daemon, a second node). A held client's files are not
    waited for: its due payments wait with them (`DueRun.run`); nor trials (test/), which
    book nothing."""
    env, held = pipeline.env, pipeline.held
    clients = [c.id for c in pipeline.clients if c.id not in held]
    waiting = [(c, p) for c in clients for p in held.confined(c, env.spool.waiting, c) or ()]
    in_work = [f for f in pipeline.in_work() if f[0] not in held]
    return bool(split(env, began, waiting)[0] or split(env, began, in_work, claimed=True)[0])


def split(
    env: Environment, began: dt.datetime | None, files: Sequence[tuple[str, Path]], *,
    claimed: bool = False,
) -> tuple[Files, Files]:
    """`files` (waiting in in/ or test/, or `claimed`: in work/) received before the
    business day `began` and those received since, each in their order; on a day that
    executes nothing (`began` None), all are the first."""
    if began is None:
        return list(files), []
    before: Files = []
    since: Files = []
    for client_id, path in files:
        try:
            if claimed:
                claim = env.spool.reclaim(client_id, path)
                receipt, arrived = claim.receipt, claim.arrived
            else:
                receipt, arrived = env.spool.receipt(client_id, path), os.stat(path).st_ctime
        except FileNotFoundError:
            continue  # taken meanwhile
        (since if _since(env, began, receipt, arrived) else before).append((client_id, path))
    return before, since


def _since(
    env: Environment, began: dt.datetime | None, receipt: Mapping[str, Any] | None,
    arrived: float,
) -> bool:
    """Whether a file (its receipt; when it `arrived`, on the wall clock, as its claim
    takes it: `Spool.claim`) was received once the business day `began`."""
    if began is None:
        return False
    clock = env.clock
    return received_at(receipt, on_clock(clock, arrived), clock.now()) >= began
