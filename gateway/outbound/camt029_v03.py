"""camt.029.001.03, resolution of investigation: our answer to a camt.055.001.01 cancellation.

The 2009 edition allows fewer codes than SPEC §15 speaks of, so this version says:
- a rejection's reason is always `AGNT` (PaymentCancellationRejection1Code has only
  LEGL, AGNT and CUST); `AddtlInf` tells "no such payment of this client" (`NOOR`
  in .001.10) from "already executed" or "already cancelled";
- the message-level confirmation of a partly executed request is `PECR` ("partially
  executed cancellation request"): InvestigationExecutionConfirmation3Code has no
  `PACR`. The group and payment-information statuses still say `PACR`.

No official XSD of this version is at hand; the tests parse what we write back
through the pyiso20022 model and check it against the model as an XSD would.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from gateway.outbound import camt029_parts
from gateway.outbound.resolution import Resolution
from gateway.pull_codes import CancellationReason, Confirmation

MESSAGE = "camt.029.001.03"
ANSWERS = "camt.055.001.01"


def _conf(confirmation: Confirmation) -> str:
    return "PECR" if confirmation is Confirmation.PACR else confirmation.value


def _reason(_reason: CancellationReason) -> str:
    return CancellationReason.AGNT.value


DIALECT = camt029_parts.Dialect(
    message=MESSAGE, bic_tag="BIC", conf=_conf, reason=_reason, date_choice=False
)


def write(resolution: Resolution, out: BinaryIO) -> None:
    """Write `resolution` as camt.029.001.03 (UTF-8, with declaration) to `out`."""
    camt029_parts.write(resolution, out, DIALECT)


def render(resolution: Resolution) -> bytes:
    """The whole document as bytes (an answer is small: one element per payment named)."""
    buffer = io.BytesIO()
    write(resolution, buffer)
    return buffer.getvalue()
