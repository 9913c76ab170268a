"""Hostile or broken SFTP clients against the built-in server, below paramiko's SFTPClient
(`rawsftp.Raw`): each case a defect a tester found, each test failing without its fix."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path

import asyncssh
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


def _held_for_clients(server: RunningServer) -> int:
    """Bytes of answers the server holds for its clients: in channels' send buffers and in
    the connections' transports (what the client's TCP has not taken)."""
    ctx = server_context(server.acceptor)
    assert ctx is not None

    def total() -> int:
        held = 0
        for conn in ctx.connections:
            if conn.conn is None:
                continue
            transport = conn.conn._transport
            if transport is not None:
                held += transport.get_write_buffer_size()
            held += sum(chan._send_buf_len for chan in conn.conn._channels.values())
        return held

    return int(server.call(total))


def _most_held(server: RunningServer, seconds: float = 10) -> int:
    """The most the server held for its clients (`_held_for_clients`) over `seconds`, or
    as soon as it passes 64 MiB."""
    deadline = time.monotonic() + seconds
    held = 0
    while time.monotonic() < deadline and held <= 64 * 2**20:
        held = max(held, _held_for_clients(server))
        time.sleep(0.2)
    return held


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
    held = _most_held(server)
    raw.close()
    assert held <= 64 * 2**20, (
        f"the server holds {held / 2**20:.0f} MiB of answers for one client that "
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


def test_a_close_pipelined_before_eof_is_answered_truthfully(server: RunningServer) -> None:
    """A client writes, sends CLOSE and at once half-closes its channel (EOF), then reads
    the CLOSE answer (as a pipelining client, or `ssh -s sftp < batch`, does). The EOF
    reached asyncssh before the CLOSE was processed, and the channel's receive state
    (`eof_pending`) took the client's own close for asyncssh's: the upload was discarded,
    and the client answered OK (a reviewer). It is published."""
    raw = Raw(server)
    h = raw.open("/in/piped.xml", FXF_WRITE | FXF_CREAT)
    for n in range(20):  # pipelined, as OpenSSH's sftp sends a file
        raw.send(WRITE, s(h) + u64(n * 32768) + s(b"x" * 32768))
    raw.send(CLOSE, s(h))
    raw.ch.shutdown_write()
    replies = [raw.recv() for _ in range(21)]
    assert all(Raw.status(r[5:])[0] == 0 for r in replies[:-1])
    code = Raw.status(replies[-1][5:])
    time.sleep(0.3)
    raw.close()
    published = server.folder("alpha", "in") / "piped.xml"
    assert code[0] == 0 and published.stat().st_size == 20 * 32768, code


def test_a_read_near_2_63_is_the_files_end(server: RunningServer) -> None:
    """A read at an offset below 2**63 whose end passes it (2**63-1, 2**63-10 with
    256 KiB) got EINVAL from `pread`, answered 'Invalid argument', not EOF (a reviewer of
    the fix above)."""
    from tests.integration.rawsftp import FXF_READ, READ, u32

    out = server.folder("alpha", "out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "r.bin").write_bytes(b"x" * 100)
    raw = Raw(server)
    h = raw.open("/out/r.bin", FXF_READ)
    codes = []
    for off in (2**63 - 1, 2**63 - 10):
        kind, body = raw.request(READ, s(h) + u64(off) + u32(262_144))
        codes.append((kind, Raw.status(body)))
    raw.close()
    assert [(kind, status[0]) for kind, status in codes] == [(STATUS, 1), (STATUS, 1)], codes


def test_a_client_with_a_big_window_that_never_reads_is_not_buffered_without_end(
    server: RunningServer,
) -> None:
    """The bound on answers a client does not take counted the channel's send buffer
    alone, which only holds what the client's SSH window has no room for (a reviewer): a
    client that opens its channel with a 2 GiB window and then stops reading its TCP
    connection takes nothing, yet every answer passes the window and goes to the
    connection's transport (asyncssh ignores `pause_writing`), which grew without bound:
    600 READs of 40 bytes held ~150 MB in the daemon."""
    out = server.folder("alpha", "out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "big.bin").write_bytes(os.urandom(262_144))
    async def run_streams() -> int:
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="alpha-erp", known_hosts=None,
            client_keys=[str(server.keys["alpha"])],
        ) as conn:
            writer, reader, _ = await conn.open_session(
                subsystem="sftp", encoding=None, window=2**31 - 1
            )

            def pkt(body: bytes) -> bytes:
                return struct.pack(">I", len(body)) + body

            async def recv() -> bytes:
                (n,) = struct.unpack(">I", await reader.readexactly(4))
                return await reader.readexactly(n)

            writer.write(pkt(b"\x01" + struct.pack(">I", 3)))
            await recv()
            path = b"/out/big.bin"
            writer.write(pkt(b"\x03" + struct.pack(">I", 1) + struct.pack(">I", len(path))
                             + path + struct.pack(">II", 1, 0)))
            reply = await recv()
            assert reply[0] == 102, reply
            (hl,) = struct.unpack(">I", reply[5:9])
            handle = reply[9:9 + hl]
            conn._transport.pause_reading()  # the client stops taking anything
            for rid in range(2, 602):
                writer.write(pkt(b"\x05" + struct.pack(">I", rid) + struct.pack(">I", len(handle))
                                 + handle + struct.pack(">QI", 0, 262_144)))
            await asyncio.sleep(0)
            held = await asyncio.to_thread(_most_held, server)
            conn._transport.resume_reading()
            return held

    held = asyncio.run(run_streams())
    assert held <= 64 * 2**20, f"the server holds {held / 2**20:.0f} MiB for one client"


def test_a_client_that_never_reads_its_listings_is_not_buffered_without_end(
    server: RunningServer,
) -> None:
    """The bound on unread answers was only in `read`: a client pipelining OPENDIR,
    READDIR, CLOSE on a folder of 128 long-named files (60 bytes sent, ~60 KB answered
    each time) and reading nothing had the daemon hold answers without end (a reviewer)."""
    from tests.integration.rawsftp import OPENDIR, READDIR

    out = server.folder("alpha", "out")
    out.mkdir(parents=True, exist_ok=True)
    for n in range(128):
        (out / (f"{n:03d}" + "x" * 200 + ".xml")).write_bytes(b"x")
    raw = Raw(server)
    _kind, body = raw.request(OPENDIR, s("/out"))
    handle = body[4 : 4 + struct.unpack(">I", body[:4])[0]]
    _kind, body = raw.request(READDIR, s(handle))
    one = len(body)
    raw.request(CLOSE, s(handle))
    number = int.from_bytes(handle, "big")
    for n in range(1, 3001):  # asyncssh numbers its handles one after the other
        nxt = (number + n).to_bytes(4, "big")
        raw.send(OPENDIR, s("/out"))
        raw.send(READDIR, s(nxt))
        raw.send(CLOSE, s(nxt))
    held = _most_held(server)
    raw.close()
    assert held <= 64 * 2**20, f"{held / 2**20:.0f} MiB held (one READDIR answer: {one} bytes)"


def test_big_downloads_are_whole_under_the_bound_on_unread_answers(
    server: RunningServer, tmp_path: Path
) -> None:
    """The bound waits for a client to take its answers: clients that ask far ahead —
    paramiko's prefetch of a whole file, asyncssh's 512 parallel requests — still get the
    whole file (a reviewer timed them with and without the bound: the same)."""
    out = server.folder("alpha", "out")
    out.mkdir(parents=True, exist_ok=True)
    data = os.urandom(24 * 2**20)
    (out / "big.bin").write_bytes(data)
    sftp = open_sftp(server, "alpha-erp", "alpha")
    sftp.get("/out/big.bin", str(tmp_path / "paramiko.bin"))
    sftp.close()

    async def asyncssh_get() -> None:
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="alpha-erp", known_hosts=None,
            client_keys=[str(server.keys["alpha"])],
        ) as conn, conn.start_sftp_client() as client:  # fmt: skip
            await client.get(
                "/out/big.bin", str(tmp_path / "asyncssh.bin"), max_requests=512,
                block_size=256 * 1024,
            )  # fmt: skip

    asyncio.run(asyncssh_get())
    for name in ("paramiko.bin", "asyncssh.bin"):
        assert (tmp_path / name).read_bytes() == data, name
