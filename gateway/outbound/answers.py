"""pain.002 status reports about a file: the answer stage of a file's run.

Follow-up reports (after a pending run) are rendered from `gw_payments` rows inside
the transaction that updated them. The first report of a file is written while its
chunks are decided (`FirstReport`), from the very values its rows are inserted
with, in the same transaction; a test renders it again from the rows and finds the
same bytes. Every report goes into the outbox (`outbox.enqueue`) in the transaction
of what it reports.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from gateway import counters, db
from gateway.inbound.parsed import decimal_or_none
from gateway.outbound import outbox
from gateway.outbound import pain002_v03 as pain002
from gateway.reasons import Reason
from gateway.statuses import GroupStatus, TxStatus, derive


def new_msg_id(conn: Connection, local: dt.datetime) -> str:
    return f"GW{local:%Y%m%d}{counters.unique_value(conn, 'msg_id'):06d}"


_STATUS = {s.value: s for s in TxStatus}
_REASON = {r.value: r for r in Reason}
_REPORT_COLUMNS = (
    "pmt_seq",
    "end_to_end_id",
    "instr_id",
    "status",
    "reason",
    "additional_info",
    "acct_svcr_ref",
    "amount_minor",
    "currency",
    "requested_date",
    "creditor_name",
    "creditor_iban",
)


def _tx_report(row: Any) -> pain002.TxReport:
    (_, e2e, instr_id, status, reason, info, ref, amount, ccy, day, name, iban) = row
    return pain002.TxReport(
        end_to_end_id=e2e,
        instr_id=instr_id,
        status=_STATUS[status],
        reason=_REASON[reason] if reason else None,
        additional_info=info,
        acct_svcr_ref=ref if status == "ACSC" else None,
        amount_minor=amount,
        currency=ccy,
        requested_execution_date=day,
        creditor_name=name,
        creditor_iban=iban,
    )


def issue(
    conn: Connection,
    *,
    client_id: str,
    file_id: int,
    local: dt.datetime,
    render: Callable[[str], bytes],
    claim_name: str | None = None,
    msg_id: str | None = None,
    report_no: int | None = None,
) -> tuple[int, str]:
    """Give a new pain.002 its MsgId, render it, and put it in the client's outbox
    (`claim_name`: it answers that repeated upload, `outbox.answer_to_claim`; `msg_id`:
    one taken before with `new_msg_id`, for an answer that must come before, in MsgId and
    name, answers issued while it was being made; `report_no`: which of its file's reports
    it is, noted for a follow-up, `outbox.answers_of`)."""
    msg_id = msg_id or new_msg_id(conn, local)
    return outbox.enqueue(
        conn,
        client_id=client_id,
        message=pain002.MESSAGE,
        msg_id=msg_id,
        created_local=local,
        body=render(msg_id),
        file_id=file_id,
        claim_name=claim_name,
        report_no=report_no,
    )


def echoed_ctrl_sum(text: str | None) -> Decimal | None:
    """The original CtrlSum as a number, when it is one (it is echoed as sent)."""
    return decimal_or_none(text)


def echoed_created_at(text: str | None) -> str | None:
    """The original CreDtTm as sent, when it is an ISODateTime (xs:dateTime: a real date
    and time, with or without a zone) — echoed as it was written."""
    if not text or not _DATE_TIME.fullmatch(text):
        return None
    try:
        dt.datetime.fromisoformat(text[:19])  # a real date and time (the rest is its form)
    except ValueError:
        return None
    return text


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def issue_file_report(
    conn: Connection, file_row: Any, *, local: dt.datetime, bic: str, report_no: int
) -> tuple[int, str]:
    """The follow-up pain.002 of an accepted file: the payments run `report_no` (2, 3, …)
    decided, issued into the client's outbox as the file's report `report_no`."""
    return issue(
        conn,
        client_id=file_row.client_id,
        file_id=file_row.id,
        local=local,
        report_no=report_no,
        render=lambda msg_id: build_file_report(
            conn,
            file_row,
            msg_id=msg_id,
            created_at=local,
            bic=bic,
            report_no=report_no,
        ),
    )


def _pmt_counts(conn: Connection, file_id: int) -> dict[int, Counter[str]]:
    """Per payment information, how many of the file's payments have each status now."""
    p = db.payments.c
    query = select(p.pmt_seq, p.status, func.count()).where(p.file_id == file_id)
    counts: dict[int, Counter[str]] = {}
    for pmt_seq, status, n in conn.execute(query.group_by(p.pmt_seq, p.status)):
        counts.setdefault(pmt_seq, Counter())[status] = int(n)
    return counts


def _pmt_meta(conn: Connection, file_id: int) -> dict[int, Any]:
    """Per payment information: id and number of transactions (first row carries the id)."""
    p = db.payments.c
    rows = conn.execute(
        select(p.pmt_seq, func.min(p.pmt_inf_id), func.count())
        .where(p.file_id == file_id)
        .group_by(p.pmt_seq)
    )
    return {r[0]: r for r in rows}


def _pmt_ctrl_sums(conn: Connection, file_id: int) -> dict[int, Decimal]:
    """Per payment information that had one: its CtrlSum as sent (`record.payment_infos`)."""
    i = db.payment_infos.c
    rows = conn.execute(select(i.pmt_seq, i.ctrl_sum).where(i.file_id == file_id))
    return {seq: Decimal(text) for seq, text in rows}


def _rows(conn: Connection, file_id: int, report_no: int | None) -> Iterator[Any]:
    """The report's payment rows as plain tuples (`_REPORT_COLUMNS`), in file order."""
    p = db.payments.c
    query = select(*(p[name] for name in _REPORT_COLUMNS)).where(p.file_id == file_id)
    if report_no is not None:
        query = query.where(p.report_no == report_no)
    # yield_per on the statement, not the connection: a connection-wide option would
    # turn every later statement of this transaction into a server-side cursor.
    result = conn.execute(query.order_by(p.seq).execution_options(yield_per=5000))
    for row in result:
        yield tuple(row)


def build_file_report(
    conn: Connection,
    file_row: Any,
    *,
    msg_id: str,
    created_at: dt.datetime,
    bic: str,
    report_no: int | None,
) -> bytes:
    """The compressed pain.002 for an accepted file: every transaction (first report) or
    those whose status changed in run `report_no` (follow-up reports). The group's and
    each payment information's status and counts are those of all their payments now
    (SPEC §6: derived; ISO's OrgnlGrpInfAndSts is the original group's), also where a
    follow-up lists only some of them."""
    counts = _pmt_counts(conn, file_row.id)
    meta = _pmt_meta(conn, file_row.id)
    ctrl_sums = _pmt_ctrl_sums(conn, file_row.id)
    total: Counter[str] = Counter()
    for c in counts.values():
        total.update(c)
    rows = _rows(conn, file_row.id, report_no)
    groups = itertools.groupby(rows, key=lambda r: r[0])

    def payment_infos() -> Iterator[pain002.PaymentInfoReport]:
        for pmt_seq, pmt_rows in groups:
            m = meta[pmt_seq]
            yield pain002.PaymentInfoReport(
                pmt_inf_id=m[1],
                nb_of_txs=int(m[2]),
                ctrl_sum=ctrl_sums.get(pmt_seq),
                status=derive(counts[pmt_seq]),
                counts=counts[pmt_seq],
                transactions=(_tx_report(r) for r in pmt_rows),
            )

    report = pain002.StatusReport(
        msg_id=msg_id,
        created_at=created_at,
        servicer_bic=bic,
        original_msg_id=file_row.msg_id,
        original_msg_name=file_row.message,
        original_created_at=echoed_created_at(file_row.msg_created_at),
        original_nb_of_txs=file_row.nb_of_txs,
        original_ctrl_sum=echoed_ctrl_sum(file_row.ctrl_sum),
        group_status=derive(total),
        counts=total,
        payment_infos=payment_infos(),
    )
    return outbox.render(lambda out: pain002.write(report, out))


def build_group_only(
    *,
    status: GroupStatus,
    msg_id: str,
    created_at: dt.datetime,
    bic: str,
    original_msg_id: str | None,
    original_message: str,
    original_created_at: str | None,
    nb_of_txs: int | None,
    ctrl_sum: Decimal | None,
    reason: pain002.Reasons,
    info: str,
) -> bytes:
    """The compressed pain.002 that gives the group's `status` alone, echoing what could be
    read of the file: one rejected as a whole (SPEC §6), or one no longer there to list."""
    report = pain002.StatusReport(
        msg_id=msg_id,
        created_at=created_at,
        servicer_bic=bic,
        original_msg_id=original_msg_id or pain002.UNKNOWN,
        original_msg_name=original_message,
        original_created_at=original_created_at,
        original_nb_of_txs=nb_of_txs,
        original_ctrl_sum=ctrl_sum,
        group_status=status,
        group_reason=reason,
        group_additional_info=info,
        counts={},
    )
    return outbox.render(lambda out: pain002.write(report, out))


def status_counts(conn: Connection, file_id: int) -> Mapping[str, int]:
    p = db.payments.c
    rows = conn.execute(
        select(p.status, func.count()).where(p.file_id == file_id).group_by(p.status)
    )
    return {status: int(n) for status, n in rows}
