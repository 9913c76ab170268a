"""Two processes on one spool (SPEC §7: two daemons, or a daemon and `scan --once`): a
claim against a client's rename through another daemon, and receipts left without their
file. Each test does "the other process's" step at the moment it matters (an outside
review found each of these; every test failed before its fix)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import arrival, files
from gateway import spool as spool_module
from gateway.files import locked
from gateway.sftp.receipts import UploadReceipt, receipt_path, write_receipt
from gateway.spool import Spool, receipt_alone_seconds

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def _spool(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool")
    spool.prepare(["alpha"])
    return spool


def _publish(spool: Spool, name: str, data: bytes, user: str, at: dt.datetime) -> None:
    """What the built-in server does at an upload's close: the receipt, then the file."""
    inbox = spool.inbox("alpha")
    assert write_receipt(UploadReceipt(
        client_id="alpha", sftp_user=user, source_ip="10.0.0.1", key_fingerprint="SHA256:x",
        file_name=name, uploaded_as=name, size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), received_at=at,
        path=inbox / name, receipt_path=receipt_path(spool.root, "alpha", name),
    ))  # fmt: skip
    staged = inbox / f".upload-{os.urandom(8).hex()}"
    staged.write_bytes(data)
    os.replace(staged, inbox / name)


def _client_renames(spool: Spool, old: str, new: str) -> None:
    """A session's rename within /in (another daemon's): the receipt under the new name,
    the file, then the old receipt removed."""
    inbox, receipts = spool.inbox("alpha"), spool.receipts("alpha")
    raw = json.loads((receipts / f"{old}.json").read_text())
    (receipts / f"{new}.json").write_text(json.dumps({**raw, "file_name": new}))
    os.replace(inbox / old, inbox / new)
    (receipts / f"{old}.json").unlink()


def test_a_claim_moves_only_the_file_it_locked_and_with_its_own_receipt(tmp_path: Path) -> None:
    """A pass locks in/pay.xml (F1), then moves what is at in/pay.xml. If its client
    renamed F1 to pay-1.xml meanwhile (through another daemon: a rename ignores locks)
    and sent a new pay.xml (F2), the claim moved F2 — unlocked in work/, so another
    process could run it at once — with F1's receipt (who sent it, when: cut-offs). The
    file moved is now checked against the one locked: F2 goes back for the next pass,
    and each file is claimed with its own receipt."""
    spool = _spool(tmp_path)
    _publish(spool, "pay.xml", b"F1", "u1", NOW)
    inbox = spool.inbox("alpha")
    with locked(inbox / "pay.xml") as ours:
        assert ours is not None
        _client_renames(spool, "pay.xml", "pay-1.xml")
        _publish(spool, "pay.xml", b"F2", "u2", NOW + dt.timedelta(hours=3))
        assert spool.claim("alpha", inbox / "pay.xml", NOW, ours) is None
    assert sorted(p.name for p in inbox.iterdir()) == ["pay-1.xml", "pay.xml"]
    assert list(spool.work("alpha").iterdir()) == []
    claims = []
    for name in ("pay-1.xml", "pay.xml"):
        with locked(inbox / name) as held:
            assert held is not None
            claim = spool.claim("alpha", inbox / name, NOW, held)
            assert claim is not None
            with locked(claim.path) as other_process:
                assert other_process is None  # this process's lock holds the claimed file
            claims.append(claim)
    assert [(c.path.read_bytes(), c.receipt["sftp_user"]) for c in claims if c.receipt] == [
        (b"F1", "u1"), (b"F2", "u2")
    ]
    assert list(spool.receipts("alpha").glob("*.json")) == []  # none left behind


def test_a_receipt_left_without_its_file_is_cleared_once_stale(tmp_path: Path) -> None:
    """A daemon killed between writing an upload's receipt and moving the file (or a
    rename, a claim, between their two moves) left a receipt with no file: it kept the
    name from every later upload for good, then (a fix) for an hour, so that a client
    sending the file again after the crash was refused for that hour (a tester).
    Housekeeping removes it once alone for `receipt_alone_seconds` — by its ctime (a
    receipt renamed with its file keeps its mtime, its `received_at`); a receipt whose
    file waits in in/ or test/ stays, however old."""
    spool = _spool(tmp_path)
    _publish(spool, "gone.xml", b"F1", "u1", NOW)
    _publish(spool, "waits.xml", b"F2", "u2", NOW)
    (spool.inbox("alpha") / "gone.xml").unlink()  # as if the move never happened
    trial = spool.receipts("alpha") / "test" / "try.xml.json"
    trial.parent.mkdir(parents=True, exist_ok=True)
    trial.write_text("{}")  # a trial's receipt whose file never came to test/
    now = dt.datetime.now(dt.UTC).timestamp()
    assert spool.remove_client_temporaries("alpha", now) == 0  # young: maybe in between
    assert spool.remove_client_temporaries("alpha", now + receipt_alone_seconds + 1) == 2
    assert sorted(p.name for p in spool.receipts("alpha").rglob("*.json")) == ["waits.xml.json"]


def test_housekeeping_during_a_claim_leaves_the_receipt_it_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim moves the file, then its receipt: between the two the receipt is alone in
    receipts/. Another process's housekeeping took it for an orphan when the file had
    waited longer than a stale temporary (a held client, a night) — judged by its ctime,
    its writing — and the claim went on without it (a review of the fix above). The claim
    makes it new first."""
    monkeypatch.setattr(spool_module, "receipt_alone_seconds", 1)
    spool = _spool(tmp_path)
    _publish(spool, "pay.xml", b"F1", "u1", NOW)
    time.sleep(1.2)  # the file waited longer than a receipt may be alone
    inbox, real_replace, moves = spool.inbox("alpha"), os.replace, []

    def replace(src: Path, dst: Path) -> None:  # another's housekeeping after the file's move
        real_replace(src, dst)
        moves.append(dst)
        if len(moves) == 1:
            Spool(spool.root).remove_client_temporaries("alpha", time.time())

    monkeypatch.setattr(os, "replace", replace)
    with locked(inbox / "pay.xml") as held:
        claim = spool.claim("alpha", inbox / "pay.xml", NOW, held)
    assert claim is not None and claim.receipt is not None
    assert claim.receipt["sftp_user"] == "u1"


def test_a_receipt_that_fails_once_written_does_not_keep_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receipt linked in place whose folder sync or times then fail is taken back: it
    kept the name from every upload until housekeeping (a review of the fix above)."""
    spool = _spool(tmp_path)
    target = receipt_path(spool.root, "alpha", "x.xml")

    def failing(*_args: object, **_kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    for step in ("utime", "fsync"):
        monkeypatch.setattr(os, step, failing)
        with pytest.raises(OSError):
            write_receipt(UploadReceipt(
                client_id="alpha", sftp_user="u", source_ip="10.0.0.1", key_fingerprint="k",
                file_name="x.xml", uploaded_as="x.xml", size_bytes=1, sha256="0" * 64,
                received_at=NOW, path=spool.inbox("alpha") / "x.xml", receipt_path=target,
            ))  # fmt: skip
        monkeypatch.undo()
        assert not target.exists(), step
        assert [p.name for p in target.parent.iterdir()] == []


def test_without_a_no_replace_rename_the_move_is_still_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the file system has no RENAME_NOREPLACE (NFS) the move falls back to a look,
    then a rename — never a link and an unlink, which left the file under two names
    (claimed under one, published under the other: a review of the fix above)."""
    monkeypatch.setattr(files, "_renameat2", None)
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_bytes(b"F1")
    monkeypatch.setattr(os, "link", lambda *_: pytest.fail("linked"))
    files.move_no_replace(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["b.xml"]
    a.write_bytes(b"F2")
    with pytest.raises(FileExistsError):
        files.move_no_replace(a, b)
    assert b.read_bytes() == b"F1"


def test_a_file_whose_writer_cannot_be_told_is_taken_only_once_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSH mode writes uploads in place. A process without CAP_LEASE cannot tell
    whether another user's file is still open for writing: `scan --once` run so took a
    half-written upload at once (an outside tester: answered FF01, the rest written into
    the archived copy). It now waits until the file is unchanged for a settle time, and
    says once in the log why."""
    spool = _spool(tmp_path)
    path = spool.inbox("alpha") / "pay.xml"
    path.write_bytes(b"<Document>half")
    monkeypatch.setattr(arrival, "open_for_writing", lambda _: None)
    monkeypatch.setattr(arrival, "_told", [])
    with capture_logs() as logs:
        assert spool.waiting("alpha") == []
        assert spool.waiting("alpha") == []
        old = time.time() - arrival.unknown_writer_settle_seconds - 1
        os.utime(path, (old, old))
        assert spool.waiting("alpha") == [path]
    assert [e["event"] for e in logs] == ["files.writer_unknown"]
    monkeypatch.setattr(arrival, "open_for_writing", lambda _: True)  # one that can tell
    assert spool.waiting("alpha") == []
