"""Transaction statuses and how payment-information and group statuses derive from them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class TxStatus(StrEnum):
    ACSC = "ACSC"  # booked
    PDNG = "PDNG"  # waiting: execution date ahead or after cut-off
    RJCT = "RJCT"  # rejected, with a reason


class GroupStatus(StrEnum):
    ACSC = "ACSC"
    ACCP = "ACCP"
    PART = "PART"
    RJCT = "RJCT"
    PDNG = "PDNG"


def derive(counts: Mapping[str, int]) -> GroupStatus:
    """All RJCT → RJCT; some RJCT → PART; all ACSC → ACSC; otherwise ACCP (SPEC §6)."""
    total = sum(counts.values())
    rejected = counts.get(TxStatus.RJCT, 0)
    if total == 0 or rejected == total:
        return GroupStatus.RJCT
    if rejected:
        return GroupStatus.PART
    if counts.get(TxStatus.ACSC, 0) == total:
        return GroupStatus.ACSC
    return GroupStatus.ACCP
