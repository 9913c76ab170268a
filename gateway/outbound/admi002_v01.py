"""admi.002.001.01, message reject: the answer to a request refused as a whole (SPEC §15).

A camt.060 or camt.055 that is invalid, names an account that is not the client's, or
asks for what we do not give, is answered with this and never with data. `RltdRef/Ref`
is the request's own id, or `UNKNOWN` when it could not be read; the reason is a code
of `pull_codes.RequestReason` and the description says the rest in English.

No official XSD of this version is at hand; the tests parse what we write back
through the pyiso20022 model and check it against the model as an XSD would.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import BinaryIO

from gateway.outbound import xmlwrite
from gateway.outbound.xmlwrite import id_chars_max
from gateway.pull_codes import UNKNOWN_REFERENCE, RequestFinding, RequestReason

MESSAGE = "admi.002.001.01"
description_chars_max = 350  # RsnDesc and ErrLctn are Max350Text


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReject:
    reason: RequestReason  # RjctgPtyRsn
    description: str  # RsnDesc, English
    rejected_at: dt.datetime  # RjctnDtTm
    related_ref: str | None = None  # the request's MsgId (Assgnmt/Id); None: UNKNOWN
    error_location: str | None = None  # ErrLctn, e.g. "RptgReq 2"

    def __post_init__(self) -> None:
        xmlwrite.iso_datetime(self.rejected_at)  # refuses a naive datetime now

    @classmethod
    def of(cls, finding: RequestFinding, rejected_at: dt.datetime) -> MessageReject:
        """The reject answering a request refused with `finding`."""
        return cls(
            reason=finding.reason,
            description=finding.info,
            rejected_at=rejected_at,
            related_ref=finding.msg_id,
        )


def write(reject: MessageReject, out: BinaryIO) -> None:
    """Write `reject` as admi.002.001.01 (UTF-8, with declaration) to `out`."""
    with xmlwrite.document(out, MESSAGE, MESSAGE) as w:
        with w.element("RltdRef"):
            w.leaf("Ref", xmlwrite.cut(reject.related_ref, id_chars_max) or UNKNOWN_REFERENCE)
        with w.element("Rsn"):
            w.leaf("RjctgPtyRsn", reject.reason.value)
            w.datetime("RjctnDtTm", reject.rejected_at)
            w.text("ErrLctn", reject.error_location, description_chars_max)
            w.text("RsnDesc", _description(reject.description), description_chars_max)


def _description(text: str) -> str:
    """The English, cut at a word with an ellipsis when longer than the type allows."""
    parts = xmlwrite.wrap(text, description_chars_max, parts_max=1)
    return parts[0] if parts else text


def render(reject: MessageReject) -> bytes:
    buffer = io.BytesIO()
    write(reject, buffer)
    return buffer.getvalue()
