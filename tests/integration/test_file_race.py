"""Two daemons on one database recording the same file at the same moment (SPEC §6, §7).

Each looked the file up, found nothing, and wrote its row; the database lets one of the
two writes through and refuses the other (`uq_gw_files_bytes`, `uq_gw_files_msg_id`).
That is a race between daemons, not a defect of ours nor of the file: the loser runs
the file again at once and answers it as what it now is (a repeated upload, a DU01),
without an error in the log or an attempt counted towards quarantine. The race is
staged here by hiding the winner's row from the loser's look-up once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import record
from tests.pipeline_fixtures import A_MAIN, Installation, batch


@pytest.fixture(params=["sqlite", "postgresql"])
def inst2(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Installation]:
    extra = {}
    if request.param == "postgresql":
        extra["database_url"] = request.getfixturevalue("pg_url")
    inst = Installation.create(tmp_path / "gw", **extra)
    yield inst
    inst.close()


def _blind_once(monkeypatch: pytest.MonkeyPatch, name: str, blind: Any) -> list[int]:
    """`record.<name>` answers `blind` the first time: the other daemon had not committed."""
    real: Callable[..., Any] = getattr(record, name)
    calls: list[int] = []

    def looked_up(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return blind if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(record, name, looked_up)
    return calls


def _no_failure(inst: Installation, logged: list[dict[str, Any]]) -> None:
    assert [e for e in logged if e["log_level"] == "error"] == []
    assert inst.left_in() == []  # nothing waits in work/, no attempt counted
    assert not list(inst.env.spool.work("iestade-a").glob("*.attempts.json"))


def test_the_same_bytes_recorded_meanwhile_are_answered_as_a_repeat(
    inst2: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes uploaded to two daemons at once: the one that loses the race answers
    its upload at once with the original report (a repeated upload), logs no error and
    counts no attempt; the payment is booked once."""
    data = batch(("RACE-1", "10.00"), msg_id="RACE-BYTES")
    before = inst2.balance(A_MAIN)
    [first] = [inst2.submit(data, "first.xml")]
    assert first.group_status == "ACSC"
    calls = _blind_once(monkeypatch, "known_file", None)
    inst2.drop(data, "second.xml")
    with structlog.testing.capture_logs() as logged:
        inst2.run()
    assert len(calls) >= 2  # looked up again after losing the race
    [again] = inst2.new_answers()
    assert again.original_msg_id == "RACE-BYTES" and again.group_status == "ACSC"
    assert sorted(p.parts[-4] for p in inst2.shelf_files()) == ["archive", "duplicates"]
    _no_failure(inst2, logged)
    assert inst2.balance(A_MAIN) == before - 1000


def test_the_same_msg_id_recorded_meanwhile_is_answered_du01(
    inst2: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two different files with one MsgId uploaded to two daemons at once: the loser's is
    answered DU01 at once, without an error logged or an attempt counted."""
    before = inst2.balance(A_MAIN)
    first = inst2.submit(batch(("RACE-1", "10.00"), msg_id="RACE-MSG"), "first.xml")
    assert first.group_status == "ACSC"
    _blind_once(monkeypatch, "msg_id_used", False)
    inst2.drop(batch(("RACE-2", "20.00"), msg_id="RACE-MSG"), "second.xml")
    with structlog.testing.capture_logs() as logged:
        inst2.run()
    [again] = inst2.new_answers()
    assert again.group_status == "RJCT" and again.group_reasons == ["DU01"]
    _no_failure(inst2, logged)
    assert inst2.balance(A_MAIN) == before - 1000
