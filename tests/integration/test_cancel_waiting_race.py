"""A cancellation and the last signature of a waiting batch arriving together, on
PostgreSQL, in two real gateway processes (`tests.integration.pull_child`): whichever
takes the batch's waiting row first wins, the other finds it no longer waiting — never
both a cancellation and an execution.

The test holds the row itself first, so both processes queue on it in a known order
(PostgreSQL grants a row's waiters in turn); another case starts both at one moment
without holding anything, and only checks that exactly one of the two happened. Last, a
gateway SIGKILLed right after the cancellation's commit: the restart delivers its
answers once, moves the batch out of awaiting/, and the batch never executes.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text

from gateway import db
from tests.integration.daemon_fixtures import wait_for
from tests.integration.pull_fixtures import Found, Out
from tests.integration.test_cancel_waiting import (
    BATCH,
    DATA,
    WHEN,
    payments_of,
    signing_installation,
    state,
    waits,
    whole_batch,
)
from tests.integration.test_cancellations import tx_statuses
from tests.integration.test_pull_crash import child
from tests.pipeline_fixtures import A_MAIN, CLIENT_A, Installation
from tests.signature_fixtures import signed

BLOCKED = text(
    "WITH direct AS (SELECT pid FROM pg_stat_activity"
    " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)))"
    " SELECT count(*) FROM pg_stat_activity a"
    " WHERE a.pid IN (SELECT pid FROM direct)"
    " OR pg_blocking_pids(a.pid) && ARRAY(SELECT pid FROM direct)"
)


def _blocked(conn: Connection) -> int:
    """How many backends wait, directly or in the queue behind one, on `conn`'s locks
    (pg_stat_activity is read afresh: within a transaction it is kept as first read)."""
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))
    return int(conn.execute(BLOCKED).scalar_one())


def _signed_once(tmp_path: Path, pg_url: str) -> tuple[Installation, Out, bytes]:
    """A batch waiting with the first of its two signatures; the second one's container."""
    inst, pki = signing_installation(tmp_path / "gw", tmp_path / "pki", pg_url)
    out = waits(inst)
    inst.drop(signed("pay.xml", DATA, pki.first, WHEN), "pay-1.asice")
    inst.run()
    out.new()
    assert state(inst) == "waiting"
    return inst, out, signed("pay.xml", DATA, pki.second, WHEN)


def _answers(out: Out) -> tuple[Found, list[Found]]:
    """The camt.029 and the pain.002s that appeared with it."""
    found = out.new()
    (camt029,) = [f for f in found if f.message == "camt.029.001.10"]
    return camt029, [f for f in found if f.message == "pain.002.001.03"]


def _executed_once(inst: Installation, before: int, camt029: Found) -> None:
    assert state(inst) == "executed" and payments_of(inst) == 2
    assert inst.balance(A_MAIN) == before - 1500
    assert tx_statuses(camt029) == [("E1", "RJCR", ["AGNT"]), ("E2", "RJCR", ["AGNT"])]
    assert camt029.text("Sts/Conf") == "RJCR"


def _cancelled_once(inst: Installation, before: int, camt029: Found, acks: list[Found]) -> None:
    assert state(inst) == "annulled" and payments_of(inst) == 0
    assert inst.balance(A_MAIN) == before
    assert camt029.text("Sts/Conf") == "CNCL"
    assert sorted(a.text("OrgnlGrpInfAndSts/GrpSts") or "" for a in acks) == ["RJCT", "RJCT"]
    infos = [" ".join(a.texts("AddtlInf")) for a in acks]
    assert sum("cancelled by the client before it was signed" in i for i in infos) == 1, infos
    assert sum("changes nothing" in i for i in infos) == 1, infos


@pytest.mark.parametrize("first", ["signature", "cancellation"])
def test_the_one_that_takes_the_waiting_batch_first_wins(
    tmp_path: Path, pg_url: str, first: str
) -> None:
    inst, out, container = _signed_once(tmp_path, pg_url)
    try:
        before = inst.balance(A_MAIN)
        files = [(container, "pay-2.asice"), (whole_batch(), "cxl.xml")]
        if first == "cancellation":
            files.reverse()
        a = db.awaiting.c
        procs = []
        with inst.env.engine.connect() as conn, conn.begin():
            conn.execute(select(a.id).where(a.state == "waiting").with_for_update()).all()
            for n, (data, name) in enumerate(files, start=1):
                inst.drop(data, name, CLIENT_A)
                procs.append(child(inst, inst.clock.now(), "requests"))
                assert wait_for(lambda n=n: _blocked(conn) >= n, 60), f"process {n} never waited"
        for proc in procs:
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, output.decode()
        camt029, acks = _answers(out)
        if first == "signature":
            _executed_once(inst, before, camt029)
        else:
            _cancelled_once(inst, before, camt029, acks)
        assert inst.left_in(CLIENT_A) == []
        inst.env.ledger.check_invariants()
    finally:
        inst.close()


def test_started_together_exactly_one_happens(tmp_path: Path, pg_url: str) -> None:
    inst, out, container = _signed_once(tmp_path, pg_url)
    try:
        before = inst.balance(A_MAIN)
        start = time.time() + 3.0
        inst.drop(container, "pay-2.asice", CLIENT_A)
        signing = child(inst, inst.clock.now(), "requests", start)
        inst.drop(whole_batch(), "cxl.xml", CLIENT_A)
        cancelling = child(inst, inst.clock.now(), "requests", start)
        for proc in (signing, cancelling):
            output, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, output.decode()
        inst.run()  # whatever either process left is finished here
        camt029, acks = _answers(out)
        if state(inst) == "executed":
            _executed_once(inst, before, camt029)
        else:
            _cancelled_once(inst, before, camt029, acks)
        assert BATCH in (camt029.text("OrgnlGrpInfAndSts/OrgnlMsgId") or "")
        inst.env.ledger.check_invariants()
    finally:
        inst.close()


def test_killed_after_the_cancellation_commits(tmp_path: Path, database_url: str) -> None:
    inst, out, container = _signed_once(tmp_path, database_url)
    try:
        before = inst.balance(A_MAIN)
        inst.drop(whole_batch(), "cxl.xml", CLIENT_A)
        proc = child(inst, inst.clock.now(), "kill-after-commit")
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, output.decode()
        assert out.new() == [] and state(inst) == "annulled"  # committed, not answered
        awaiting = inst.spool / "awaiting" / CLIENT_A
        assert [p for p in awaiting.iterdir() if p.name.endswith("pay.xml")]
        result = inst.run()
        assert [o.recovered for o in result.outcomes] == [True]
        camt029, follow_ups = _answers(out)
        assert camt029.text("Sts/Conf") == "CNCL"
        assert [f.text("OrgnlGrpInfAndSts/GrpSts") for f in follow_ups] == ["RJCT"]
        assert not [p for p in awaiting.iterdir() if not p.name.startswith(".")]
        assert inst.left_in(CLIENT_A) == []
        inst.run()
        assert out.new() == []  # delivered once
        inst.drop(container, "pay-2.asice", CLIENT_A)
        inst.run()
        (ack,) = out.new()
        assert "changes nothing" in " ".join(ack.texts("AddtlInf"))
        assert inst.balance(A_MAIN) == before and payments_of(inst) == 0
    finally:
        inst.close()
