"""The parts camt.029.001.03 and .001.10 share: our answer to a cancellation request.

Both versions have the same shape for what we write (Assgnmt, RslvdCase, Sts/Conf,
CxlDtls with OrgnlGrpInfAndSts, OrgnlPmtInfAndSts and their TxInfAndSts); they differ
in a few codes and types, which each message module states as a `Dialect`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from gateway.outbound import xmlwrite
from gateway.outbound.resolution import (
    DEFAULT_INFO,
    GroupResolution,
    PaymentInfoResolution,
    Resolution,
    TxResolution,
    UnderlyingResolution,
)
from gateway.outbound.xmlwrite import Writer, id_chars_max
from gateway.pull_codes import CancellationReason, CancellationStatus, Confirmation

UNKNOWN = "UNKNOWN"
additional_info_chars_max = 105  # CxlStsRsnInf/AddtlInf is Max105Text


@dataclass(frozen=True, slots=True)
class Dialect:
    message: str
    bic_tag: str  # the BIC inside FinInstnId: BIC (2009 types) or BICFI
    conf: Callable[[Confirmation], str]  # the message-level code this version allows
    reason: Callable[[CancellationReason], str]  # the rejection code this version allows
    date_choice: bool  # OrgnlReqdExctnDt is DateAndDateTime2Choice (write it as Dt)


def write(resolution: Resolution, out: BinaryIO, dialect: Dialect) -> None:
    """Write `resolution` as a RsltnOfInvstgtn document of `dialect` to `out`."""
    with xmlwrite.document(out, dialect.message, "RsltnOfInvstgtn") as w:
        with w.element("Assgnmt"):
            w.leaf("Id", resolution.msg_id)
            with w.element("Assgnr"), w.element("Agt"), w.element("FinInstnId"):
                w.leaf(dialect.bic_tag, resolution.servicer_bic)
            _client(w, "Assgne", resolution.client_name)
            w.datetime("CreDtTm", resolution.created_at)
        with w.element("RslvdCase"):
            w.leaf("Id", _id(resolution.case))
            _client(w, "Cretr", resolution.client_name)
        with w.element("Sts"):
            w.leaf("Conf", dialect.conf(resolution.confirmation))
        for detail in resolution.details:
            _details(w, detail, dialect)


def _client(w: Writer, tag: str, name: str) -> None:
    with w.element(tag), w.element("Pty"):
        w.leaf("Nm", xmlwrite.cut(name, xmlwrite.name_chars_max) or UNKNOWN)


def _id(text: str | None) -> str:
    return xmlwrite.cut(text, id_chars_max) or UNKNOWN


def _details(w: Writer, detail: UnderlyingResolution, dialect: Dialect) -> None:
    with w.element("CxlDtls"):
        if detail.group is not None:
            _group(w, detail.group, detail, dialect)
        for info in detail.payment_infos:
            _payment_info(w, info, dialect)


def _group(
    w: Writer, group: GroupResolution, detail: UnderlyingResolution, dialect: Dialect
) -> None:
    with w.element("OrgnlGrpInfAndSts"):
        w.text("OrgnlGrpCxlId", group.cancellation_id, id_chars_max)
        w.leaf("OrgnlMsgId", _id(group.original_msg_id))
        w.leaf("OrgnlMsgNmId", _id(group.original_msg_name))
        status = detail.group_cancellation_status
        if status is not None:
            w.leaf("GrpCxlSts", status.value)
        if not detail.payment_infos:  # answered as a whole: the group's own reason
            _reason(w, group.status, group.reason, group.additional_info, dialect)


def _payment_info(w: Writer, info: PaymentInfoResolution, dialect: Dialect) -> None:
    with w.element("OrgnlPmtInfAndSts"):
        w.text("OrgnlPmtInfCxlId", info.cancellation_id, id_chars_max)
        w.leaf("OrgnlPmtInfId", _id(info.pmt_inf_id))
        if info.original_msg_id is not None and info.original_msg_name is not None:
            with w.element("OrgnlGrpInf"):
                w.leaf("OrgnlMsgId", _id(info.original_msg_id))
                w.leaf("OrgnlMsgNmId", _id(info.original_msg_name))
        w.leaf("PmtInfCxlSts", info.group_status.value)
        if not info.transactions:
            _reason(w, info.status, info.reason, info.additional_info, dialect)
        for tx in info.transactions:
            _transaction(w, tx, dialect)


def _transaction(w: Writer, tx: TxResolution, dialect: Dialect) -> None:
    with w.element("TxInfAndSts"):
        w.text("CxlStsId", tx.cancellation_id, id_chars_max)
        w.text("OrgnlInstrId", tx.instr_id, id_chars_max)
        w.text("OrgnlEndToEndId", tx.end_to_end_id, id_chars_max)
        w.leaf("TxCxlSts", tx.status.value)
        _reason(w, tx.status, tx.reason, tx.additional_info, dialect)
        if xmlwrite.can_format(tx.amount_minor, tx.currency):
            assert tx.amount_minor is not None and tx.currency is not None
            w.amount("OrgnlInstdAmt", tx.amount_minor, tx.currency)
        if tx.requested_date is not None:
            if dialect.date_choice:
                with w.element("OrgnlReqdExctnDt"):
                    w.date("Dt", tx.requested_date)
            else:
                w.date("OrgnlReqdExctnDt", tx.requested_date)


def _reason(
    w: Writer,
    status: CancellationStatus | None,
    reason: CancellationReason | None,
    info: str | None,
    dialect: Dialect,
) -> None:
    """CxlStsRsnInf of a rejection: the code this version allows, and the English."""
    if status is not CancellationStatus.RJCR or reason is None:
        return
    with w.element("CxlStsRsnInf"):
        with w.element("Rsn"):
            w.leaf("Cd", dialect.reason(reason))
        for line in xmlwrite.wrap(info or DEFAULT_INFO[reason], additional_info_chars_max):
            w.leaf("AddtlInf", line)
