"""A gateway process for the pull side's crash and race tests, at a fixed time.

    python -m tests.integration.pull_child CONFIG NOW MODE [START]

MODE `kill-after-commit`: one pass that SIGKILLs itself right after the transaction
that answered a file commits, before anything is delivered; `requests`: the waiting
files only (no pending execution); `execute`: the start of day's execution only.
START (a wall-clock timestamp) makes two processes begin their work together.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from gateway.environment import open_environment
from gateway.outbound import outbox
from gateway.pending import execute_due
from gateway.pipeline import Pipeline
from gateway.settings import load


def _die(*_args: Any, **_kwargs: Any) -> list[str]:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("still alive")


def main(config: str, now: str, mode: str, start: str | None = None) -> int:
    settings = load(Path(config))
    env = open_environment(settings, clock=FixedClock(dt.datetime.fromisoformat(now)))
    pipeline = Pipeline(env)
    if start is not None:
        time.sleep(max(0.0, float(start) - time.time()))
    if mode == "kill-after-commit":
        outbox.deliver_pending = _die  # type: ignore[assignment]  # filerun's delivery
        pipeline.process_waiting()
    elif mode == "requests":
        pipeline.process_waiting()
        pipeline.deliver()
    elif mode == "execute":
        execute_due(env, env.clock.now())
        pipeline.deliver()
    else:
        raise SystemExit(f"unknown mode {mode}")
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
