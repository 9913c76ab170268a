"""Who may sign a batch and how many must (SPEC §11): the rights a signatory holds, the
highest level, and whether signatories can ever meet a level — one rule, read by the
configuration's check at start and by the signature run."""

from __future__ import annotations

import enum
from collections.abc import Iterable

LEVEL_MAX = 3  # signatures an account may require at most


class Right(enum.Enum):
    FIRST = "first"  # first signature: the head or an authorised official
    SECOND = "second"  # second signature: the chief accountant


def attainable(level: int, rights: Iterable[Right]) -> bool:
    """Whether signatories with these rights (one entry each) can ever meet `level`, on
    rights alone (not card dates): as many as the level, and from two on, a first and a
    second among them."""
    held = list(rights)
    if level <= 1:
        return len(held) >= level
    return len(held) >= level and Right.FIRST in held and Right.SECOND in held
