"""`gateway.logs`: amounts as people read them, and a log file that logrotate can move."""

from __future__ import annotations

import io
import json
from pathlib import Path

import structlog

from gateway import logs


def test_amounts_are_decimal_strings_keyed_by_currency() -> None:
    """`{"EUR": 150049}` in minor units is logged as `{"EUR": "1500.49"}`; JPY has none."""
    assert logs.amounts({"EUR": 150049, "JPY": 1200, "USD": 5}) == {
        "EUR": "1500.49",
        "JPY": "1200",
        "USD": "0.05",
    }


def test_reopen_writes_to_a_new_file_at_the_configured_path(tmp_path: Path) -> None:
    """After logrotate renamed the file, `reopen` (SIGHUP) starts a new one at the same path;
    the renamed file keeps the earlier lines only."""
    path = tmp_path / "log" / "gateway.jsonl"
    stream = io.StringIO()
    logs.configure(path, stream=stream)
    try:
        log = structlog.get_logger("test")
        log.info("before.rotation")
        rotated = path.with_name("gateway.jsonl.1")
        path.rename(rotated)
        assert logs.reopen()
        log.info("after.rotation")
    finally:
        structlog.reset_defaults()
    assert [json.loads(x)["event"] for x in rotated.read_text().splitlines()] == [
        "before.rotation"
    ]
    assert [json.loads(x)["event"] for x in path.read_text().splitlines()] == ["after.rotation"]
    assert [json.loads(x)["event"] for x in stream.getvalue().splitlines()] == [
        "before.rotation",
        "after.rotation",
    ]


class _Writes(io.StringIO):
    """A stream that keeps each `write` it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_line_reaches_the_stream_in_one_write_with_its_newline() -> None:
    """SPEC §9: JSON lines to stdout, which the daemon's processes share (the journal): a
    line written in two parts, its newline after (`print`), let another process's line in
    between, fusing both (a tester found one such pair in ~4,500 lines)."""
    stream = _Writes()
    logs.configure(None, stream=stream)
    try:
        log = structlog.get_logger("test")
        log.info("file.processed", file="u2-46.xml", counts={"ACSC": 20})
        log.info("sftp.upload.closed", file="u1-59.xml")
    finally:
        structlog.reset_defaults()
    assert [json.loads(call)["event"] for call in stream.calls] == [
        "file.processed", "sftp.upload.closed"
    ]
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in stream.calls)
