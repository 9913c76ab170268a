"""What a pain.002 echoes of each transaction is rendered by whichever side has time.

A big file is read by a child while this process books it (`inbound/reader.py`). What
the answer echoes of a transaction as read (OrgnlInstrId, OrgnlEndToEndId, OrgnlTxRef)
is rendered by the child while it is ahead of the booking process, else by the booking
process. The answer a client gets must not depend on which side did it: the same
file, read with the child always ahead and never ahead, is answered byte for byte the
same in every payment information — escaping, cut names, zero amounts, rejections and
treasury creditors included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.inbound import pipe, reader
from gateway.inbound.facts import Facts, parse_date
from gateway.inbound.reader import Chunk
from gateway.outbound import pain002_v03
from tests.pipeline_fixtures import B_MAIN, NS002, Batch, Installation

ALWAYS, NEVER = 0, 10**9  # pipe.ahead_events: the child is always / never ahead
COUNT = 5_000  # over 1 MiB: read by a child, in three chunks


def varied_file(msg_id: str) -> bytes:
    """A file of every kind of transaction an echo must carry as sent."""
    b = Batch(msg_id=msg_id, batch_booking=False)
    for n in range(COUNT):
        kind = n % 6
        if kind == 0:  # a treasury creditor, with an instruction id
            b.tx(f"E-{n}", "1.05", B_MAIN, instr_id=f"I-{n}", creditor_name="Skola & <Co>")
        elif kind == 1:  # an invalid IBAN: AC01, the IBAN is not echoed
            b.tx(f"E-{n}", "2.10", "LV00TREL0000000000000")
        elif kind == 2:  # a zero amount, echoed as sent: AM12
            b.tx(f"E-{n}", "0.00")
        elif kind == 3:  # the longest name, in letters of two bytes
            b.tx(f"E-{n}", "3.15", creditor_name="Ļ" * 140)
        else:
            b.tx(f"E-{n}", f"{n % 97 + 1}.{n % 100:02d}", remittance=f"Rēķins {n}")
    return b.build()


def chunks(path: Path, ahead_events: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chunk]:
    monkeypatch.setattr(pipe, "ahead_events", ahead_events)
    with reader.Reader(path, transactions_max=10**6, echo=pain002_v03.original) as read:
        read.digest()
        yield from (event for event in read if isinstance(event, Chunk))


def test_the_child_renders_the_echo_only_while_it_is_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ahead, every chunk comes with its echoes, equal to what the booking process would
    render; never ahead, no chunk does."""
    path = tmp_path / "varied.xml"
    path.write_bytes(varied_file("ECHO-1"))
    assert path.stat().st_size > reader.inline_bytes_max
    ahead = list(chunks(path, ALWAYS, monkeypatch))
    assert len(ahead) >= 3
    day = parse_date(Batch().execution_date)
    for chunk in ahead:
        assert chunk.echoes is not None
        here = list(
            map(pain002_v03.original, chunk.transactions, (f.amount_sent for f in chunk.facts),
                [day] * len(chunk.transactions))
        )  # fmt: skip
        assert chunk.echoes == here
    assert [c.echoes for c in chunks(path, NEVER, monkeypatch)] == [None] * len(ahead)


def test_a_booking_process_that_comes_late_gets_every_echo_rendered_by_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan --once` forks the child before it loads the database layer: until it reads,
    whatever the child writes waits unread in the pipe, and every chunk (the first
    included) is one the child is ahead of, however few events its queue holds."""
    path = tmp_path / "late.xml"
    path.write_bytes(varied_file("ECHO-3"))
    parsed = tmp_path / "parsed"  # made by the child once every event is queued
    finish = pipe.Sender.finish

    def parsed_then_finish(sender: pipe.Sender) -> bool:
        parsed.touch()
        return finish(sender)

    monkeypatch.setattr(pipe.Sender, "finish", parsed_then_finish)  # inherited at the fork
    with reader.Reader(path, transactions_max=10**6, echo=pain002_v03.original) as read:
        # The booking process is still importing: it reads only once the child has parsed
        # the whole file (waiting for that, not for a time, however loaded the host is).
        deadline = time.monotonic() + 120
        while not parsed.exists():
            assert time.monotonic() < deadline, "the child never finished parsing"
            time.sleep(0.05)
        read.digest()
        echoed = [e.echoes is not None for e in read if isinstance(e, Chunk)]
    assert echoed == [True] * 3


@pytest.mark.parametrize(("ahead_events", "here"), [(ALWAYS, 0), (NEVER, COUNT)])
def test_the_facts_are_worked_out_by_the_side_that_has_time(
    ahead_events: int, here: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a transaction says on its own (`facts.facts`: amount, IBAN and BIC checks,
    fingerprint) is worked out by the child while it is ahead, else by the booking process
    — on a verbose payroll the child is the longer side — and is the same either way."""
    path = tmp_path / "facts.xml"
    path.write_bytes(varied_file("FACTS-1"))
    counted = [0]
    real = reader.facts

    def facts_here(*args: Any) -> Facts:
        counted[0] += 1  # in this process only: the child counts its own copy
        return real(*args)

    monkeypatch.setattr(reader, "facts", facts_here)
    found = [f for chunk in chunks(path, ahead_events, monkeypatch) for f in chunk.facts]
    assert counted[0] == here
    monkeypatch.setattr(reader, "facts", real)
    inline = reader.InlineRead(path, transactions_max=10**6)
    assert found == [f for e in inline if isinstance(e, Chunk) for f in e.facts]
    assert sum(f.repeated for f in found) == 0 and len(found) == COUNT


def payment_infos(inst: Installation, data: bytes) -> list[bytes]:
    answer = inst.submit(data, name="varied.xml")
    found = answer.doc.xpath("//p:OrgnlPmtInfAndSts", namespaces=NS002)
    return [etree.tostring(e) for e in found]


def test_the_answer_is_the_same_whichever_side_renders_the_echo(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's answer to one file, with the child always ahead (the booking
    process renders no echo) and never ahead (it renders all): the same bytes."""
    data = varied_file("ECHO-2")
    rendered_here = [0]
    original = pain002_v03.original

    def counted(*args: object) -> pain002_v03.Original:
        rendered_here[0] += 1  # in this process only: the child counts its own copy
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pain002_v03, "original", counted)
    answers, counts = [], []
    for ahead_events in (ALWAYS, NEVER):
        monkeypatch.setattr(pipe, "ahead_events", ahead_events)
        rendered_here[0] = 0
        inst = Installation.copy_of(template, tmp_path / f"gw-{ahead_events}")
        try:
            answers.append(payment_infos(inst, data))
        finally:
            inst.close()
        counts.append(rendered_here[0])
    assert counts == [0, COUNT]  # the runs read through `reading`, which passes the echo
    always, never = answers
    assert always == never
    text = b"".join(always)
    for expected in (b"AC01", b"AM12", b"ACSC", b"Skola &amp; &lt;Co&gt;", b"<OrgnlInstrId>I-0<"):
        assert expected in text, expected
