"""A message delivered from its outbox row is inflated a bounded piece at a time."""

from __future__ import annotations

import zlib
from pathlib import Path

from gateway.outbound import outbox
from tests.unit.peak_memory import peak_growth

ENTRY = b"<Ntry><Amt Ccy='EUR'>12.30</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>\n"


def test_a_row_is_inflated_a_piece_at_a_time(tmp_path: Path) -> None:
    """A day's statement of a payroll booked as one entry is hundreds of MB of regular XML,
    kept compressed in the outbox: a megabyte of it inflated at once was ~80 MB in memory
    (a 1,000,000-payment batch's statement ~640 MB). Inflated into the file a piece at a
    time, memory stays flat; the file is the message's bytes."""
    plain = ENTRY * (96 * 2**20 // len(ENTRY))
    body = zlib.compress(plain, outbox.compress_level)
    del plain
    target = tmp_path / "statement.xml"
    grew = peak_growth(lambda: outbox._inflate(body, target))
    assert grew < 24 * 2**20, f"{grew / 2**20:.0f} MB"
    assert zlib.crc32(target.read_bytes()) == zlib.crc32(zlib.decompress(body))
