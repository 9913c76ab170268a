"""A signature container's run (SPEC §11): an ASiC-E upload (`.asice`, `.sce`, `.edoc`)
into `/in`, inside its savepoint of the group's transaction like any file (`filerun`).

    read       the container, safely (`inbound/asice.py`): unreadable → RJCT DS0B; one
               whose data file is a container → RJCT FF01 (no pain.001.001.03)
    match      its data file's SHA-256 to a batch: a batch waiting for signatures, one
               already executed, rejected or expired (changes nothing, answered so), or
               none — then the data file is a submission of its own (`authorisation.admit`)
    verify     each XAdES signature (`inbound/xades.py`) against `[signing] signatory_ca`
    authorise  the level rule over every signature received so far (`signatories.py`)
    record     each signature with what it did (`gw_signatures`)
    answer     a pain.002 for the batch: what this upload added or why it did not count
               (the DS code), and what is still missing
    execute    when the level is met: the batch through the ordinary stages, its final
               pain.002 (`authorisation.execute`)

All of it commits with the container's own file row, so a crash anywhere either redoes
the run or finds the container recorded and only shelves it: no signature is lost and no
batch executes twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, func, select

from gateway import (
    authorisation,
    db,
    reading,
    record,
    signatories,
    signature_checks,
    signatures_kept,
    waiting_report,
)
from gateway.container_data import scratch_path, taken_in
from gateway.environment import Environment
from gateway.files import write_in_place
from gateway.inbound import asice, pain001_v03, route, xades
from gateway.inbound.findings import Finding
from gateway.inbound.intake import Intake
from gateway.inbound.reader import Reading
from gateway.newfile import new_file, reject
from gateway.outbound import answers, outbox, pain002_v03
from gateway.outbound.outbox import PlainCopy
from gateway.readahead import BatchAhead
from gateway.reasons import Reason
from gateway.shelving import Outcome, findings_text
from gateway.signatories import Signatory, Signer
from gateway.spool import FINDINGS_SUFFIX
from gateway.statuses import GroupStatus, TxStatus

CONTAINER = authorisation.CONTAINER

def unzipped_bytes_max(env: Environment) -> int:
    return route.container_unzipped_bytes_max(env.settings.max_file_bytes)


def container_file(
    env: Environment, tx: Any, intake: Intake, copies: dict[int, PlainCopy],
    batch_ahead: BatchAhead | None = None,
) -> Outcome:
    """The run of one uploaded container (see the module's docstring). `batch_ahead`: a
    waiting batch `scan --once` started reading (`readahead.py`), taken if it is this
    container's and the container may complete it."""
    scratch = scratch_path(env, intake)
    try:
        return _container_file(env, tx, intake, copies, batch_ahead, scratch)
    finally:
        scratch.unlink(missing_ok=True)


def _container_file(
    env: Environment, tx: Any, intake: Intake, copies: dict[int, PlainCopy],
    batch_ahead: BatchAhead | None, scratch: Path,
) -> Outcome:
    found = asice.read_container(
        intake.path, unzipped_bytes_max=unzipped_bytes_max(env), scratch=scratch
    )
    if isinstance(found, asice.ContainerProblem):
        return reject(env, tx.conn, intake, Finding(Reason.DS0B, found.describe()), None)
    if route.claims_container(found.data_head):  # (as a submission, sent alone: a "repeat")
        inner = f"its data file {found.data_name} is a signature container, not a pain.001.001.03"
        return reject(env, tx.conn, intake, Finding(Reason.FF01, inner), None)
    conn = tx.conn
    # A run of this very claim that stopped before committing may have left its data file
    # and the findings beside it.
    extraction = _extraction(env, intake)
    for left in (extraction, extraction.with_name(extraction.name + FINDINGS_SUFFIX)):
        left.unlink(missing_ok=True)
    container_id = record.insert_file(
        conn, intake, message=CONTAINER, group_status=GroupStatus.PDNG.value
    )
    sha256 = found.data_sha256.hex()
    row = authorisation.waiting_row(conn, intake.client_id, sha256)
    checks: tuple[xades.SignatureCheck, ...] | None = None  # verified in `_sign`, or here:
    submitted: tuple[Outcome, Intake] | None = None
    if row is None and _file_row(conn, intake.client_id, sha256) is None:
        # a submission: its own signatures count from its batch's first answer on
        checks = signature_checks.verify(env, found, intake)
        signers = signature_checks.signers_of(checks, intake)
        submitted = _submit(env, tx, intake, found, copies, signers)
        row = authorisation.waiting_row(conn, intake.client_id, sha256)
        if row is None:  # refused as a whole, or needing no signature and executed
            done = submitted[0]
            return _close(conn, container_id, done, f"its data file {found.data_name}: "
                          f"{done.info or done.group_status}")  # fmt: skip
    expired = row and authorisation.expire_if_over(env, conn, row, intake)
    if expired:
        row = authorisation.waiting_row(conn, intake.client_id, sha256)
    if row is None or row.state != authorisation.WAITING:
        done = _changes_nothing(env, conn, intake, container_id, sha256, row)
        done.answer = ", ".join(filter(None, (expired, done.answer)))  # the expiry's too
        return done
    earlier = signatures_kept.counted_so_far(conn, row)
    with contextlib.ExitStack() as stack:
        ahead: Reading | None = None
        path = authorisation.batch_path(env, row)
        if len(earlier) + len(found.signatures) >= row.level and path.exists():
            # It may complete the batch: its reading starts while the signatures are checked
            # (or started before the pass, `readahead.py`).
            ahead = batch_ahead.take(path) if batch_ahead is not None else None
            if ahead is None:
                ahead = reading.read(path, env.settings)
            stack.callback(ahead.close)
        signed = _sign(env, tx, intake, found, container_id, row, copies, earlier, ahead, checks)
    if submitted is not None and submitted[0].shelf == "awaiting":  # its data file waits
        waits, data = submitted  # with its findings, naming its first answer: this one's
        write_in_place(extraction.with_name(extraction.name + FINDINGS_SUFFIX),
                       findings_text(data, replace(waits, answer=signed.answer)), mode=0o444)
    return signed


def _file_row(conn: Connection, client_id: str, sha: str) -> Any:
    f = db.files.c
    return conn.execute(select(db.files).where(f.client_id == client_id, f.sha256 == sha)).first()


def _submit(
    env: Environment, tx: Any, intake: Intake, container: asice.Container,
    copies: dict[int, PlainCopy], signers: list[Signer],
) -> tuple[Outcome, Intake]:
    """The container's data file as a batch of its own, and its intake: written into
    awaiting/ (where it waits, if it must) and run through the authorisation stage with
    the container's `signers`, or executed at once when no account needs signatures."""
    path = _extraction(env, intake)
    data = taken_in(intake, container, path)
    with reading.read(path, env.settings) as reader:
        reader.digest()
        outcome = authorisation.admit(env, tx, data, reader, signers, by_container=True)
    if outcome is None:  # no account of it needs signatures: it runs now
        with reading.read(path, env.settings) as reader:
            reader.digest()
            outcome = new_file(env, tx, data, reader, copies)
    if outcome.shelf != "awaiting":  # the container keeps the data; nothing waits
        path.unlink(missing_ok=True)
    return outcome, data


def _extraction(env: Environment, intake: Intake) -> Path:
    """Where a container's data file waits when the container is the submission."""
    return authorisation.awaiting_folder(env, intake.client_id) / f"{intake.claim_name}.data.xml"


def _sign(
    env: Environment, tx: Any, intake: Intake, container: asice.Container,
    container_id: int, row: Any, copies: dict[int, PlainCopy], earlier: list[Signatory],
    ahead: Reading | None, checks: tuple[xades.SignatureCheck, ...] | None = None,
) -> Outcome:
    """Verify (unless `checks` were made already), judge and record the container's
    signatures (`earlier`: the signatories counted before); answer; execute when done (with the
    batch's reading `ahead`, if started)."""
    conn = tx.conn
    if checks is None:
        checks = signature_checks.verify(env, container, intake)
    signers = signature_checks.signers_of(checks, intake)
    card = authorisation.signatories_of(env.settings.client(row.client_id))
    auth = authorisation.authorise_waiting(env, row, earlier, signers, card)
    lines: list[str] = []
    judged = list(signature_checks.judge(checks, auth.signers))
    for check, verdict, reason, detail in judged:
        # Listed by name and right whether it counts or not: a configured signatory's
        # signature whose certificate failed (revoked, expired, another CA) too.
        who = verdict.signatory if verdict is not None else None
        if who is None and check.certificate is not None:
            trusted = check.problem is not xades.Problem.UNTRUSTED_CA
            who = signatories.match(card, check.certificate, trusted=trusted)
        counted = verdict is not None and check.problem is None and verdict.counts
        _record(conn, row.id, container_id, intake, check, who, reason, detail, counted)
        lines.append(f"{check.source}: {detail}")
    if not checks:
        lines.append(signature_checks.NO_SIGNATURE)
    summary, msg_id, executed = auth.describe(), None, None
    if auth.complete:
        # The answer to this signature comes before the batch's final pain.002 (its MsgId
        # is taken first) and says what the run did, so the run goes first: on a day
        # without execution, after a cut-off or for a future date nothing executes now.
        msg_id = answers.new_msg_id(conn, intake.now_local)
        executed = authorisation.execute(env, tx, row, copies, intake.received, ahead)
        summary += "; " + released(executed.counts, _pending_days(conn, row.file_id))
    info = "; ".join(lines) + ". " + summary
    # SPEC §11: each signature that did not count says why in StsRsnInf: each code once,
    # in precedence order (the winning one first, with the text).
    codes = signature_checks.codes(judged)
    reason = codes[0] if codes else None
    file_row = conn.execute(select(db.files).where(db.files.c.id == row.file_id)).one()
    # Authorised, the batch has the status its run gave it (SPEC §6's derivation); only
    # while it waits is the group PDNG (SPEC §11's exception).
    status = GroupStatus.PDNG if executed is None else GroupStatus(executed.group_status)
    outbox_id, name = _answer(env, conn, file_row, status, codes, info, intake,
                              msg_id=msg_id, waiting=row if executed is None else None)  # fmt: skip
    if file_row.first_outbox_id is None:  # the container was the submission: the first
        record.update_file(conn, row.file_id, first_outbox_id=outbox_id)
    if executed is None:
        record.update_file(conn, row.file_id, additional_info=summary[:1000])
    outcome = _close(conn, container_id, Outcome(
        row.file_id, "archive", GroupStatus.PDNG.value, reason, info,
        msg_id=file_row.msg_id, answer=name,
    ), info)  # fmt: skip
    if executed is not None:
        outcome.group_status = executed.group_status
        outcome.counts, outcome.amounts = executed.counts, executed.amounts
        outcome.answer = f"{name}, {executed.answer}"
    return outcome


def released(counts: Mapping[str, int], pending: tuple[dt.date, dt.date] | None) -> str:
    """What became of an authorised batch, which runs as if received at that moment (SPEC
    §11), for the answer to the signature that completed it: how many of its payments
    executed, wait (`pending`: the first and last day they are due) or were rejected."""
    said: list[str] = []
    for status, what in ((TxStatus.ACSC, "executed"), (TxStatus.PDNG, "wait"),
                         (TxStatus.RJCT, "rejected")):  # fmt: skip
        n = counts.get(status.value, 0)
        if not n:
            continue
        noun = "" if said else "payment " if n == 1 else "payments "
        verb = "waits" if what == "wait" and n == 1 else what
        part = f"{n} {noun}{verb} ({status.value})"
        if status is TxStatus.PDNG and pending is not None:
            first_day, last_day = pending
            part += f" to execute on {first_day}" if first_day == last_day else \
                f" to execute from {first_day} to {last_day}"  # fmt: skip
        said.append(part)
    return "released for execution as if received with this signature: " + ", ".join(said)


def _pending_days(conn: Connection, file_id: int) -> tuple[dt.date, dt.date] | None:
    """The first and last day the file's waiting payments are due, if any has a day."""
    p = db.payments.c
    pending = (p.file_id == file_id) & (p.status == TxStatus.PDNG.value)
    first_day, last_day = conn.execute(
        select(func.min(p.due_date), func.max(p.due_date)).where(pending)
    ).one()
    return (first_day, last_day) if first_day is not None else None


def answer_again(
    env: Environment, conn: Connection, intake: Intake, known: Any
) -> tuple[str, str, str] | None:
    """The same bytes again, where signatures decide the answer (SPEC §11): the plain
    batch `known` while it waits (typically after its own container), or a container
    `known` whose batch is known. Where the batch stands now — its signatures' current
    count, or executed, rejected, expired — not the first answer; the answer's name, what
    was done and the group status. None: answered with the original report as usual."""
    if known.message == CONTAINER:
        found = asice.read_container(intake.path, unzipped_bytes_max=unzipped_bytes_max(env))
        if isinstance(found, asice.ContainerProblem):
            return None
        sha256, what = found.data_sha256.hex(), "signature container"
    else:
        sha256, what = known.sha256, "batch waiting for signatures"
    file_row = _file_row(conn, intake.client_id, sha256)
    row = authorisation.waiting_row(conn, intake.client_id, sha256)
    waits = row is not None and row.state == authorisation.WAITING
    if file_row is None or not (waits or known.message == CONTAINER):
        return None  # a batch that does not wait: its own reports answer it
    received = known.received_at.astimezone(env.settings.timezone)
    if waits:
        counted = signatures_kept.counted_so_far(conn, row)
        now = authorisation.authorise_waiting(env, row, counted, []).describe()
        info = f"the same bytes as the {what} received {received:%Y-%m-%d %H:%M}: {now}"
        name = _answer(env, conn, file_row, GroupStatus.PDNG, None, info, intake,
                       intake.claim_name, waiting=row)[1]  # fmt: skip
        return name, "its batch still waits; answered with its signatures' current count", \
            GroupStatus.PDNG.value  # fmt: skip
    status, _, _, name = _settled(env, conn, intake, file_row, row, intake.claim_name)
    return name, "its batch no longer waits; answered with where it stands", status.value


def _record(
    conn: Connection, awaiting_id: int, container_id: int, intake: Intake,
    check: xades.SignatureCheck, signatory: Signatory | None, reason: Reason | None, detail: str,
    counted: bool,
) -> None:
    cert = check.certificate
    conn.execute(
        db.signatures.insert().values(
            awaiting_id=awaiting_id, container_file_id=container_id, source=check.source[:255],
            certificate=cert.public_bytes(serialization.Encoding.DER) if cert else None,
            subject=check.subject, serial=str(check.serial)[:64] if cert else None,
            signing_time=check.signing_time, received_at=intake.received,
            verified=check.ok and cert is not None,
            signatory=signatory.name[:255] if signatory else None,
            signatory_right=signatory.right.value if signatory else None,
            reason=reason.value if reason else None, detail=detail, counted=counted,
        )
    )  # fmt: skip


def _changes_nothing(
    env: Environment, conn: Connection, intake: Intake, container_id: int, sha256: str,
    row: Any,
) -> Outcome:
    """A container for a batch already executed, rejected or expired."""
    file_row = _file_row(conn, intake.client_id, sha256)
    assert file_row is not None
    status, reason, info, name = _settled(env, conn, intake, file_row, row)
    msg_id = file_row.msg_id if file_row.message == pain001_v03.MESSAGE else None
    return _close(conn, container_id, Outcome(
        file_row.id, "archive", status.value, reason, info, msg_id=msg_id, answer=name,
    ), info)  # fmt: skip


def _settled(
    env: Environment, conn: Connection, intake: Intake, file_row: Any, row: Any,
    claim_name: str | None = None,
) -> tuple[GroupStatus, Reason | None, str, str]:
    """The answer to a container whose data file is a batch that no longer waits (`row`:
    its waiting row, if it waited) or the bytes of another message: the group status,
    reason and text it gives, and its name."""
    reason: Reason | None = None
    if file_row.message != pain001_v03.MESSAGE:  # the bytes of a request sent before
        # (whose own status need not be a pain.002's: a camt.055's is its camt.029's, CNCL)
        status, reason = GroupStatus.RJCT, Reason.FF01
        info = f"its data file is the {file_row.message} of file {file_row.id} " \
               f"({file_row.original_name}), not a batch ({pain001_v03.MESSAGE})"  # fmt: skip
    else:
        status = GroupStatus(file_row.group_status)
        if row is not None and row.state == authorisation.EXPIRED:
            reason, what = Reason.DS24, "expired waiting for signatures"
        elif row is not None and row.state == authorisation.CANCELLED:
            reason, what = Reason.DS02, "cancelled by the client before it was signed"
        elif status is GroupStatus.RJCT:
            what = "already rejected" + (f" ({file_row.reason})" if file_row.reason else "")
        elif status in (GroupStatus.PDNG, GroupStatus.ACCP):  # some payments still wait
            what = "already authorised (its payments run on their dates, as its reports say)"
        else:
            what = "already executed"
        info = f"the batch {file_row.msg_id or file_row.original_name} was {what}; " \
               "this signature changes nothing"  # fmt: skip
    _, name = _answer(env, conn, file_row, status, reason, info, intake, claim_name)
    return status, reason, info, name


def _answer(
    env: Environment, conn: Connection, file_row: Any, status: GroupStatus,
    reason: pain002_v03.Reasons, info: str, intake: Intake, claim_name: str | None = None,
    msg_id: str | None = None, waiting: Any | None = None,
) -> tuple[int, str]:
    """A pain.002 about the batch `file_row`, answering a signature upload (`msg_id`: taken
    before, see `answers.issue`). While the batch still waits (`waiting`: its row) it lists
    every transaction PDNG, as its first answer did; otherwise the batch's own reports
    list them, and this gives the group."""
    path, said, listing = None, waiting_report.WAITS_INFO, None  # (no batch: nothing listed)
    if waiting is not None:
        path = authorisation.batch_path(env, waiting)
        said = waiting_report.waits(waiting.expires_on)
        listing = authorisation.listing_of(conn, waiting)  # as its first answer listed them
    return waiting_report.answer(
        env, conn, file_row, intake.now_local, path=path, status=status, reason=reason,
        info=info, tx=(TxStatus.PDNG, None, said), claim_name=claim_name, msg_id=msg_id,
        listing=listing,
    )  # fmt: skip


def _close(conn: Connection, container_id: int, outcome: Outcome, info: str) -> Outcome:
    """The container's own row says what its upload did; its outcome is shelved under
    its own number (every container is kept, SPEC §11)."""
    f = db.files.c
    client_id = conn.execute(select(f.client_id).where(f.id == container_id)).scalar_one()
    outbox_id = outbox.named(conn, client_id, (outcome.answer or "").split(", ")[0])
    record.update_file(
        conn, container_id, group_status=outcome.group_status,
        reason=outcome.reason.value if outcome.reason else None,
        additional_info=info[:1000], first_outbox_id=outbox_id,
    )  # fmt: skip
    outcome.file_id = container_id
    outcome.shelf = "archive" if outcome.shelf == "awaiting" else outcome.shelf
    return outcome

