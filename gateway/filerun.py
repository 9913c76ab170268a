"""The run of the files waiting at one moment, each stage by stage (SPEC §6):

    intake   what is known on arrival: who, which bytes, when         inbound/intake.py
    route    a container, a request, a trial or a batch, told by      inbound/route.py
             name and first bytes (the rarer kinds' runs are imported
             when one arrives: a process that only books batches never
             loads the signature verifier or the request models)
    read     parsed and validated: in-process when small, else by     inbound/reader.py
             a child process
    decide   rules in Reason order, due dates, execution in memory    inbound/decide.py
    record   payment rows and ledger transfers                         record.py
    answer   the pain.002 (and camt.054) into the outbox              outbound/answers.py
    deliver  into the client's out/, sealed                            outbound/outbox.py
    shelve   the file, its seal and findings onto their shelf         shelving.py

Everything from read to answer happens in ONE database transaction (the outbox
pattern), shared by the files of the group (group commit; each file in a savepoint of
its own, `newfile.py` for a new one): before it commits nothing has happened; after it
commits, delivering the answers and shelving the files are repeatable steps. A crash
anywhere is therefore harmless: the files are still in `work/`, and running again
either redoes the transaction or, finding a file recorded, finishes the repeatable
steps. Chunks are decided and recorded as they are read; only the file's summary says
whether the file as a whole is valid, and if it is not its savepoint is rolled back and
the file answered as rejected in a new one.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from gateway import authorisation, db, faults, logs, metrics, reading, record
from gateway.clock import on_clock
from gateway.environment import Environment
from gateway.errors import RunAgain, SealError, TransientError
from gateway.files import Digest, sha256_file
from gateway.inbound import route
from gateway.inbound.intake import Intake, take_in
from gateway.inbound.reader import Reader, Reading
from gateway.newfile import NeedsSignatures, Rejected, new_file, reject
from gateway.outbound import outbox
from gateway.outbound.outbox import PlainCopy
from gateway.readahead import BatchAhead
from gateway.shelving import Outcome, recorded, shelve_all
from gateway.spool import Claim
from ledger.tx import BalanceConflict, LedgerTx

log = structlog.get_logger("gateway.filerun")


# I/O errors that say something about the machine, not about the file being processed.
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM, errno.EAGAIN,
     errno.EMFILE, errno.ENFILE, errno.EACCES, errno.EPERM, errno.ESTALE}
)  # fmt: skip


def fault_of_ours(exc: BaseException) -> bool:
    """Whether `exc` is a fault of the machine or its services (retried for as long as it
    lasts, never the file's) rather than something the file's content provoked."""
    if isinstance(exc, TransientError | SealError | DBAPIError | BalanceConflict):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


@dataclass
class Job:
    """One claimed file in a group: its reading, and what became of it."""

    claim: Claim
    reader: Reading | None = None
    digest: Digest | None = None  # of a file not read by a reader (`process`)
    batch_ahead: BatchAhead | None = None  # a waiting batch read ahead (`readahead.py`)
    intake: Intake | None = None
    outcome: Outcome | None = None
    failure: Exception | None = None  # a defect its content provoked: nothing committed
    # Committed, but its client's folder refused its answer or its shelf: it waits in
    # work/ (its answer in the outbox) for the client's folder to work again.
    held: faults.ClientFault | None = None


def process(env: Environment, jobs: Sequence[Job]) -> list[Job]:
    """Run the claims of `jobs` through every stage, their decide-record-answer stages in
    ONE database transaction (group commit: one commit and one round of deliveries for
    all). Each file runs in a savepoint of its own, so a file found invalid as a whole
    is rolled back alone and answered as rejected, and a file that trips a defect of
    ours leaves nothing behind (`Job.failure`) while the others go on. A fault of ours
    (`fault_of_ours`) or a broken invariant aborts the group: nothing is committed and
    every file waits in work/. A reader given (`gateway.readahead`) is used; any other
    is opened here; all are closed. A file over the size limit is never parsed, and a
    signature container is not read here: such a file is hashed, a block at a time and
    before the transaction begins, as its answer names its SHA-256 (SPEC §6; a 2 GB
    upload costs the time it takes to read, never memory)."""
    started = time.monotonic()
    copies: dict[int, PlainCopy] = {}  # plain copies of answers rendered, by outbox id
    try:
        for job in jobs:
            if job.reader is not None:
                continue
            if os.stat(job.claim.path).st_size <= env.settings.max_file_bytes and not (
                route.is_container(job.claim.path, job.claim.original_name)
            ):
                job.reader = reading.read(job.claim.path, env.settings)
            elif job.digest is None:
                job.digest = sha256_file(job.claim.path)
        big = any(isinstance(j.reader, Reader) for j in jobs)
        with env.ledger.begin(checkpoint_after=big) as tx:
            _run_in_turn(env, tx, jobs, copies)
    except BaseException as exc:
        _discard(copies)  # a copy whose transaction did not commit is never delivered
        if isinstance(exc, DBAPIError) and (lost := _lost_locks(exc)) is not None:
            raise RunAgain(f"the group of {len(jobs)} file(s) {lost}") from exc
        raise
    finally:
        for job in jobs:
            if job.reader is not None:
                job.reader.close()
    held = faults.Held(env.spool)  # clients whose own folder refused their run or answers
    held.update({job.claim.client_id: job.held for job in jobs if job.held is not None})
    try:
        delivered = outbox.deliver_pending(
            env.engine.connect, env.spool, env.sealer, env.clock.now(), dict(copies),
            clients={job.claim.client_id for job in jobs}, isolate=held.isolate,
        )  # fmt: skip
    finally:
        _discard(copies)  # whatever was not delivered (moved) after all
    shelve_all(
        env,
        [(job.claim, job.intake, job.outcome) for job in jobs
         if job.outcome is not None and job.intake is not None
         and job.claim.client_id not in held],
        held.isolate,
    )  # fmt: skip
    for client_id in sorted({job.claim.client_id for job in jobs} - set(held)):
        held.confined(client_id, authorisation.tidy, env, [client_id])
    sent = set(delivered)
    for job in jobs:
        job.held = held.get(job.claim.client_id)
        if job.outcome is not None and job.intake is not None and job.held is None:
            mine = sum(1 for name in (job.outcome.answer or "").split(", ") if name in sent)
            _log(env, job.intake, job.outcome, mine, time.monotonic() - started)
    return list(jobs)


def _run_in_turn(
    env: Environment, tx: LedgerTx, jobs: Sequence[Job], copies: dict[int, PlainCopy]
) -> None:
    """`_run` of each file in order (`arrival`): after a client's file that did not run
    to its end (`Job.held`, `Job.failure`) its later ones wait behind it in work/, held
    with it or unanswered (`Job.outcome` None): they could spend what it was to pay."""
    stopped: dict[str, faults.ClientFault | None] = {}
    for job in jobs:
        client_id, job.failure = job.claim.client_id, None
        if client_id in stopped:
            job.held, job.outcome = stopped[client_id], None  # (of a rolled-back try)
            continue
        job.held = None
        _run(env, tx, job, copies)
        if job.held is not None or job.failure is not None:
            stopped[client_id] = job.held


def _run(env: Environment, tx: LedgerTx, job: Job, copies: dict[int, PlainCopy]) -> None:
    """One file's stages from intake to answer, in a savepoint of the group's transaction."""
    mine: dict[int, PlainCopy] = {}
    savepoint = tx.savepoint()
    try:
        read = job.reader if job.reader is not None else job.digest
        assert read is not None, "`process` reads or hashes every file"
        job.intake = intake = _intake(env, job.claim, read)
        known = record.known_file(tx.conn, intake)
        if job.claim.trial:  # from test/: checked and answered, nothing executed
            from gateway import trialrun

            job.outcome = trialrun.run(env, tx, intake, job.reader, known)
        elif known is not None:
            job.outcome = _already_known(env, tx.conn, intake, known)
        elif (request := route.request_message(intake.path)) is not None:
            from gateway import pullrun

            job.outcome = pullrun.run(env, tx, intake, request)
        else:
            job.outcome = _new(env, tx, job, mine)
        savepoint.commit()
    except Rejected as late:
        savepoint.rollback()
        _discard(mine)
        assert job.intake is not None
        savepoint = tx.savepoint()
        job.outcome = reject(env, tx.conn, job.intake, late.finding, late.parsed)
        savepoint.commit()
    except Exception as exc:
        savepoint.rollback()
        _discard(mine)
        if _raced(exc):
            raise RunAgain(f"{job.claim.original_name}: recorded meanwhile by another") from exc
        # A folder of its client's that refuses (a batch in awaiting/ it signs or cancels):
        # that client is held, its file waits in work/ (`Pipeline.run`), the others go on.
        job.held = faults.client_fault(exc, env.spool, job.claim.client_id)
        if job.held is not None:
            return
        if isinstance(exc, AssertionError) or (fault_of_ours(exc) and not _provoked(exc)):
            raise  # retried as a whole / a broken invariant stops the process
        job.outcome, job.failure = None, exc
        return
    except BaseException:
        _discard(mine)
        raise
    copies.update(mine)


def _provoked(exc: Exception) -> bool:
    """Whether a database error inside one file's run is the file's doing: a constraint
    or a column its values broke. Retried, it fails the same way, so it is a defect of
    ours that the file triggers (quarantined after three tries, SPEC §6) rather than a
    fault that would stop every client's files for as long as the file waits."""
    return isinstance(exc, IntegrityError | DataError)


# A file's identity, unique per client: another process that recorded the same one first
# makes our INSERT fail on one of these (PostgreSQL names the constraint; SQLite the
# columns, though with its one writer it cannot race).
_IDENTITY = {
    c.name: ", ".join(f"{db.files.name}.{col.name}" for col in c.columns)
    for c in db.files.constraints
    if isinstance(c, UniqueConstraint) and c.name in ("uq_gw_files_bytes", "uq_gw_files_msg_id")
}


# PostgreSQL's "deadlock detected" and "could not serialize access": the database undid
# the group's transaction for another's sake (two workers' groups taking the rows of
# accounts, or of their notification counters, in opposite orders: a tester, two workers,
# PostgreSQL); done again at once, it goes through — not a fault to wait out. Caught where
# the group's transaction ends, whichever statement of it was undone.
_LOST_LOCKS = {"40P01": "lost a deadlock to another writer", "40001": "lost to another writer"}


def _lost_locks(exc: DBAPIError) -> str | None:
    return _LOST_LOCKS.get(getattr(exc.orig, "sqlstate", None) or "")


def _raced(exc: Exception) -> bool:
    """Whether a file's run failed because another process recorded the same file (its
    bytes, its MsgId) after this one looked: run again, it finds the other's row and is
    answered as a repeat or DU01 — not a defect to count towards quarantine."""
    if not isinstance(exc, IntegrityError):
        return False
    named = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if named is not None:
        return named in _IDENTITY
    return any(f"failed: {columns}" in str(exc.orig) for columns in _IDENTITY.values())


def _new(env: Environment, tx: LedgerTx, job: Job, copies: dict[int, PlainCopy]) -> Outcome:
    """A file not seen before: a signature container (SPEC §11), a batch that may have to
    wait for signatures (the authorisation stage before decide), or any other."""
    intake = job.intake
    assert intake is not None
    # (A file read as a batch is none: `process` reads no container.)
    if job.reader is None and route.is_container(intake.path, intake.original_name):
        from gateway import signature_run

        return signature_run.container_file(env, tx, intake, copies, job.batch_ahead)
    guarded = authorisation.levels_of(env.settings.client(intake.client_id))
    if not guarded or job.reader is None:
        return new_file(env, tx, intake, job.reader, copies)
    # Run as usual (read once); the first payment information that debits an account
    # needing signatures undoes the run, and the batch is read again to be admitted as
    # one that waits. (Admitting first read every batch of such a client twice.)
    attempt = tx.savepoint()
    try:
        outcome = new_file(env, tx, intake, job.reader, copies, guarded=guarded)
    except NeedsSignatures:
        attempt.rollback()
    except BaseException:
        attempt.rollback()
        raise
    else:
        attempt.commit()
        return outcome
    job.reader.close()
    job.reader = reading.read(intake.path, env.settings)
    job.reader.digest()
    waiting = authorisation.admit(env, tx, intake, job.reader)
    assert waiting is not None, "a batch debiting a guarded account waits or is rejected"
    return waiting


def _final_report(conn: Any, intake: Intake, known: Any) -> str:
    """SPEC §6: the original's answers once more, each as it was sent, with its MsgId
    (SPEC §8: a re-delivery keeps its original's) — a batch's first pain.002 and the
    follow-ups of later runs, in order (a follow-up lists only the payments its run
    decided: together they are the final answer, the last one's group status that of all
    the payments); a report request's copies."""
    answers = outbox.answers_of(conn, known)
    assert answers, f"file {known.id} was answered before: its first answer is noted"
    return ", ".join(
        outbox.enqueue_again(conn, outbox_id, intake.now_local, claim_name=intake.claim_name)
        for outbox_id in answers
    )


def _log(
    env: Environment, intake: Intake, outcome: Outcome, delivered: int, seconds: float
) -> None:
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
        delivered=delivered,
        recovered=outcome.recovered,
        duration_ms=round(seconds * 1000, 1),
    )


def _discard(copies: dict[int, PlainCopy]) -> None:
    for copy in copies.values():
        copy.discard()
    copies.clear()


# -- intake ------------------------------------------------------------------------------------


def _intake(env: Environment, claim: Claim, read: Reading | Digest) -> Intake:
    """What is known on arrival. The reading child hashes the file first; a file no reader
    reads (a container, a file over the size limit) was hashed before the run (`process`)."""
    sha256, size = read.digest() if not isinstance(read, Digest) else read
    return take_in(
        client_id=claim.client_id,
        path=claim.path,
        original_name=claim.original_name,
        receipt=claim.receipt,
        sha256=sha256,
        size=size,
        arrived=on_clock(env.clock, claim.arrived),
        now=env.clock.now(),
        timezone=env.settings.timezone,
    )


# -- a file seen before ------------------------------------------------------------------------


def _already_known(env: Environment, conn: Any, intake: Intake, known: Any) -> Outcome:
    """The same bytes again: this very claim recorded by a run that stopped before
    shelving it, or a repeated upload, answered with its original report once more (a
    batch still waiting for signatures, or a container: where its batch stands now, SPEC
    §11)."""
    refused = known.accepted_msg_id is None and known.group_status == "RJCT"
    shelf = "rejected" if refused else "archive"
    if known.claim_name == intake.claim_name:
        shelf = authorisation.recovered_shelf(conn, known) or shelf
        return recorded(conn, known, shelf, recovered=True)  # its first run's outcome is gone
    answered = outbox.answer_to_claim(conn, intake.client_id, intake.claim_name)
    if answered is not None:  # a repeated upload, answered before a stop
        return Outcome(
            known.id, "duplicates", known.group_status, msg_id=known.msg_id,
            answer=answered, recovered=True,
        )  # fmt: skip
    from gateway import pullrun, signature_run

    status, said = known.group_status, "its original answer was delivered again"
    again = signature_run.answer_again(env, conn, intake, known) or pullrun.refused_again(
        env, conn, intake, known
    )
    if again is not None:  # SPEC §11: where its signatures, or its batch, stand now; §15: a
        # report request past the day's reports
        name, said, status = again
    else:
        name = _final_report(conn, intake, known)
    return Outcome(
        known.id,
        "duplicates",
        status,
        info=f"the same bytes as file {known.id} ({known.original_name}); {said}",
        msg_id=known.msg_id,
        answer=name,
    )
