"""A big file is read by a child process and booked chunk by chunk: what a client sees
when that file turns out bad at its very end, and when the reading child dies.

The gateway starts executing a big file before it has read all of it: the
first chunks are decided and booked while the child is still parsing the rest. A
file found invalid only at its end (cut short, a schema error in its last payment,
a group header whose NbOfTxs or CtrlSum does not add up) must nevertheless leave no
trace in the books: one pain.002 RJCT, the original in rejected/, no money moved,
no payment rows. A child that dies (the OOM killer, a crash in the parser) is a
fault of ours: RJCT FF01 "could not be processed", nothing booked, and the next
file goes on. The child must hold nothing of the daemon's: no listening socket, no
open file.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import fcntl
import io
import os
import signal
import socket
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway import db, samples
from gateway.inbound import pain001_v03, reader
from gateway.inbound.parsed import ParsedFile, ParsedHeader
from gateway.inbound.reader import Chunk, Reader, ReaderFailed
from tests.pipeline_fixtures import A_MAIN, Answer, Installation, batch

CHUNK = pain001_v03.chunk_transactions
BIG = 3 * CHUNK + 17  # three full chunks are executed before the end of the file is read
ONE_CENT_EACH = 1  # minor units per payment: a big file stays well within A_MAIN's funds


def big_file(
    msg_id: str, count: int = BIG, *, nb_of_txs: str | None = None, ctrl_sum: str | None = None
) -> bytes:
    """A valid payroll of `count` one-cent payments from A_MAIN, in payment informations
    of 5,000, unless the group header's NbOfTxs or CtrlSum is given (to break it)."""
    sample = samples.payroll(
        A_MAIN, count, msg_id=msg_id, amount_minor=ONE_CENT_EACH, per_pmt_inf=5000
    )
    sample = dataclasses.replace(
        sample,
        nb_of_txs=nb_of_txs or sample.nb_of_txs,
        ctrl_sum=ctrl_sum or sample.ctrl_sum,
    )
    buffer = io.BytesIO()
    samples.write(sample, buffer)
    return buffer.getvalue()


def good_file(msg_id: str = "GOOD-AFTER") -> bytes:
    return batch(("G-1", "10.00"), ("G-2", "20.00"), msg_id=msg_id)


def payment_rows(inst: Installation, file_id: int | None = None) -> int:
    """Rows in gw_payments (of one file, or all)."""
    query = select(func.count()).select_from(db.payments)
    if file_id is not None:
        query = query.where(db.payments.c.file_id == file_id)
    with inst.env.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def chunks_before_summary(path: Path) -> tuple[int, ParsedFile]:
    """How many chunks of transactions the reader hands on before its summary."""
    chunks = 0
    with Reader(path, transactions_max=200_000) as events:
        for event in events:
            if isinstance(event, Chunk):
                chunks += 1
            elif isinstance(event, ParsedFile):
                return chunks, event
    raise AssertionError("the reader ended without a summary")


def bad_then_good(inst: Installation, bad: bytes) -> tuple[Answer, Answer]:
    """Drop the bad file and a good one behind it, run ONE pass, and check what every
    bad file must leave: one answer, RJCT, in rejected/, no money, no payment rows."""
    balances = inst.posting_sums()
    rows = payment_rows(inst)
    inst.drop(bad, "01-bad.xml")
    inst.drop(good_file(), "02-good.xml")

    result = inst.run()
    assert [o.shelf for o in result.outcomes] == ["rejected", "archive"]
    answers = inst.new_answers()
    assert len(answers) == 2, [a.path.name for a in answers]
    by_name = {a.path.name: a for a in answers}
    rejected, accepted = (by_name[str(o.answer)] for o in result.outcomes)
    rejected.outcome, accepted.outcome = result.outcomes

    assert rejected.group_status == "RJCT"
    assert rejected.transactions() == [], "a rejected file lists no transactions"
    assert accepted.original_msg_id == "GOOD-AFTER" and accepted.group_status == "ACSC"

    bad_id = result.outcomes[0].file_id
    shelf = inst.shelved(bad_id)
    assert shelf.parts[-4] == "rejected" and shelf.read_bytes() == bad
    findings = shelf.with_name(shelf.name + ".findings.txt").read_text(encoding="utf-8")
    assert f"RJCT {rejected.group_reasons[0]}" in findings

    # Nothing of the bad file remains: its chunks were booked and rolled back.
    assert payment_rows(inst, bad_id) == 0, "no payment rows of the rejected file"
    assert payment_rows(inst) == rows + 2, "only the good file's two payments"
    after = inst.posting_sums()
    assert after[A_MAIN] == balances[A_MAIN] - 3000, "only the good file moved money"
    moved = {iban for iban in after if after[iban] != balances.get(iban, 0)}
    assert moved == {A_MAIN, inst.clearing()}, moved
    assert inst.left_in() == []
    inst.env.ledger.check_invariants()
    return rejected, accepted


# -- 1. broken at the end, after several chunks were executed -------------------------------


def _truncated(data: bytes) -> bytes:
    """An upload that stopped after the last transaction, before the closing tags."""
    end = b"</CdtTrfTxInf>"
    return data[: data.rindex(end) + len(end)]


def _bad_currency_in_last_payment(data: bytes) -> bytes:
    at = data.rindex(b'Ccy="EUR"')
    return data[:at] + b'Ccy="EURO"' + data[at + len(b'Ccy="EUR"') :]


BROKEN_ENDS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "cut after its last transaction": (_truncated, "ends before"),
    "schema error in the last payment": (_bad_currency_in_last_payment, "'Ccy'"),
}


@pytest.mark.parametrize("kind", list(BROKEN_ENDS), ids=list(BROKEN_ENDS))
def test_a_big_file_broken_at_its_end_books_nothing(
    kind: str, inst: Installation, tmp_path: Path
) -> None:
    """A 12,017-payment file whose end is broken is answered with one RJCT FF01 saying
    why, although its first 12,000 payments were already decided and booked when the
    break was found: all of that is undone, and the file behind it goes on."""
    damage, why = BROKEN_ENDS[kind]
    data = damage(big_file("BIG-BROKEN"))

    # The premise: the reader hands on three full chunks before it finds the break.
    probe = tmp_path / "probe.xml"
    probe.write_bytes(data)
    chunks, summary = chunks_before_summary(probe)
    assert chunks >= 3, f"only {chunks} chunks before the summary"
    assert summary.failure is not None

    rejected, _ = bad_then_good(inst, data)
    assert rejected.group_reasons == ["FF01"]
    assert rejected.original_msg_id == "BIG-BROKEN"
    assert why in " ".join(rejected.group_info), rejected.group_info


# -- 2. totals that do not add up, found only at the end -------------------------------------

# (GrpHdr/NbOfTxs, GrpHdr/CtrlSum) written instead of the right ones, the reason, its why
BAD_TOTALS: dict[str, tuple[str | None, str | None, str, str]] = {
    "NbOfTxs one more": (str(BIG + 1), None, "AM18", f"is {BIG + 1}, the file has {BIG}"),
    "NbOfTxs one fewer": (str(BIG - 1), None, "AM18", f"is {BIG - 1}, the file has {BIG}"),
    "CtrlSum one cent off": (
        None,
        str(Decimal(BIG * ONE_CENT_EACH + 1) / 100),
        "AM10",
        "CtrlSum",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_TOTALS), ids=list(BAD_TOTALS))
def test_a_big_file_whose_totals_do_not_add_up_books_nothing(kind: str, inst: Installation) -> None:
    """A 12,017-payment file whose group header declares the wrong number of payments
    (AM18) or the wrong control sum (AM10) is rejected as a whole once its end is read;
    the chunks already booked are undone, and the file behind it goes on."""
    nb_of_txs, ctrl_sum, code, why = BAD_TOTALS[kind]
    data = big_file("BIG-TOTALS", nb_of_txs=nb_of_txs, ctrl_sum=ctrl_sum)
    rejected, _ = bad_then_good(inst, data)
    assert rejected.group_reasons == [code]
    assert rejected.original_msg_id == "BIG-TOTALS"
    assert why in " ".join(rejected.group_info), rejected.group_info


# -- 3. the child holds nothing of the parent's ----------------------------------------------


def _links(pid: int) -> dict[int, str]:
    folder = Path(f"/proc/{pid}/fd")
    found = {}
    for entry in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed while listing
            found[int(entry.name)] = os.readlink(entry)
    return found


def _wait_for_data(fd: int, timeout: float = 10.0) -> None:
    """Until the child has written to the pipe (it closes what it inherited first)."""
    deadline = time.monotonic() + timeout
    waiting = array.array("i", [0])
    while time.monotonic() < deadline:
        fcntl.ioctl(fd, termios.FIONREAD, waiting)
        if waiting[0] > 0:
            return
        time.sleep(0.002)
    raise AssertionError("the reading child wrote nothing")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_reading_child_holds_no_socket_or_file_of_the_daemon(tmp_path: Path) -> None:
    """The child that reads a file keeps none of the daemon's descriptors: not its
    listening SFTP socket (or a client could not reconnect after a restart while a big
    file is still being read), not its open files; it sends the whole file and is reaped."""
    count = 900  # its chunk is bigger than the pipe holds: the child waits for us, alive
    path = tmp_path / "small.xml"
    path.write_bytes(big_file("SMALL-1", count))
    own_stdio = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)}
    with (
        socket.create_server(("127.0.0.1", 0)) as listening,
        tempfile.NamedTemporaryFile(dir=tmp_path) as held,
    ):
        assert os.readlink(f"/proc/self/fd/{listening.fileno()}").startswith("socket:")
        assert os.readlink(f"/proc/self/fd/{held.fileno()}") == held.name

        events = Reader(path, transactions_max=1000)
        try:
            pid = events._pid
            assert pid is not None
            _wait_for_data(events._pipe.fileno())
            links = _links(pid)
            assert any(t.startswith("pipe:") for t in links.values()), (
                f"the child should be alive and hold its pipe: {links}"
            )
            inherited = {fd: t for fd, t in links.items() if own_stdio.get(fd) != t}
            sockets = {fd: t for fd, t in inherited.items() if t.startswith("socket:")}
            assert sockets == {}, f"the child holds sockets: {sockets}"
            assert not links.get(listening.fileno(), "").startswith("socket:")
            assert held.name not in links.values(), f"the child holds {held.name}"
            assert set(inherited.values()) <= {str(path)} | {
                t for t in links.values() if t.startswith("pipe:")
            }, f"the child holds more than its pipe and its file: {links}"

            received = list(events)
        finally:
            events.close()
        last = received[-1]
        assert isinstance(received[0], ParsedHeader)
        assert isinstance(last, ParsedFile)
        assert last.failure is None
        assert last.count == count
        assert sum(len(e.transactions) for e in received if isinstance(e, Chunk)) == count
        assert _gone(pid), "the child was reaped"


# -- 4. the child dies ------------------------------------------------------------------------

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def _wait_for_blocked_writer(fd: int, timeout: float = 20.0) -> None:
    """Until the child is blocked in the middle of writing a chunk: the pipe is (nearly:
    the kernel fills it page by page) full and stays so. A chunk is far bigger than the
    pipe, so what is in it is the beginning of a chunk whose end is not."""
    capacity = fcntl.fcntl(fd, F_GETPIPE_SZ)
    deadline = time.monotonic() + timeout
    waiting = array.array("i", [0])
    last, steady_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        fcntl.ioctl(fd, termios.FIONREAD, waiting)
        if waiting[0] != last:
            last, steady_since = waiting[0], time.monotonic()
        elif last >= capacity // 2 and time.monotonic() - steady_since > 0.2:
            return
        time.sleep(0.005)
    raise AssertionError(f"the child never filled the pipe ({last} of {capacity} bytes)")


def test_a_reading_child_killed_mid_file_is_reported_with_its_signal(tmp_path: Path) -> None:
    """When the OOM killer takes the reading child in the middle of a 20,000-payment file,
    the reader says so (ReaderFailed, naming the signal) instead of handing on half a
    file or failing with something that hides what happened. The kill comes while the
    child is writing its first chunk, as it would for a child killed at any moment."""
    path = tmp_path / "big.xml"
    path.write_bytes(big_file("KILLED-1", 20_000))
    events = Reader(path, transactions_max=200_000)
    try:
        pid = events._pid
        assert pid is not None
        stream: Iterator[Any] = iter(events)
        assert isinstance(next(stream), ParsedHeader)
        _wait_for_blocked_writer(events._pipe.fileno())
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ReaderFailed, match="signal 9"):
            for _ in stream:
                pass
    finally:
        events.close()
    assert _gone(pid), "the killed child was reaped"


def _dies_at_once(*_args: object) -> int:
    os._exit(9)


_real_stream = pain001_v03.stream


def _dies_after_three_chunks(path: Path, *, transactions_max: int) -> Iterator[Any]:
    chunks = 0
    for event in _real_stream(path, transactions_max=transactions_max):
        yield event
        if isinstance(event, list):
            chunks += 1
            if chunks == 3:
                os._exit(9)


DEATHS: dict[str, tuple[Any, str, Any]] = {
    "before the group header": (reader, "_serve", _dies_at_once),
    "after three chunks were booked": (pain001_v03, "stream", _dies_after_three_chunks),
}


@pytest.mark.parametrize("when", list(DEATHS), ids=list(DEATHS))
def test_a_file_whose_reader_dies_waits_unanswered_and_is_processed_later(
    when: str, inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the child reading a file dies, that is a fault of ours, not the client's: the
    file is not answered, whatever was booked from it is undone, it waits in work/, and
    once the fault is gone the very same file is accepted on the next pass. (The child
    is forked, so a patch made here is what the child runs. Other files going on while
    one fails is tests/integration/test_faults.py's.)"""
    module, name, dying = DEATHS[when]
    data = big_file("DIES-1")
    balances = inst.posting_sums()
    monkeypatch.setattr(module, name, dying)
    inst.drop(data, "01-dies.xml")
    result = inst.run()
    monkeypatch.undo()

    assert result.outcomes == [] and inst.new_answers() == []
    assert payment_rows(inst) == 0, "nothing of the dead read remains in gw_payments"
    assert inst.posting_sums() == balances, "no money moved"
    [waiting] = inst.env.spool.in_work("iestade-a")
    assert waiting.read_bytes() == data
    inst.env.ledger.check_invariants()

    inst.run()
    [again] = inst.new_answers()
    assert again.original_msg_id == "DIES-1" and again.group_status == "ACSC"
    assert payment_rows(inst) == BIG
    assert inst.balance(A_MAIN) == balances[A_MAIN] - BIG * ONE_CENT_EACH


def test_a_reader_that_cannot_be_started_is_retried_not_rejected(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When no process can be forked (the service's task limit, no memory), the file is
    not the client's fault: the pass fails as transient, the file keeps its place and
    no answer is written; once forking works again it is processed normally."""
    from gateway.errors import TransientError

    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(reader.os, "fork", no_fork)
    monkeypatch.setattr(reader, "inline_bytes_max", 0)  # this small file has a child too
    inst.drop(batch(("F-1", "10.00"), msg_id="FORKLESS"), "forkless.xml")
    open_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(TransientError, match="cannot start the reader"):
        inst.run()
    assert len(os.listdir("/proc/self/fd")) == open_before  # the pipe was closed again
    assert inst.new_answers() == []
    monkeypatch.undo()
    inst.run()
    [answer] = inst.new_answers()
    assert answer.original_msg_id == "FORKLESS" and answer.group_status == "ACSC"


def test_a_reader_left_unread_then_closed_lets_its_child_end_by_itself(tmp_path: Path) -> None:
    """The child parses ahead of a reader that is not reading yet (its writing thread
    holds a bounded number of chunks); closed early, it notices and exits cleanly —
    not killed after the grace period."""
    path = tmp_path / "big.xml"
    with open(path, "wb") as out:
        samples.write(samples.payroll(A_MAIN, 60_000, msg_id="AHEAD-1"), out)
    ahead = reader.Reader(path, transactions_max=200_000)
    events = iter(ahead)
    assert isinstance(next(events), ParsedHeader)
    time.sleep(0.5)  # the child fills the pipe and its queue meanwhile
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < reader.exit_wait_seconds
    assert ahead._exit_code == 0, ahead._exit_code
    again = reader.Reader(path, transactions_max=200_000)
    with again:
        counted = sum(len(e.transactions) for e in again if isinstance(e, Chunk))
    assert counted == 60_000 and again._exit_code in (0, None)


def test_the_child_sends_the_files_digest_first(tmp_path: Path) -> None:
    """The booking process learns the file's SHA-256 and size from the child (whether it
    knows the file, its seal), before any event of the file."""
    import hashlib

    path = tmp_path / "digest.xml"
    data = big_file("DIGEST-1", 2500)
    path.write_bytes(data)
    with Reader(path, transactions_max=200_000) as events:
        assert events.digest() == (hashlib.sha256(data).hexdigest(), len(data))
        received = list(events)
    assert isinstance(received[0], ParsedHeader) and isinstance(received[-1], ParsedFile)
    assert sum(len(e.transactions) for e in received if isinstance(e, Chunk)) == 2500


def test_a_prolog_and_root_tag_over_several_looks_are_read_whole(tmp_path: Path) -> None:
    """The root is checked by a look a piece at a time (`safe_xml.root_element`): a long
    comment before it and a root start tag spread over several pieces change nothing."""
    data = good_file("LONG-PROLOG")
    declaration, body = data.split(b"?>", 1)
    comment = b"\n<!-- " + b"exported by ERP " * 200 + b"-->\n"
    body = body.replace(b"<Document ", b"<Document " + b" " * 1500, 1)
    path = tmp_path / "long-prolog.xml"
    path.write_bytes(declaration + b"?>" + comment + body)
    chunks, summary = chunks_before_summary(path)
    assert (chunks, summary.count, summary.header.msg_id) == (1, 2, "LONG-PROLOG")
