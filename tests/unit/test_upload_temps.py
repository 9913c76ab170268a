"""The built-in server's hidden uploads and the housekeeping that removes abandoned ones
(`gateway.upload_temps`): a hidden upload is made, then locked, an instant apart; a pass
that looks in that instant must neither remove it nor report an abandoned upload, and the
server must not leave a file of its own behind when it loses that instant."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import upload_temps


def _made_unlocked(folder: Path, data: bytes = b"") -> Path:
    """A hidden upload as the server leaves it between making and locking it (empty, no
    lock), or as a server that died then left it."""
    path = folder / f"{upload_temps.UPLOAD_PREFIX}{'0' * 16}"
    path.write_bytes(data)
    return path


def test_an_upload_being_made_is_neither_removed_nor_reported(tmp_path: Path) -> None:
    path = _made_unlocked(tmp_path)
    with capture_logs() as logs:
        assert upload_temps.remove_abandoned("alpha", (tmp_path,), time.time()) == 0
    assert path.exists()
    assert not [e for e in logs if e["event"] == "sftp.upload.abandoned"], logs
    assert not upload_temps.abandoned(path, time.time())


def test_an_empty_upload_left_by_a_dead_server_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once it has not changed for `making_seconds` (its change time: a client's `put -p`
    sets its modification time, to the future too, not that)."""
    monkeypatch.setattr(upload_temps, "making_seconds", 0.2)
    path = _made_unlocked(tmp_path)
    future = time.time() + 3600
    os.utime(path, (future, future))
    assert not upload_temps.abandoned(path, time.time())
    time.sleep(0.3)
    assert upload_temps.abandoned(path, time.time())
    with capture_logs() as logs:
        assert upload_temps.remove_abandoned("alpha", (tmp_path,), time.time()) == 1
    assert not path.exists()
    assert [e["size_bytes"] for e in logs if e["event"] == "sftp.upload.abandoned"] == [0]


def test_a_written_upload_whose_writer_is_gone_is_removed_at_once(tmp_path: Path) -> None:
    path = _made_unlocked(tmp_path, data=b"<Document>")
    assert upload_temps.remove_abandoned("alpha", (tmp_path,), time.time()) == 1
    assert not path.exists()


def test_a_lost_instant_leaves_no_file_of_the_servers_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass held the lock of the file just made (the first attempt fails to lock it):
    the server removes that file itself and makes another."""
    real = fcntl.flock
    refused: list[int] = []

    def flock(fd: int, operation: int) -> None:
        if not refused:
            refused.append(fd)
            raise BlockingIOError
        real(fd, operation)

    monkeypatch.setattr(upload_temps.fcntl, "flock", flock)
    path, fd = upload_temps.create(str(tmp_path), 0o640)
    try:
        assert refused
        assert [p.name for p in tmp_path.iterdir()] == [Path(path).name]
    finally:
        os.close(fd)
