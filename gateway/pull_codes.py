"""The codes of the pull side (SPEC §15), each in one place, in precedence order.

`gateway/reasons.py` holds the pain.002 reason codes; these answer requests and
cancellations instead: why a request is refused as a whole (admi.002's
`RjctgPtyRsn`), what became of each payment named in a cancellation (camt.029),
and the message-level confirmation derived from those. They are kept apart from
`Reason` on purpose: another message, another order of precedence, and some codes
of the same ISO list (FF01, AC01, AC02, DT01, NARR) said of a request — its account,
its period — rather than of a payment; each code's rule and text is still in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

UNKNOWN_REFERENCE = "UNKNOWN"  # admi.002 RltdRef/Ref of a request whose MsgId could not be read


class RequestReason(StrEnum):
    """Why a request (camt.060, camt.055) is answered with admi.002 instead of data.

    admi.002.001.01's `RjctgPtyRsn` is free text (Max35Text); we put ISO External
    Status Reason codes there so that a client's system can act on it, and say the
    rest in English in `RsnDesc`."""

    FF01 = "FF01"  # not a valid message: hostile or broken XML, not UTF-8, too big or too
    # deep, invalid against its schema (or the pyiso20022 model where we have no schema)
    CH17 = "CH17"  # "element not admitted": a report we do not offer (only camt.052/053)
    AC01 = "AC01"  # the account is not identified by an IBAN
    AC02 = "AC02"  # the account is unknown or not the client's (never reveal which)
    DT01 = "DT01"  # the period is unusable: it ends before it starts, or is not closed yet
    NARR = "NARR"  # a limit: more days of statements than one request may ask for

    @property
    def meaning(self) -> str:
        return _REQUEST_MEANINGS[self]


_REQUEST_MEANINGS: dict[RequestReason, str] = {
    RequestReason.FF01: "Invalid file format",
    RequestReason.CH17: "Element not admitted",
    RequestReason.AC01: "Incorrect account number",
    RequestReason.AC02: "Invalid account",
    RequestReason.DT01: "Invalid date",
    RequestReason.NARR: "Narrative",
}


@dataclass(frozen=True, slots=True)
class RequestFinding:
    """A request refused as a whole: answered with admi.002, never with data.

    `msg_id` is the request's own id when it could be read (admi.002 `RltdRef/Ref`),
    None otherwise (`UNKNOWN` is written)."""

    reason: RequestReason
    info: str
    msg_id: str | None = None


class CancellationStatus(StrEnum):
    """What became of one payment named in a cancellation (CancellationIndividualStatus1Code)."""

    ACCR = "ACCR"  # cancelled: it will never execute
    RJCR = "RJCR"  # not cancelled, with a reason


class CancellationReason(StrEnum):
    """Why a payment was not cancelled (camt.029 `CxlStsRsnInf/Rsn/Cd`), in precedence order.

    camt.029.001.10 takes both; camt.029.001.03 allows only LEGL, AGNT and CUST, so
    its writer says AGNT for both and lets `AddtlInf` tell them apart."""

    NOOR = "NOOR"  # no such payment of this client: unknown or another client's look the same
    AGNT = "AGNT"  # the agent cannot cancel it: already executed, rejected or cancelled


class GroupCancellationStatus(StrEnum):
    """A payment information's or original group's outcome (GroupCancellationStatus1Code)."""

    ACCR = "ACCR"  # all of it cancelled
    PACR = "PACR"  # some of it cancelled
    RJCR = "RJCR"  # nothing cancelled


class Confirmation(StrEnum):
    """The message-level outcome of a cancellation request (camt.029 `Sts/Conf`)."""

    CNCL = "CNCL"  # every payment named was cancelled
    PACR = "PACR"  # some were (camt.029.001.03 has no PACR here: its writer says PECR)
    RJCR = "RJCR"  # none was


def group_status(statuses: Iterable[CancellationStatus]) -> GroupCancellationStatus:
    """All ACCR → ACCR; none → RJCR (an empty group too); otherwise PACR."""
    accepted = rejected = 0
    for status in statuses:
        if status is CancellationStatus.ACCR:
            accepted += 1
        else:
            rejected += 1
    if accepted and not rejected:
        return GroupCancellationStatus.ACCR
    if accepted:
        return GroupCancellationStatus.PACR
    return GroupCancellationStatus.RJCR


def confirmation(statuses: Iterable[CancellationStatus]) -> Confirmation:
    """CNCL when all were cancelled, RJCR when none, PACR when some (SPEC §15)."""
    return {
        GroupCancellationStatus.ACCR: Confirmation.CNCL,
        GroupCancellationStatus.PACR: Confirmation.PACR,
        GroupCancellationStatus.RJCR: Confirmation.RJCR,
    }[group_status(statuses)]
