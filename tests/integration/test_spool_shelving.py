"""Shelving never puts one upload over another (SPEC §9: nothing a client sent is ever
overwritten), on a real spool folder."""

from __future__ import annotations

import datetime as dt
import errno
import os
from pathlib import Path

import pytest

from gateway.spool import Claim, ShelfTaken, Spool
from tests.pipeline_fixtures import CLIENT_A, Batch, Installation

NOW = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
DAY = NOW.date()


def _claimed(spool: Spool, name: str, data: bytes) -> tuple[Spool, Claim]:
    spool.prepare(["c"])
    path = spool.inbox("c") / name
    path.write_bytes(data)
    claim = spool.claim("c", path, NOW)
    assert claim is not None
    return spool, claim


def test_two_uploads_of_one_name_in_one_second_get_two_shelf_names(tmp_path: Path) -> None:
    """Two uploads called pay.xml claimed within the same second, shelved as the same file
    number (a repeat): two names, both files kept."""
    spool = Spool(tmp_path)
    spool.prepare(["c"])
    targets = []
    for data in (b"first", b"second"):
        (spool.inbox("c") / "pay.xml").write_bytes(data)
        claim = spool.claim("c", spool.inbox("c") / "pay.xml", NOW)
        assert claim is not None
        targets.append(spool.shelve(claim, spool.shelf_target(claim, "duplicates", 1, DAY)))
    assert targets[0] != targets[1]
    assert [t.read_bytes() for t in targets] == [b"first", b"second"]
    assert all(t.name.startswith("00000001__") and t.name.endswith("__pay.xml") for t in targets)


def test_a_taken_shelf_name_is_refused_and_nothing_moves(tmp_path: Path) -> None:
    """Should a shelf name ever be taken by another file, shelving fails before anything
    moves: the file already there, and the claim with its sidecars in work/, stay as
    they were."""
    spool, claim = _claimed(Spool(tmp_path), "pay.xml", b"new upload")
    findings = claim.path.with_name(claim.path.name + ".findings.txt")
    findings.write_text("new findings")
    target = spool.shelf_target(claim, "archive", 7, DAY)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"earlier upload")
    target.with_name(target.name + ".findings.txt").write_text("earlier findings")
    with pytest.raises(ShelfTaken):
        spool.shelve(claim, target)
    assert target.read_bytes() == b"earlier upload"
    assert target.with_name(target.name + ".findings.txt").read_text() == "earlier findings"
    assert claim.path.read_bytes() == b"new upload"
    assert findings.read_text() == "new findings"


def test_shelving_again_after_a_stop_between_link_and_unlink(tmp_path: Path) -> None:
    """A file that has both names (a run stopped half-way through a link-and-unlink
    move): shelving finds its own file there and just drops the work/ name."""
    spool, claim = _claimed(Spool(tmp_path), "pay.xml", b"upload")
    target = spool.shelf_target(claim, "archive", 3, DAY)
    target.parent.mkdir(parents=True)
    os.link(claim.path, target)
    assert spool.shelve(claim, target) == target
    assert target.read_bytes() == b"upload"
    assert not claim.path.exists()


def test_the_longest_names_a_client_can_send_are_claimed_and_shelved(inst: Installation) -> None:
    """255 bytes (OpenSSH mode) or 236 (the built-in server's limit), Latvian letters of two
    bytes each: the claim cuts the name between characters so that its shelf name and
    sidecars stay within the file system's 255 bytes; the findings keep the whole name."""
    for name in ("ā" * 125 + ".xml", "Ž" * 116 + ".xml"):
        assert len(name.encode()) in (254, 236)
        data = Batch(msg_id=f"LONG-{len(name)}").tx(f"L-{len(name)}", "1.00").build()
        (inst.spool / "clients" / CLIENT_A / "in" / name).write_bytes(data)  # as OpenSSH does
        inst.run()
        [answer] = inst.new_answers()
        assert answer.group_status == "ACSC"
        [shelved] = [
            p for p in (inst.spool / "archive" / CLIENT_A).glob("*/*")
            if name[:20] in p.name and not p.name.endswith((".txt", ".json", ".sig"))
        ]  # fmt: skip
        assert len(shelved.name.encode()) + len(".attempts.json") <= 255
        findings = shelved.with_name(shelved.name + ".findings.txt").read_text("utf-8")
        assert f"File:        {name}" in findings


def test_housekeeping_looks_once_a_rescan_interval_at_most(inst: Installation) -> None:
    """A temporary a killed run left (an hour old) is removed by the first pass, then by
    the first pass a `rescan_seconds` later — not by every pass: under load passes follow
    each other at once."""
    tmp = inst.env.spool.tmp()
    hour_ago = inst.clock.wall() - 3700

    def left_behind(name: str) -> Path:
        path = tmp / name
        path.write_bytes(b"half")
        os.utime(path, (hour_ago, hour_ago))
        return path

    first = left_behind(".first.report.xml")
    inst.pipeline.recover()
    assert not first.exists()
    second = left_behind(".second.report.xml")
    inst.pipeline.recover()
    assert second.exists()  # the pass right after
    inst.clock.advance(dt.timedelta(seconds=inst.settings.rescan_seconds))
    inst.pipeline.recover()
    assert not second.exists()


def test_a_housekeeping_fault_is_met_again_by_the_next_pass(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in the housekeeping (an I/O error, injected) stays a fault until it
    clears: the next pass meets it again rather than skipping the housekeeping for an
    interval — a fault that came and went would alert and recover every interval."""
    calls = []

    def failing(now_epoch: float) -> int:
        calls.append(now_epoch)
        raise OSError(errno.EIO, "Input/output error", str(inst.env.spool.tmp()))

    monkeypatch.setattr(inst.env.spool, "remove_stale_temporaries", failing)
    for _ in range(2):
        with pytest.raises(OSError):
            inst.pipeline.recover()
    assert len(calls) == 2
