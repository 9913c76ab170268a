"""The built-in SFTP server against real clients: OpenSSH `sftp` and paramiko."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import hashlib
import io
import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest
from sqlalchemy import create_engine

from gateway import metrics
from gateway.clock import FixedClock
from gateway.sftp import quota, server_context, session, stop_server
from gateway.sftp.receipts import receipt_path
from gateway.sftp.session import HANDLES_PER_SESSION_MAX
from tests.integration.sftp_fixtures import (
    OPENSSH_OPTIONS,
    RunningServer,
    open_sftp,
    openssh_sftp,
    paramiko_connect,
    running_server,
    wait_for,
)


def _upload(sftp: paramiko.SFTPClient, name: str, data: bytes) -> None:
    with sftp.open(name, "wb") as handle:
        handle.write(data)


def _fails(fn: object, *args: object) -> bool:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError:
        return True
    return False


# Uploads


def test_upload_visible_only_after_close_with_receipt(server: RunningServer) -> None:
    """A client's file shows up in in/ under its name only once closed, with its receipt first."""
    data = b"<Document>pain.001</Document>\n" * 100
    sftp = open_sftp(server, "alpha-erp", "alpha")
    handle = sftp.open("/in/batch-1.xml", "wb")
    handle.write(data[:1000])
    handle.flush()
    in_dir = server.folder("alpha", "in")
    assert wait_for(lambda: any(p.name.startswith(".upload-") for p in in_dir.iterdir()))
    assert "batch-1.xml" not in server.visible("alpha")
    assert sftp.listdir("/in") == []  # the hidden upload is not listed either
    assert server.receipts == []
    handle.write(data[1000:])
    handle.close()

    assert server.visible("alpha") == ["batch-1.xml"]
    assert (in_dir / "batch-1.xml").read_bytes() == data
    receipt = server.receipt("alpha", "batch-1.xml")
    fingerprint = server.log.named("sftp.login")[0]["key_fingerprint"]
    assert receipt == {
        "client_id": "alpha",
        "sftp_user": "alpha-erp",
        "source_ip": "127.0.0.1",
        "key_fingerprint": fingerprint,
        "file_name": "batch-1.xml",
        "uploaded_as": "batch-1.xml",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "received_at": receipt["received_at"],
    }
    assert fingerprint.startswith("SHA256:")
    assert receipt["received_at"].endswith("+00:00")
    assert [r.file_name for r in server.receipts] == ["batch-1.xml"]
    assert server.receipts[0].path == in_dir / "batch-1.xml"
    sftp.close()


def test_the_longest_name_uploads_and_a_longer_one_is_refused_at_open(
    server: RunningServer,
) -> None:
    """A name the gateway cannot keep a receipt for is refused when the file is opened,
    in the gateway's words, not after the whole upload at close."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    longest = "L" * 232 + ".xml"
    _upload(sftp, f"/in/{longest}", b"<x/>")
    assert server.visible("alpha") == [longest]
    assert server.receipt("alpha", longest)["size_bytes"] == 4
    with pytest.raises(OSError, match="longer than 236 bytes"):
        sftp.open("/in/" + "M" * 236 + ".xml", "wb")
    sftp.close()


def test_receipt_time_comes_from_the_gateways_clock(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """An upload's receipt says when it was received by the environment's clock (the one
    cut-offs are judged by), not by a clock of the SFTP server's own."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    moment = ahead.replace(microsecond=0)
    with running_server(tmp_path / "gw", keys, clock=FixedClock(moment)) as server:
        sftp = open_sftp(server, "alpha-erp", "alpha")
        _upload(sftp, "/in/timed.xml", b"<x/>")
        sftp.close()
        assert server.receipt("alpha", "timed.xml")["received_at"] == moment.isoformat()
        assert server.receipts[0].received_at == moment


def test_openssh_client_put_get_and_home_is_in(server: RunningServer, tmp_path: Path) -> None:
    """The OpenSSH sftp client uploads into /in (its start folder) and downloads from /out."""
    (tmp_path / "pay.xml").write_bytes(b"<x/>")
    server.folder("alpha", "out").joinpath("answer.xml").write_bytes(b"<answer/>")
    result = openssh_sftp(
        server, "alpha-erp", "alpha",
        ["pwd", "put pay.xml", "ls -1 /", "get /out/answer.xml got.xml"], tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Remote working directory: /in" in result.stdout
    assert server.visible("alpha") == ["pay.xml"]
    assert server.receipt("alpha", "pay.xml")["sha256"] == hashlib.sha256(b"<x/>").hexdigest()
    assert (tmp_path / "got.xml").read_bytes() == b"<answer/>"


def test_long_listing_shows_the_client_as_owner(server: RunningServer, tmp_path: Path) -> None:
    """`ls -l` shows the client id as owner and group (not blanks, nor server accounts), in
    OpenSSH's `sftp` and in the long names paramiko receives."""
    server.folder("alpha", "out").joinpath("answer.xml").write_bytes(b"<answer/>")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    (entry,) = sftp.listdir_attr("/out")
    assert entry.longname.split()[1:5] == ["1", "alpha", "alpha", "9"]
    assert entry.longname.endswith(" answer.xml")
    assert entry.st_uid is None and entry.st_gid is None
    sftp.close()
    done = openssh_sftp(server, "alpha-erp", "alpha", ["ls -l /out"], tmp_path)
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.endswith("answer.xml")]
    assert line.split()[1:5] == ["1", "alpha", "alpha", "9"]


def test_a_folder_is_read_off_the_servers_loop(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading and sorting a folder of 10,000 files takes milliseconds, and on the loop that
    serves every session a client listing it again and again would hold every other client
    up (as counting its files did: `quota.py`). A listing reads its folder in another
    thread, and lists what is there."""
    read_on: list[int] = []
    real = session._file_names

    def recorded(folder: str) -> list[str]:
        read_on.append(threading.get_ident())
        return real(folder)

    monkeypatch.setattr(session, "_file_names", recorded)
    (server.folder("alpha", "out") / "b.xml").write_bytes(b"answer")
    (server.folder("alpha", "out") / "a.xml").write_bytes(b"answer")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    assert sftp.listdir("/out") == ["a.xml", "b.xml"]
    loop_thread = server.call(threading.get_ident)
    assert read_on and loop_thread not in read_on


def test_root_lists_exactly_in_and_out(server: RunningServer) -> None:
    """A manage user sees exactly /in, /out and /test (SPEC §15) at the top; `..` and
    `/..` stay there."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    assert sorted(sftp.listdir("/")) == ["in", "out", "test"]
    assert sorted(sftp.listdir("..")) == ["in", "out", "test"]
    assert sorted(sftp.listdir("/../../..")) == ["in", "out", "test"]
    assert sftp.normalize(".") == "/in"
    assert sftp.normalize("../../../etc") == "/etc"
    assert _fails(sftp.listdir, "/etc")
    sftp.close()


def test_filepart_then_rename_yields_one_file_and_one_receipt(server: RunningServer) -> None:
    """WinSCP-style upload: `x.filepart` is ignored until renamed, then appears once, receipted."""
    data = b"payload" * 500
    sftp = open_sftp(server, "alpha-erp", "alpha")
    _upload(sftp, "x.filepart", data)
    assert server.visible("alpha") == ["x.filepart"]
    assert server.receipt_names("alpha") == []
    assert server.receipts == []
    sftp.rename("x.filepart", "x.xml")
    assert server.visible("alpha") == ["x.xml"]
    assert server.receipt_names("alpha") == ["x.xml.json"]
    receipt = server.receipt("alpha", "x.xml")
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest()
    assert receipt["size_bytes"] == len(data)
    assert receipt["uploaded_as"] == "x.filepart"
    assert [r.file_name for r in server.receipts] == ["x.xml"]
    sftp.close()


def test_scripted_put_tmp_then_rename_with_openssh(server: RunningServer, tmp_path: Path) -> None:
    """A script's `put a b.tmp` + `rename b.tmp b.xml` with OpenSSH gives one file, one receipt."""
    (tmp_path / "a.xml").write_bytes(b"<a/>")
    result = openssh_sftp(
        server, "alpha-erp", "alpha", ["put a.xml b.tmp", "rename b.tmp b.xml"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert server.visible("alpha") == ["b.xml"]
    assert server.receipt_names("alpha") == ["b.xml.json"]
    assert len(server.receipts) == 1


def test_rename_visible_file_moves_its_receipt(server: RunningServer) -> None:
    """Renaming an uploaded file keeps exactly one receipt, under the new name."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    _upload(sftp, "one.xml", b"1")
    sftp.rename("one.xml", "two.xml")
    assert server.visible("alpha") == ["two.xml"]
    assert server.receipt_names("alpha") == ["two.xml.json"]
    assert server.receipt("alpha", "two.xml")["file_name"] == "two.xml"
    # Received, it stays so: never made temporary (and so removable) again.
    assert _fails(sftp.rename, "two.xml", "two.part")
    assert _fails(sftp.rename, "two.xml", ".two.xml")
    assert server.visible("alpha") == ["two.xml"]
    assert server.receipt_names("alpha") == ["two.xml.json"]
    sftp.close()


def test_no_overwrite_and_only_temporary_files_removed(server: RunningServer) -> None:
    """A manage user can never overwrite a file in /in, and may delete only temporary ones."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    _upload(sftp, "a.xml", b"first")
    assert _fails(_upload, sftp, "a.xml", b"second")
    _upload(sftp, "b.tmp", b"t")
    assert _fails(sftp.rename, "b.tmp", "a.xml")
    assert _fails(sftp.posix_rename, "b.tmp", "a.xml")
    assert _fails(sftp.remove, "a.xml")
    sftp.remove("b.tmp")
    assert (server.folder("alpha", "in") / "a.xml").read_bytes() == b"first"
    assert server.visible("alpha") == ["a.xml"]
    assert _fails(sftp.mkdir, "/in/sub")
    assert _fails(sftp.rmdir, "/in")
    # refused as not allowed wherever asked: at the root "No such file" (a tester)
    link = lambda p: sftp.symlink("/in/a.xml", p)  # noqa: E731
    for change, path in ((sftp.mkdir, "/foo"), (sftp.mkdir, "/in/sub"), (sftp.rmdir, "/nothing"),
                         (link, "/x"), (sftp.mkdir, "/../x")):  # fmt: skip
        with pytest.raises(PermissionError):
            change(path)
    sftp.close()


def test_a_name_another_daemon_publishes_meanwhile_is_never_overwritten(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two daemons on one spool (SPEC §7): each checks the name is free, then moves its
    upload there. Another daemon publishing the same name between this one's check and
    its move (its receipt, then its file) had its upload overwritten — answered to no one,
    though both clients were told it was received (an outside tester: 3 of 6 racing pairs;
    paramiko does not report a failed close). Now the name is taken with the receipt,
    never over another's: this upload is refused (and discarded, and logged) and the
    other's file and receipt stay as they were. Both ways of publishing: an upload's
    close, and a rename onto the name."""
    checked = session.SftpSession._refuse_taken
    looks: dict[str, int] = {}
    last_look = {"a.xml": 2, "b.xml": 1}  # at its close (after its open); at the rename

    def other_daemon_publishes(self: session.SftpSession, vpath: object, local: str) -> None:
        checked(self, vpath, local)  # free when this daemon looked ...
        name = Path(local).name
        looks[name] = looks.get(name, 0) + 1
        if looks[name] == last_look.get(name):  # ... then the other daemon takes it
            receipt = self._receipt_for(name)
            receipt.parent.mkdir(parents=True, exist_ok=True)
            receipt.write_text('{"other": "daemon"}')
            Path(local).write_bytes(b"the other daemon's upload")

    monkeypatch.setattr(session.SftpSession, "_refuse_taken", other_daemon_publishes)
    sftp = open_sftp(server, "alpha-erp", "alpha")
    inbox = server.folder("alpha", "in")
    _upload(sftp, "a.xml", b"this daemon's upload")  # (paramiko's close hides the refusal)
    _upload(sftp, "b.tmp", b"this daemon's other upload")
    assert _fails(sftp.rename, "b.tmp", "b.xml")
    assert looks["a.xml"] == 2 and looks["b.xml"] == 1
    for name in ("a.xml", "b.xml"):
        assert (inbox / name).read_bytes() == b"the other daemon's upload"
        assert receipt_path(server.spool, "alpha", name).read_text() == '{"other": "daemon"}'
    assert sorted(p.name for p in inbox.iterdir()) == ["a.xml", "b.tmp", "b.xml"]
    assert wait_for(lambda: any(
        e["file"] == "a.xml" and "meanwhile" in e["reason"]
        for e in server.log.named("sftp.upload.discarded")
    )), server.log.named("sftp.upload.discarded")
    sftp.close()


def test_a_temporary_name_another_daemon_publishes_meanwhile_is_never_overwritten(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary name (`x.part`) takes no receipt, so the receipt cannot keep it: the
    upload was moved over a `x.part` another daemon published after this one looked (a
    review of the fix above). The move itself never replaces a file now."""
    checked = session.SftpSession._refuse_taken
    looks: dict[str, int] = {}

    def other_daemon_publishes(self: session.SftpSession, vpath: object, local: str) -> None:
        checked(self, vpath, local)
        looks[local] = looks.get(local, 0) + 1
        if looks[local] == 2:  # at this upload's close (the first look is at its open)
            Path(local).write_bytes(b"the other daemon's upload")

    monkeypatch.setattr(session.SftpSession, "_refuse_taken", other_daemon_publishes)
    sftp = open_sftp(server, "alpha-erp", "alpha")
    _upload(sftp, "x.part", b"this daemon's upload")
    sftp.close()
    inbox = server.folder("alpha", "in")
    assert (inbox / "x.part").read_bytes() == b"the other daemon's upload"
    assert [p.name for p in inbox.iterdir()] == ["x.part"]


def test_a_receipt_that_cannot_be_written_discards_its_upload(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receipt that cannot be written (a full disk) discards its upload as any failed
    publish does: it kept its hidden file, its quota and its name ("being uploaded in
    another session") until the daemon restarted (a review of the fix above)."""
    real, failures = session.write_receipt, [1]

    def failing_once(receipt: object) -> bool:
        if failures:
            failures.pop()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(receipt)  # type: ignore[arg-type]

    monkeypatch.setattr(session, "write_receipt", failing_once)
    sftp = open_sftp(server, "alpha-erp", "alpha")
    _upload(sftp, "pay.xml", b"first try")  # (paramiko's close hides the failure)
    inbox = server.folder("alpha", "in")
    assert list(inbox.iterdir()) == []
    _upload(sftp, "pay.xml", b"second try")
    assert (inbox / "pay.xml").read_bytes() == b"second try"
    sftp.close()


def test_a_folder_that_cannot_be_synced_after_publishing_still_takes_the_upload(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The rename into in/ has happened when the folder is synced: the gateway takes the
    file and answers it. A failing sync was told to the client as a failed upload
    (OpenSSH `sftp`: "close remote: Failure"), which it sends again while the first is
    being paid, and a rename left the old name's receipt behind (a tester). It is ours:
    logged, and the close and the rename succeed."""
    real = session.fsync_dir

    def failing(folder: Path) -> None:
        if Path(folder).name == "in":
            raise OSError(errno.EIO, "Input/output error")
        real(folder)

    monkeypatch.setattr(session, "fsync_dir", failing)
    (tmp_path / "pay.xml").write_bytes(b"<Document/>")
    done = openssh_sftp(
        server, "alpha-erp", "alpha",
        [
            "put pay.xml /in/pay.xml", "put pay.xml /in/next.part",
            "rename /in/next.part /in/next.xml",
        ],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    inbox = server.folder("alpha", "in")
    assert sorted(p.name for p in inbox.iterdir()) == ["next.xml", "pay.xml"]
    assert server.receipt("alpha", "pay.xml")["size_bytes"] == 11
    assert server.receipt("alpha", "next.xml")["file_name"] == "next.xml"
    receipts = sorted(p.name for p in (server.spool / "receipts" / "alpha").iterdir())
    assert receipts == ["next.xml.json", "pay.xml.json"]
    assert [e["file"] for e in server.log.named("sftp.sync_failed")] == [
        "pay.xml", "next.part", "next.xml",
    ]  # fmt: skip


def test_a_name_being_uploaded_in_another_session_is_refused_at_open(
    server: RunningServer,
) -> None:
    """Two sessions writing the same name at once: only one file could be kept, so the
    second is refused when it opens (or renames onto the name), with a reason, before it
    sends its bytes; the first completes. Afterwards the name is taken as usual."""
    first = open_sftp(server, "alpha-erp", "alpha")
    second = open_sftp(server, "alpha-erp", "alpha")
    handle = first.open("/in/same.xml", "wb")
    handle.write(b"first")
    handle.flush()
    with pytest.raises(OSError, match="being uploaded in another session"):
        second.open("/in/same.xml", "wb")
    _upload(second, "same.part", b"second")
    with pytest.raises(OSError, match="being uploaded in another session"):
        second.rename("same.part", "same.xml")
    handle.close()
    assert (server.folder("alpha", "in") / "same.xml").read_bytes() == b"first"
    assert server.receipt("alpha", "same.xml")["size_bytes"] == 5
    assert _fails(_upload, second, "same.xml", b"again")  # exists: never overwritten
    first.close()
    second.close()


def test_a_name_is_free_again_once_its_upload_is_discarded(server: RunningServer) -> None:
    """An upload that ends without completing (here: its connection is lost) frees its name."""
    first = open_sftp(server, "alpha-erp", "alpha")
    handle = first.open("/in/gone.xml", "wb")
    handle.write(b"partial")
    handle.flush()
    second = open_sftp(server, "alpha-erp", "alpha")
    assert _fails(_upload, second, "gone.xml", b"whole")
    first.get_channel().get_transport().close()
    assert wait_for(lambda: not _fails(_upload, second, "gone.xml", b"whole"))
    assert (server.folder("alpha", "in") / "gone.xml").read_bytes() == b"whole"
    second.close()


def test_name_still_being_claimed_is_not_reused(server: RunningServer) -> None:
    """While the gateway is taking a file in (its receipt still there), that name is refused."""
    receipts = server.spool / "receipts" / "alpha"
    (receipts / "again.xml.json").write_text("{}")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    assert _fails(_upload, sftp, "again.xml", b"new")
    _upload(sftp, "again.part", b"new")
    assert _fails(sftp.rename, "again.part", "again.xml")
    (receipts / "again.xml.json").unlink()
    sftp.rename("again.part", "again.xml")
    assert server.visible("alpha") == ["again.xml"]
    assert server.receipt("alpha", "again.xml")["size_bytes"] == 3
    sftp.close()


def test_out_is_read_only_for_manage_users(server: RunningServer) -> None:
    """Nobody can write, rename or remove anything in /out."""
    server.folder("alpha", "out").joinpath("r.xml").write_bytes(b"<r/>")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    assert _fails(_upload, sftp, "/out/new.xml", b"x")
    assert _fails(sftp.remove, "/out/r.xml")
    assert _fails(sftp.rename, "/out/r.xml", "/in/r.xml")
    assert _fails(sftp.rename, "/in/none.xml", "/out/r2.xml")
    assert sftp.open("/out/r.xml").read() == b"<r/>"
    assert server.visible("alpha", "out") == ["r.xml"]
    sftp.close()


def test_view_user_cannot_change_anything(server: RunningServer, tmp_path: Path) -> None:
    """A `view` user reads /out but cannot upload, rename, remove, mkdir or setstat."""
    server.folder("alpha", "out").joinpath("r.xml").write_bytes(b"<r/>")
    server.folder("alpha", "in").joinpath("u.tmp").write_bytes(b"u")
    sftp = open_sftp(server, "alpha-view", "alpha-view")
    assert sftp.open("/out/r.xml").read() == b"<r/>"
    assert _fails(_upload, sftp, "/in/v.xml", b"x")
    assert _fails(sftp.rename, "/in/u.tmp", "/in/u.xml")
    assert _fails(sftp.remove, "/in/u.tmp")
    assert _fails(sftp.mkdir, "/in/d")
    assert _fails(sftp.utime, "/in/u.tmp", (1, 1))
    assert _fails(sftp.chmod, "/out/r.xml", 0o777)
    sftp.close()
    (tmp_path / "v.xml").write_bytes(b"x")
    result = openssh_sftp(server, "alpha-view", "alpha-view", ["put v.xml"], tmp_path)
    assert result.returncode != 0
    assert sorted(server.visible("alpha")) == ["u.tmp"]
    assert server.receipts == []


# Confinement


def test_client_cannot_reach_another_client_or_outside(server: RunningServer) -> None:
    """Client A cannot list, read, write, rename into or link to client B's folders or the host."""
    server.folder("beta", "out").joinpath("secret.xml").write_bytes(b"beta's")
    server.folder("beta", "in").joinpath("b.xml").write_bytes(b"beta in")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    spool = str(server.spool)
    for path in [
        "/../beta/out", "../../beta/out", "/beta/out", f"{spool}/clients/beta/out",
        "/etc", "/in/../../beta",
    ]:
        assert _fails(sftp.listdir, path), path
    for path in [
        "/../beta/out/secret.xml", "../beta/out/secret.xml", "/in/../../beta/out/secret.xml",
        f"{spool}/clients/beta/out/secret.xml", "/etc/passwd", "../../../../../../etc/passwd",
    ]:
        assert _fails(sftp.open, path), path
    for path in ["/../beta/in/x.xml", "../beta/in/x.xml", f"{spool}/clients/beta/in/x.xml"]:
        assert _fails(_upload, sftp, path, b"x"), path
    _upload(sftp, "mine.tmp", b"m")
    assert _fails(sftp.rename, "mine.tmp", "../beta/in/mine.xml")
    assert _fails(sftp.rename, "mine.tmp", f"{spool}/clients/beta/in/mine.xml")
    assert _fails(sftp.rename, "/../beta/in/b.xml", "/in/b.xml")
    assert _fails(sftp.symlink, "/etc/passwd", "/in/link")
    assert _fails(sftp.symlink, "../beta/out/secret.xml", "/in/link2")
    assert _fails(sftp.open, "/in/link")
    sftp.close()
    assert server.visible("beta") == ["b.xml"]
    assert server.visible("alpha") == ["mine.tmp"]
    assert not (server.folder("alpha", "in") / "link").exists()


def test_openssh_hardlink_and_symlink_refused(server: RunningServer, tmp_path: Path) -> None:
    """`ln` and `ln -s` from the OpenSSH client are refused; nothing is created."""
    (tmp_path / "f.tmp").write_bytes(b"f")
    assert openssh_sftp(server, "alpha-erp", "alpha", ["put f.tmp"], tmp_path).returncode == 0
    for command in ["ln f.tmp hard.tmp", "ln -s f.tmp soft.tmp", "ln -s /etc/passwd p.tmp"]:
        result = openssh_sftp(server, "alpha-erp", "alpha", [command], tmp_path)
        assert result.returncode != 0, command
    assert server.visible("alpha") == ["f.tmp"]


def test_copy_data_is_neither_offered_nor_served(server: RunningServer) -> None:
    """The `copy-data` extension (asyncssh's server copies between two handles of a
    session) is not offered and refused when asked for: one 100-byte request copying an
    upload onto itself wrote 100 MiB and held the event loop, every client's sessions
    waiting (tester C, stop 45). The upload is left as written."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    channel = sftp.get_channel()
    assert channel is not None
    offered = getattr(sftp, "_extensions", None)  # paramiko keeps the server's version reply
    if offered is not None:
        assert b"copy-data" not in offered and "copy-data" not in offered, offered
    with sftp.open("/in/copy.tmp", "wb") as upload:
        upload.write(b"x" * 262_144)
        upload.flush()
        handle, int64 = upload.handle, paramiko.sftp.int64
        with pytest.raises(IOError, match=r"(?i)unsupported"):
            sftp._request(  # type: ignore[attr-defined]
                paramiko.sftp.CMD_EXTENDED, "copy-data",
                handle, int64(0), int64(0), handle, int64(262_144),
            )  # fmt: skip
    assert sftp.stat("/in/copy.tmp").st_size == 262_144
    sftp.close()


def test_symlink_planted_on_disk_is_not_followed(server: RunningServer, tmp_path: Path) -> None:
    """A symbolic link someone planted in in/ is never followed, not even inside the spool."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"host secret")
    in_dir = server.folder("alpha", "in")
    (in_dir / "evil.xml").symlink_to(outside)
    (in_dir / "peer.xml").symlink_to(server.folder("beta", "out"))
    (in_dir / "loop.xml").symlink_to(in_dir / "loop.xml")
    server.folder("beta", "out").joinpath("secret.xml").write_bytes(b"beta's")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    assert sftp.listdir("/in") == []
    for path in ["/in/evil.xml", "/in/peer.xml/secret.xml", "/in/loop.xml"]:
        assert _fails(sftp.open, path), path
        assert _fails(sftp.stat, path), path
    assert _fails(sftp.listdir, "/in/peer.xml")
    assert _fails(_upload, sftp, "/in/peer.xml/new.xml", b"x")
    assert _fails(sftp.remove, "/in/evil.xml")
    assert _fails(sftp.rename, "/in/evil.xml", "/in/evil2.xml")
    assert _fails(sftp.readlink, "/in/evil.xml")
    sftp.close()
    assert outside.read_bytes() == b"host secret"
    assert server.visible("beta", "out") == ["secret.xml"]


# Authentication and sessions


def test_unknown_key_refused(server: RunningServer, tmp_path: Path) -> None:
    """A key that is not in the user's authorized_keys cannot log in (paramiko and OpenSSH)."""
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_connect(server, "alpha-erp", "stranger")
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_connect(server, "beta-erp", "alpha")  # another client's key
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_connect(server, "nobody", "alpha")
    result = openssh_sftp(server, "alpha-erp", "stranger", ["ls"], tmp_path)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    assert wait_for(lambda: len(server.log.named("sftp.auth.failed")) == 4)


def test_password_refused(server: RunningServer) -> None:
    """Password login is not offered at all: only public keys."""
    with pytest.raises(paramiko.BadAuthenticationType) as failure:
        paramiko_connect(server, "alpha-erp", "alpha", password="secret")
    assert failure.value.allowed_types == ["publickey"]


def test_from_option_refuses_other_addresses(server: RunningServer) -> None:
    """A key limited with from="127.0.0.1" is refused from 127.0.0.2 and accepted from 127.0.0.1."""
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_connect(server, "alpha-erp", "alpha", source="127.0.0.2")
    transport = paramiko_connect(server, "alpha-erp", "alpha", source="127.0.0.1")
    assert transport.is_authenticated()
    transport.close()
    # The person user has no from=: it may come from anywhere.
    transport = paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.2")
    assert transport.is_authenticated()
    transport.close()


SFTP_ONLY = b"This server speaks SFTP only"


def _refused_with_a_word(channel: paramiko.Channel) -> None:
    """What a shell, command or other subsystem gets: the one line on stderr, exit status 1,
    nothing on stdout (nothing ran)."""
    assert channel.recv_exit_status() == 1
    assert channel.makefile_stderr("rb").read().startswith(SFTP_ONLY)
    assert channel.makefile("rb").read() == b""


def test_exec_shell_and_forwarding_refused(server: RunningServer) -> None:
    """Only the SFTP subsystem is served: a command, a shell or another subsystem runs nothing
    and is told, in one line, that this server speaks SFTP only; pty and forwarding fail."""
    transport = paramiko_connect(server, "alpha-erp", "alpha")
    channel = transport.open_session()
    channel.exec_command("id")
    _refused_with_a_word(channel)
    channel = transport.open_session()
    channel.invoke_shell()
    _refused_with_a_word(channel)
    channel = transport.open_session()
    channel.exec_command("scp -t /in/x.xml")
    _refused_with_a_word(channel)
    channel = transport.open_session()
    channel.invoke_subsystem("not-sftp")
    _refused_with_a_word(channel)
    channel = transport.open_session()
    with pytest.raises(paramiko.SSHException):
        channel.get_pty()
    with pytest.raises(paramiko.ChannelException):
        transport.open_channel("direct-tcpip", ("127.0.0.1", server.port), ("127.0.0.1", 0))
    with pytest.raises(paramiko.SSHException):
        transport.request_port_forward("127.0.0.1", 0)
    transport.close()
    assert server.visible("alpha") == []


def test_openssh_ssh_without_sftp_is_told_what_the_server_speaks(
    server: RunningServer, tmp_path: Path
) -> None:
    """`ssh user@host` (shell) and `ssh user@host cmd` print a line saying this server speaks
    SFTP only, instead of a bare "shell request failed on channel 0"."""
    for command in ([], ["ls", "/"]):
        done = subprocess.run(
            ["ssh", *OPENSSH_OPTIONS, "-i", str(server.keys["alpha"]), "-p", str(server.port),
             "alpha-erp@127.0.0.1", *command],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 1, done.stderr
        assert "This server speaks SFTP only" in done.stderr
        assert "request failed" not in done.stderr
        assert done.stdout == ""


def test_session_limit_per_user(
    tmp_path: Path, keys: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A user gets at most `sessions_per_user_max` concurrent sessions; a slot frees on logout.
    The session over the limit is told why, naming the limit and its configuration key —
    OpenSSH's `sftp` prints it, paramiko logs it — rather than a bare "Unable to open channel"."""
    reason = (
        "Too many sessions for alpha-erp: at most 2 at once (sftp.sessions_per_user_max); "
        "close one and try again"
    )
    with running_server(tmp_path / "gw", keys, sessions_per_user_max=2) as server:
        first = open_sftp(server, "alpha-erp", "alpha")
        second = open_sftp(server, "alpha-erp", "alpha")
        with caplog.at_level("INFO", logger="paramiko.transport"), pytest.raises(
            (paramiko.SSHException, EOFError, OSError)
        ):
            third = open_sftp(server, "alpha-erp", "alpha")
            third.listdir("/")
        assert any(reason in record.getMessage() for record in caplog.records)
        seen = openssh_sftp(server, "alpha-erp", "alpha", ["ls"], tmp_path)
        assert seen.returncode != 0
        assert reason in seen.stderr
        other = open_sftp(server, "beta-erp", "beta")  # other users are not affected
        assert other.listdir("/in") == []
        assert len(server.log.named("sftp.session.refused")) == 2
        assert server.log.named("sftp.session.refused")[0]["sessions_max"] == 2
        first.close()
        first.get_channel().get_transport().close()  # type: ignore[union-attr]
        assert wait_for(lambda: len(server.log.named("sftp.logout")) >= 1)
        again = open_sftp(server, "alpha-erp", "alpha")
        assert again.listdir("/in") == []
        for client in (second, other, again):
            client.close()


def test_default_session_limit_lets_parallel_tools_work(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """With the default limit (16), a tool opening several sessions at once (rclone and
    FileZilla open four or more) gets them all."""
    with running_server(tmp_path / "gw", keys) as server:
        assert server.settings.sftp.sessions_per_user_max == 16
        sessions = [open_sftp(server, "alpha-erp", "alpha") for _ in range(16)]
        assert all(s.listdir("/in") == [] for s in sessions)
        assert server.log.named("sftp.session.refused") == []
        for session in sessions:
            session.close()


LIMIT_REASON_16 = (
    "Too many sessions for alpha-erp: at most 16 at once (sftp.sessions_per_user_max); "
    "close one and try again"
)


def _sessions_gauge(active: metrics.Metrics) -> float:
    [family] = active.sftp_sessions.collect()
    return float(family.samples[0].value)


def _sessions_held(server: RunningServer, user: str) -> int:
    def count() -> int:
        ctx = server_context(server.acceptor)
        assert ctx is not None
        return ctx.sessions.count(user)

    return int(server.call(count))


def _channel_refused(transport: paramiko.Transport, caplog: pytest.LogCaptureFixture) -> None:
    """Opening one more SFTP session on `transport` is refused as over the limit: paramiko
    raises "Administratively prohibited" and logs the server's reason."""
    caplog.clear()
    with caplog.at_level("INFO", logger="paramiko.transport"), pytest.raises(
        paramiko.ChannelException
    ) as refused:
        paramiko.SFTPClient.from_transport(transport)
    assert refused.value.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
    assert any(LIMIT_REASON_16 in record.getMessage() for record in caplog.records)


def test_session_limit_counts_channels_of_one_connection(
    tmp_path: Path, keys: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The limit is on sessions (SFTP channels, like sshd's MaxSessions), not TCP connections:
    on one connection the 17th SFTP session is refused with the reason naming the limit and
    its key, the 16 open ones keep working, closing one lets a new one open, and
    `ekase_sftp_sessions` counts the sessions (it said 1 while 300 worked)."""
    with running_server(tmp_path / "gw", keys) as server:
        active = metrics.enable(server.settings, create_engine("sqlite://"))
        try:
            transport = paramiko_connect(server, "alpha-erp", "alpha")
            sessions = [paramiko.SFTPClient.from_transport(transport) for _ in range(16)]
            assert all(s is not None and s.listdir("/in") == [] for s in sessions)
            assert _sessions_gauge(active) == 16
            _channel_refused(transport, caplog)
            assert transport.is_active()
            assert all(s is not None and s.listdir("/out") == [] for s in sessions)
            [logged] = server.log.named("sftp.session.refused")
            assert logged["sessions_max"] == 16
            assert _sessions_gauge(active) == 16
            closing = sessions.pop()
            assert closing is not None
            closing.close()
            assert wait_for(lambda: _sessions_gauge(active) == 15)
            again = paramiko.SFTPClient.from_transport(transport)
            assert again is not None and again.listdir("/in") == []
            _channel_refused(transport, caplog)
            transport.close()
            assert wait_for(lambda: _sessions_gauge(active) == 0)
            assert _sessions_held(server, "alpha-erp") == 0
        finally:
            metrics.disable()


def test_session_limit_counts_channels_over_all_connections(
    tmp_path: Path, keys: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A user's sessions are counted over all its connections: 10 on one and 6 on another
    fill the 16; a 17th is refused on either, a new connection is refused at login as
    before, other users are not affected, and a session closed on one connection frees
    a slot for the other."""
    with running_server(tmp_path / "gw", keys) as server:
        first = paramiko_connect(server, "alpha-erp", "alpha")
        second = paramiko_connect(server, "alpha-erp", "alpha")
        on_first = [paramiko.SFTPClient.from_transport(first) for _ in range(10)]
        on_second = [paramiko.SFTPClient.from_transport(second) for _ in range(6)]
        assert all(s is not None and s.listdir("/in") == [] for s in on_first + on_second)
        _channel_refused(second, caplog)
        _channel_refused(first, caplog)
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            open_sftp(server, "alpha-erp", "alpha").listdir("/in")
        other = open_sftp(server, "beta-erp", "beta")
        assert other.listdir("/in") == []
        freed = on_first.pop()
        assert freed is not None
        freed.close()
        assert wait_for(lambda: _sessions_held(server, "alpha-erp") == 15)
        moved = paramiko.SFTPClient.from_transport(second)
        assert moved is not None and moved.listdir("/in") == []
        _channel_refused(first, caplog)
        assert len(server.log.named("sftp.session.refused")) == 4
        other.close()
        first.close()
        second.close()


def test_auth_failures_penalise_the_source_address(tmp_path: Path, keys: dict[str, Path]) -> None:
    """An address that keeps failing to log in is refused for a while, even with a good key."""
    with running_server(
        tmp_path / "gw", keys, auth_failures_before_penalty=2, auth_penalty_seconds_max=60
    ) as server:
        for _ in range(2):
            with pytest.raises(paramiko.AuthenticationException):
                paramiko_connect(server, "alpha-view", "stranger", source="127.0.0.3")
        assert wait_for(lambda: len(server.log.named("sftp.auth.failed")) == 2)
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.3")
        assert server.log.named("sftp.connection.refused")
        # Other addresses are unaffected.
        transport = paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.4")
        transport.close()


def test_connections_that_time_out_silent_penalise_their_address(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """A connection closed by the login timeout without naming a user is a failed login of
    its address (sshd's PerSourcePenalties noauth): an address that keeps its login slots
    busy that way is soon refused at once, so its flood frees the slots for others."""
    with running_server(
        tmp_path / "gw", keys, login_timeout_seconds=1, auth_failures_before_penalty=1,
        auth_penalty_seconds_max=60,
    ) as server:  # fmt: skip
        silent = socket.create_connection(("127.0.0.1", server.port), source_address=(
            "127.0.0.6", 0))  # fmt: skip
        silent.settimeout(5)
        assert silent.recv(100).startswith(b"SSH-2.0-")  # it had its slot ...
        assert _closed_within(silent, 5)  # ... and said nothing until the login timeout
        silent.close()
        assert wait_for(lambda: len(server.log.named("sftp.auth.failed")) == 1, timeout=5)
        [failed] = server.log.named("sftp.auth.failed")
        assert failed["source_ip"] == "127.0.0.6" and failed["user"] is None, failed
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.6")
        paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.7").close()


def test_connections_closed_before_logging_in_penalise_their_address(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """A connection its client closes before the login timeout without logging in is a
    failed login of its address too (sshd's PerSourcePenalties noauth): nine addresses
    that each held their 32 login slots for 25 s and reconnected kept every client out
    for as long as they liked, never penalised (tester C, stop 45)."""
    with running_server(
        tmp_path / "gw", keys, login_timeout_seconds=30, auth_failures_before_penalty=2,
        auth_penalty_seconds_max=60,
    ) as server:  # fmt: skip
        for left in range(1, 3):
            silent = socket.create_connection(("127.0.0.1", server.port), source_address=(
                "127.0.0.8", 0))  # fmt: skip
            silent.settimeout(5)
            assert silent.recv(100).startswith(b"SSH-2.0-")  # it had its slot, then left
            silent.close()
            assert wait_for(lambda n=left: len(server.log.named("sftp.auth.failed")) == n)
        assert [f["user"] for f in server.log.named("sftp.auth.failed")] == [None, None]
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.8")
        paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.9").close()


def test_idle_session_is_closed(tmp_path: Path, keys: dict[str, Path]) -> None:
    """A session with no SFTP activity for `idle_timeout_seconds` is disconnected."""
    with running_server(tmp_path / "gw", keys, idle_timeout_seconds=1) as server:
        sftp = open_sftp(server, "alpha-erp", "alpha")
        sftp.listdir("/")
        transport = sftp.get_channel().get_transport()  # type: ignore[union-attr]
        assert wait_for(lambda: not transport.is_active(), timeout=4)
        assert server.log.named("sftp.idle_timeout")


def test_login_timeout_closes_silent_connections(tmp_path: Path, keys: dict[str, Path]) -> None:
    """A connection that never logs in is closed after `login_timeout_seconds`."""
    with running_server(tmp_path / "gw", keys, login_timeout_seconds=1) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        started = time.monotonic()
        banner = sock.recv(100)
        assert banner.startswith(b"SSH-2.0-")
        while sock.recv(4096):
            pass
        assert time.monotonic() - started < 4
        sock.close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes this connection within `seconds`, whatever it sent
    before (a banner, or nothing)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        return True
    return True


def test_connections_that_never_log_in_are_bounded(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Connections that have not logged in are bounded per address and in all (sshd's
    PerSourceMaxStartups, MaxStartups): 600 silent TCP connections from one address held
    every file descriptor of the daemon until their login timeout, and an upload in a
    logged-in session failed with "Too many open files". Past a bound a new connection
    is closed at once and the flood logged once; other addresses still log in; a slot
    comes back when its connection logs in or goes."""
    with running_server(
        tmp_path / "gw", keys, unauthenticated_connections_per_address_max=3,
        unauthenticated_connections_max=5, login_timeout_seconds=30,
    ) as server:  # fmt: skip
        held = [socket.create_connection(("127.0.0.1", server.port), source_address=(
            "127.0.0.2", 0)) for _ in range(3)]  # fmt: skip
        for sock in held:
            assert sock.recv(100).startswith(b"SSH-2.0-")  # each has its slot
        extra = [socket.create_connection(("127.0.0.1", server.port), source_address=(
            "127.0.0.2", 0)) for _ in range(20)]  # fmt: skip
        assert all(_closed_within(sock, 3) for sock in extra)
        refused = server.log.named("sftp.connection.refused")
        assert len(refused) == 1, refused  # a flood is one line a minute per address
        assert "unauthenticated_connections_per_address_max" in refused[0]["reason"]
        # Another address logs in (and gives its slot back by logging in) ...
        for _ in range(4):
            paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.3").close()
        # ... until connections that never log in fill the whole bound.
        more = [socket.create_connection(("127.0.0.1", server.port), source_address=(
            "127.0.0.4", 0)) for _ in range(2)]  # fmt: skip
        for sock in more:
            assert sock.recv(100).startswith(b"SSH-2.0-")
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.3")
        for sock in held + more + extra:
            sock.close()

        def logs_in() -> bool:
            try:
                paramiko_connect(server, "alpha-view", "alpha-view", source="127.0.0.2").close()
            except (paramiko.SSHException, EOFError, OSError):
                return False
            return True

        assert wait_for(logs_in)


# Failures mid-upload and limits


@pytest.mark.parametrize("end", ["connection", "eof", "close"])
def test_an_upload_cut_short_leaves_nothing_visible(server: RunningServer, end: str) -> None:
    """An upload whose connection drops, or whose channel the client's end half-closes
    (OpenSSH's `ssh` sends EOF when the `sftp` above it is killed) or closes, with the file
    still open: asyncssh closes the handle itself, which is not a close the client asked
    for. No file, no temporary, no receipt — never published (and answered FF01) cut
    short (SPEC §4)."""
    transport = paramiko_connect(server, "alpha-erp", "alpha")
    sftp = paramiko.SFTPClient.from_transport(transport)
    assert sftp is not None
    handle = sftp.open("/in/half.xml", "wb")
    handle.write(b"x" * 50_000)
    handle.flush()
    in_dir = server.folder("alpha", "in")
    assert wait_for(lambda: any(p.name.startswith(".upload-") for p in in_dir.iterdir()))
    channel = sftp.get_channel()
    assert channel is not None
    if end == "connection":
        sock = transport.sock
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    elif end == "eof":
        channel.shutdown_write()
    else:
        channel.close()
    assert wait_for(lambda: server.log.named("sftp.upload.discarded"))
    assert wait_for(lambda: list(in_dir.iterdir()) == [])
    assert server.receipt_names("alpha") == []
    assert server.receipts == []
    assert not server.log.named("sftp.upload.closed")
    transport.close()


def test_server_stop_discards_uploads_in_progress(server: RunningServer) -> None:
    """Stopping the daemon closes every session; an unfinished upload does not appear."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    handle = sftp.open("/in/late.xml", "wb")
    handle.write(b"x" * 10_000)
    handle.flush()
    in_dir = server.folder("alpha", "in")
    assert wait_for(lambda: any(p.name.startswith(".upload-") for p in in_dir.iterdir()))
    asyncio.run_coroutine_threadsafe(stop_server(server.acceptor), server.loop).result(10)
    assert wait_for(lambda: list(in_dir.iterdir()) == [])
    assert server.receipts == []
    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        paramiko_connect(server, "alpha-erp", "alpha")


def test_over_size_write_fails_and_is_discarded(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Writing beyond max_file_bytes fails, and nothing of that upload remains."""
    with running_server(tmp_path / "gw", keys, max_file_bytes=10_000) as server:
        sftp = open_sftp(server, "alpha-erp", "alpha")
        with pytest.raises(OSError), sftp.open("/in/big.xml", "wb") as handle:
            handle.set_pipelined(False)
            handle.write(b"y" * 8_000)
            handle.flush()
            handle.write(b"y" * 8_000)
            handle.flush()
        assert server.visible("alpha") == []
        assert server.receipts == []
        _upload(sftp, "exact.xml", b"z" * 10_000)  # the limit itself is allowed
        assert server.visible("alpha") == ["exact.xml"]
        sftp.close()


def test_twenty_concurrent_clients_ten_files_each(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Twenty clients uploading ten files each at once: all 200 land intact, each with a receipt."""
    with running_server(tmp_path / "gw", keys, sessions_per_user_max=25) as server:
        errors: list[BaseException] = []
        expected: dict[str, bytes] = {}
        for worker in range(20):
            for number in range(10):
                expected[f"w{worker:02d}-{number}.xml"] = os.urandom(3000 + worker * 10 + number)

        def work(worker: int) -> None:
            try:
                sftp = open_sftp(server, "alpha-erp", "alpha")
                for number in range(10):
                    name = f"w{worker:02d}-{number}.xml"
                    sftp.putfo(io.BytesIO(expected[name]), f"/in/{name}", confirm=False)
                sftp.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        in_dir = server.folder("alpha", "in")
        assert server.visible("alpha") == sorted(expected)
        for name, data in expected.items():
            assert (in_dir / name).read_bytes() == data
            assert server.receipt("alpha", name)["sha256"] == hashlib.sha256(data).hexdigest()
        assert len(server.receipts) == 200


# Start-up


def test_start_creates_folders_and_host_key(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Start-up makes every client's in/, out/ and test/, and an 0600 host key. (Hidden
    uploads a stopped daemon left are the spool's housekeeping: test_abandoned_uploads.)"""
    base = tmp_path / "gw"
    with running_server(base, keys) as server:
        for client in ("alpha", "beta"):
            for area in ("in", "out", "test"):
                assert server.folder(client, area).is_dir()
        host_key = base / "ssh_host_ed25519_key"
        assert stat.S_IMODE(host_key.stat().st_mode) == 0o600
        created = server.log.named("sftp.host_key.created")[0]
        listening = server.log.named("sftp.listening")[0]
        assert created["fingerprint"] == listening["host_key_fingerprint"]
        assert listening["host_key_fingerprint"].startswith("SHA256:")
        assert listening["port"] == server.port


def test_test_folder_takes_uploads_of_manage_users_only(server: RunningServer) -> None:
    """/test (trial runs, SPEC §15) takes uploads like /in, with their receipt; a view
    user neither sees it nor reaches it; links and paths out of it are refused."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    with sftp.open("/test/try.xml", "wb") as handle:
        handle.write(b"<Document/>")
    assert sftp.listdir("/test") == ["try.xml"]
    assert _fails(sftp.rename, "/test/try.xml", "/in/try.xml")
    assert _fails(sftp.symlink, "/test/try.xml", "/test/link.xml")
    assert _fails(sftp.open, "/test/../../etc/passwd", "rb")
    sftp.close()
    spool = server.settings.spool_dir
    assert (spool / "clients" / "alpha" / "test" / "try.xml").read_bytes() == b"<Document/>"
    receipt = spool / "receipts" / "alpha" / "test" / "try.xml.json"
    assert receipt.is_file() and '"sftp_user": "alpha-erp"' in receipt.read_text()
    viewer = open_sftp(server, "alpha-view", "alpha-view")
    assert sorted(viewer.listdir("/")) == ["in", "out"]
    assert _fails(viewer.listdir, "/test")
    assert _fails(viewer.open, "/test/x.xml", "wb")
    viewer.close()


def _read_dir(sftp: paramiko.SFTPClient, handle: bytes) -> list[str] | None:
    """One READDIR of an open directory handle: the names it gives, None at the end."""
    try:
        kind, msg = sftp._request(paramiko.sftp.CMD_READDIR, handle)
    except EOFError:  # paramiko's word for the status "end of the listing"
        return None
    assert kind == paramiko.sftp.CMD_NAME
    names = []
    for _ in range(msg.get_int()):
        names.append(msg.get_text())
        msg.get_text()  # the long name
        paramiko.SFTPAttributes._from_msg(msg)
    return names


def _open_dir(sftp: paramiko.SFTPClient, path: str) -> bytes:
    _, msg = sftp._request(paramiko.sftp.CMD_OPENDIR, path)
    return bytes(msg.get_binary())


def test_a_listing_goes_on_past_a_file_claimed_while_it_is_read(server: RunningServer) -> None:
    """The daemon may claim a file between the listing's reading of the folder and its
    reading of that file's attributes: the whole `ls /in` failed ("No such file"); now it
    lists the others. A listing reads a file's attributes as it lists it (128 at a time),
    so a file claimed after the first READDIR is such a file."""
    folder = server.folder("alpha", "in")
    names = [f"f{n:03d}.xml" for n in range(200)]
    for name in names:
        (folder / name).write_bytes(b"x")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    try:
        handle = _open_dir(sftp, "/in")
        listed = _read_dir(sftp, handle) or []
        (folder / names[-1]).unlink()  # claimed before it is listed
        while (more := _read_dir(sftp, handle)) is not None:
            listed += more
        assert [n for n in listed if n not in (".", "..")] == names[:-1]
    finally:
        sftp.close()


def test_directory_handles_count_as_open_files(server: RunningServer) -> None:
    """Directory handles were not counted: a view user opening and reading /out over and
    over, never closing, took the daemon from 92 MB to 1.6 GB (a tester). They count
    against the open-file bounds like files, each given back when closed."""
    folder = server.folder("alpha", "out")
    for n in range(300):
        (folder / f"answer-{n:03d}.xml").write_bytes(b"x")
    sftp = open_sftp(server, "alpha-view", "alpha-view")
    try:
        handles: list[bytes] = []
        with pytest.raises(OSError, match="Too many open files"):
            for _ in range(HANDLES_PER_SESSION_MAX + 1):
                handles.append(_open_dir(sftp, "/out"))
                assert _read_dir(sftp, handles[-1])
        assert len(handles) == HANDLES_PER_SESSION_MAX
        for handle in handles:
            sftp._request(paramiko.sftp.CMD_CLOSE, handle)
        assert len(sftp.listdir("/out")) == 300  # closed: given back
        with sftp.open("/out/answer-000.xml", "rb") as answer:
            assert answer.read() == b"x"
    finally:
        sftp.close()


def test_files_waiting_are_bounded_in_number_as_well(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty files cost no waiting bytes: a client could leave any number of them in /in
    (a tester: 5,000 in a minute). At most `quota.files_waiting_max` files wait; an upload
    past it is refused, and one taken away makes room. (The bound made small here, and a
    count made to stand for no time: `test_sftp_quota.py` checks for how long it does.)"""
    monkeypatch.setattr(quota, "files_waiting_max", 3)
    monkeypatch.setattr(quota, "count_share_max", 1)
    sftp = open_sftp(server, "alpha-erp", "alpha")
    try:
        for n in range(3):
            sftp.putfo(io.BytesIO(b""), f"/in/e{n}.part")
        with pytest.raises(PermissionError, match="at most 3 files may wait"):
            sftp.putfo(io.BytesIO(b""), "/in/e3.part")
        (server.folder("alpha", "in") / "e0.part").unlink()  # taken away (an operator)
        sftp.putfo(io.BytesIO(b""), "/in/e3.part")
    finally:
        sftp.close()


def _held(server: RunningServer) -> tuple[int, int, int]:
    """Open handles, bytes in flight and uploads begun of client alpha, on the server."""
    ctx = server_context(server.acceptor)
    assert ctx is not None
    waiting = ctx.waiting
    return ctx.handles.count(), waiting.in_flight("alpha"), waiting._uploading.get("alpha", 0)


def test_a_session_dropped_with_a_refused_upload_open_gives_everything_back(
    server: RunningServer,
) -> None:
    """asyncssh closes the handles a dropped session left open; the close of an upload
    refused as too big raised, which stopped that clean-up: the session's other handles,
    its other upload (bytes and all) and its open listing were never given back (a
    review). Everything is given back now."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    big = sftp.open("/in/big.xml", "wb")
    other = sftp.open("/in/other.xml", "wb")
    other.write(b"x" * 100)
    other.flush()
    _open_dir(sftp, "/in")
    with contextlib.suppress(OSError):
        big.write(b"y" * 1_000_001)  # past max_file_bytes: refused
        big.flush()
    assert server.call(lambda: _held(server))[0] == 3
    sftp.get_channel().get_transport().close()
    assert wait_for(lambda: server.call(lambda: _held(server)) == (0, 0, 0)), server.call(
        lambda: _held(server)
    )
    assert not [p for p in server.folder("alpha", "in").iterdir() if p.name != "."]


def test_a_client_that_leaves_without_a_disconnect_message_logs_out_cleanly(
    server: RunningServer,
) -> None:
    """paramiko, as ERPs use it, closes its session and then its socket, sending SSH's
    disconnect message no more than many clients do: a normal logout, logged without an
    error (an operator alerting on errors saw every ERP session as failed). A connection
    cut in the middle of an upload is a client leaving too: the upload it left is logged
    as discarded."""
    for n in range(4):
        sftp = open_sftp(server, "alpha-erp", "alpha")
        with sftp.open(f"/in/leave-{n}.xml", "wb") as handle:
            handle.write(b"<Document/>")
        sftp.close()
        sftp.get_channel().get_transport().close()  # type: ignore[union-attr]
    assert wait_for(lambda: len(server.log.named("sftp.logout")) >= 4)
    assert [e["error"] for e in server.log.named("sftp.logout")] == [None] * 4
    cut = open_sftp(server, "alpha-erp", "alpha")
    handle = cut.open("/in/cut.xml", "wb")
    handle.write(b"<Doc")
    handle.flush()
    transport = cut.get_channel().get_transport()  # type: ignore[union-attr]
    transport.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    transport.close()  # type: ignore[union-attr]
    assert wait_for(lambda: len(server.log.named("sftp.logout")) >= 5)
    assert server.log.named("sftp.logout")[4]["error"] is None
    assert wait_for(lambda: [e["file"] for e in server.log.named("sftp.upload.discarded")]
                    == ["cut.xml"])  # fmt: skip
    assert server.visible("alpha") == [f"leave-{n}.xml" for n in range(4)]


def test_an_upload_to_the_root_is_refused_saying_where_uploads_go(
    server: RunningServer, tmp_path: Path
) -> None:
    """`put pay.xml /` (a newcomer forgetting /in) is "Permission denied" with the rule,
    not "No such file or directory"; a read-only user's says it is read-only."""
    (tmp_path / "pay.xml").write_bytes(b"<x/>")
    result = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml /"], tmp_path)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr, result.stderr
    sftp = open_sftp(server, "alpha-erp", "alpha")
    with pytest.raises(PermissionError, match="uploads go directly into /in"):
        sftp.open("/pay.xml", "wb")
    with pytest.raises(PermissionError, match="uploads go directly into /in"):
        sftp.open("/elsewhere/pay.xml", "wb")
    with pytest.raises(FileNotFoundError):
        sftp.open("/pay.xml", "rb")  # reading what is not there is still "no such file"
    sftp.close()
    assert server.visible("alpha") == []
