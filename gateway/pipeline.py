"""One pass of the gateway's work, shared by `scan --once` and the daemon's loop.

Order: finish anything a stopped run left behind (undelivered answers, files in
work/), then take new files from every client's in/, then execute what has
fallen due. Each step is safe to repeat. (`scan --once` may have claimed the first
new file already and started reading it, `gateway.readahead`: that file comes first.)

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

import errno
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy.exc import DBAPIError

from gateway import filerun
from gateway.environment import Environment
from gateway.errors import SealError, TransientError
from gateway.inbound.reader import Reader
from gateway.outbound.outbox import deliver_pending
from gateway.pending import execute_due
from gateway.readahead import ReadAhead
from gateway.shelving import Outcome
from gateway.spool import Claim, locked

log = structlog.get_logger("gateway.pipeline")
RunFile = Callable[[Environment, Claim, Reader | None], Outcome]
attempts_max = 3  # a file that makes our code fail this often goes to quarantine/
# I/O errors that say something about the machine, not about the file being processed.
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EAGAIN,
     errno.EMFILE, errno.ENFILE, errno.EACCES, errno.EPERM, errno.ESTALE}
)  # fmt: skip


def fault_of_ours(exc: BaseException) -> bool:
    """Whether `exc` is a fault of the machine or its services (retried for as long as it
    lasts) rather than something the file's content provoked."""
    if isinstance(exc, TransientError | SealError | DBAPIError):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


@dataclass
class PassResult:
    outcomes: list[Outcome] = field(default_factory=list)
    files_with_pending_executed: list[int] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(self, env: Environment, run_file: RunFile = filerun.process) -> None:
        self.env = env
        self.run_file = run_file

    def deliver(self) -> list[str]:
        return deliver_pending(
            self.env.engine.connect, self.env.spool, self.env.sealer, self.env.clock.now()
        )

    def run(self, claim: Claim, reader: Reader | None = None) -> Outcome | None:
        """One claimed file through its stages; None if it failed and waits (or went to
        quarantine). Raises `TransientError` on a fault of ours."""
        try:
            return self.run_file(self.env, claim, reader)
        except AssertionError:
            raise
        except Exception as exc:
            if fault_of_ours(exc):
                log.error("file.fault", client=claim.client_id, file=claim.original_name,
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                if isinstance(exc, TransientError):
                    raise
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            self._defect(claim, exc)
            return None

    def _defect(self, claim: Claim, exc: Exception) -> None:
        error = "".join(traceback.format_exception(exc))
        attempts = self.env.spool.count_attempt(claim, error)
        log.error("file.failed", client=claim.client_id, file=claim.original_name,
                  attempt=attempts, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        if attempts >= attempts_max:
            target = self.env.spool.quarantine(claim, error)
            log.error("file.quarantined", client=claim.client_id, file=claim.original_name,
                      path=str(target))  # fmt: skip

    def recover(self) -> list[Outcome]:
        """Files left in work/ by a run that stopped (or that failed): process them again
        (their lock is free)."""
        self.env.spool.remove_stale_temporaries(
            [c.id for c in self.env.settings.clients], self.env.clock.now().timestamp()
        )
        outcomes = []
        for client in self.env.settings.clients:
            for path in self.env.spool.in_work(client.id):
                with locked(path) as ours:
                    if ours:
                        outcome = self.run(self.env.spool.reclaim(client.id, path))
                        if outcome is not None:
                            outcomes.append(outcome)
        return outcomes

    def process_file(self, client_id: str, path: Path) -> Outcome | None:
        """Claim one waiting file and process it; None if another process took it (or it
        failed and waits in work/)."""
        with locked(path) as ours:
            if not ours:
                return None
            claim = self.env.spool.claim(client_id, path, self.env.clock.now())
            if claim is None:
                return None
            return self.run(claim)

    def process_waiting(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for client in self.env.settings.clients:
            for path in self.env.spool.waiting(client.id):
                outcome = self.process_file(client.id, path)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def run_once(self, first: ReadAhead | None = None) -> PassResult:
        result = PassResult()
        result.delivered += self.deliver()
        if first is not None:
            try:
                outcome = self.run(first.claim, first.reader)
                if outcome is not None:
                    result.outcomes.append(outcome)
            finally:
                first.release()
        result.outcomes += self.recover()
        result.outcomes += self.process_waiting()
        result.files_with_pending_executed = execute_due(self.env)
        result.delivered += self.deliver()
        return result
