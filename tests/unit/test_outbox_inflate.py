"""A message delivered from its outbox row is inflated a bounded piece at a time."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from gateway.outbound import deflate, outbox
from tests.unit.peak_memory import peak_growth

ENTRY = b"<Ntry><Amt Ccy='EUR'>12.30</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts></Ntry>\n"


def test_a_row_is_inflated_a_piece_at_a_time(tmp_path: Path) -> None:
    """A day's statement of a payroll booked as one entry is hundreds of MB of regular XML,
    kept compressed in the outbox: a megabyte of it inflated at once was ~80 MB in memory
    (a 1,000,000-payment batch's statement ~640 MB). Inflated into the file a piece at a
    time, memory stays flat; the file is the message's bytes."""
    plain = ENTRY * (96 * 2**20 // len(ENTRY))
    body = zlib.compress(plain, deflate.compress_level)
    del plain
    target = tmp_path / "statement.xml"
    grew = peak_growth(lambda: outbox._inflate(body, target))
    assert grew < 24 * 2**20, f"{grew / 2**20:.0f} MB"
    assert zlib.crc32(target.read_bytes()) == zlib.crc32(zlib.decompress(body))


def test_a_damaged_row_is_never_delivered_in_part(tmp_path: Path) -> None:
    """A stored body that ends early (a damaged row) was inflated into a file cut short
    and delivered as the message: it is refused as an I/O error (the client's delivery is
    held and the fault shown), and nothing of it is left in the spool."""
    body = zlib.compress(ENTRY * 1000, deflate.compress_level)
    target = tmp_path / "statement.xml"
    with pytest.raises(OSError, match="ends early"):
        outbox._inflate(body[: len(body) // 2], target)
    assert not target.exists()
