"""Faults inside the gateway, injected by subclassing: what a client and an operator see."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from gateway.inbound.process import FileProcessor
from tests.pipeline_fixtures import A_MAIN, Installation, batch


class _BrokenOnMsgId(FileProcessor):
    """Fails inside the file's transaction, after booking, for one MsgId."""

    def __init__(self, env: Any, poison: str, error: Exception) -> None:
        super().__init__(env)
        self.poison = poison
        self.error = error

    def _accept(self, *args: Any) -> Any:
        outcome = super()._accept(*args)
        if outcome.msg_id == self.poison:
            raise self.error
        return outcome


def test_a_file_that_trips_a_bug_is_answered_and_the_next_file_goes_on(
    inst: Installation,
) -> None:
    """A file that makes the gateway's own code fail is rolled back (nothing booked),
    answered with RJCT FF01, kept in rejected/, and the next file is processed."""
    inst.pipeline.processor = _BrokenOnMsgId(inst.env, "POISON", KeyError("surprise"))
    before = inst.balance(A_MAIN)
    inst.drop(batch(("P-1", "10.00"), msg_id="POISON"), "01-poison.xml")
    inst.drop(batch(("G-1", "20.00"), msg_id="GOOD"), "02-good.xml")
    result = inst.run()
    assert [o.shelf for o in result.outcomes] == ["rejected", "archive"]
    rejected, accepted = inst.new_answers()
    assert rejected.group_status == "RJCT" and rejected.group_reasons == ["FF01"]
    assert "could not be processed" in " ".join(rejected.group_info)
    assert accepted.original_msg_id == "GOOD" and accepted.group_status == "ACSC"
    assert inst.balance(A_MAIN) == before - 2000  # only the good file moved money
    assert inst.left_in() == []
    # The poisoned file's answer had been rendered (with its plain copy for delivery)
    # when its transaction failed: that copy is gone, never delivered.
    assert list(inst.env.spool.tmp().iterdir()) == []
    # Once the fault is fixed, the same bytes are processed afresh (not a duplicate).
    inst.pipeline.processor = FileProcessor(inst.env)
    inst.drop(batch(("P-1", "10.00"), msg_id="POISON"), "01-poison-again.xml")
    inst.run()
    [again] = inst.new_answers()
    assert again.original_msg_id == "POISON" and again.group_status == "ACSC"


def test_a_database_fault_is_not_the_files_fault(inst: Installation) -> None:
    """A transient database error is not answered as a rejection: the file stays in
    work/ for the next pass, which processes it normally."""
    inst.pipeline.processor = _BrokenOnMsgId(
        inst.env, "RETRY", OperationalError("UPDATE", {}, Exception("database is locked"))
    )
    inst.drop(batch(("R-1", "10.00"), msg_id="RETRY"), "retry.xml")
    with pytest.raises(OperationalError):
        inst.run()
    assert inst.new_answers() == []
    assert len(list(inst.env.spool.work("iestade-a").glob("*__retry.xml"))) == 1
    inst.pipeline.processor = FileProcessor(inst.env)
    inst.run()
    [answer] = inst.new_answers()
    assert answer.group_status == "ACSC"


def test_a_broken_invariant_stops_the_run(inst: Installation) -> None:
    """An assertion about money stops processing (systemd restarts the daemon), and
    nothing of that file is committed or answered."""
    inst.pipeline.processor = _BrokenOnMsgId(inst.env, "BAD", AssertionError("books"))
    before = inst.balance(A_MAIN)
    inst.drop(batch(("B-1", "10.00"), msg_id="BAD"), "bad.xml")
    with pytest.raises(AssertionError):
        inst.run()
    assert inst.balance(A_MAIN) == before
    assert inst.new_answers() == []

