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
before the day began is still settling (an OpenSSH upload not yet `settle_seconds`
old), neither the due payments nor the files since run: they come after it.

A daemon's workers each run their own clients' due payments (`pending.DueRun`) and keep
the order between them: no worker runs its due payments until every worker has taken its
files received before the day began, and none takes a file received since until every
worker has run its due payments (a payment of one client may pay into another's account,
whichever worker has it); a worker held back so asks the daemon to wake the others
(`PassReport.held_back`), rather than wait for an idle one's next rescan. A worker that
cannot (its database gone) holds the others until it can. A file is decided as of its
receipt (`decide.Clock.now_or_later`): a payment that was to wait when it was received runs
with its day's due payments.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import authorisation, pending
from gateway.clock import on_clock
from gateway.environment import Environment
from gateway.inbound.intake import received_at
from gateway.shelving import Outcome

if TYPE_CHECKING:
    from gateway.filerun import Job
    from gateway.pipeline import Pipeline

Files = list[tuple[str, Path]]


@dataclass
class DayPass:
    """What a pass in the order of the day did, and whether files of the day were left
    waiting (`held_back`: for another worker's due run, or a file settling; they are
    taken once that is done)."""

    outcomes: list[Outcome] = field(default_factory=list)
    due_files: list[int] = field(default_factory=list)
    stopped: bool = False
    held_back: bool = False


def run(
    pipeline: Pipeline,
    ready: Sequence[tuple[str, Path]],
    *,
    settling: Sequence[tuple[str, Path]] = (),
    first: Job | None = None,
    leads: bool = True,
    stop: Callable[[], bool] = lambda: False,
) -> DayPass:
    """The files of a pass in the order of the day: `ready` (waiting in in/ or test/,
    complete), those a stopped run left in work/ and received since the day began
    (`Pipeline.recover` takes the others first), and `first` (`scan --once`'s file read
    ahead), each before or after the payments due today. `leads`: this process also
    expires the batches whose signatures came too late (SPEC §11), before the due run.
    `stop` is asked between groups."""
    env = pipeline.env
    began = pending.day_began(env, env.clock.now())
    before, since = split(env, began, ready)
    _, late_work = split(env, began, pipeline.in_work(but=first), claimed=True)
    late_first = first is not None and _since(env, began, first.claim.receipt, first.claim.arrived)
    done = DayPass()
    if first is not None and not late_first:
        done.outcomes += pipeline.run([first])
    if not _take(pipeline, before, done, stop):
        return done
    due = pipeline.due
    if began is not None:
        if split(env, began, settling)[0]:
            done.held_back = True  # a file received before the day began is still settling
            return done
        due.note(env, pending.BEFORE, began.date())
        if not due.everyone(env, pending.BEFORE, began.date()):
            done.held_back = True  # another worker's files from before the day: first
            return done
    if leads:
        authorisation.expire_due(env)
    done.due_files = due.run(env)
    if began is not None:
        due.note(env, pending.DUE, began.date())
        if not due.everyone(env, pending.DUE, began.date()):
            done.held_back = True  # another worker's clients' due payments: first
            return done
    if late_work:
        done.outcomes += pipeline.process(late_work, claimed=True)
    if first is not None and late_first:
        done.outcomes += pipeline.run([first])
    _take(pipeline, since, done, stop)
    return done


def _take(pipeline: Pipeline, files: Files, done: DayPass, stop: Callable[[], bool]) -> bool:
    """`files`, group by group as long as no stop is asked for; whether it was not."""
    done.outcomes += pipeline.process(files, stop=stop)
    done.stopped = stop()
    return not done.stopped


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
                receipt, arrived = env.spool.receipt(client_id, path)[1], os.stat(path).st_ctime
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
