"""admi.002.001.01, message reject: the answer to a request refused as a whole (SPEC §15).

A camt.060 or camt.055 that is invalid, names an account that is not the client's, or
asks for what we do not give, is answered with this and never with data. `RltdRef/Ref`
is the request's own id, or `UNKNOWN` when it could not be read; the reason is a code
of `pull_codes.RequestReason` and the description says the rest in English. A reject
of `UNKNOWN` also names the uploaded file and its SHA-256 at the end of its description
(as pain.002 `FF01` does, SPEC §6), so the client can tell which upload it answers: the
reason's English is cut shorter to make room for it.

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
reason_chars_min = 120  # of RsnDesc kept for the reason when the upload is named too
# What naming the upload may take of RsnDesc (`Intake.upload_within`), after "; ".
upload_chars_max = description_chars_max - reason_chars_min - 2


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReject:
    reason: RequestReason  # RjctgPtyRsn
    description: str  # RsnDesc, English
    rejected_at: dt.datetime  # RjctnDtTm
    related_ref: str | None = None  # the request's MsgId (Assgnmt/Id); None: UNKNOWN
    error_location: str | None = None  # ErrLctn, e.g. "RptgReq 2"
    upload: str | None = None  # the uploaded file and its SHA-256 (`Intake.upload`)

    def __post_init__(self) -> None:
        xmlwrite.iso_datetime(self.rejected_at)  # refuses a naive datetime now

    @classmethod
    def of(
        cls, finding: RequestFinding, rejected_at: dt.datetime, upload: str | None = None
    ) -> MessageReject:
        """The reject answering a request refused with `finding`; `upload` (the uploaded
        file and its SHA-256) is said when the request's MsgId could not be read."""
        return cls(
            reason=finding.reason,
            description=finding.info,
            rejected_at=rejected_at,
            related_ref=finding.msg_id,
            upload=upload if finding.msg_id is None else None,
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
            w.text("RsnDesc", _description(reject), description_chars_max)


def _description(reject: MessageReject) -> str:
    """The English, cut at a word with an ellipsis when longer than the type allows; the
    upload it answers after it when there is no MsgId to name it by (the English cut to
    leave it room, unless that would leave the English under `reason_chars_min`)."""
    note = f"; {reject.upload}" if reject.upload and not reject.related_ref else ""
    room = max(description_chars_max - len(note), reason_chars_min)
    parts = xmlwrite.wrap(reject.description, room, parts_max=1)
    text = (parts[0] if parts else reject.description) + note
    parts = xmlwrite.wrap(text, description_chars_max, parts_max=1)
    return parts[0] if parts else text


def render(reject: MessageReject) -> bytes:
    buffer = io.BytesIO()
    write(reject, buffer)
    return buffer.getvalue()
