"""structlog, configured once: JSON lines to a stream (pretty on a TTY) and to the log file.

Where the lines go: the daemon (`run`) writes them to stdout, where systemd's journal
collects them. Every other command writes them to stderr, so that its stdout holds
only its own human-readable summary (`eod`, `report`, `scan`, …) and can be read by
people and scripts without log lines mixed in. Both also append to `log_file`.

The log file is reopened on SIGHUP (`reopen`, installed by the daemon), so logrotate
can move it away and signal the daemon; no `copytruncate`, which loses lines.

Amounts in log lines are decimal strings keyed by currency (`{"EUR": "1500.49"}`),
made at the call with `amounts`, never integers in minor units.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from gateway.errors import path_mistake
from ledger.currency import format_minor, is_supported


class _Tee:
    """Writes each rendered JSON line to the log file as well as to the stream.

    The log file is often on the spool's filesystem, which may fill up (SPEC §6: a fault
    of ours). Writing a line must then never fail the work being logged — least of all
    the `file.fault` line that says so: a line the file refuses still reaches the stream
    (the journal), the first refusal is said there once (`log.file_failed`), and the
    file takes lines again when there is room. Each line is one `write` on an O_APPEND
    descriptor; a line cut short by a full disk is ended before the next one."""

    def __init__(self, path: Path | None, pretty: bool) -> None:
        self._path = path
        self._lock = threading.Lock()  # the daemon logs from its loop and its worker thread
        self._fd: int | None = self._open()
        self._torn = False  # the file ends in part of a line (a write cut short)
        self._failing = False  # the file refuses lines; said once on the stream
        self._json = structlog.processors.JSONRenderer()
        self._console = structlog.dev.ConsoleRenderer(colors=False) if pretty else self._json

    def _open(self) -> int | None:
        if self._path is None:
            return None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)

    def reopen(self) -> None:
        """Close the file and open the configured path afresh (after logrotate moved it)."""
        try:
            fresh = self._open()
        except OSError as exc:  # the old file keeps the lines; the next SIGHUP tries again
            print(f"ekase-gateway: cannot reopen the log file: {exc}", file=sys.stderr)
            return
        with self._lock:
            old, self._fd, self._torn = self._fd, fresh, False
        if old is not None:
            os.close(old)

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _append(self, data: bytes) -> OSError | None:
        """Append one line; a failure is returned, never raised."""
        assert self._fd is not None
        if self._torn:
            data = b"\n" + data
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            self._torn = self._torn or done > 0
            return exc
        self._torn = False
        return None

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        line = str(self._json(logger, name, dict(event)))
        problem = None
        with self._lock:
            if self._fd is not None:
                problem = self._append(line.encode("utf-8") + b"\n")
            told, self._failing = self._failing, problem is not None
        shown = str(self._console(logger, name, event))
        if problem is None or told:
            return shown
        notice = {
            "event": "log.file_failed",
            "level": "error",
            "path": str(self._path),
            "error": str(problem),
            "timestamp": event.get("timestamp"),
        }
        return f"{self._console(logger, name, notice)!s}\n{shown}"


_tee: _Tee | None = None


def configure(log_file: Path | None = None, *, stream: TextIO | None = None) -> None:
    """Log to `stream` (stdout unless given) and to `log_file`."""
    global _tee
    out = stream or sys.stdout
    pretty = out.isatty()
    if _tee is not None:
        _tee.close()
    try:
        _tee = _Tee(log_file, pretty)
    except OSError as exc:  # at start, not at a reopen: the configured path cannot be used
        assert log_file is not None
        mistake = path_mistake("gateway.log_file", "open", log_file, exc)
        if mistake is None:
            raise
        raise mistake from exc
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _tee,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        # One write per line, its newline with it: the daemon's processes share stdout (the
        # journal), and a line written in two parts (`print`) could take another's between.
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def reopen() -> bool:
    """Reopen the log file (SIGHUP); False when there is none to reopen."""
    if _tee is None:
        return False
    _tee.reopen()
    return True


def amounts(minor_by_currency: Mapping[str, int]) -> dict[str, str]:
    """`{"EUR": 150049}` → `{"EUR": "1500.49"}`: amounts as a log line shows them. (A code
    without known minor units, which booked amounts never have, keeps its integer as text.)"""
    return {
        code: format_minor(minor, code) if is_supported(code) else str(minor)
        for code, minor in sorted(minor_by_currency.items())
    }
