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
import sys
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from ledger.currency import format_minor, is_supported


class _Tee:
    """Writes each rendered JSON line to the log file as well as to the stream."""

    def __init__(self, path: Path | None, pretty: bool) -> None:
        self._path = path
        self._lock = threading.Lock()  # the daemon logs from its loop and its worker thread
        self._file: TextIO | None = self._open()
        self._json = structlog.processors.JSONRenderer()
        self._console = structlog.dev.ConsoleRenderer(colors=False) if pretty else self._json

    def _open(self) -> TextIO | None:
        if self._path is None:
            return None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        return open(self._path, "a", encoding="utf-8")

    def reopen(self) -> None:
        """Close the file and open the configured path afresh (after logrotate moved it)."""
        with self._lock:
            old, self._file = self._file, self._open()
        if old is not None:
            old.close()

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        line = self._json(logger, name, dict(event))
        with self._lock:
            if self._file is not None:
                self._file.write(str(line) + "\n")
                self._file.flush()
        return str(self._console(logger, name, event))


_tee: _Tee | None = None


def configure(log_file: Path | None = None, *, stream: TextIO | None = None) -> None:
    """Log to `stream` (stdout unless given) and to `log_file`."""
    global _tee
    out = stream or sys.stdout
    pretty = out.isatty()
    _tee = _Tee(log_file, pretty)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _tee,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(out),
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
