"""Standard clients' habits against the built-in SFTP server: paramiko's put (a stat after
the close), OpenSSH's scp (an fsetstat of the size written), asyncssh's get (ranges)."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
from pathlib import Path

import asyncssh
import paramiko
import pytest

from gateway.sftp import UploadReceipt, fs, server_context
from tests.integration.sftp_fixtures import OPENSSH_OPTIONS, RunningServer, open_sftp


def _claim_at_once(server: RunningServer, taken: Path) -> None:
    """Take every upload out of in/ (and its receipt) the moment it is visible, as a daemon
    that is idle does: before the client's next request arrives."""
    ctx = server_context(server.acceptor)
    assert ctx is not None
    taken.mkdir()

    def claim(receipt: UploadReceipt) -> None:
        shutil.move(receipt.path, taken / receipt.file_name)
        receipt.receipt_path.unlink()

    server.call(lambda: setattr(ctx, "on_upload", claim))


def test_paramiko_put_confirms_an_upload_the_gateway_took_at_once(
    server: RunningServer, tmp_path: Path
) -> None:
    """paramiko's put (confirm=True) stats the file after closing it: the session that
    uploaded it is answered with its attributes though the gateway has claimed it."""
    _claim_at_once(server, tmp_path / "taken")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    for n in range(20):
        local = tmp_path / f"batch-{n}.xml"
        local.write_bytes(b"<Document/>" * (n + 1))
        attrs = sftp.put(str(local), f"/in/batch-{n}.xml")
        assert attrs.st_size == local.stat().st_size
    assert server.visible("alpha") == []
    assert len(list((tmp_path / "taken").iterdir())) == 20
    other = open_sftp(server, "alpha-erp", "alpha")  # another session sees what is there
    with pytest.raises(FileNotFoundError):
        other.stat("/in/batch-0.xml")
    with pytest.raises(FileNotFoundError):
        sftp.stat("/in/never-uploaded.xml")
    other.close()
    sftp.close()


def test_a_stat_or_times_after_a_rename_answer_once_the_gateway_took_the_file(
    server: RunningServer, tmp_path: Path
) -> None:
    """Upload under a temporary name, rename to the final one (WinSCP's .filepart), then
    stat it and set its times: the session that renamed it is answered though the gateway
    has claimed it (each raised FileNotFoundError for an upload received and answered)."""
    _claim_at_once(server, tmp_path / "taken")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    for n in range(5):
        with sftp.open(f"/in/renamed-{n}.xml.filepart", "wb") as handle:
            handle.write(b"<Document/>" * (n + 1))
        sftp.rename(f"/in/renamed-{n}.xml.filepart", f"/in/renamed-{n}.xml")
        assert sftp.stat(f"/in/renamed-{n}.xml").st_size == len(b"<Document/>") * (n + 1)
        sftp.utime(f"/in/renamed-{n}.xml", (1_700_000_000, 1_700_000_000))
    assert len(list((tmp_path / "taken").iterdir())) == 5
    with pytest.raises(FileNotFoundError):
        sftp.utime("/in/never-uploaded.xml", (1_700_000_000, 1_700_000_000))
    sftp.close()


def _scp(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    scp = shutil.which("scp")
    assert scp is not None, "OpenSSH scp not installed"
    return subprocess.run(
        [scp, "-P", str(server.port), "-i", str(server.keys["alpha"]), *OPENSSH_OPTIONS, *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_openssh_scp_uploads_and_downloads(server: RunningServer, tmp_path: Path) -> None:
    """OpenSSH's scp (SFTP mode) sets the size it wrote on the open upload (truncation to
    its high-water mark, which changes nothing here) and its times: both are accepted."""
    local = tmp_path / "batch.xml"
    local.write_bytes(b"<Document/>\n" * 1000)
    done = _scp(server, "-p", str(local), "alpha-erp@127.0.0.1:/in/batch.xml")
    assert done.returncode == 0, done.stderr
    assert (server.folder("alpha", "in") / "batch.xml").read_bytes() == local.read_bytes()
    assert server.receipt("alpha", "batch.xml")["size_bytes"] == local.stat().st_size
    assert server.log.named("sftp.denied") == []
    back = tmp_path / "back.xml"
    done = _scp(server, "alpha-erp@127.0.0.1:/in/batch.xml", str(back))
    assert done.returncode == 0, done.stderr
    assert back.read_bytes() == local.read_bytes()


def test_a_real_size_change_on_an_open_upload_is_refused_and_named(
    server: RunningServer,
) -> None:
    """Truncating or growing an upload through its attributes is still refused; the log
    names the operation and the file."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    with sftp.open("/in/grow.xml", "wb") as handle:
        handle.write(b"12345")
        handle.flush()
        handle.truncate(5)  # the size it has: nothing changes
        handle.chmod(0o600)  # permissions are the gateway's: accepted and ignored
        with pytest.raises(PermissionError):
            handle.truncate(2)
        with pytest.raises(PermissionError):
            handle.truncate(10)
    assert (server.folder("alpha", "in") / "grow.xml").read_bytes() == b"12345"
    # The second refusal of the same kind within a minute is held back (counted in the
    # next line of its kind): a flood of refused requests is a line a minute.
    denied = server.log.named("sftp.denied")
    assert [(d["op"], d["path"], d["held_back"]) for d in denied] == [
        ("fsetstat", "/in/grow.xml", 0)
    ]
    with pytest.raises(PermissionError):
        sftp.truncate("/in/grow.xml", 1)
    assert server.log.named("sftp.denied")[-1]["op"] == "setstat"
    sftp.close()


async def _asyncssh_get_and_copy(server: RunningServer, local: Path) -> None:
    async with asyncssh.connect(
        "127.0.0.1", server.port, username="alpha-erp", client_keys=[str(server.keys["alpha"])],
        known_hosts=None,
    ) as conn, conn.start_sftp_client() as sftp:  # fmt: skip
        await sftp.get("/out/answer.xml", str(local))  # its default: ranges@asyncssh.com
        # No copy on the server (`copy-data` is not offered): the client's copy goes
        # through the client, and one that must not is refused.
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await sftp.copy("/out/answer.xml", "/in/copy-remote.xml", remote_only=True)
        await sftp.copy("/out/answer.xml", "/in/copy.xml")


def test_asyncssh_get_and_remote_copy(server: RunningServer, tmp_path: Path) -> None:
    """asyncssh's default get() asks which ranges of the file hold data (its extension
    ranges@asyncssh.com, which asyncssh's server offers): a read handle answers them.
    Its copy between two remote paths reads and writes through the client."""
    data = b"<Document/>\n" * 20_000
    (server.folder("alpha", "out") / "answer.xml").write_bytes(data)
    asyncio.run(_asyncssh_get_and_copy(server, tmp_path / "answer.xml"))
    assert (tmp_path / "answer.xml").read_bytes() == data
    assert (server.folder("alpha", "in") / "copy.xml").read_bytes() == data
    assert server.log.named("sftp.request.failed") == []


# A handler's work fails with what it did not expect: in the request itself (stat), or in
# a listing, whose work happens as it is read (READDIR), after the handler that opened it
# returned (a review).
UNEXPECTED = {
    "in a request": (fs, "resolve", "stat", lambda sftp: sftp.stat("/in/x.xml")),
    "while listing": (os, "scandir", "scandir", lambda sftp: sftp.listdir("/in")),
}


@pytest.mark.parametrize("where", list(UNEXPECTED))
def test_an_unexpected_error_is_logged(
    where: str, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception that is neither an SFTP nor an OS error is logged as a JSON line (with
    its traceback) and the client told the server failed."""
    module, name, op, call = UNEXPECTED[where]
    sftp = open_sftp(server, "alpha-erp", "alpha")

    def broken(path: object) -> None:
        raise RuntimeError(f"a bug {where}")

    monkeypatch.setattr(module, name, broken)
    with pytest.raises(OSError, match="Internal error on the server"):
        call(sftp)
    (line,) = server.log.named("sftp.request.failed")
    assert line["op"] == op and line["error"] == f"RuntimeError: a bug {where}"
    assert line["user"] == "alpha-erp"
    sftp.close()


def _long_names(sftp: paramiko.SFTPClient, path: str) -> dict[str, list[str]]:
    """Each entry's `ls -l` line (the long name the server sends), split, by name."""
    return {e.filename: e.longname.split() for e in sftp.listdir_attr(path)}


def _listing(sftp: paramiko.SFTPClient, path: str) -> dict[str, list[str]]:
    """`ls -la` as OpenSSH's sftp shows it: the long names of `.` and `..` too."""
    handle = sftp._request(paramiko.sftp.CMD_OPENDIR, path)[1].get_binary()
    names: dict[str, list[str]] = {}
    try:
        while True:
            t, msg = sftp._request(paramiko.sftp.CMD_READDIR, handle)
            if t != paramiko.sftp.CMD_NAME:
                break
            for _ in range(msg.get_int()):
                name, longname = msg.get_text(), msg.get_text()
                paramiko.SFTPAttributes._from_msg(msg)
                names[name] = longname.split()
    except EOFError:
        pass
    sftp._request(paramiko.sftp.CMD_CLOSE, handle)
    return names


def test_long_listing_of_the_root_and_who_may_write_where(server: RunningServer) -> None:
    """`ls -la /` shows `.` and `..` with a link count and a size like every entry; a
    folder shows write permission only to a user who may write there."""
    manage = open_sftp(server, "alpha-erp", "alpha")
    root = _listing(manage, "/")
    assert set(root) == {".", "..", "in", "out", "test"}
    for fields in root.values():
        assert fields[1] == "1" and fields[2:4] == ["alpha", "alpha"] and fields[4].isdigit()
    assert root["in"][0] == root["test"][0] == "drwxr-x---"
    assert root["out"][0] == root["."][0] == "dr-xr-x---"
    assert _listing(manage, "/in")["."][0] == "drwxr-x---"
    viewer = open_sftp(server, "alpha-view", "alpha-view")
    seen = _listing(viewer, "/")
    assert set(seen) == {".", "..", "in", "out"}
    assert seen["in"][0] == seen["out"][0] == "dr-xr-x---"
    assert _listing(viewer, "/in")["."][0] == "dr-xr-x---"
    assert stat.S_IMODE(viewer.stat("/in").st_mode or 0) == 0o550
    assert stat.S_IMODE(manage.stat("/in").st_mode or 0) == 0o750
    manage.close()
    viewer.close()
