"""One inbound file's run, stage by stage (SPEC §6):

    intake   what is known on arrival: who, which bytes, when         inbound/intake.py
    read     the file parsed and validated by a child process         inbound/reader.py
    decide   rules in Reason order, due dates, execution in memory    inbound/decide.py
    record   payment rows and ledger transfers                         record.py
    answer   the pain.002 (and camt.054) into the outbox              outbound/answers.py
    deliver  into the client's out/, sealed; the file shelved          outbound/outbox.py

Everything from read to answer happens in ONE database transaction (the outbox
pattern): before it commits nothing has happened; after it commits, delivering the
answer and shelving the file are repeatable steps. A crash anywhere is therefore
harmless: the file is still in `work/`, and running again either redoes the
transaction or, finding the file recorded, finishes the repeatable steps. Chunks are
decided and recorded as they are read; only the file's summary says whether the file
as a whole is valid, and if it is not the transaction is rolled back and the file
answered as rejected in a new one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import structlog

from gateway import logs, metrics, record
from gateway.environment import Environment
from gateway.firstrun import FirstRun
from gateway.inbound import pain001_v03, rules
from gateway.inbound.findings import Finding
from gateway.inbound.intake import NOT_READ, Intake, take_in
from gateway.inbound.parsed import ParsedFile, ParsedHeader, ParsedPmtInf
from gateway.inbound.reader import Chunk, Incoming, Reader
from gateway.outbound import answers, outbox, pain002_v03, reports
from gateway.outbound.first_report import FirstReport
from gateway.outbound.outbox import PlainCopy
from gateway.progress import FileProgress
from gateway.reasons import Reason
from gateway.shelving import Outcome, shelve
from gateway.spool import Claim
from gateway.statuses import GroupStatus, derive
from ledger.store import LedgerTx

log = structlog.get_logger("gateway.filerun")
rejections_listed_max = 1000  # the findings file lists this many rejected payments


class _Rejected(Exception):
    """A file found invalid as a whole after its first chunks were executed."""

    def __init__(self, finding: Finding, parsed: ParsedFile) -> None:
        super().__init__(finding.info)
        self.finding = finding
        self.parsed = parsed


def process(env: Environment, claim: Claim, reader: Reader | None = None) -> Outcome:
    """Run `claim` through every stage; `reader`, if given, is already reading it
    (`gateway.readahead`) and is used or closed here. A file over the size limit is
    never read, not even to hash it (a 2 GB upload)."""
    if reader is None and os.stat(claim.path).st_size <= env.settings.max_file_bytes:
        reader = Reader(claim.path, transactions_max=env.settings.max_transactions)
    try:
        return _process(env, claim, reader)
    finally:
        if reader is not None:
            reader.close()


def _process(env: Environment, claim: Claim, reader: Reader | None) -> Outcome:
    started = time.monotonic()
    intake = _intake(env, claim, reader)
    copies: dict[int, PlainCopy] = {}  # plain copies of answers rendered, by outbox id
    try:
        try:
            with env.ledger.begin(checkpoint_after=True) as tx:
                known = record.known_file(tx.conn, intake)
                if known is not None:
                    outcome = _already_known(env, tx.conn, intake, known)
                else:
                    outcome = _new_file(env, tx, intake, reader, copies)
        except _Rejected as late:
            _discard(copies)
            with env.ledger.begin() as tx:
                outcome = _reject(env, tx.conn, intake, late.finding, late.parsed)
    except BaseException:
        _discard(copies)  # a copy whose transaction did not commit is never delivered
        raise
    try:
        delivered = outbox.deliver_pending(
            env.engine.connect, env.spool, env.sealer, env.clock.now(), dict(copies)
        )
    finally:
        _discard(copies)  # whatever was not delivered (moved) after all
    shelve(env, claim, intake, outcome)
    seconds = time.monotonic() - started
    metrics.file_processed(env.engine, intake.client_id, outcome, seconds)
    log.info(
        "file.processed",
        client=intake.client_id,
        user=intake.user,
        source_ip=intake.source_ip,
        file=intake.original_name,
        size=intake.size,
        sha256=intake.sha256,
        msg_id=outcome.msg_id,
        file_id=outcome.file_id,
        shelf=outcome.shelf,
        group_status=outcome.group_status,
        reason=outcome.reason.value if outcome.reason else None,
        counts=outcome.counts,
        amounts=logs.amounts(outcome.amounts),
        answer=outcome.answer,
        delivered=len(delivered),
        recovered=outcome.recovered,
        duration_ms=round(seconds * 1000, 1),
    )
    return outcome


def _discard(copies: dict[int, PlainCopy]) -> None:
    for copy in copies.values():
        copy.path.unlink(missing_ok=True)
    copies.clear()


# -- intake ------------------------------------------------------------------------------------


def _intake(env: Environment, claim: Claim, reader: Reader | None) -> Intake:
    """What is known on arrival. The reading child hashes the file first; a file over the
    size limit has no reader and is refused unread, not even hashed (a 2 GB upload): it
    is recorded under a name of its own instead (`Intake.read`)."""
    info = os.stat(claim.path)
    if reader is not None:
        sha256, size = reader.digest()
    else:
        sha256, size = f"{NOT_READ}{claim.path.name}"[:64], info.st_size
    return take_in(
        client_id=claim.client_id,
        path=claim.path,
        original_name=claim.original_name,
        receipt=claim.receipt,
        sha256=sha256,
        size=size,
        modified=dt.datetime.fromtimestamp(info.st_mtime, dt.UTC),
        now=env.clock.now(),
        timezone=env.settings.timezone,
    )


# -- a file seen before ------------------------------------------------------------------------


def _already_known(env: Environment, conn: Any, intake: Intake, known: Any) -> Outcome:
    """The same bytes again: this very claim recorded by a run that stopped before
    shelving it, or a repeated upload, answered with its original report once more."""
    shelf = "rejected" if known.accepted_msg_id is None else "archive"
    if known.claim_name == intake.claim_name:
        return Outcome(known.id, shelf, known.group_status, msg_id=known.msg_id, recovered=True)
    answered = outbox.answer_to_claim(conn, intake.client_id, intake.claim_name)
    if answered is not None:  # a repeated upload, answered before a stop
        return Outcome(
            known.id, "duplicates", known.group_status, msg_id=known.msg_id,
            answer=answered, recovered=True,
        )  # fmt: skip
    name = outbox.enqueue_again(
        conn, known.first_outbox_id, intake.now_local, claim_name=intake.claim_name
    )
    return Outcome(
        known.id,
        "duplicates",
        known.group_status,
        info=f"the same bytes as file {known.id} ({known.original_name}); "
        "its original answer was delivered again",
        msg_id=known.msg_id,
        answer=name,
    )


# -- a new file --------------------------------------------------------------------------------


def _new_file(
    env: Environment,
    tx: LedgerTx,
    intake: Intake,
    reader: Reader | None,
    copies: dict[int, PlainCopy],
) -> Outcome:
    if intake.size > env.settings.max_file_bytes:
        limit = env.settings.max_file_bytes
        too_big = Finding(
            Reason.FF01, f"the file has {intake.size} bytes, more than the limit {limit}"
        )
        return _reject(env, tx.conn, intake, too_big, None)
    assert reader is not None, "a file within the size limit has its reader (`process`)"
    events = iter(reader)
    first = next(events)
    if isinstance(first, ParsedFile):  # unusable before its group header ended
        assert first.failure is not None
        return _reject(env, tx.conn, intake, first.failure, first)
    assert isinstance(first, ParsedHeader)
    if record.msg_id_used(tx.conn, intake.client_id, first.msg_id):
        # The whole file is read all the same: a file that is also broken is FF01.
        parsed = _summary(events)
        used = Finding(Reason.DU01, f"MsgId {first.msg_id} was already used by a different file")
        return _reject(env, tx.conn, intake, parsed.failure or used, parsed)
    return _accept(env, tx, intake, first, events, copies)


def _summary(events: Iterator[Incoming]) -> ParsedFile:
    """Read on to the end of the file, deciding nothing, for its summary."""
    for event in events:
        if isinstance(event, ParsedFile):
            return event
    raise AssertionError("a read always ends with its summary")


def _accept(
    env: Environment,
    tx: LedgerTx,
    intake: Intake,
    header: ParsedHeader,
    events: Iterator[Incoming],
    copies: dict[int, PlainCopy],
) -> Outcome:
    """Decide, record and answer the file's chunks as they are read; only its summary
    says whether the file as a whole is valid. If it is not, `_Rejected` rolls
    everything back. The answer's plain copy goes into `copies` for delivery."""
    file_id = record.insert_file(
        tx.conn, intake, **_header_values(header), group_status="PDNG",
        accepted_msg_id=header.msg_id,
    )  # fmt: skip
    declared = int(header.nb_of_txs) if header.nb_of_txs.isdigit() else None
    with (
        contextlib.closing(FirstReport(env.spool.tmp())) as report,
        contextlib.closing(
            FileProgress(
                env.spool.root,
                intake.client_id,
                intake.claim_name,
                intake.original_name,
                declared,
                env.clock,
            )
        ) as progress,
    ):
        run = FirstRun(env, tx, intake, header, file_id, report)
        for event in events:
            if isinstance(event, Chunk):
                run.chunk(event)
                progress.advance(run.counts.total())
            elif isinstance(event, ParsedPmtInf):
                run.payment_info(event)
            elif isinstance(event, ParsedFile):
                finding = event.failure or rules.file_findings(event)
                if finding is not None:
                    raise _Rejected(finding, event)
                run.finish()
                parsed = event
        reports.notify(env, tx.conn, run.bookings.references)
        outbox_id, name = _issue_first_report(
            env, tx, intake, header, file_id, report, parsed, copies
        )
    group = derive(run.counts)
    record.update_file(
        tx.conn,
        file_id,
        nb_of_txs=parsed.count,
        first_outbox_id=outbox_id,
        group_status=group.value,
    )
    return Outcome(
        file_id,
        "archive",
        group.value,
        msg_id=header.msg_id,
        counts=dict(run.counts),
        amounts=dict(run.bookings.booked),
        answer=name,
        rejected=run.rejected,
    )


def _header_values(header: ParsedHeader | None) -> dict[str, Any]:
    if header is None:
        return {}
    return {
        "msg_id": header.msg_id[:35],
        "message": pain001_v03.MESSAGE,
        "msg_created_at": header.created_at[:64],
        "ctrl_sum": header.ctrl_sum[:64] if header.ctrl_sum is not None else None,
    }


def _issue_first_report(
    env: Environment,
    tx: LedgerTx,
    intake: Intake,
    header: ParsedHeader,
    file_id: int,
    report: FirstReport,
    parsed: ParsedFile,
    copies: dict[int, PlainCopy],
) -> tuple[int, str]:
    """The first pain.002 into the outbox, and its plain copy beside it in tmp/ for
    delivery (hashed for its seal and synced while the transaction commits)."""
    local = intake.now_local
    copy_path = env.spool.tmp() / f".{secrets.token_hex(8)}.report.xml"
    try:
        with open(copy_path, "wb") as copy:
            outbox_id, name = answers.issue(
                tx.conn,
                client_id=intake.client_id,
                file_id=file_id,
                local=local,
                render=lambda msg_id: report.render(
                    msg_id=msg_id,
                    created_at=local,
                    bic=env.settings.bic,
                    original_msg_id=header.msg_id,
                    original_msg_name=pain001_v03.MESSAGE,
                    original_created_at=answers.echoed_created_at(header.created_at),
                    original_nb_of_txs=parsed.count,
                    original_ctrl_sum=answers.echoed_ctrl_sum(header.ctrl_sum),
                    copy=copy,
                ),
            )
    except BaseException:
        copy_path.unlink(missing_ok=True)
        raise
    copies[outbox_id] = PlainCopy(copy_path)
    return outbox_id, name


# -- a file rejected as a whole ----------------------------------------------------------------


def _reject(
    env: Environment, conn: Any, intake: Intake, finding: Finding, parsed: ParsedFile | None
) -> Outcome:
    """Answer the file RJCT with `finding`, echoing what could be read of it: its group
    header, or what the group header of a broken file showed (`Echo`); when nothing could
    be read, the answer names the uploaded file and its SHA-256 instead."""
    header = parsed.header if parsed is not None else None
    echo = parsed.echo if parsed is not None else None
    values = _header_values(header)
    if header is None and echo is not None:
        values = {
            "msg_id": echo.msg_id[:35] if echo.msg_id else None,
            "message": (echo.message or pain002_v03.UNKNOWN)[:32],
            "msg_created_at": echo.created_at[:64] if echo.created_at else None,
            "ctrl_sum": echo.ctrl_sum[:64] if echo.ctrl_sum else None,
        }
    values.setdefault("message", pain002_v03.UNKNOWN)
    nb_of_txs = header.nb_of_txs if header is not None else echo.nb_of_txs if echo else None
    info = finding.info
    if values.get("msg_id") is None:
        digest = f"SHA-256 {intake.sha256}" if intake.read else "not read"
        info += f"; file {intake.original_name}, {digest}"
    file_id = record.insert_file(
        conn, intake, **values, nb_of_txs=parsed.count if parsed is not None else 0,
        group_status=GroupStatus.RJCT.value, reason=finding.reason.value,
        additional_info=finding.info[:1000],
    )  # fmt: skip
    local = intake.now_local
    outbox_id, name = answers.issue(
        conn,
        client_id=intake.client_id,
        file_id=file_id,
        local=local,
        render=lambda msg_id: answers.build_rejection(
            msg_id=msg_id,
            created_at=local,
            bic=env.settings.bic,
            original_msg_id=values.get("msg_id"),
            original_message=values["message"],
            original_created_at=answers.echoed_created_at(values.get("msg_created_at")),
            nb_of_txs=int(nb_of_txs) if nb_of_txs is not None and nb_of_txs.isdigit() else None,
            ctrl_sum=answers.echoed_ctrl_sum(values.get("ctrl_sum")),
            reason=finding.reason,
            info=info,
        ),
    )
    record.update_file(conn, file_id, first_outbox_id=outbox_id)
    return Outcome(
        file_id, "rejected", GroupStatus.RJCT.value, finding.reason, finding.info,
        msg_id=values.get("msg_id"), answer=name,
    )  # fmt: skip


