"""The identifiers the gateway gives what it books: idempotency keys and AcctSvcrRef.

Every key is derived from the file's bytes and the payment's position, so no crash or
retry posts twice (SPEC §7). References are ≤ 35 characters (Max35Text) and name the
file they belong to, which is how statements find the payments a transfer carries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileRefs:
    """The keys and references of one execution run of one file (run 1 at arrival, the
    later ones as its pending payments fall due)."""

    client_id: str
    sha256: str
    file_id: int
    run: int

    def payment_key(self, seq: int) -> str:
        """Idempotency key of a payment booked as a transfer of its own."""
        return f"file:{self.client_id}:{self.sha256}:{seq}"

    def batch_key(self, pmt_seq: int) -> str:
        """Idempotency key of a batch-booked payment information's transfer in this run."""
        return f"file:{self.client_id}:{self.sha256}:pmt{pmt_seq}:run{self.run}"

    def payment_reference(self, seq: int) -> str:
        return payment_reference(self.file_id, seq)

    def batch_reference(self, pmt_seq: int) -> str:
        return f"EB{self.file_id:010d}P{pmt_seq:05d}R{self.run:03d}"


def payment_reference(file_id: int, seq: int) -> str:
    """A payment's own AcctSvcrRef (whether its transfer is its own or its batch's)."""
    return f"EK{file_id:010d}{seq:08d}"


def reference_file_id(reference: str) -> int | None:
    """The file whose payments a ledger transfer carries, read from the transfer's
    reference; None for any other transfer (funding)."""
    if reference[:2] in ("EK", "EB") and reference[2:12].isdigit():
        return int(reference[2:12])
    return None
