"""The identifiers the gateway gives what it books: idempotency keys and AcctSvcrRef.

Every key is derived from the file's bytes and the payment's position, so no crash or
retry posts twice (SPEC §7). References are ≤ 35 characters (Max35Text) and name the
file they belong to, which is how statements find the payments a transfer carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FileRefs:
    """The keys and references of one execution run of one file (run 1 at arrival, the
    later ones as its pending payments fall due)."""

    client_id: str
    sha256: str
    file_id: int
    run: int
    _own_prefix: str = field(init=False, repr=False, compare=False)  # of its payments' own

    def __post_init__(self) -> None:
        object.__setattr__(self, "_own_prefix", payment_reference_prefix(self.file_id))

    def singles_key(self, first_seq: int) -> str:
        """Idempotency key of the transfer of the payments booked on their own (not batch
        booked) in this run, from position `first_seq` on (one per chunk)."""
        return f"file:{self.client_id}:{self.sha256}:run{self.run}:from{first_seq}"

    def batch_key(self, pmt_seq: int) -> str:
        """Idempotency key of a batch-booked payment information's transfer in this run."""
        return f"file:{self.client_id}:{self.sha256}:pmt{pmt_seq}:run{self.run}"

    def payment_reference(self, seq: int) -> str:
        return _own_reference(self._own_prefix, seq)

    def batch_reference(self, pmt_seq: int) -> str:
        return f"EB{self.file_id:010d}P{pmt_seq:05d}R{self.run:03d}"

    def singles_reference(self, first_seq: int) -> str:
        return f"ES{self.file_id:010d}R{self.run:03d}S{first_seq:08d}"


def payment_reference(file_id: int, seq: int) -> str:
    """A payment's own AcctSvcrRef (whether its transfer is its own or its batch's)."""
    return _own_reference(payment_reference_prefix(file_id), seq)


def _own_reference(prefix: str, seq: int) -> str:
    return f"{prefix}{seq:08d}"


def payment_reference_prefix(file_id: int) -> str:
    """What the own references of a file's payments begin with."""
    return f"EK{file_id:010d}"


def reference_seq(reference: str) -> int | None:
    """The position in its file of the payment whose own reference this is (a payment
    booked on its own carries it as its entry's reference); None for any other."""
    if reference[:2] == "EK" and len(reference) == 20 and reference[2:].isdigit():
        return int(reference[12:])
    return None


def reference_file_id(reference: str) -> int | None:
    """The file whose payments a ledger entry carries, read from its reference (a payment's
    own, a batch's, or a run's payments'); None for any other entry (funding)."""
    if reference[:2] in ("EK", "EB", "ES") and reference[2:12].isdigit():
        return int(reference[2:12])
    return None
