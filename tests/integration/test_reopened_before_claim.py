"""A file some process holds open for writing is never taken, even when it was opened
after the pass listed it (OpenSSH mode: internal-sftp writes uploads in place).

An outside tester, against a real sshd with the daemon's CAP_LEASE: a 60,000-payment file
and `racex.xml` were listed in one pass; while the big one ran, `sftp` opened
`/in/racex.xml` again (a second `put` of the name) and had written 44,574 of 133,722
bytes when the pass reached it. It was taken and answered "RJCT FF01 the document ends
before </Document>"; the rest of the client's write went into the shelved copy, and the
first, complete upload of that name was never answered. The writer's check ran only at
the listing: a claim now checks the file it moved into work/ (no name in in/ reaches it
there, so no writer can come after the check) and puts it back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import arrival
from tests.pipeline_fixtures import CLIENT_A, Installation, batch


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Installation]:
    inst = Installation.create(tmp_path / "gw")
    yield inst
    inst.close()


def test_a_file_opened_for_writing_after_the_listing_is_not_taken(inst: Installation) -> None:
    first = batch(("R3-1", "1.00"), msg_id="R3-FIRST")
    second = batch(*[(f"R3-2-{n}", "1.00") for n in range(200)], msg_id="R3-SECOND")
    inst.drop(first, "pay.xml")
    listed = inst.pipeline.waiting()  # the pass's listing: pay.xml complete, nobody writing
    assert [p.name for _, p in listed] == ["pay.xml"]

    # Before the pass reaches it, the client's next upload of the name starts (in place,
    # truncated, as internal-sftp writes) and stalls a third of the way.
    path = inst.inbox() / "pay.xml"
    with open(path, "r+b") as writer:
        writer.truncate(0)
        writer.write(second[: len(second) // 3])
        writer.flush()
        inst.pipeline.process(listed)
        assert path.exists(), "a file held open for writing was claimed"
        assert inst.new_answers() == []
        writer.write(second[len(second) // 3 :])

    inst.run()  # once closed it is taken, whole
    answers = inst.new_answers()
    assert [(a.original_msg_id, a.group_status) for a in answers] == [("R3-SECOND", "ACSC")]
    assert inst.left_in(CLIENT_A) == []


def test_a_claim_still_being_written_is_not_run_from_work(inst: Installation) -> None:
    """A claim that could not be put back (a new upload took its name in in/ meanwhile)
    stays in work/ with its writer: it is run from there only once the writer closes."""
    data = batch(("R3-W", "1.00"), msg_id="R3-WORK")
    work = inst.env.spool.work(CLIENT_A)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "20261207T010000-00011234__pay.xml"
    with open(path, "wb") as writer:
        writer.write(data[: len(data) // 2])
        writer.flush()
        inst.run()
        assert path.exists() and inst.new_answers() == []
        writer.write(data[len(data) // 2 :])
    os.utime(path)
    inst.run()
    answers = inst.new_answers()
    assert [(a.original_msg_id, a.group_status) for a in answers] == [("R3-WORK", "ACSC")]
    assert inst.left_in(CLIENT_A) == []


def test_without_a_lease_a_file_changed_since_the_listing_is_not_taken(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no writer can be told (no CAP_LEASE: `scan --once` run without it in OpenSSH
    mode) the claim judges the file it moved as the listing did: one changed within
    `unknown_writer_settle_seconds` goes back (a reviewer: the claim's look did nothing
    there)."""
    inst.drop(batch(("R3-L", "1.00"), msg_id="R3-LEASELESS"), "pay.xml")
    path = inst.inbox() / "pay.xml"
    old = path.stat().st_mtime - 60
    os.utime(path, (old, old))
    monkeypatch.setattr(arrival, "open_for_writing", lambda _path: None)
    listed = inst.pipeline.waiting()
    assert [p.name for _, p in listed] == ["pay.xml"]
    with open(path, "ab") as writer:  # written again after the listing: only its mtime tells
        writer.write(b" ")
    inst.pipeline.process(listed)
    assert path.exists(), "a file changed just now was claimed with no lease to tell"
    assert inst.new_answers() == []
