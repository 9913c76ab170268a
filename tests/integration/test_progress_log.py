"""A long file's progress in the log, and amounts in the canonical line (SPEC §9 Logs)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from gateway import progress, samples
from gateway.inbound.pain001_v03 import chunk_transactions
from tests.pipeline_fixtures import A_MAIN, CLIENT_A, TODAY, Installation

PAYMENTS = 2 * chunk_transactions + 500  # three chunks: two full ones and a short one


def test_a_long_file_logs_its_progress_between_claim_and_answer(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the interval at 0, every chunk of a real run (reading child, SQLite, spool) is
    a `file.progress` line with payments done of the declared total, all before the
    file's `file.processed` line; the progress file is gone once the file is answered."""
    monkeypatch.setattr(progress, "progress_interval_seconds", 0.0)
    data = samples.to_bytes(
        samples.payroll(A_MAIN, PAYMENTS, msg_id="LONG-1", execution_date=TODAY,
                        amount_minor=101, per_pmt_inf=1_000)
    )
    with capture_logs() as logged:
        answer = inst.submit(data, name="long.xml")
    assert answer.group_status == "ACSC"
    events = [e["event"] for e in logged]
    shown = [e for e in logged if e["event"] == "file.progress"]
    assert [(e["payments_done"], e["payments_total"]) for e in shown] == [
        (chunk_transactions, PAYMENTS),
        (2 * chunk_transactions, PAYMENTS),
        (PAYMENTS, PAYMENTS),
    ]
    assert all(e["client"] == "iestade-a" and e["file"] == "long.xml" for e in shown)
    assert all(e["rate_per_second"] >= 0 for e in shown)
    assert events.index("file.processed") > max(i for i, e in enumerate(events)
                                                if e == "file.progress")
    assert progress.read_progress(inst.spool) == []


def test_file_processed_carries_amounts_as_decimal_strings_with_currency(
    inst: Installation,
) -> None:
    """The canonical line says `{"EUR": "1500.49"}`, as an operator reads money, never the
    integer of minor units (`150049`)."""
    data = samples.to_bytes(
        samples.payroll(A_MAIN, 7, msg_id="AMOUNTS-1", execution_date=TODAY, amount_minor=21_435)
    )
    with capture_logs() as logged:
        inst.submit(data, name="amounts.xml")
    [line] = [e for e in logged if e["event"] == "file.processed"]
    assert line["amounts"] == {"EUR": "1500.45"}


def test_a_long_run_of_due_payments_shows_its_progress(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The due payments of a file run the next morning a chunk at a time: each chunk is a
    `file.progress` line naming the file's due payments done of their total, and while it
    runs `status` lists it among the files in progress — an outside tester's 287,000 due
    payments took 73 s with nothing in `status` or the log between `day.started` and
    `pending.executed`."""
    import datetime as dt

    from gateway import pending
    from gateway.status import collect
    from tests.pipeline_fixtures import RIGA

    monkeypatch.setattr(progress, "progress_interval_seconds", 0.0)
    monkeypatch.setattr(pending, "chunk_payments", 100)
    tomorrow = TODAY + dt.timedelta(days=1)
    data = samples.to_bytes(
        samples.payroll(A_MAIN, 250, msg_id="DUE-1", execution_date=tomorrow, amount_minor=101)
    )
    assert set(inst.submit(data, name="due.xml").statuses().values()) == {"PDNG"}
    inst.clock.set(dt.datetime.combine(tomorrow, dt.time(9), RIGA))
    seen: list[list[tuple[str, int | None, int | None]]] = []
    advance = progress.FileProgress.advance

    def watched(self: progress.FileProgress, done: int) -> None:
        advance(self, done)
        listed = collect(inst.env, inst.clock).in_progress
        seen.append([(f.file, f.done, f.total) for f in listed])

    monkeypatch.setattr(progress.FileProgress, "advance", watched)
    with capture_logs() as logged:
        inst.run()
    shown = [(e["file"], e["payments_done"], e["payments_total"]) for e in logged
             if e["event"] == "file.progress"]  # fmt: skip
    name = "due.xml (its due payments)"
    assert shown == [(name, 100, 250), (name, 200, 250), (name, 250, 250)], shown
    # The run's line names the client, the file's MsgId and its follow-up pain.002 (an
    # auditor had to join it to file.processed by file_id: stop 45).
    [ran] = [e for e in logged if e["event"] == "pending.executed"]
    assert (ran["client"], ran["msg_id"], ran["counts"]) == (CLIENT_A, "DUE-1", {"ACSC": 250})
    assert ran["answer"] in {p.name for p in inst.outbox().glob("*pain.002*.xml")}, ran
    assert seen[0] == [(name, 100, 250)], seen
    assert progress.read_progress(inst.spool) == []


def test_each_files_line_counts_its_own_answers_delivered(inst: Installation) -> None:
    """Small files committed together are delivered in one round; each one's canonical
    line says how many of its own answers were delivered, not the round's (an operator
    read `"delivered": 43` on the line of a file answered once)."""
    for n in range(3):
        data = samples.to_bytes(
            samples.payroll(A_MAIN, 2, msg_id=f"GROUP-{n}", execution_date=TODAY)
        )
        inst.drop(data, f"group-{n}.xml")
    with capture_logs() as logged:
        inst.run()
    lines = [e for e in logged if e["event"] == "file.processed"]
    assert [e["delivered"] for e in lines] == [1, 1, 1], lines
