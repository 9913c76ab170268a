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
from typing import BinaryIO

from gateway.outbound import xmlwrite
from gateway.outbound.xmlwrite import Writer, id_chars_max
from gateway.reasons import Reason
from gateway.statuses import GroupStatus, TxStatus
from ledger.currency import EXPONENTS, format_minor

MESSAGE = "pain.002.001.03"
TREASURY_BIC = "TRELLV22"
UNKNOWN = "UNKNOWN"  # OrgnlMsgId / OrgnlMsgNmId of a file that could not be read

decimal_digits_max = 18  # DecimalNumber: totalDigits
decimal_fraction_digits_max = 17  # DecimalNumber: fractionDigits


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
    ctrl_sum_minor: int | None = None
    currency: str | None = None
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
    original_created_at: datetime | None = None
    original_nb_of_txs: int | None = None
    original_ctrl_sum: Decimal | None = None
    group_status: GroupStatus
    group_reason: Reason | None = None
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
        w.datetime("OrgnlCreDtTm", report.original_created_at)
        _count(w, "OrgnlNbOfTxs", report.original_nb_of_txs)
        w.optional("OrgnlCtrlSum", _decimal_text(report.original_ctrl_sum))
        w.leaf("GrpSts", report.group_status.value)
        _status_reason(w, report.group_reason, report.group_additional_info)
        _counts_per_status(w, report.counts)


def _payment_info(w: Writer, info: PaymentInfoReport) -> None:
    with w.element("OrgnlPmtInfAndSts"):
        w.leaf("OrgnlPmtInfId", xmlwrite.cut(info.pmt_inf_id, id_chars_max) or UNKNOWN)
        _count(w, "OrgnlNbOfTxs", info.nb_of_txs)
        if xmlwrite.can_format(info.ctrl_sum_minor, info.currency):
            assert info.ctrl_sum_minor is not None and info.currency is not None
            w.leaf("OrgnlCtrlSum", format_minor(info.ctrl_sum_minor, info.currency))
        w.leaf("PmtInfSts", info.status.value)
        _status_reason(w, info.reason, info.additional_info)
        _counts_per_status(w, info.counts)
        for tx in info.transactions:
            _transaction(w, tx)
        for block in info.rendered_transactions:
            w.raw_bytes(block)


def _transaction(w: Writer, tx: TxReport) -> None:
    w.raw(
        transaction_text(
            tx.instr_id,
            tx.end_to_end_id,
            tx.status,
            tx.reason,
            tx.additional_info,
            tx.acct_svcr_ref,
            tx.amount_minor,
            tx.currency,
            tx.requested_execution_date,
            tx.creditor_name,
            tx.creditor_iban,
        )
    )


# One TxInfAndSts is written as three strings: what the instruction said (head and
# tail) around what became of it (status). This runs once per transaction, from a
# decided payment's values (`inbound/run.py`) or from its row (follow-up reports).


def transaction_text(
    instr_id: str | None,
    end_to_end_id: str,
    status: TxStatus,
    reason: Reason | None,
    additional_info: str | None,
    acct_svcr_ref: str | None,
    amount_minor: int | None,
    currency: str | None,
    requested_execution_date: date | None,
    creditor_name: str | None,
    creditor_iban: str | None,
) -> str:
    """One whole TxInfAndSts.

    The usual payment of a big file — accepted or pending, no reason, plain ids and
    name, a known amount, date and IBAN — is written in one step; anything else
    goes through `transaction_head`, `transaction_status` and `transaction_tail`,
    which alone know how to clean, cut and word it. The one step writes exactly
    what the three would (held by tests/unit/test_pain002_text.py)."""
    if (
        reason is None
        and additional_info is None
        and status is not TxStatus.RJCT
        and requested_execution_date is not None
        and creditor_name is not None
        and creditor_iban is not None
        and amount_minor is not None
        and amount_minor >= 0
        and currency in _EXPONENT_TWO
        and 0 < len(end_to_end_id) <= id_chars_max
        and 0 < len(creditor_name) <= xmlwrite.name_chars_max
        and (instr_id is None or 0 < len(instr_id) <= id_chars_max)
        and (status is not TxStatus.ACSC or (acct_svcr_ref and len(acct_svcr_ref) <= id_chars_max))
    ):
        ref = acct_svcr_ref if status is TxStatus.ACSC else ""
        texts = f"{end_to_end_id}|{creditor_name}|{instr_id or 'x'}|{ref or 'x'}"
        if (
            texts.isprintable()
            and "&" not in texts
            and "<" not in texts
            and ">" not in texts
            and '"' not in texts
            and " |" not in texts
            and "| " not in texts
            and texts[0] != " "
            and texts[-1] != " "
            and xmlwrite.IBAN_PATTERN.fullmatch(creditor_iban)
        ):
            head = (
                f"<TxInfAndSts><OrgnlInstrId>{instr_id}</OrgnlInstrId>"
                if instr_id is not None
                else "<TxInfAndSts>"
            )
            done = f"<AcctSvcrRef>{ref}</AcctSvcrRef>" if ref else ""
            day = _iso_dates.get(requested_execution_date)
            if day is None:
                if len(_iso_dates) >= iso_dates_kept_max:
                    _iso_dates.clear()
                day = _iso_dates[requested_execution_date] = requested_execution_date.isoformat()
            return (
                f"{head}<OrgnlEndToEndId>{end_to_end_id}</OrgnlEndToEndId>{_STATUS_TEXT[status]}"
                f'{done}<OrgnlTxRef><Amt><InstdAmt Ccy="{currency}">{amount_minor // 100}.'
                f"{amount_minor % 100:02d}</InstdAmt></Amt><ReqdExctnDt>{day}</ReqdExctnDt>"
                f"<Cdtr><Nm>{creditor_name}</Nm></Cdtr>"
                f"<CdtrAcct><Id><IBAN>{creditor_iban}</IBAN></Id></CdtrAcct>"
                "</OrgnlTxRef></TxInfAndSts>"
            )
    return (
        transaction_head(instr_id, end_to_end_id)
        + transaction_status(status, reason, additional_info, acct_svcr_ref)
        + transaction_tail(
            amount_minor, currency, requested_execution_date, creditor_name, creditor_iban
        )
    )


_STATUS_TEXT = {s: f"<TxSts>{s.value}</TxSts>" for s in TxStatus}
_iso_dates: dict[date, str] = {}  # a file's payments share a few dates
iso_dates_kept_max = 1000
_EXPONENT_TWO = frozenset(c for c, e in EXPONENTS.items() if e == 2)


def transaction_head(instr_id: str | None, end_to_end_id: str) -> str:
    """`<TxInfAndSts>` with the original instruction and end-to-end ids."""
    safe = xmlwrite.safe
    e2e = xmlwrite.cut(end_to_end_id, id_chars_max) or UNKNOWN
    if (instr := xmlwrite.cut(instr_id, id_chars_max)) is not None:
        return (
            f"<TxInfAndSts><OrgnlInstrId>{safe(instr)}</OrgnlInstrId>"
            f"<OrgnlEndToEndId>{safe(e2e)}</OrgnlEndToEndId>"
        )
    return f"<TxInfAndSts><OrgnlEndToEndId>{safe(e2e)}</OrgnlEndToEndId>"


def transaction_status(
    status: TxStatus, reason: Reason | None, additional_info: str | None, acct_svcr_ref: str | None
) -> str:
    """TxSts, its reason, and the AcctSvcrRef of a booked transaction."""
    if reason is None and additional_info is None:  # the usual case, kept short
        if status is TxStatus.RJCT:
            raise ValueError("a rejected transaction without a reason")
        if status is TxStatus.ACSC and (ref := xmlwrite.cut(acct_svcr_ref, id_chars_max)):
            return f"<TxSts>ACSC</TxSts><AcctSvcrRef>{xmlwrite.safe(ref)}</AcctSvcrRef>"
        return f"<TxSts>{status.value}</TxSts>"
    if status is TxStatus.RJCT and reason is None:
        raise ValueError("a rejected transaction without a reason")
    parts = [f"<TxSts>{status.value}</TxSts>"]
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


def transaction_tail(
    amount_minor: int | None,
    currency: str | None,
    requested_execution_date: date | None,
    creditor_name: str | None,
    creditor_iban: str | None,
) -> str:
    """OrgnlTxRef with what is known of the instruction (left out when nothing is),
    and `</TxInfAndSts>`."""
    has_amount = xmlwrite.can_format(amount_minor, currency)
    name = xmlwrite.cut(creditor_name, xmlwrite.name_chars_max)
    iban = xmlwrite.valid_iban(creditor_iban)
    if not (has_amount or requested_execution_date or name or iban):
        return "</TxInfAndSts>"
    parts = ["<OrgnlTxRef>"]
    if has_amount:
        assert amount_minor is not None and currency is not None
        amount = format_minor(amount_minor, currency)
        parts.append(f'<Amt><InstdAmt Ccy="{currency}">{amount}</InstdAmt></Amt>')
    if requested_execution_date is not None:
        parts.append(f"<ReqdExctnDt>{requested_execution_date.isoformat()}</ReqdExctnDt>")
    if name is not None:
        parts.append(f"<Cdtr><Nm>{xmlwrite.safe(name)}</Nm></Cdtr>")
    if iban is not None:
        parts.append(f"<CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct>")
    parts.append("</OrgnlTxRef></TxInfAndSts>")
    return "".join(parts)


def _status_reason(w: Writer, reason: Reason | None, info: str | None) -> None:
    """StsRsnInf: the reason code and the English detail, split over AddtlInf lines."""
    lines = xmlwrite.wrap(info, xmlwrite.additional_info_chars_max)
    if reason is None and not lines:
        return
    with w.element("StsRsnInf"):
        if reason is not None:
            with w.element("Rsn"):
                w.leaf("Cd", reason.value)
        for line in lines:
            w.leaf("AddtlInf", line)


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
    if number is not None and number >= 0:
        w.leaf(tag, str(number))


def _decimal_text(value: Decimal | None) -> str | None:
    """The original CtrlSum as DecimalNumber text, or None when it would not fit the type."""
    if value is None or not value.is_finite():
        return None
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    total_digits = len(digits) + max(0, exponent)
    if -exponent > decimal_fraction_digits_max or total_digits > decimal_digits_max:
        return None
    return format(value, "f")
