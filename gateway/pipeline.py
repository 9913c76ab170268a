"""One pass of the gateway's work, shared by `scan --once` and the daemon's loop.

Order: finish anything a stopped run left behind (undelivered answers, files in
work/), then take new files from every client's in/, then execute what has
fallen due. Each step is safe to repeat. (`scan --once` may have claimed the first
new file already and started reading it, `gateway.readahead`: that file comes first.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from gateway.environment import Environment
from gateway.inbound.pending import execute_due
from gateway.inbound.process import FileProcessor, Outcome
from gateway.outbox import deliver_pending
from gateway.readahead import ReadAhead
from gateway.spool import locked

log = structlog.get_logger("gateway.pipeline")


@dataclass
class PassResult:
    outcomes: list[Outcome] = field(default_factory=list)
    files_with_pending_executed: list[int] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.processor = FileProcessor(env)

    def deliver(self) -> list[str]:
        return deliver_pending(
            self.env.engine.connect, self.env.spool, self.env.sealer, self.env.clock.now()
        )

    def recover(self) -> list[Outcome]:
        """Files left in work/ by a run that stopped: process them (their lock is free)."""
        self.env.spool.remove_stale_temporaries(
            [c.id for c in self.env.settings.clients], time.time()
        )
        outcomes = []
        for client in self.env.settings.clients:
            for path in self.env.spool.in_work(client.id):
                with locked(path) as ours:
                    if ours:
                        claim = self.env.spool.reclaim(client.id, path)
                        outcomes.append(self.processor.process(claim))
        return outcomes

    def process_file(self, client_id: str, path: Path) -> Outcome | None:
        """Claim one waiting file and process it; None if another process took it."""
        with locked(path) as ours:
            if not ours:
                return None
            claim = self.env.spool.claim(client_id, path, self.env.clock.now())
            if claim is None:
                return None
            return self.processor.process(claim)

    def process_waiting(self, stop: object | None = None) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for client in self.env.settings.clients:
            for path in self.env.spool.waiting(client.id):
                if stop is not None and getattr(stop, "is_set", lambda: False)():
                    return outcomes
                outcome = self.process_file(client.id, path)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def run_once(self, first: ReadAhead | None = None) -> PassResult:
        result = PassResult()
        result.delivered += self.deliver()
        if first is not None:
            try:
                result.outcomes.append(self.processor.process(first.claim, first.reader))
            finally:
                first.release()
        result.outcomes += self.recover()
        result.outcomes += self.process_waiting()
        result.files_with_pending_executed = execute_due(self.env)
        result.delivered += self.deliver()
        return result
