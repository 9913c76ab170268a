"""How the reading child's items cross the pipe (`pipe.frame`, `pipe.unframe`): a
chunk by marshal, every other item by pickle, and what arrives is what was sent."""

from __future__ import annotations

import dataclasses
import io
from decimal import Decimal
from pathlib import Path

from gateway import samples
from gateway.inbound import pain001_v03, pipe, reader
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
    # payment informations as one item, each before its transactions
    assert any(type(r) is list and isinstance(r[0], ParsedPmtInf) for r in records)
    for record in records:
        assert _crossed(record) == (b"p", record)
    odd = ([("E2E-1", Decimal("1.00"))], [False], None, None)
    assert _crossed(odd) == (b"p", odd)


def test_a_pipe_that_ends_mid_frame_or_at_once_is_cut_off() -> None:
    frame = pipe.frame(([("E2E-1", 100)], [False], None, None))
    for cut in (0, 3, len(frame) - 1):
        assert pipe.unframe(io.BytesIO(frame[:cut])) is pipe.CUT_OFF
    assert pipe.unframe(io.BytesIO(b"x" + frame[1:])) is pipe.CUT_OFF


def test_what_is_kept_of_payment_informations_does_not_grow_with_them(tmp_path: Path) -> None:
    """A file of many payment informations (an ERP writing one per payment): the summary
    carried every one's totals and the booking process kept every record to the end, to
    judge AM18/AM10 there — 410 MB for 100,000. Each record is let go once its payment
    information has ended (by the child, by the booking process once its transactions have
    come), and the summary keeps only those whose declared totals are not their own."""
    def txs(n: int) -> list[samples.SampleTx]:
        return [samples.SampleTx(f"E-{n}-{k}", f"{n}.01", CREDITOR) for k in range(n)]

    pmts = [samples.SamplePmtInf(f"P-{n}", DEBTOR, txs(n), nb_of_txs=str(n)) for n in (1, 2, 3)]
    pmts[1] = dataclasses.replace(pmts[1], nb_of_txs="5")  # declares five, has two
    path = tmp_path / "many.xml"
    path.write_bytes(samples.to_bytes(samples.SampleBatch("MSG-2", pmts, nb_of_txs="6")))
    events = pain001_v03.stream(reader.blocks(path), transactions_max=10, chunk_size=1)
    items = list(reader._checked(events, None, lambda: False))  # a chunk per transaction
    summary = items[-1]
    assert isinstance(summary, reader.ParsedFile)
    assert (summary.count, summary.amount_sum, summary.pmt_inf_count) == (6, Decimal("14.06"), 3)
    assert [(p.pmt_inf_id, p.count, p.amount_sum) for p in summary.payment_infos] == [
        ("P-2", 2, Decimal("4.02"))]  # fmt: skip
    decode = reader._Decoder()
    held = []
    for item in items:
        decode(pipe.unframe(io.BytesIO(pipe.frame(item))))
        held.append(sorted(decode.pmts))
    # Each record comes just before its transactions and goes once the next one's first
    # transaction has come: never more than two at a time.
    assert held == [[], [0], [0], [0, 1], [1], [1], [1, 2], [2], [2], [2], [2]]
