"""How the reading child's items cross the pipe (`pipe.frame`, `pipe.unframe`): a
chunk by marshal, every other item by pickle, and what arrives is what was sent."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

from gateway import samples
from gateway.inbound import pipe, reader
from gateway.inbound.parsed import ParsedHeader, ParsedPmtInf, ParsedTx
from gateway.outbound import pain002_v03

DEBTOR = samples.iban_lv("TREL", 9_100_000_000_001)
CREDITOR = samples.iban_lv("TREL", 9_100_000_000_002)


def _items(tmp_path: Path) -> list[object]:
    """What the child sends of a file whose payment uses every optional part we read."""
    strd = samples.SampleStrd("RF18539007547034", invoices=(("INV-1", "2026-11-02", "1.00"),))
    tx = samples.SampleTx(
        "E2E-1", "1.00", CREDITOR, creditor_bic="TRELLV22", instr_id="I-1",
        remittance="Rēķins 1\notrā rinda", structured=(strd,),
        codes=(("EKK", "2311", "1.00"), ("IKK", "0911", "1.00")),
    )  # fmt: skip
    pmt = samples.SamplePmtInf("P-1", DEBTOR, [tx])
    path = tmp_path / "batch.xml"
    path.write_bytes(samples.to_bytes(samples.SampleBatch("MSG-1", [pmt], nb_of_txs="1")))
    return list(reader._items(path, 10, pain002_v03.original, lambda: True))


def _crossed(item: object) -> tuple[bytes, object]:
    frame = pipe.frame(item)
    return frame[:1], pipe.unframe(io.BytesIO(frame))


def test_a_chunk_crosses_by_marshal_and_arrives_as_sent(tmp_path: Path) -> None:
    chunks = [i for i in _items(tmp_path) if type(i) is tuple]
    assert len(chunks) == 1
    rows, _repeated, said, echoes = chunks[0]
    row = rows[0]
    assert row[ParsedTx._fields.index("remittance_structured")]  # every part is there
    assert row[ParsedTx._fields.index("codes")] and said is not None and echoes
    kind, arrived = _crossed(chunks[0])
    assert (kind, arrived) == (b"m", chunks[0])


def test_records_and_chunks_marshal_cannot_write_cross_by_pickle(tmp_path: Path) -> None:
    records = [i for i in _items(tmp_path) if type(i) is not tuple]
    assert any(isinstance(r, ParsedHeader) for r in records)
    assert any(isinstance(r, ParsedPmtInf) for r in records)
    for record in records:
        assert _crossed(record) == (b"p", record)
    odd = ([("E2E-1", Decimal("1.00"))], [False], None, None)
    assert _crossed(odd) == (b"p", odd)


def test_a_pipe_that_ends_mid_frame_or_at_once_is_cut_off() -> None:
    frame = pipe.frame(([("E2E-1", 100)], [False], None, None))
    for cut in (0, 3, len(frame) - 1):
        assert pipe.unframe(io.BytesIO(frame[:cut])) is pipe.CUT_OFF
    assert pipe.unframe(io.BytesIO(b"x" + frame[1:])) is pipe.CUT_OFF
