"""What the daemon sends a worker down its pipe (`workers.WorkerProcess.send`)."""

from __future__ import annotations

from typing import Any

from gateway.worker import Share
from gateway.workers import WorkerProcess


class Pipe:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: str) -> None:
        self.sent.append(message)


def test_nothing_is_sent_after_stop() -> None:
    """After "stop" a worker reads no more messages; the daemon went on sending "wake" for
    every upload and watcher event, and once the pipe was full (~280 of them, during a long
    last file) `send` blocked the daemon's event loop — SFTP sessions froze until the worker
    ended (a reviewer)."""
    pipe = Pipe()
    worker = WorkerProcess(Share(1, 2), process=None, conn=pipe)  # type: ignore[arg-type]
    for message in ("wake", "reopen", "stop", "wake", "reopen", "stop"):
        worker.send(message)
    assert pipe.sent == ["wake", "reopen", "stop"]


def test_a_send_to_a_worker_that_ended_is_let_go() -> None:
    class Closed:
        def send(self, message: Any) -> None:
            raise BrokenPipeError

    WorkerProcess(Share(), process=None, conn=Closed()).send("wake")  # type: ignore[arg-type]
