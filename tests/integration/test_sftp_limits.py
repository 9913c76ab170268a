"""The built-in SFTP server's open-file limits and its event loop's errors, with real clients.

A user's sessions together, and all sessions together, hold a bounded number of open files
(a descriptor each), so that one logged-in client cannot use up the daemon's descriptors
and lock every other client out (accept() failing with EMFILE).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from gateway.sftp.guard import HANDLES_PER_USER_MAX
from tests.integration.sftp_fixtures import (
    RunningServer,
    open_sftp,
    paramiko_connect,
    running_server,
    wait_for,
)


@contextlib.contextmanager
def _nofile(soft: int) -> Iterator[None]:
    """This process (the server runs in it, on its own thread) allowed `soft` descriptors."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def _open_many(sftp: paramiko.SFTPClient, path: str, times: int) -> tuple[list[object], list[str]]:
    handles, refusals = [], []
    for _ in range(times):
        try:
            handles.append(sftp.open(path, "rb"))
        except OSError as exc:
            refusals.append(str(exc))
    return handles, refusals


def _descriptors_open() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_one_user_cannot_use_up_the_descriptors_and_lock_others_out(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """16 sessions of one user, each opening a file 64 times, in a process allowed a few
    hundred descriptors: the opens past the server's bound are refused with a clear
    message, once logged, and another client still logs in and reads."""
    with running_server(tmp_path / "gw", keys, auth_failures_before_penalty=50) as server:
        (server.folder("alpha", "in") / "x.part").write_bytes(b"x" * 100)
        (server.folder("beta", "out") / "answer.xml").write_bytes(b"<answer/>")
        # 16 sessions take two descriptors each in this process (both ends of the socket).
        with _nofile(_descriptors_open() + 16 * 2 + 400):
            clients = [open_sftp(server, "alpha-erp", "alpha") for _ in range(16)]
            refusals: list[str] = []
            held = []
            for sftp in clients:
                handles, refused = _open_many(sftp, "/in/x.part", 64)
                held += handles
                refusals += refused
            assert refusals, "the server's bound on open files was never reached"
            assert all("Too many open files" in r for r in refusals), set(refusals)
            other = open_sftp(server, "beta-erp", "beta")
            with other.open("/out/answer.xml", "rb") as handle:
                assert handle.read() == b"<answer/>"
            other.close()
            lines = server.log.named("sftp.open.refused")
            assert len(lines) == 1 and lines[0]["user"] == "alpha-erp"
            assert server.log.named("loop.error") == []
            for sftp in clients:
                sftp.get_channel().get_transport().close()
        assert wait_for(lambda: server.call(lambda: _handles_open(server)) == 0)


def _handles_open(server: RunningServer) -> int:
    from gateway.sftp import server_context

    ctx = server_context(server.acceptor)
    assert ctx is not None
    return ctx.handles.count()


def test_open_files_are_bounded_per_user_over_its_sessions(server: RunningServer) -> None:
    """A user's sessions together hold at most HANDLES_PER_USER_MAX open files; another
    user of the same server is not affected, and a closed file frees its place."""
    (server.folder("alpha", "in") / "x.part").write_bytes(b"x")
    (server.folder("alpha", "out") / "a.xml").write_bytes(b"a")
    sessions = HANDLES_PER_USER_MAX // 64 + 1
    clients = [open_sftp(server, "alpha-erp", "alpha") for _ in range(sessions)]
    held, refusals = [], []
    for sftp in clients:
        handles, refused = _open_many(sftp, "/in/x.part", 64)
        held += handles
        refusals += refused
    assert len(held) == HANDLES_PER_USER_MAX
    assert len(refusals) == sessions * 64 - HANDLES_PER_USER_MAX
    assert f"at most {HANDLES_PER_USER_MAX} open files per user" in refusals[0]
    viewer = open_sftp(server, "alpha-view", "alpha-view")
    with viewer.open("/out/a.xml", "rb") as handle:
        assert handle.read() == b"a"
    held[0].close()  # type: ignore[attr-defined]
    clients[-1].open("/in/x.part", "rb").close()
    assert len(server.log.named("sftp.open.refused")) == 1  # once a minute per user
    for sftp in [*clients, viewer]:
        sftp.close()


def test_loop_errors_are_json_log_lines_not_tracebacks(
    tmp_path: Path, keys: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    """accept() out of descriptors (whatever used them up) is reported by asyncio to the
    loop's exception handler: it becomes one `loop.error` line, not a traceback printed
    for every retry."""
    with running_server(tmp_path / "gw", keys, auth_failures_before_penalty=50) as server:
        capfd.readouterr()
        spare = []
        with _nofile(_descriptors_open() + 8):
            with contextlib.suppress(OSError):
                while True:
                    spare.append(os.open("/dev/null", os.O_RDONLY))
            # Leave exactly one: the client's socket, so the server's accept() fails.
            os.close(spare.pop())
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            assert wait_for(lambda: bool(server.log.named("loop.error")), timeout=5)
            wait_for(lambda: len(server.log.named("loop.error")) > 1, timeout=2.5)
            for fd in spare:
                os.close(fd)
            sock.close()
        lines = server.log.named("loop.error")
        assert len(lines) == 1, lines
        assert "Too many open files" in lines[0]["error"]
        out, err = capfd.readouterr()
        assert "Traceback" not in out + err and "out of system resource" not in out + err


def test_refusals_during_a_login_penalty_are_logged_once_a_minute(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """A client that keeps connecting while its address is penalised is logged once a
    minute (with the count held back), as for the unauthenticated-connection limits."""
    with running_server(
        tmp_path / "gw", keys, auth_failures_before_penalty=1, auth_penalty_seconds_max=60
    ) as server:
        with pytest.raises(paramiko.AuthenticationException):
            paramiko_connect(server, "alpha-view", "stranger", source="127.0.0.5")
        assert wait_for(lambda: len(server.log.named("sftp.auth.failed")) == 1)
        for _ in range(30):
            with contextlib.suppress(OSError):
                sock = socket.create_connection(
                    ("127.0.0.1", server.port), timeout=5, source_address=("127.0.0.5", 0)
                )
                sock.recv(100)  # the server closes it at once
                sock.close()
        lines = server.log.named("sftp.connection.refused")
        assert len(lines) == 1, lines
        assert lines[0]["reason"] == "repeated authentication failures"
        assert lines[0]["source_ip"] == "127.0.0.5"


def test_what_asyncio_logs_itself_is_json_lines_once_a_minute(
    tmp_path: Path, keys: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    """asyncio logs `socket.send() raised exception.` through its own logger for every
    write to a connection that is gone: a client pipelining 3,000 requests and dropping the
    socket wrote 2,439 plain lines to stderr (a tester). They are `loop.warning` JSON
    lines, once a minute per message."""
    with running_server(tmp_path / "gw", keys) as server:
        capfd.readouterr()
        for _ in range(100):
            logging.getLogger("asyncio").warning("socket.send() raised exception.")
        assert wait_for(lambda: bool(server.log.named("loop.warning")), timeout=5)
        lines = server.log.named("loop.warning")
        assert len(lines) == 1 and lines[0]["message"] == "socket.send() raised exception."
        _, err = capfd.readouterr()
        assert "socket.send()" not in err
