"""The first pain.002 of a new file, written as its chunks are decided.

A pain.002 gives the counts per status before the transactions, so the rendered
TxInfAndSts go to a temporary file first (a payment information's transactions are
contiguous in a pain.001, so each is one byte range); `render` then writes the headers
and copies the ranges. Memory stays flat however big the file.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import os
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from gateway.inbound.reader import Chunk, Echo
from gateway.outbound import outbox
from gateway.outbound import pain002_v03 as pain002
from gateway.outbound.deflate import Copy
from gateway.statuses import GroupStatus, TxStatus, derive

copy_block_bytes = 1 << 20
memory_bytes_max = 1 << 20  # of rendered transactions kept in memory before a temporary file


def echoes(chunk: Chunk, days: Iterable[dt.date | None]) -> list[Echo]:
    """What the report echoes of each transaction of `chunk` as read (`days`: their
    ReqdExctnDt): rendered by the reading child if it was ahead, else here (the reader's
    module docstring). Either way `pain002.original` rendered it from the same values."""
    if chunk.echoes is not None:
        return chunk.echoes
    amounts = (f.amount_sent for f in chunk.facts)
    return list(map(pain002.original, chunk.transactions, amounts, days))


_STATUSES = tuple(s.value for s in TxStatus)  # the order of a part's tallies


@dataclass(slots=True)
class _PaymentInfoPart:
    """One payment information's transactions in the first report: where its rendered
    TxInfAndSts lie in the temporary file, and how many have each status (`_STATUSES`
    order), what its header needs. One is kept per payment information to the end (a file
    may have one per payment): a few numbers, no mapping of its own."""

    pmt_inf_id: str
    start: int
    end: int = 0
    tallies: tuple[int, ...] = (0,) * len(_STATUSES)

    @property
    def count(self) -> int:
        return sum(self.tallies)

    @property
    def counts(self) -> Counter[str]:
        return Counter({s: n for s, n in zip(_STATUSES, self.tallies, strict=True) if n})

    def add(self, statuses: Sequence[str]) -> None:
        found = Counter(statuses)
        assert found.keys() <= set(_STATUSES), f"no such status: {sorted(found)}"
        self.tallies = tuple(n + found[s] for s, n in zip(_STATUSES, self.tallies, strict=True))


class FirstReport:
    """The pain.002 for a newly accepted file, written as its chunks are decided.

    A pain.002 gives the counts per status before the transactions, so the rendered
    TxInfAndSts go to a temporary file first (a payment information's transactions
    are contiguous in a pain.001, so each is one byte range); `render` then writes the
    headers and copies the ranges. Memory stays flat however big the file.
    """

    def __init__(self, folder: Path) -> None:
        # In memory for a small file's report, on disk beyond `memory_bytes_max`.
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in close()
            max_size=memory_bytes_max, mode="w+b", dir=str(folder)
        )
        self._parts: dict[int, _PaymentInfoPart] = {}
        self._ctrl_sums: dict[int, Decimal] = {}  # PmtInf/CtrlSum as sent, by position
        self.counts: Counter[str] = Counter()

    def payment_info(self, pmt_seq: int, ctrl_sum: Decimal | None) -> None:
        """A payment information read: its CtrlSum as sent (`answers.echoed_ctrl_sum`),
        echoed as its OrgnlCtrlSum. Once per payment information, before its chunks."""
        if ctrl_sum is not None:
            self._ctrl_sums[pmt_seq] = ctrl_sum

    def add_chunk(
        self,
        pmt_seqs: Sequence[int],
        pmt_inf_ids: Sequence[str],
        statuses: Sequence[str],
        texts: Sequence[str],
    ) -> None:
        """Transactions in file order, a column each: payment information (position and
        id), status, rendered TxInfAndSts. A payment information's transactions are
        contiguous, so each run of them is added at once."""
        count = len(texts)
        assert all(len(c) == count for c in (pmt_seqs, pmt_inf_ids, statuses))
        start = 0
        while start < count:
            pmt_seq = pmt_seqs[start]
            end = bisect.bisect_right(pmt_seqs, pmt_seq, start)  # positions are in file order
            part = self._parts.get(pmt_seq)
            if part is None:
                part = self._parts[pmt_seq] = _PaymentInfoPart(
                    pmt_inf_ids[start], self._file.tell()
                )
            part.add(statuses[start:end])
            self._write(part, texts[start:end])
            start = end
        self.counts.update(statuses)

    def _write(self, part: _PaymentInfoPart, texts: Sequence[str]) -> None:
        assert part.end in (0, self._file.tell()), "a PmtInf's transactions are contiguous"
        self._file.write("".join(texts).encode())
        part.end = self._file.tell()

    def dump(self) -> bytes:
        """The transactions written so far with what `render` needs of them, compressed:
        `load` makes the report again (what a batch waiting for signatures keeps of its
        first answer, `db.awaiting_listings`)."""
        head = json.dumps({
            "parts": [[seq, p.pmt_inf_id, p.start, p.end, p.count, p.counts]
                      for seq, p in self._parts.items()],
            "ctrl_sums": [[seq, str(value)] for seq, value in self._ctrl_sums.items()],
            "counts": self.counts,
        }).encode()  # fmt: skip
        packer = zlib.compressobj()
        out = [packer.compress(len(head).to_bytes(8, "big") + head)]
        self._file.seek(0)
        while block := self._file.read(copy_block_bytes):
            out.append(packer.compress(block))
        self._file.seek(0, os.SEEK_END)  # (a later chunk is written at the end)
        return b"".join([*out, packer.flush()])

    @classmethod
    def load(cls, folder: Path, data: bytes) -> FirstReport:
        """The report `dump` gave, its transactions in a temporary file in `folder`."""
        report = cls(folder)
        unpacker = zlib.decompressobj()
        held = unpacker.decompress(data, copy_block_bytes)
        size = int.from_bytes(held[:8], "big")
        while len(held) < 8 + size and unpacker.unconsumed_tail:
            held += unpacker.decompress(unpacker.unconsumed_tail, copy_block_bytes)
        head = json.loads(held[8 : 8 + size])
        report._file.write(held[8 + size :])
        while unpacker.unconsumed_tail:
            report._file.write(unpacker.decompress(unpacker.unconsumed_tail, copy_block_bytes))
        report._file.write(unpacker.flush())
        for seq, pmt_inf_id, start, end, _, counts in head["parts"]:
            tallies = tuple(counts.get(s, 0) for s in _STATUSES)
            report._parts[seq] = _PaymentInfoPart(pmt_inf_id, start, end, tallies)
        report._ctrl_sums = {seq: Decimal(value) for seq, value in head["ctrl_sums"]}
        report.counts = Counter(head["counts"])
        return report

    def _blocks(self, part: _PaymentInfoPart) -> Iterator[bytes]:
        self._file.seek(part.start)
        left = part.end - part.start
        while left > 0:
            block = self._file.read(min(left, copy_block_bytes))
            if not block:
                raise OSError("the report's temporary file is shorter than written")
            left -= len(block)
            yield block

    def render(
        self,
        *,
        msg_id: str,
        created_at: dt.datetime,
        bic: str,
        original_msg_id: str,
        original_msg_name: str,
        original_created_at: str | None,
        original_nb_of_txs: int,
        original_ctrl_sum: Decimal | None,
        copy: Copy | None = None,
        status: GroupStatus | None = None,
        info: str | None = None,
        reason: pain002.Reasons = None,
    ) -> bytes:
        """The compressed report; with `copy`, its plain bytes are written there too.
        `status` overrides the derived group and payment-information statuses (a batch
        waiting for signatures is PDNG throughout, SPEC §11); `info` is the group's
        AddtlInf (what it waits for), `reason` its reason code (an expired one: DS24)."""
        self._file.flush()

        def payment_infos() -> Iterator[pain002.PaymentInfoReport]:
            for pmt_seq, part in self._parts.items():
                counts = part.counts
                yield pain002.PaymentInfoReport(
                    pmt_inf_id=part.pmt_inf_id,
                    nb_of_txs=part.count,
                    ctrl_sum=self._ctrl_sums.get(pmt_seq),
                    status=status or derive(counts),
                    counts=counts,
                    rendered_transactions=self._blocks(part),
                )

        report = pain002.StatusReport(
            msg_id=msg_id,
            created_at=created_at,
            servicer_bic=bic,
            original_msg_id=original_msg_id,
            original_msg_name=original_msg_name,
            original_created_at=original_created_at,
            original_nb_of_txs=original_nb_of_txs,
            original_ctrl_sum=original_ctrl_sum,
            group_status=status or derive(self.counts),
            group_additional_info=info,
            group_reason=reason,
            counts=self.counts,
            payment_infos=payment_infos(),
        )
        return outbox.render(lambda out: pain002.write(report, out), copy)

    def close(self) -> None:
        self._file.close()
