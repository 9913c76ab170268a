"""Answering a cancellation request (camt.055, SPEC §15) inside its file's savepoint.

Each payment the request names — singly, as a whole payment information or as a whole
original batch — is looked up among the client's own accepted files (by the original
MsgId, PmtInfId, EndToEndId and InstrId): only the client's own are ever found, so an
unknown payment and another client's are the same answer, `NOOR`. A payment still
pending is cancelled (`ACCR`): its row becomes `RJCT` `DS02`, so it never executes,
and its original file gets a follow-up pain.002 reporting it. One already executed,
rejected or cancelled is `RJCR` `AGNT` with what happened to it; one whose original
amount is not what the request says is `RJCR` `NOOR` with the amounts.

The rows are read `FOR UPDATE` (PostgreSQL), as `pending.execute_due` reads the due
ones: a cancellation and the start of day's execution take turns on a payment, and
whichever comes second finds it no longer pending — never both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from gateway import announcements, cancel_match, cancel_waiting, db, record
from gateway.environment import Environment
from gateway.inbound import camt055_v09
from gateway.inbound.cancellation import (
    CancellationRequest,
    GroupCancellation,
    OriginalGroup,
    PaymentInfoCancellation,
    TransactionCancellation,
    Underlying,
)
from gateway.inbound.intake import Intake
from gateway.outbound import answers, camt029_v03, camt029_v10, outbox
from gateway.outbound.resolution import (
    GroupResolution,
    PaymentInfoResolution,
    Resolution,
    TxResolution,
    UnderlyingResolution,
)
from gateway.pull_codes import CancellationReason, CancellationStatus
from gateway.reasons import Reason
from gateway.statuses import GroupStatus, TxStatus, derive
from ledger.tx import LedgerTx

_ACCR, _RJCR = CancellationStatus.ACCR, CancellationStatus.RJCR
_NOOR, _AGNT = CancellationReason.NOOR, CancellationReason.AGNT


@dataclass
class CancelResult:
    confirmation: str  # CNCL | PACR | RJCR
    named: int  # payments answered
    counts: Counter[str]  # ACCR / RJCR
    names: list[str]  # the camt.029, then the follow-up pain.002s
    outbox_id: int  # the camt.029's


# Payment rows marked cancelled by one statement (a bound of the IN list's parameters).
rows_per_update = 1_000
# Payments answered between two reports of progress (`status`, `file.progress`).
progress_every = 500


@dataclass
class _Run:
    """What a request's answer has done so far: the payments cancelled, per file."""

    conn: Connection
    client_id: str
    msg_id: str
    reports: dict[int, int] = field(default_factory=dict)  # file id → its follow-up's number
    cancelled: set[int] = field(default_factory=set)  # payment rows this request cancelled
    # The rows cancelled per file, marked in the database by `write` (read FOR UPDATE,
    # still PDNG there until then; `cancelled` says they are this request's).
    to_write: dict[int, list[int]] = field(default_factory=dict)
    advance: Callable[[int], None] = lambda _: None  # payments answered so far (progress)
    answered: int = 0

    def cancel(self, row: Any) -> None:
        self.cancelled.add(row.id)
        if row.file_id not in self.reports:
            locked = self.conn.execute(
                select(db.files.c.reports).where(db.files.c.id == row.file_id).with_for_update()
            ).scalar_one()
            self.reports[row.file_id] = int(locked) + 1
        self.to_write.setdefault(row.file_id, []).append(row.id)

    def write(self) -> None:
        """Mark the payments cancelled: `RJCT DS02`, reported in their file's follow-up."""
        p = db.payments.c
        for file_id, ids in self.to_write.items():
            for start in range(0, len(ids), rows_per_update):
                chunk = ids[start : start + rows_per_update]
                marked = self.conn.execute(
                    update(db.payments)
                    .where(p.id.in_(chunk), p.status == TxStatus.PDNG.value)
                    .values(
                        status=TxStatus.RJCT.value,
                        reason=Reason.DS02.value,
                        additional_info=f"cancelled by {self.msg_id}"[:105],
                        report_no=self.reports[file_id],
                    )
                ).rowcount
                assert marked == len(chunk), (marked, len(chunk))  # locked when read
        self.to_write.clear()


def answer(
    env: Environment, tx: LedgerTx, intake: Intake, request: CancellationRequest,
    advance: Callable[[int], None] = lambda _: None,
) -> CancelResult:
    """Cancel what `request` (received as `intake`) names and can be cancelled; the
    camt.029 and the follow-up reports into the outbox. `advance` is told how many
    payments are answered so far."""
    conn, client_id, local = tx.conn, intake.client_id, intake.now_local
    run = _Run(conn, client_id, request.msg_id, advance=advance)
    waiting = cancel_waiting.Waiting(env, conn, intake, request.msg_id)
    details = tuple(
        _names_nothing(u)
        or waiting.underlying(u, lambda p: _payment_info(run, p))
        or _underlying(run, u)
        for u in request.underlyings
    )
    run.write()
    client = next(c for c in env.settings.clients if c.id == client_id)
    resolution = Resolution(
        msg_id=answers.new_msg_id(conn, local),
        created_at=local,
        client_name=client.name,
        request_msg_id=request.msg_id,
        case_id=request.case_id,
        servicer_bic=env.settings.bic,
        details=details,
    )
    writer = camt029_v10 if request.message == camt055_v09.MESSAGE else camt029_v03
    outbox_id, name = outbox.enqueue(
        conn,
        client_id=client_id,
        message=writer.MESSAGE,
        msg_id=resolution.msg_id,
        created_local=local,
        body=outbox.render(lambda out: writer.write(resolution, out)),
    )
    names = [name, *waiting.close(local)]
    announcements.refresh_days(conn, client_id, run.reports)
    for file_id, report_no in run.reports.items():
        file_row = conn.execute(select(db.files).where(db.files.c.id == file_id)).one()
        _, follow_up = answers.issue_file_report(
            conn, file_row, local=local, bic=env.settings.bic, report_no=report_no
        )
        names.append(follow_up)
        group = derive(answers.status_counts(conn, file_id))
        record.update_file(conn, file_id, reports=report_no, group_status=group.value)
    statuses = list(resolution.statuses())
    return CancelResult(
        confirmation=resolution.confirmation.value,
        named=len(statuses),
        counts=Counter(s.value for s in statuses),
        names=names,
        outbox_id=outbox_id,
    )


# -- finding what is named -------------------------------------------------------------------


def _file_ids(run: _Run, group: OriginalGroup | None, pmt_inf_id: str | None) -> list[int]:
    """The client's accepted files that `group` (`cancel_waiting.original_named`) or,
    without one, `pmt_inf_id` names."""
    f, p = db.files.c, db.payments.c
    query = select(f.id).where(f.client_id == run.client_id, f.accepted_msg_id.is_not(None))
    if group is not None:
        query = query.where(cancel_waiting.original_named(group))
    elif pmt_inf_id is not None:
        query = query.where(
            f.id.in_(select(p.file_id).where(p.pmt_inf_id == pmt_inf_id).distinct())
        )
    return [int(r[0]) for r in run.conn.execute(query.order_by(f.id))]


def _no_file(run: _Run, group: OriginalGroup) -> tuple[CancellationReason, str | None]:
    """Why a whole original group names no file of the client's: unknown (`NOOR`), or
    the client's file with that MsgId was rejected as a whole (`AGNT`: it holds no
    payment, and none of it ever executes)."""
    f = db.files.c
    refused = run.conn.execute(
        select(f.reason)
        .where(
            f.client_id == run.client_id,
            f.msg_id == group.msg_id,
            f.accepted_msg_id.is_(None),
            f.group_status == GroupStatus.RJCT.value,
            cancel_waiting.of_named_kind(group),
        )
        .order_by(f.id.desc())
        .limit(1)
    ).first()
    if refused is None:
        return _NOOR, None
    return _AGNT, f"rejected as a whole ({refused.reason}), never executed"


def _rows(run: _Run, file_ids: Sequence[int], **where: Any) -> Sequence[Any]:
    """Payment rows of the files `file_ids` matching `where`, locked for the rest of the
    transaction."""
    if not file_ids:
        return []
    p = db.payments.c
    query = select(db.payments).where(p.file_id.in_(file_ids))
    for column, value in where.items():
        query = query.where(getattr(p, column) == value)
    return run.conn.execute(query.order_by(p.file_id, p.seq).with_for_update()).all()


def _names_nothing(item: Underlying) -> UnderlyingResolution | None:
    """An original group with `GrpCxl` false and no payment information named: nothing is
    cancelled (`false` is not the whole batch)."""
    group = item.group
    if group is None or group.whole or item.payment_infos:
        return None
    info = "GrpCxl is false and no payment information is named: nothing to cancel"
    return UnderlyingResolution(group=_group(group, _RJCR, _NOOR, info))


def _underlying(run: _Run, item: Underlying) -> UnderlyingResolution:
    group = item.group
    if group is None:
        infos = tuple(_payment_info(run, p) for p in item.payment_infos)
        return UnderlyingResolution(payment_infos=infos)
    files = _file_ids(run, group.group, None)
    if not files and group.whole:
        return UnderlyingResolution(group=_group(group, _RJCR, *_no_file(run, group.group)))
    if group.whole:
        rows = _rows(run, files[:1])
        pmt_ids = list(dict.fromkeys(r.pmt_inf_id for r in rows))
        infos = tuple(
            PaymentInfoResolution(
                pmt_inf_id=pmt_id,
                transactions=tuple(_tx_of(run, r) for r in rows if r.pmt_inf_id == pmt_id),
            )
            for pmt_id in pmt_ids
        )
        if not infos:
            return UnderlyingResolution(group=_group(group, _RJCR, _NOOR))
        return UnderlyingResolution(group=_group(group, None, None), payment_infos=infos)
    infos = tuple(_payment_info(run, p, group.group) for p in item.payment_infos)
    return UnderlyingResolution(group=_group(group, None, None), payment_infos=infos)


def _group(
    group: GroupCancellation,
    status: CancellationStatus | None,
    reason: CancellationReason | None,
    info: str | None = None,
) -> GroupResolution:
    return GroupResolution(
        original_msg_id=group.group.msg_id,
        original_msg_name=group.group.msg_name,
        cancellation_id=group.cancellation_id,
        whole=group.whole,
        status=status,
        reason=reason,
        additional_info=info,
    )


def _payment_info(
    run: _Run, item: PaymentInfoCancellation, shared: OriginalGroup | None = None
) -> PaymentInfoResolution:
    group = item.group or shared
    echo: dict[str, Any] = {"pmt_inf_id": item.pmt_inf_id, "cancellation_id": item.cancellation_id}
    if item.group is not None and item.group is not shared:
        echo |= {"original_msg_id": item.group.msg_id, "original_msg_name": item.group.msg_name}
    if not item.whole and not item.transactions:
        nothing = "PmtInfCxl is false and no transaction is named: nothing to cancel"
        return PaymentInfoResolution(**echo, status=_RJCR, reason=_NOOR, additional_info=nothing)
    files = _file_ids(run, group, item.pmt_inf_id)
    if not item.whole:  # each named: looked up in every file with this PmtInfId
        rows = _rows(run, files, pmt_inf_id=item.pmt_inf_id)
        txs = tuple(_transaction(run, rows, t, item.pmt_inf_id) for t in item.transactions)
        return PaymentInfoResolution(**echo, transactions=txs)
    rows = _rows(run, files, pmt_inf_id=item.pmt_inf_id) if len(files) == 1 else []
    if not rows:
        info = _in_files(item.pmt_inf_id, len(files)) if len(files) > 1 else None
        return PaymentInfoResolution(**echo, status=_RJCR, reason=_NOOR, additional_info=info)
    return PaymentInfoResolution(**echo, transactions=tuple(_tx_of(run, r) for r in rows))


def _in_files(pmt_inf_id: str, count: int) -> str:
    return f"{pmt_inf_id} is in {count} of your files: name the original MsgId"


def _transaction(
    run: _Run, rows: Sequence[Any], item: TransactionCancellation, pmt_inf_id: str
) -> TxResolution:
    """The answer for the payment `item` names among `rows` (`cancel_match.pick`): when
    the rows lie in several files (no original group named) and it fits payments in more
    than one, the client is asked to name the original MsgId."""

    def files_of(fit: Sequence[Any]) -> str | None:
        count = len({r.file_id for r in fit})
        return _in_files(pmt_inf_id, count) if count > 1 else None

    found = cancel_match.pick(item, rows, pmt_inf_id, files_of)
    if isinstance(found, cancel_match.Refused):
        echo: dict[str, Any] = {
            "cancellation_id": item.cancellation_id,
            "end_to_end_id": item.end_to_end_id,
            "instr_id": item.instr_id,
            "requested_date": item.requested_date,
        }
        return TxResolution(status=_RJCR, reason=_NOOR, additional_info=found.info, **echo)
    return _tx_of(run, found, item.cancellation_id)


def _tx_of(run: _Run, row: Any, cancellation_id: str | None = None) -> TxResolution:
    """The answer for the payment of `row`: cancelled when pending, else why not."""
    run.answered += 1
    if run.answered % progress_every == 0:
        run.advance(run.answered)
    echo: dict[str, Any] = {
        "cancellation_id": cancellation_id,
        "end_to_end_id": row.end_to_end_id,
        "instr_id": row.instr_id,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        "requested_date": row.requested_date,
    }
    if row.id in run.cancelled:  # named again in this request: cancelled by it, once
        return TxResolution(status=_ACCR, **echo)
    if row.status == TxStatus.PDNG.value:
        run.cancel(row)
        return TxResolution(status=_ACCR, **echo)
    if row.status == TxStatus.ACSC.value:
        why = f"already executed ({row.acct_svcr_ref})"
    elif row.reason == Reason.DS02.value:
        why = "already cancelled"
    else:
        why = f"rejected ({row.reason}), never executed"
    return TxResolution(status=_RJCR, reason=_AGNT, additional_info=why, **echo)
