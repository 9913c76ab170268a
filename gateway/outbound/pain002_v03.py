"""pain.002.001.03, the customer payment status report: our answer to every pain.001.

`write` streams the report: payment informations and their transactions are
iterables consumed once, element by element, so a million-transaction answer never
sits in memory. Statuses and per-status counts are known before the transactions
are written, so the caller computes them (`gateway.statuses.derive`).

A file-level rejection (FF01 for an unreadable file, DU01, AM18, AM10) has group
status RJCT with a status reason and no payment informations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO

from gateway.outbound import xmlwrite
from gateway.outbound.xmlwrite import Writer, id_chars_max
from gateway.reasons import Reason
from gateway.statuses import GroupStatus, TxStatus
from ledger.currency import format_minor

if TYPE_CHECKING:
    from gateway.inbound.parsed import ParsedTx

MESSAGE = "pain.002.001.03"
TREASURY_BIC = "TRELLV22"
UNKNOWN = "UNKNOWN"  # OrgnlMsgId / OrgnlMsgNmId of a file that could not be read

decimal_digits_max = 18  # DecimalNumber: totalDigits
decimal_fraction_digits_max = 17  # DecimalNumber: fractionDigits


# A group's status reason: one code, or several (the first with the text), or none.
Reasons = Reason | tuple[Reason, ...] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TxReport:
    """One transaction's status (TxInfAndSts). A rejection always names its reason."""

    end_to_end_id: str
    instr_id: str | None = None
    status: TxStatus
    reason: Reason | None = None
    additional_info: str | None = None
    acct_svcr_ref: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    requested_execution_date: date | None = None
    creditor_name: str | None = None
    creditor_iban: str | None = None

    def __post_init__(self) -> None:
        if self.status is TxStatus.RJCT and self.reason is None:
            raise ValueError(f"rejected transaction {self.end_to_end_id!r} without a reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentInfoReport:
    """One payment information's status (OrgnlPmtInfAndSts) and its transactions."""

    pmt_inf_id: str
    nb_of_txs: int
    ctrl_sum: Decimal | None = None  # PmtInf/CtrlSum as sent (`decimal_number`)
    status: GroupStatus
    counts: Mapping[str, int]
    reason: Reason | None = None
    additional_info: str | None = None
    transactions: Iterable[TxReport] = ()
    # or the TxInfAndSts elements already written (head + status + tail below), as UTF-8
    rendered_transactions: Iterable[bytes] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """The whole report: group header, original group status, payment informations."""

    msg_id: str
    created_at: datetime
    servicer_bic: str = TREASURY_BIC
    original_msg_id: str
    original_msg_name: str
    original_created_at: str | None = None  # the original CreDtTm, as sent
    original_nb_of_txs: int | None = None
    original_ctrl_sum: Decimal | None = None
    group_status: GroupStatus
    group_reason: Reasons = None
    group_additional_info: str | None = None
    counts: Mapping[str, int]
    payment_infos: Iterable[PaymentInfoReport] = ()

    def __post_init__(self) -> None:
        if not 0 < len(self.msg_id) <= id_chars_max:
            raise ValueError(f"MsgId must be 1 to {id_chars_max} characters: {self.msg_id!r}")
        if xmlwrite.valid_bic(self.servicer_bic) is None:
            raise ValueError(f"servicer BIC malformed: {self.servicer_bic!r}")
        xmlwrite.iso_datetime(self.created_at)  # refuses a naive datetime now, not mid-write


def write(report: StatusReport, out: BinaryIO) -> None:
    """Write `report` as a pain.002.001.03 document (UTF-8, with declaration) to `out`."""
    with xmlwrite.document(out, MESSAGE, "CstmrPmtStsRpt") as w:
        _group_header(w, report)
        _original_group(w, report)
        for payment_info in report.payment_infos:
            _payment_info(w, payment_info)


def _group_header(w: Writer, report: StatusReport) -> None:
    with w.element("GrpHdr"):
        w.leaf("MsgId", report.msg_id)
        w.datetime("CreDtTm", report.created_at)
        xmlwrite.agent(w, "DbtrAgt", report.servicer_bic)


def _original_group(w: Writer, report: StatusReport) -> None:
    with w.element("OrgnlGrpInfAndSts"):
        w.leaf("OrgnlMsgId", xmlwrite.cut(report.original_msg_id, id_chars_max) or UNKNOWN)
        w.leaf("OrgnlMsgNmId", xmlwrite.cut(report.original_msg_name, id_chars_max) or UNKNOWN)
        w.optional("OrgnlCreDtTm", report.original_created_at)
        _count(w, "OrgnlNbOfTxs", report.original_nb_of_txs)
        w.optional("OrgnlCtrlSum", decimal_number(report.original_ctrl_sum))
        w.leaf("GrpSts", report.group_status.value)
        _status_reason(w, report.group_reason, report.group_additional_info)
        _counts_per_status(w, report.counts)


def _payment_info(w: Writer, info: PaymentInfoReport) -> None:
    with w.element("OrgnlPmtInfAndSts"):
        w.leaf("OrgnlPmtInfId", xmlwrite.cut(info.pmt_inf_id, id_chars_max) or UNKNOWN)
        _count(w, "OrgnlNbOfTxs", info.nb_of_txs)
        w.optional("OrgnlCtrlSum", decimal_number(info.ctrl_sum))
        w.leaf("PmtInfSts", info.status.value)
        _status_reason(w, info.reason, info.additional_info)
        _counts_per_status(w, info.counts)
        for tx in info.transactions:
            _transaction(w, tx)
        for block in info.rendered_transactions:
            w.raw_bytes(block)


def _transaction(w: Writer, tx: TxReport) -> None:
    """One TxInfAndSts from a transaction's row (follow-up reports): the original ids,
    what became of it (`outcome`) and what the instruction said (`original_reference`).
    A new file's transactions get their two original parts from where the file is read
    (`original`), and only the outcome is written once decided."""
    w.raw(
        original_ids(tx.instr_id, tx.end_to_end_id)
        + outcome(tx.status, tx.reason, tx.additional_info, tx.acct_svcr_ref)
        + original_reference(
            tx.amount_minor, tx.currency, tx.requested_execution_date, tx.creditor_name,
            tx.creditor_iban,
        )
    )  # fmt: skip


def original(tx: ParsedTx, amount_sent: int | None, requested: date | None) -> Original:
    """What a TxInfAndSts echoes of a transaction as read: before and after its outcome."""
    return (
        original_ids(tx.instr_id, tx.end_to_end_id),
        original_reference(
            amount_sent, tx.currency, requested, tx.creditor_name, tx.creditor_iban
        ),
    )


Original = tuple[str, str]  # a TxInfAndSts up to its outcome, and from it to its end


def original_ids(instr_id: str | None, end_to_end_id: str) -> str:
    """The TxInfAndSts start tag and the original ids."""
    safe, cut = xmlwrite.safe, xmlwrite.cut
    instr = cut(instr_id, id_chars_max)
    e2e = safe(cut(end_to_end_id, id_chars_max) or UNKNOWN)
    ids = f"<OrgnlInstrId>{safe(instr)}</OrgnlInstrId>" if instr else ""
    return f"<TxInfAndSts>{ids}<OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>"


def outcome(
    status: TxStatus, reason: Reason | None, additional_info: str | None, acct_svcr_ref: str | None
) -> str:
    """What became of the transaction: its status, the reason and why, its AcctSvcrRef
    once booked."""
    if status is TxStatus.RJCT and reason is None:
        raise ValueError("a rejected transaction without a reason")
    parts = [_STATUS_TEXT[status]]
    lines: Iterable[str] = ()
    if additional_info is not None:
        lines = xmlwrite.wrap(additional_info, xmlwrite.additional_info_chars_max)
    if reason is not None or lines:
        parts.append("<StsRsnInf>")
        if reason is not None:
            parts.append(f"<Rsn><Cd>{reason.value}</Cd></Rsn>")
        parts.extend(f"<AddtlInf>{xmlwrite.safe(line)}</AddtlInf>" for line in lines)
        parts.append("</StsRsnInf>")
    if status is TxStatus.ACSC and (ref := xmlwrite.cut(acct_svcr_ref, id_chars_max)):
        parts.append(f"<AcctSvcrRef>{xmlwrite.safe(ref)}</AcctSvcrRef>")
    return "".join(parts)


def original_reference(
    amount_minor: int | None,
    currency: str | None,
    requested_execution_date: date | None,
    creditor_name: str | None,
    creditor_iban: str | None,
) -> str:
    """OrgnlTxRef (amount, date, creditor — whatever of it can be written) and the
    TxInfAndSts end tag."""
    amount = ""
    if xmlwrite.can_format(amount_minor, currency):
        assert amount_minor is not None and currency is not None
        shown = format_minor(amount_minor, currency)
        amount = f'<Amt><InstdAmt Ccy="{currency}">{shown}</InstdAmt></Amt>'
    day = _date_element(requested_execution_date) if requested_execution_date else ""
    name = xmlwrite.cut(creditor_name, xmlwrite.name_chars_max)
    creditor = f"<Cdtr><Nm>{xmlwrite.safe(name)}</Nm></Cdtr>" if name is not None else ""
    iban = xmlwrite.valid_iban(creditor_iban)
    account = f"<CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct>" if iban is not None else ""
    if not (amount or day or creditor or account):
        return "</TxInfAndSts>"
    return f"<OrgnlTxRef>{amount}{day}{creditor}{account}</OrgnlTxRef></TxInfAndSts>"


@lru_cache(maxsize=64)
def _date_element(day: date) -> str:
    """ReqdExctnDt (a file's payments share a few dates)."""
    return f"<ReqdExctnDt>{day.isoformat()}</ReqdExctnDt>"


_STATUS_TEXT = {s: f"<TxSts>{s.value}</TxSts>" for s in TxStatus}


def _status_reason(w: Writer, reason: Reasons, info: str | None) -> None:
    """StsRsnInf: the reason code and the English detail, split over AddtlInf lines;
    each further code in a StsRsnInf of its own."""
    codes = (reason,) if isinstance(reason, Reason) else reason or ()
    lines = xmlwrite.wrap(info, xmlwrite.additional_info_chars_max)
    if not codes and not lines:
        return
    with w.element("StsRsnInf"):
        if codes:
            with w.element("Rsn"):
                w.leaf("Cd", codes[0].value)
        for line in lines:
            w.leaf("AddtlInf", line)
    for code in codes[1:]:
        with w.element("StsRsnInf"), w.element("Rsn"):
            w.leaf("Cd", code.value)


def _counts_per_status(w: Writer, counts: Mapping[str, int]) -> None:
    """NbOfTxsPerSts, one per transaction status present, in TxStatus order."""
    unknown = set(counts) - set(TxStatus)
    if unknown:
        raise ValueError(f"counts for statuses that do not exist: {sorted(unknown)}")
    for status in TxStatus:
        number = counts.get(status, 0)
        if number:
            with w.element("NbOfTxsPerSts"):
                w.leaf("DtldNbOfTxs", str(number))
                w.leaf("DtldSts", status.value)


def _count(w: Writer, tag: str, number: int | None) -> None:
    """A number of transactions (Max15NumericText); one that does not fit (the echo of a
    broken file's header) is left out, never replaced by another."""
    if number is not None and 0 <= number < 10**15:
        w.leaf(tag, str(number))


def decimal_number(value: Decimal | None) -> str | None:
    """An original CtrlSum (group or payment information) as DecimalNumber text: as the
    client wrote it (`4.500` stays `4.500`). Written with more digits than the type holds —
    only trailing zeros can do that in a schema-valid pain.001 (`1.000…0`) — it is the same
    number without them, which is what a client reconciling its totals compares; a value
    that does not fit even so (the echo of a broken file's header) is left out, never
    replaced by another."""
    if value is None or not value.is_finite():
        return None
    for candidate in (value, value.normalize()):
        _sign, digits, exponent = candidate.as_tuple()
        assert isinstance(exponent, int)
        total_digits = len(digits) + max(0, exponent)
        if -exponent <= decimal_fraction_digits_max and total_digits <= decimal_digits_max:
            return format(candidate, "f")
    return None
