"""camt.029.001.10, resolution of investigation: our answer to a camt.055.001.09 cancellation.

Codes as SPEC §15 names them: per transaction `ACCR` or `RJCR` with `NOOR` (no such
payment of this client: unknown and another client's look the same) or `AGNT` with
`AddtlInf` (already executed or cancelled); the confirmation `CNCL`, `PACR` or `RJCR`.
Validated against the official XSD in the tests.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from gateway.outbound import camt029_parts
from gateway.outbound.resolution import Resolution
from gateway.pull_codes import CancellationReason, Confirmation

MESSAGE = "camt.029.001.10"
ANSWERS = "camt.055.001.09"


def _conf(confirmation: Confirmation) -> str:
    return confirmation.value


def _reason(reason: CancellationReason) -> str:
    return reason.value


DIALECT = camt029_parts.Dialect(
    message=MESSAGE, bic_tag="BICFI", conf=_conf, reason=_reason, date_choice=True
)


def write(resolution: Resolution, out: BinaryIO) -> None:
    """Write `resolution` as camt.029.001.10 (UTF-8, with declaration) to `out`."""
    camt029_parts.write(resolution, out, DIALECT)


def render(resolution: Resolution) -> bytes:
    """The whole document as bytes (an answer is small: one element per payment named)."""
    buffer = io.BytesIO()
    write(resolution, buffer)
    return buffer.getvalue()
