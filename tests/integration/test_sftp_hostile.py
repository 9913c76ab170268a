"""Hostile or broken SFTP clients against the built-in server, below paramiko's SFTPClient
(`rawsftp.Raw`): each case a defect a tester found, each test failing without its fix."""

from __future__ import annotations

import os
import time

import pytest

from gateway.sftp import server_context
from gateway.sftp.requests import FAILED
from tests.integration.rawsftp import (
    CLOSE,
    FXF_CREAT,
    FXF_READ,
    FXF_WRITE,
    READ,
    STATUS,
    WRITE,
    Raw,
    s,
    u32,
    u64,
)
from tests.integration.sftp_fixtures import RunningServer, open_sftp


def _buffered_for_clients(server: RunningServer) -> int:
    """Bytes the server holds in its channels' send buffers (window exhausted)."""
    ctx = server_context(server.acceptor)
    assert ctx is not None

    def total() -> int:
        return sum(
            chan._send_buf_len
            for conn in ctx.connections
            if conn.conn is not None
            for chan in conn.conn._channels.values()
        )

    return int(server.call(total))


def _upload(server: RunningServer, name: str, data: bytes) -> None:
    sftp = open_sftp(server, "alpha-erp", "alpha")
    with sftp.open(name, "wb") as handle:
        handle.write(data)
    sftp.close()


def test_a_client_that_never_reads_its_answers_cannot_make_the_server_buffer_without_end(
    server: RunningServer,
) -> None:
    """A client pipelines READ requests (about 40 bytes each) and never reads the answers
    (its SSH window runs out). asyncssh's SFTP server writes each answer into the channel
    without waiting for room (no drain), so every 256 KiB answer is kept in the daemon's
    memory: 600 requests (24 KB sent) hold ~150 MB, and the amount grows with the number
    of requests, no limit of the README bounding it (sessions, handles, waiting bytes)."""
    _upload(server, "/in/big.xml", os.urandom(262_144))
    raw = Raw(server)
    handle = raw.open("/in/big.xml", FXF_READ)
    for _ in range(600):
        raw.send(READ, s(handle) + u64(0) + u32(262_144))
    deadline = time.monotonic() + 10
    buffered = 0
    while time.monotonic() < deadline:
        buffered = _buffered_for_clients(server)
        if buffered > 64 * 2**20:
            break
        time.sleep(0.2)
    raw.close()
    assert buffered <= 64 * 2**20, (
        f"the server holds {buffered / 2**20:.0f} MiB of answers for one client that "
        "sent 600 small READ requests and reads none"
    )


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(u32(1) + b"\x06", id="packet-too-short-for-its-id"),
        pytest.param(u32(0x7FFF_FFFF) + b"\x06", id="length-over-the-maximum"),
    ],
)
def test_a_malformed_packet_mid_upload_does_not_publish_the_unclosed_upload(
    server: RunningServer, junk: bytes
) -> None:
    """SPEC §4: an upload becomes visible only when the client closes it. A client writes
    half a file, then sends one malformed SFTP packet (shorter than a request id, or a
    length over asyncssh's maximum). asyncssh ends the SFTP session and closes the open
    handles itself (`_cleanup`) while the channel is still open, so `_finish_upload`
    takes that close for the client's: the half file is renamed into in/ with a receipt
    and handed to processing (`sftp.upload.closed`), though the client never closed it."""
    raw = Raw(server)
    handle = raw.open("/in/cut.xml", FXF_WRITE | FXF_CREAT)
    kind, body = raw.request(WRITE, s(handle) + u64(0) + s(b"<Document>half of it"))
    assert kind == STATUS and Raw.status(body)[0] == 0
    raw.ch.sendall(junk)
    time.sleep(1.0)
    raw.close()
    time.sleep(0.3)
    assert not (server.folder("alpha", "in") / "cut.xml").exists(), (
        "a half upload the client never closed was published into in/"
    )
    assert not server.receipts, [r.file_name for r in server.receipts]


def test_a_session_ended_by_a_malformed_packet_gives_back_every_upload_it_held(
    server: RunningServer,
) -> None:
    """A session holds a refused upload (a write past max_file_bytes) and a second upload
    in progress, then sends a malformed packet. asyncssh's `_cleanup` closes the handles
    one by one on the still-open channel; the refused one's close raises (its refusal,
    `_finish_upload`), which stops the clean-up: the second upload is never closed nor
    discarded and `exit` never runs. Left for the life of the daemon: its hidden
    `.upload-*` file (locked, so housekeeping keeps it), its descriptor and open-file slot,
    its bytes counted as waiting, and its name — a new upload of `keep.xml` from a fresh
    session is refused "being uploaded in another session"."""
    ctx = server_context(server.acceptor)
    assert ctx is not None
    raw = Raw(server)
    big = raw.open("/in/big.xml", FXF_WRITE | FXF_CREAT)
    _kind, body = raw.request(WRITE, s(big) + u64(1_000_000) + s(b"x"))
    assert Raw.status(body)[0] != 0  # refused: past max_file_bytes
    keep = raw.open("/in/keep.xml", FXF_WRITE | FXF_CREAT)
    _kind, body = raw.request(WRITE, s(keep) + u64(0) + s(b"y" * 5000))
    assert Raw.status(body)[0] == 0
    raw.ch.sendall(u32(1) + b"\x06")  # a packet too short to carry its request id
    time.sleep(1.0)
    raw.close()
    time.sleep(0.5)
    left = sorted(os.listdir(server.folder("alpha", "in")))
    writing = server.call(lambda: set(ctx.writing))
    handles = server.call(lambda: ctx.handles.count("alpha-erp"))
    in_flight = server.call(lambda: ctx.waiting.in_flight("alpha"))
    sftp = open_sftp(server, "alpha-erp", "alpha")
    try:
        with sftp.open("/in/keep.xml", "wb") as handle:
            handle.write(b"<Document/>")
        again = "ok"
    except OSError as exc:
        again = str(exc)
    sftp.close()
    hidden = [name for name in left if name.startswith(".upload-")]
    assert (hidden, writing, handles, in_flight, again) == ([], set(), 0, 0, "ok"), dict(
        hidden=hidden, writing=writing, handles=handles, in_flight=in_flight, again=again
    )


def test_requests_that_fail_unexpectedly_cannot_flood_the_log(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that fails as our code did not expect is logged with its traceback
    (`sftp.request.failed`, `requests.py`): one per request, so a client pipelining 200
    READs at 2**63 (40 bytes each) wrote 200 tracebacks (a tester). Once a minute per
    user, request and error, as refusals are; each request is still answered."""
    from gateway.sftp.session import SftpSession

    async def defect(self: object) -> None:
        raise ValueError("a defect of ours")

    monkeypatch.setattr(SftpSession, "_room_for_answers", defect)
    _upload(server, "/in/r.xml", b"x" * 100)
    raw = Raw(server)
    handle = raw.open("/in/r.xml", FXF_READ)
    for _ in range(200):
        raw.send(READ, s(handle) + u64(0) + u32(10))
    answers = [raw.recv() for _ in range(200)]
    raw.close()
    assert {Raw.status(a[5:])[1] for a in answers} == {FAILED}
    [line] = server.log.named("sftp.request.failed")
    assert (line["op"], line["error"]) == ("read", "ValueError: a defect of ours")


def test_a_read_past_2_63_is_the_files_end(server: RunningServer) -> None:
    """SFTP offsets are 64 bits unsigned, `os.pread` takes a signed one: a READ at 2**63
    raised OverflowError, answered "Internal error … tell the operator" and logged with a
    traceback (a tester). Past any file, it is the file's end."""
    _upload(server, "/in/r.xml", b"x" * 100)
    raw = Raw(server)
    handle = raw.open("/in/r.xml", FXF_READ)
    kind, body = raw.request(READ, s(handle) + u64(2**63) + u32(10))
    raw.request(CLOSE, s(handle))
    raw.close()
    assert kind == STATUS and Raw.status(body)[0] == 1, Raw.status(body)  # SSH_FX_EOF
    assert server.log.named("sftp.request.failed") == []
