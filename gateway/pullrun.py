"""A request's run (SPEC §15): a camt.060 report request or a camt.055 cancellation in
`/in`, inside its savepoint of the group's transaction, like a new pain.001 (`newfile.py`).

The root element's namespace decides what a file is (`route.request_message`): `filerun`
hands a file here when it is a camt.060 or camt.055 of any version, importing this
module then. The request is read whole
with the hostile-input rules of every inbound message (`inbound.safe_xml`: at most
`request_bytes_max` bytes, no DTD, UTF-8 only, bounded depth), checked against the
pyiso20022 model of its version, and answered:

- a report request with its reports (`report_run`), a cancellation with camt.029
  (`cancel_run`);
- a request that is invalid, of a version we do not read, or refused as a whole (an
  account not the client's, a day not closed, a limit) with admi.002.001.01, never
  with data; its file name carries a reference of ours in place of a MsgId.

The request gets its row in `gw_files` (its message name, its MsgId, what became of
it) in the same transaction as its answers, so a restart finds it answered by its
claim name and only delivers and shelves it; a request uses up no MsgId
(`accepted_msg_id` stays empty). `status` and the `file.processed` log line show it
like a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from sqlalchemy import Connection

from gateway import cancel_run, record, report_run
from gateway.environment import Environment
from gateway.inbound import (
    camt055_v01,
    camt055_v09,
    camt060_v03,
    camt060_v05,
    rules,
    safe_xml,
)
from gateway.inbound.cancellation import CancellationRequest
from gateway.inbound.cancellation import msg_id_of as cancellation_id_of
from gateway.inbound.intake import Intake
from gateway.inbound.report_request import msg_id_of as request_id_of
from gateway.outbound import admi002_v01, answers, outbox
from gateway.progress import FileProgress
from gateway.pull_codes import RequestFinding, RequestReason
from gateway.shelving import Outcome
from ledger.tx import LedgerTx

REPORT_REQUESTS = report_run.REPORT_REQUESTS
CANCELLATIONS = (camt055_v01.MESSAGE, camt055_v09.MESSAGE)
ANSWERED = "ACCP"  # gw_files.group_status of a report request answered with data
REFUSED = "RJCT"  # … of a request answered with admi.002


def run(env: Environment, tx: LedgerTx, intake: Intake, message: str) -> Outcome:
    """Read, decide and answer the request in `intake`; its Outcome."""
    local = intake.now_local
    conn = tx.conn
    if intake.size > safe_xml.request_bytes_max:
        finding = RequestFinding(
            RequestReason.FF01,
            f"the file has {intake.size} bytes, more than {safe_xml.request_bytes_max}"
            " for a request",
        )
        return refuse(env, conn, intake, message, finding)
    data = intake.path.read_bytes()
    if message in REPORT_REQUESTS:
        reader = camt060_v05 if message == camt060_v05.MESSAGE else camt060_v03
        request = reader.read(data, today=local.date())
        if isinstance(request, RequestFinding):
            return refuse(env, conn, intake, message, request)
        issued = report_run.answer(env, conn, intake.client_id, request, local)
        if isinstance(issued, RequestFinding):
            return refuse(env, conn, intake, message, issued)
        file_id = _record(
            conn, intake, message, request.msg_id, ANSWERED, len(request.reports),
            first_outbox_id=issued[0][0],
        )  # fmt: skip
        outbox.belong_to(conn, [outbox_id for outbox_id, _ in issued], file_id)
        return Outcome(
            file_id, "archive", ANSWERED, msg_id=request.msg_id,
            counts={"reports": len(issued)}, answer=", ".join(name for _, name in issued),
        )  # fmt: skip
    if message in CANCELLATIONS:
        reader_ = camt055_v09 if message == camt055_v09.MESSAGE else camt055_v01
        cancellation = reader_.read(data)
        if isinstance(cancellation, RequestFinding):
            return refuse(env, conn, intake, message, cancellation)
        foreign = next(
            (a for a in cancellation.debtor_accounts()
             if not record.client_owns(env.settings, conn, intake.client_id, a)),
            None,
        )  # fmt: skip
        if foreign is not None:  # AC02 in the words of a pain.001's (its DbtrAcct's)
            text = rules.not_clients_account(foreign)
            finding = RequestFinding(RequestReason.AC02, text, cancellation.msg_id)
            return refuse(env, conn, intake, message, finding)
        return _cancel(env, tx, intake, message, cancellation)
    supported = ", ".join(REPORT_REQUESTS + CANCELLATIONS)
    root = safe_xml.parse(data, message)  # for its MsgId, which every version carries alike
    msg_id_of = cancellation_id_of if message.startswith("camt.055") else request_id_of
    finding = RequestFinding(
        RequestReason.FF01, f"{message} is not supported; send one of {supported}",
        None if isinstance(root, str) else msg_id_of(root),
    )  # fmt: skip
    return refuse(env, conn, intake, message, finding)


def _cancel(
    env: Environment, tx: LedgerTx, intake: Intake, message: str, request: CancellationRequest
) -> Outcome:
    progress = FileProgress(
        env.spool.root, intake.client_id, intake.claim_name, intake.original_name, None, env.clock
    )
    with contextlib.closing(progress):
        result = cancel_run.answer(env, tx, intake, request, progress.advance)
    file_id = _record(
        tx.conn, intake, message, request.msg_id, result.confirmation, result.named,
        first_outbox_id=result.outbox_id,
    )  # fmt: skip
    return Outcome(
        file_id, "archive", result.confirmation, msg_id=request.msg_id,
        counts=dict(result.counts), answer=", ".join(result.names),
    )  # fmt: skip


def refused_again(
    env: Environment, conn: Connection, intake: Intake, known: Any
) -> tuple[str, str, str] | None:
    """The same bytes as the report request `known` again: its reports once more (None:
    answered with them as usual), or, when they would pass the client's reports of the
    day (`report_run.beyond_day_limit`), the admi.002 that says so — its name, what was
    done and the status."""
    if known.message not in REPORT_REQUESTS or known.group_status != ANSWERED:
        return None
    count = len(outbox.answers_of(conn, known))
    finding = report_run.beyond_day_limit(env, conn, intake.client_id, count, intake.now_local)
    if finding is None:
        return None
    finding = RequestFinding(finding.reason, finding.info, known.msg_id)
    _, name = _reject(conn, intake, finding, claim_name=intake.claim_name)
    return name, f"its reports were not delivered again: {finding.info}", REFUSED


def refuse(
    env: Environment, conn: Connection, intake: Intake, message: str, finding: RequestFinding
) -> Outcome:
    """Answer the request with admi.002 naming `finding`; its row and Outcome."""
    outbox_id, name = _reject(conn, intake, finding)
    file_id = _record(
        conn, intake, message, finding.msg_id, REFUSED, 0,
        reason=finding.reason.value, additional_info=finding.info[:1000],
        first_outbox_id=outbox_id,
    )  # fmt: skip
    return Outcome(
        file_id, "rejected", REFUSED, finding.reason, finding.info,
        msg_id=finding.msg_id, answer=name,
    )  # fmt: skip


def _reject(
    conn: Connection, intake: Intake, finding: RequestFinding, *, claim_name: str | None = None
) -> tuple[int, str]:
    """The admi.002 naming `finding` into the client's outbox: its outbox id and name."""
    local = intake.now_local
    upload = intake.upload_within(admi002_v01.upload_chars_max)
    reject = admi002_v01.MessageReject.of(finding, _aware(local), upload=upload)
    return outbox.enqueue(
        conn,
        client_id=intake.client_id,
        message=admi002_v01.MESSAGE,
        msg_id=answers.new_msg_id(conn, local),
        created_local=local,
        body=outbox.render(lambda out: admi002_v01.write(reject, out)),
        claim_name=claim_name,
    )


def _record(
    conn: Connection,
    intake: Intake,
    message: str,
    msg_id: str | None,
    status: str,
    items: int,
    **values: object,
) -> int:
    return record.insert_file(
        conn, intake, msg_id=msg_id[:35] if msg_id else None, message=message[:32],
        group_status=status, nb_of_txs=items, **values,
    )  # fmt: skip


def _aware(local: dt.datetime) -> dt.datetime:
    return local if local.tzinfo is not None else local.replace(tzinfo=dt.UTC)
