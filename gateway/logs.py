"""structlog, configured once: JSON lines to stdout (pretty on a TTY) and to the log file."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog


class _Tee:
    """Writes each rendered JSON line to the log file as well as to stdout."""

    def __init__(self, path: Path | None, pretty: bool) -> None:
        self._file: TextIO | None = None
        self._pretty = pretty
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
        self._json = structlog.processors.JSONRenderer()
        self._console = structlog.dev.ConsoleRenderer(colors=False) if pretty else self._json

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        line = self._json(logger, name, dict(event))
        if self._file is not None:
            self._file.write(str(line) + "\n")
            self._file.flush()
        return str(self._console(logger, name, event))


def configure(log_file: Path | None = None, *, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    pretty = out.isatty()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _Tee(log_file, pretty),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
