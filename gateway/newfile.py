"""A new file's run, inside its savepoint of the group's transaction (`filerun.py`):
refused unparsed when too big (its answer names its SHA-256), rejected as a whole when
its group header or MsgId is unusable, else executed a chunk at a time
(`firstrun.FirstRun`) and answered with its first pain.002 — or, found invalid as a
whole only later (`Rejected`), rolled back and answered as rejected.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

from gateway import record
from gateway.environment import Environment
from gateway.firstrun import FirstRun
from gateway.inbound import pain001_v03, rules, safe_xml
from gateway.inbound.findings import Finding
from gateway.inbound.intake import Intake
from gateway.inbound.parsed import ParsedFile, ParsedHeader, ParsedPmtInf, declared_count
from gateway.inbound.reader import Chunk, Incoming, Reading
from gateway.outbound import answers, pain002_v03, reports
from gateway.outbound.first_report import FirstReport
from gateway.outbound.outbox import PlainCopy
from gateway.progress import FileProgress
from gateway.reasons import Reason
from gateway.shelving import Outcome
from gateway.statuses import GroupStatus, derive
from ledger.tx import LedgerTx


class Rejected(Exception):
    """A file found invalid as a whole after its first chunks were executed."""

    def __init__(self, finding: Finding, parsed: ParsedFile) -> None:
        super().__init__(finding.info)
        self.finding = finding
        self.parsed = parsed


_NONE_GUARDED: Mapping[str, int] = {}


class NeedsSignatures(Exception):
    """A batch run as usual turned out to debit an account that needs signatures (SPEC
    §11): its run is undone, and it is admitted as a batch that waits (`filerun._new`)."""


def new_file(
    env: Environment,
    tx: LedgerTx,
    intake: Intake,
    reader: Reading | None,
    copies: dict[int, PlainCopy],
    file_id: int | None = None,
    guarded: Mapping[str, int] = _NONE_GUARDED,
) -> Outcome:
    """`file_id`: the row of a batch recorded when it arrived, now authorised by its
    signatories (SPEC §11): it runs as if received with the signature that completed it,
    under that row and MsgId.
    `guarded`: the client's accounts that need signatures (their level): a payment
    information debiting one stops the run (`NeedsSignatures`)."""
    if intake.size > env.settings.max_file_bytes:
        limit = env.settings.max_file_bytes
        too_big = Finding(
            Reason.FF01, f"the file has {intake.size} bytes, more than the limit {limit}"
        )
        # Not read, but its answer echoes what its head shows (SPEC §6), as any refused file's.
        with intake.path.open("rb") as file:
            head = file.read(safe_xml.echo_bytes_max)
        return reject(env, tx.conn, intake, too_big, ParsedFile(echo=safe_xml.echo(head)))
    assert reader is not None, "a file within the size limit has its reader (`process`)"
    events = iter(reader)
    first = next(events)
    if isinstance(first, ParsedFile):  # unusable before its group header ended
        assert first.failure is not None
        return reject(env, tx.conn, intake, first.failure, first)
    assert isinstance(first, ParsedHeader)
    if file_id is None and record.msg_id_used(tx.conn, intake.client_id, first.msg_id):
        # DU01 needs only the MsgId, and outranks every later file-level finding: nothing
        # of the file is decided. It is read on all the same, as FF01 outranks DU01.
        parsed = read_to_summary(events)
        finding = rules.file_finding(parsed, msg_id_used=True)
        assert finding is not None
        return reject(env, tx.conn, intake, finding, parsed)
    return _accept(env, tx, intake, first, events, copies, file_id, guarded)


def read_to_summary(events: Iterator[Incoming]) -> ParsedFile:
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
    file_id: int | None,
    guarded: Mapping[str, int],
) -> Outcome:
    """Decide, record and answer the file's chunks as they are read; only its summary
    says whether the file as a whole is valid. If it is not, `Rejected` rolls
    everything back. The answer's plain copy goes into `copies` for delivery."""
    if file_id is None:
        file_id = record.insert_file(
            tx.conn, intake, **_header_values(header), group_status="PDNG",
            accepted_msg_id=header.msg_id,
        )  # fmt: skip
    declared = declared_count(header.nb_of_txs)
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
                if guarded.get(event.debtor_iban or "", 0) > 0:
                    raise NeedsSignatures(event.debtor_iban)
                run.payment_info(event)
            elif isinstance(event, ParsedFile):
                finding = rules.file_finding(event, msg_id_used=False)
                if finding is not None:
                    raise Rejected(finding, event)
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
    """The first pain.002 into the outbox, and its plain copy in tmp/ for delivery."""
    local = intake.now_local
    copy = PlainCopy(env.spool.tmp() / f".{secrets.token_hex(8)}.report.xml")
    try:
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
        copy.discard()
        raise
    copy.close()
    copies[outbox_id] = copy
    return outbox_id, name


# -- a file rejected as a whole ----------------------------------------------------------------


def reject(
    env: Environment, conn: Any, intake: Intake, finding: Finding, parsed: ParsedFile | None
) -> Outcome:
    """Answer the file RJCT with `finding`, echoing what could be read of it: its group
    header, or what the group header of a broken file showed (`Echo`); when nothing could
    be read — or its MsgId is another file's (DU01) — the answer names the uploaded file
    and its SHA-256 too."""
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
    sent = header.msg_id if header is not None else echo.msg_id if echo is not None else None
    cut = sent is not None and len(sent) > len(values.get("msg_id") or "")
    if values.get("msg_id") is None or cut or finding.reason is Reason.DU01:
        # Nothing to match it by, a MsgId cut to fit, or one that is another file's: the
        # upload it answers
        info += f"; {intake.upload}"
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
        render=lambda msg_id: answers.build_group_only(
            status=GroupStatus.RJCT,
            msg_id=msg_id,
            created_at=local,
            bic=env.settings.bic,
            original_msg_id=values.get("msg_id"),
            original_message=values["message"],
            original_created_at=answers.echoed_created_at(values.get("msg_created_at")),
            nb_of_txs=declared_count(nb_of_txs),
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
