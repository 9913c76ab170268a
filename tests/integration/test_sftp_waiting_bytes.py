"""One client cannot fill the disk for everyone: the bytes it has waiting are bounded
(SPEC §9, issue 14.7), checked through the real built-in server with paramiko."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from gateway.sftp import quota
from gateway.sftp.server import server_context
from tests.integration.sftp_fixtures import (
    RunningServer,
    ServerThread,
    open_sftp,
    running_server,
    write_config,
)

LIMIT = 10_000


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path]) -> Iterator[RunningServer]:
    with running_server(tmp_path / "gw", keys, client_waiting_bytes_max=LIMIT) as running:
        yield running


def put(sftp: paramiko.SFTPClient, name: str, size: int) -> None:
    """Upload `size` bytes in 1,000-byte writes, each answered before the next (so a refusal
    arrives at the write that passes the limit)."""
    with sftp.open(f"/in/{name}", "wb", bufsize=0) as handle:
        handle.set_pipelined(False)
        for start in range(0, size, 1000):
            handle.write(b"x" * min(1000, size - start))


def everything_in(server: RunningServer, client: str) -> list[str]:
    """Every name in the client's in/, hidden upload files included."""
    return sorted(p.name for p in server.folder(client, "in").iterdir())


def refusals(server: RunningServer) -> dict[str, int]:
    ctx = server.call(lambda: server_context(server.acceptor))
    assert ctx is not None
    return dict(ctx.uploads_refused)


def test_upload_past_the_limit_is_refused_and_leaves_nothing(server: RunningServer) -> None:
    """Files already waiting (in in/, awaiting/ and test/) count; an upload that fits is taken;
    the write that would pass the limit fails with an error naming the limit and its key, and
    nothing of that upload stays — no file, no hidden temporary, no receipt. Logged and counted;
    other clients are not affected."""
    server.folder("alpha", "in").joinpath("earlier.xml").write_bytes(b"e" * 3000)
    awaiting = server.spool / "awaiting" / "alpha"
    awaiting.mkdir(parents=True)
    awaiting.joinpath("batch.xml").write_bytes(b"a" * 1500)
    test_dir = server.spool / "clients" / "alpha" / "test"
    test_dir.mkdir(exist_ok=True)  # the server makes /test (SPEC §15)
    test_dir.joinpath("trial.xml").write_bytes(b"t" * 500)

    sftp = open_sftp(server, "alpha-erp", "alpha")
    put(sftp, "fits.xml", 4000)  # 3000 + 1500 + 500 + 4000 = 9000
    with pytest.raises(OSError) as refused:
        put(sftp, "too-much.xml", 2000)  # would make 11,000
    message = str(refused.value)
    assert "10000 bytes" in message and "sftp.client_waiting_bytes_max" in message
    assert "Upload refused" in message
    assert everything_in(server, "alpha") == ["earlier.xml", "fits.xml"]
    assert [r.file_name for r in server.receipts] == ["fits.xml"]

    (event,) = server.log.named("sftp.upload.refused")
    assert event["client"] == "alpha" and event["limit_bytes"] == LIMIT
    assert event["reason"] == "sftp.client_waiting_bytes_max"
    assert refusals(server) == {"alpha": 1}

    put(sftp, "exact.xml", 1000)  # the limit itself is allowed: 10,000
    other = open_sftp(server, "beta-erp", "beta")
    put(other, "beta.xml", 9000)  # another client has its own allowance
    assert everything_in(server, "beta") == ["beta.xml"]
    sftp.close()
    other.close()


def test_room_made_by_the_gateway_is_seen_at_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the gateway has taken waiting files in, the client may upload again at once:
    the server counts the folders afresh rather than trusting an old count. (A count
    stands for a while after it, as long as it took times `quota.count_share_max` − 1 —
    a fraction of a millisecond here, what `test_sftp_quota.py` checks; made nothing.)"""
    monkeypatch.setattr(quota, "count_share_max", 1)
    sftp = open_sftp(server, "alpha-erp", "alpha")
    put(sftp, "first.xml", 8000)
    with pytest.raises(OSError):
        put(sftp, "second.xml", 4000)
    # The gateway claims the first file (it moves out of in/ into its own folders).
    (server.folder("alpha", "in") / "first.xml").rename(server.spool / "first.xml")
    put(sftp, "second.xml", 4000)
    assert everything_in(server, "alpha") == ["second.xml"]
    sftp.close()


def test_uploads_in_flight_in_parallel_sessions_count(server: RunningServer) -> None:
    """Bytes of uploads still being written count too, across the client's parallel sessions:
    two half-written uploads leave room for no third that would pass the limit, whoever sends
    it; a discarded upload gives its room back."""
    one = open_sftp(server, "alpha-erp", "alpha")
    two = open_sftp(server, "alpha-erp", "alpha")
    first = one.open("/in/one.xml", "wb", bufsize=0)
    first.set_pipelined(False)
    first.write(b"1" * 4000)
    second = two.open("/in/two.xml", "wb", bufsize=0)
    second.set_pipelined(False)
    second.write(b"2" * 4000)
    # Nothing visible yet: two hidden uploads hold 8,000 bytes.
    assert [n.startswith(".upload-") for n in everything_in(server, "alpha")] == [True, True]
    with pytest.raises(OSError) as refused:
        put(two, "three.xml", 3000)
    assert "sftp.client_waiting_bytes_max" in str(refused.value)
    with pytest.raises(OSError):
        second.write(b"2" * 3000)  # the same for an upload already under way
    second.close()  # paramiko ignores errors on close; the upload was discarded at the refusal
    hidden = [n for n in everything_in(server, "alpha") if n.startswith(".")]
    assert len(hidden) == 1  # only `one.xml`, still being written
    # 4,000 in flight (counted once, not again as the hidden file on disk) + 6,000: the
    # discarded upload's room is free again.
    put(two, "three.xml", 6000)
    first.close()
    assert everything_in(server, "alpha") == ["one.xml", "three.xml"]
    assert refusals(server) == {"alpha": 2}
    one.close()
    two.close()


@pytest.mark.parametrize("first_writer", [0, 1])
def test_uploads_through_two_servers_on_one_spool_count_together(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch, first_writer: int
) -> None:
    """Two processes serving one spool (SPEC §7), each knowing only its own uploads: a
    client wrote 6,000 bytes through one and 6,000 through the other, both taken, 12,000
    waiting against 10,000 (a tester). Each counts the other's hidden upload at the size
    it has reached, before each write: the second to pass the limit is refused, whichever
    server began first and whichever writes first, and 10,000 bytes at most wait."""
    monkeypatch.setattr(quota, "count_share_max", 1)  # a count stands for no time (above)
    config = write_config(tmp_path / "gw", keys, client_waiting_bytes_max=LIMIT)
    with running_server(tmp_path / "gw", keys, client_waiting_bytes_max=LIMIT) as one:
        other = ServerThread()
        two = other.start(config, keys)
        try:
            sessions = [open_sftp(one, "alpha-erp", "alpha"), open_sftp(two, "alpha-erp", "alpha")]
            handles = [
                s.open(f"/in/{n}.xml", "wb", bufsize=0)
                for s, n in zip(sessions, "ab", strict=True)
            ]
            for handle in handles:
                handle.set_pipelined(False)
            order = [handles[first_writer], handles[1 - first_writer]]
            order[0].write(b"x" * 6000)
            with pytest.raises(OSError) as refused:
                for _ in range(6):
                    order[1].write(b"y" * 1000)
            assert "sftp.client_waiting_bytes_max" in str(refused.value)
            for handle in handles:
                handle.close()
            waiting = sum(p.stat().st_size for p in one.folder("alpha", "in").iterdir())
            assert 6000 <= waiting <= LIMIT
            for session in sessions:
                session.close()
        finally:
            other.stop(two)


def test_an_upload_through_a_spool_reached_by_a_link_counts_once(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session names its hidden upload by the resolved path, the count listed the
    configured one: with `spool_dir` a link (a disk mounted elsewhere) each upload counted
    twice, once on disk and once as reserved, and 9,000 bytes were refused against
    10,000 (a reviewer of the two-server count above)."""
    monkeypatch.setattr(quota, "count_share_max", 1)
    config = write_config(tmp_path / "gw", keys, client_waiting_bytes_max=LIMIT)
    (tmp_path / "disk").mkdir()
    (tmp_path / "spool-link").symlink_to(tmp_path / "disk")
    text = config.read_text()
    assert 'spool_dir = "spool"' in text
    link = tmp_path / "spool-link"
    config.write_text(text.replace('spool_dir = "spool"', f'spool_dir = "{link}"'))
    thread = ServerThread()
    server = thread.start(config, keys)
    try:
        sftp = open_sftp(server, "alpha-erp", "alpha")
        put(sftp, "big.xml", 9000)
        assert everything_in(server, "alpha") == ["big.xml"]
        with pytest.raises(OSError, match="client_waiting_bytes_max"):
            put(sftp, "more.xml", 2000)
        sftp.close()
    finally:
        thread.stop(server)


def test_pipelined_upload_past_the_limit_fails_and_nothing_stays(
    server: RunningServer,
) -> None:
    """A client that sends its writes without waiting for each answer (paramiko's `put`, like
    most GUI clients) is stopped too: the upload fails and nothing of it remains. (paramiko
    drops the error text of pipelined writes and reports the missing file instead; clients
    that read their write answers show the text, as the tests above do.)"""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    with pytest.raises(OSError):
        sftp.putfo(io.BytesIO(b"p" * 50_000), "/in/big.xml")
    assert everything_in(server, "alpha") == []
    assert server.receipts == []
    assert refusals(server) == {"alpha": 1}
    sftp.close()


def test_a_clients_own_limit_is_named_in_the_refusal(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """`waiting_bytes_max` on a client overrides the server-wide limit for that client only,
    and the refusal names that key."""
    with running_server(
        tmp_path / "gw", keys, client_waiting_bytes_max=LIMIT,
        client_keys={"beta": {"waiting_bytes_max": 2000}},
    ) as server:
        beta = open_sftp(server, "beta-erp", "beta")
        with pytest.raises(OSError) as refused:
            put(beta, "b.xml", 3000)
        assert "2000 bytes" in str(refused.value)
        assert "client[1].waiting_bytes_max" in str(refused.value)
        alpha = open_sftp(server, "alpha-erp", "alpha")
        put(alpha, "a.xml", 9000)
        assert everything_in(server, "alpha") == ["a.xml"]
        assert everything_in(server, "beta") == []
        beta.close()
        alpha.close()
