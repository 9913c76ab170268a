"""What camt.029 (resolution of investigation) reports about a cancellation request, as values.

One model for both versions we write: camt.029.001.03 (answering camt.055.001.01)
and camt.029.001.10 (answering camt.055.001.09). It follows the request's shape (one
`UnderlyingResolution` per `Undrlyg`, with its group, payment informations and
transactions), so the gateway can answer each item where the client named it.

Every rejection carries a reason (`NOOR` or `AGNT`); the statuses of payment
informations, groups and the message-level confirmation are derived from the
transactions (`pull_codes.group_status`, `pull_codes.confirmation`) unless an item
was answered as a whole without naming its transactions (an unknown payment
information, an unknown batch), in which case its own status counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.outbound import xmlwrite
from gateway.outbound.xmlwrite import id_chars_max
from gateway.pull_codes import (
    CancellationReason,
    CancellationStatus,
    Confirmation,
    GroupCancellationStatus,
    confirmation,
    group_status,
)

TREASURY_BIC = "TRELLV22"

# English for a rejection whose caller gave no text; camt.029.001.03 says AGNT for both
# reasons, so the text is what tells them apart there.
DEFAULT_INFO = {
    CancellationReason.NOOR: "no such payment of this client",
    CancellationReason.AGNT: "the payment can no longer be cancelled",
}


def _check_rejection(
    what: str, status: CancellationStatus | None, reason: CancellationReason | None
) -> None:
    if status is CancellationStatus.RJCR and reason is None:
        raise ValueError(f"{what}: a rejection needs a reason")
    if status is CancellationStatus.ACCR and reason is not None:
        raise ValueError(f"{what}: an accepted cancellation has no reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class TxResolution:
    """One payment named in the request (`TxInfAndSts`)."""

    status: CancellationStatus
    reason: CancellationReason | None = None  # required for RJCR
    additional_info: str | None = None  # AGNT: what happened to it ("executed on 2026-11-25")
    cancellation_id: str | None = None  # the request's CxlId, echoed as CxlStsId
    end_to_end_id: str | None = None
    instr_id: str | None = None
    amount_minor: int | None = None  # OrgnlInstdAmt: the booked instruction's amount
    currency: str | None = None
    requested_date: dt.date | None = None  # OrgnlReqdExctnDt

    def __post_init__(self) -> None:
        _check_rejection(f"transaction {self.end_to_end_id!r}", self.status, self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentInfoResolution:
    """One payment information named in the request (`OrgnlPmtInfAndSts`).

    With transactions its status derives from them; without (answered as a whole, e.g.
    unknown), `status` and, for RJCR, `reason` must be given."""

    pmt_inf_id: str
    cancellation_id: str | None = None  # the request's PmtCxlId
    original_msg_id: str | None = None  # OrgnlGrpInf, when the request named it here
    original_msg_name: str | None = None
    transactions: tuple[TxResolution, ...] = ()
    status: CancellationStatus | None = None
    reason: CancellationReason | None = None
    additional_info: str | None = None

    def __post_init__(self) -> None:
        if not self.transactions and self.status is None:
            raise ValueError(f"payment information {self.pmt_inf_id!r}: no status")
        if (self.original_msg_id is None) != (self.original_msg_name is None):
            raise ValueError(f"payment information {self.pmt_inf_id!r}: half an OrgnlGrpInf")
        _check_rejection(f"payment information {self.pmt_inf_id!r}", self.status, self.reason)

    def statuses(self) -> Iterator[CancellationStatus]:
        if self.transactions:
            for tx in self.transactions:
                yield tx.status
        elif self.status is not None:
            yield self.status

    @property
    def group_status(self) -> GroupCancellationStatus:
        return group_status(self.statuses())


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupResolution:
    """The original batch named in the request (`OrgnlGrpInfAndSts`).

    Its status derives from the payment informations of its underlying; when none is
    listed (an unknown batch, answered as a whole), `status` must be given. A group the
    request did not ask to cancel (`GrpCxl` false, payment informations named in it) has
    no status of its own (`GrpCxlSts` is the status of a group cancellation): it is
    echoed, and what was done is said where it was asked, per payment information."""

    original_msg_id: str
    original_msg_name: str
    cancellation_id: str | None = None  # the request's GrpCxlId
    whole: bool = True  # the request asked to cancel the whole group
    status: CancellationStatus | None = None
    reason: CancellationReason | None = None
    additional_info: str | None = None

    def __post_init__(self) -> None:
        _check_rejection(f"group {self.original_msg_id!r}", self.status, self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnderlyingResolution:
    """One `CxlDtls`: the answer to one `Undrlyg` of the request."""

    group: GroupResolution | None = None
    payment_infos: tuple[PaymentInfoResolution, ...] = ()

    def __post_init__(self) -> None:
        if self.group is None and not self.payment_infos:
            raise ValueError("an underlying answer names neither a group nor a payment info")
        if self.group is not None and not self.payment_infos and self.group.status is None:
            raise ValueError(f"group {self.group.original_msg_id!r}: no status")

    def statuses(self) -> Iterator[CancellationStatus]:
        if self.payment_infos:
            for info in self.payment_infos:
                yield from info.statuses()
        elif self.group is not None and self.group.status is not None:
            yield self.group.status

    @property
    def group_status(self) -> GroupCancellationStatus:
        return group_status(self.statuses())

    @property
    def group_cancellation_status(self) -> GroupCancellationStatus | None:
        """`GrpCxlSts`: only for a group asked to be cancelled, or answered as a whole."""
        if self.group is None or (self.payment_infos and not self.group.whole):
            return None
        return self.group_status


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """The whole answer: our assignment, the client's case, the details."""

    msg_id: str  # Assgnmt/Id: our reference for this answer
    created_at: dt.datetime
    client_name: str  # Assgne/Pty/Nm, and the case creator
    request_msg_id: str  # the request's Assgnmt/Id: RslvdCase/Id unless it opened a case
    case_id: str | None = None  # the request's Case/Id, when it opened one
    servicer_bic: str = TREASURY_BIC  # Assgnr/Agt
    details: tuple[UnderlyingResolution, ...]

    def __post_init__(self) -> None:
        if not 0 < len(self.msg_id) <= id_chars_max:
            raise ValueError(f"Assgnmt/Id must be 1 to {id_chars_max} characters: {self.msg_id!r}")
        if xmlwrite.valid_bic(self.servicer_bic) is None:
            raise ValueError(f"servicer BIC malformed: {self.servicer_bic!r}")
        if not self.details:
            raise ValueError("a resolution without details")
        xmlwrite.iso_datetime(self.created_at)  # refuses a naive datetime now, not mid-write

    def statuses(self) -> Iterator[CancellationStatus]:
        for detail in self.details:
            yield from detail.statuses()

    @property
    def confirmation(self) -> Confirmation:
        return confirmation(self.statuses())

    @property
    def case(self) -> str:
        """RslvdCase/Id: the client's case, or its request when it opened none."""
        return self.case_id or self.request_msg_id
