"""Processing one claimed file: the shell around read → check → decide → execute → answer.

The whole ledger effect of a file, its payment rows and its pain.002 are written
in ONE database transaction (the outbox pattern). Before it commits nothing has
happened; after it commits, delivering the answer and shelving the file are
repeatable steps. A crash anywhere is therefore harmless: the file is still in
`work/` (or `in/`), and running again either redoes the transaction or, finding
the file already recorded, just finishes the repeatable steps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import DBAPIError

from gateway import db, logs, metrics, statements
from gateway.environment import Environment
from gateway.errors import TransientError
from gateway.inbound import answers, pain001_v03, rules
from gateway.inbound.findings import Finding
from gateway.inbound.pain001_v03 import ParsedFile, ParsedHeader, ParsedPmtInf
from gateway.inbound.reader import Chunk, Incoming, Reader, file_digest
from gateway.inbound.run import FileRun, rejections_listed_max
from gateway.outbox import PlainCopy, enqueue, file_name
from gateway.progress import FileProgress
from gateway.reasons import Reason
from gateway.spool import Claim
from gateway.statuses import GroupStatus, TxStatus, derive
from ledger.store import LedgerTx

log = structlog.get_logger("gateway.inbound")


@dataclass(slots=True)
class Outcome:
    """What happened to one file: for the canonical log line, the findings file and tests."""

    file_id: int
    shelf: str  # archive | rejected | duplicates
    group_status: str
    reason: Reason | None = None
    info: str | None = None
    msg_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)  # booked per currency, minor units
    answer: str | None = None
    rejected: list[tuple[int, str, str, str]] = field(default_factory=list)  # seq, e2e, code, info
    recovered: bool = False


def _received_at(claim: Claim, fallback: dt.datetime) -> dt.datetime:
    text = (claim.receipt or {}).get("received_at")
    if isinstance(text, str):
        try:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is not None:
                return min(moment, fallback)
        except ValueError:
            pass
    return fallback


class FileProcessor:
    """Turns one claimed file into ledger effects, an answer in the outbox, and a shelf."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.settings = env.settings

    # -- the one entry point ---------------------------------------------------------------

    def process(self, claim: Claim, reader: Reader | None = None) -> Outcome:
        """Process `claim`; `reader`, if given, is already reading it (`gateway.readahead`)
        and is used or closed here. A file over the size limit is never read, not even
        to hash it (a 2 GB upload)."""
        if reader is None and os.stat(claim.path).st_size <= self.settings.max_file_bytes:
            reader = Reader(claim.path, transactions_max=self.settings.max_transactions)
        try:
            return self._process(claim, reader)
        finally:
            if reader is not None:
                reader.close()

    def _process(self, claim: Claim, reader: Reader | None) -> Outcome:
        started = time.monotonic()
        now = self.env.clock.now()
        info = os.stat(claim.path)
        # The reading child hashes the file first (`Reader.digest`); a file over the
        # size limit has no reader.
        sha, size = f"not-read:{claim.path.name}"[:64], info.st_size
        mtime = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)
        received = _received_at(claim, min(mtime, now))
        # Plain copies of answers rendered in the transaction below, by outbox id: once
        # it has committed, delivery moves them into out/ as they are (`deliver_pending`).
        copies: dict[int, PlainCopy] = {}
        committed: dict[int, PlainCopy] = {}
        try:
            try:
                if reader is not None:
                    sha, size = reader.digest()
                with self.env.ledger.begin(checkpoint_after=True) as tx:
                    known = tx.conn.execute(
                        select(db.files).where(
                            db.files.c.client_id == claim.client_id, db.files.c.sha256 == sha
                        )
                    ).first()
                    if known is not None:
                        outcome = self._already_known(tx.conn, claim, known, now)
                    else:
                        outcome = self._new_file(
                            tx, claim, sha, size, received, now, reader, copies
                        )
                committed = copies
            except _Rejected as late:
                # Found invalid after some of it was executed: that transaction is rolled
                # back, and the file is answered as rejected in a new one.
                with self.env.ledger.begin() as tx:
                    outcome = self._reject(
                        tx.conn, claim, sha, size, received, now, late.finding, late.parsed
                    )
        except (DBAPIError, AssertionError, TransientError):
            raise  # transient (retry later) or a broken invariant (stop): never the file's fault
        except Exception as exc:
            # A fault this file provoked in our code: nothing was committed. The client
            # still gets an answer and the file a place, and the daemon goes on.
            log.exception("file.failed", client=claim.client_id, file=claim.original_name)
            finding = Finding(
                Reason.FF01,
                f"the file could not be processed ({type(exc).__name__}); the treasury "
                "has been alerted",
            )
            # Recorded under a name, not its hash: the same bytes sent again once the
            # fault is fixed are processed afresh, not answered as a duplicate.
            failed = f"failed:{claim.path.name}"[:64]
            if sha.startswith("not-read:") and reader is not None:
                sha, size = file_digest(claim.path)  # the reader died before its digest
            with self.env.ledger.begin() as tx:
                outcome = self._reject(tx.conn, claim, failed, size, received, now, finding, None)
        finally:
            # A copy whose transaction did not commit is never delivered.
            for copy in copies.values():
                if copy not in committed.values():
                    copy.path.unlink(missing_ok=True)
        try:
            answer_delivered = self._deliver(committed)
        finally:
            for copy in committed.values():
                copy.path.unlink(missing_ok=True)  # not delivered (moved) after all
        self.env.spool.clear_partial_sidecars(claim)
        target = self.env.spool.shelf_target(
            claim, outcome.shelf, outcome.file_id, now.astimezone(self.settings.timezone).date()
        )
        if outcome.shelf == "archive" and self.env.sealer is not None:
            self._seal_archive(claim, target.name, received, bytes.fromhex(sha))
        self._write_findings(claim, outcome, sha, size, received)
        self.env.spool.shelve(claim, target)
        seconds = time.monotonic() - started
        metrics.file_processed(self.env.engine, claim.client_id, outcome, seconds)
        log.info(
            "file.processed",
            client=claim.client_id,
            user=(claim.receipt or {}).get("sftp_user"),
            source_ip=(claim.receipt or {}).get("source_ip"),
            file=claim.original_name,
            size=size,
            sha256=sha,
            msg_id=outcome.msg_id,
            file_id=outcome.file_id,
            shelf=outcome.shelf,
            group_status=outcome.group_status,
            reason=outcome.reason.value if outcome.reason else None,
            counts=outcome.counts,
            amounts=logs.amounts(outcome.amounts),
            answer=outcome.answer,
            delivered=answer_delivered,
            recovered=outcome.recovered,
            duration_ms=round(seconds * 1000, 1),
        )
        return outcome

    def _deliver(self, rendered: dict[int, PlainCopy]) -> int:
        from gateway.outbox import deliver_pending

        return len(
            deliver_pending(
                self.env.engine.connect,
                self.env.spool,
                self.env.sealer,
                self.env.clock.now(),
                dict(rendered),
            )
        )

    # -- a file seen before ----------------------------------------------------------------

    def _already_known(
        self, conn: Connection, claim: Claim, known: Any, now: dt.datetime
    ) -> Outcome:
        shelf = "rejected" if known.accepted_msg_id is None else "archive"
        if known.claim_name == claim.path.name:
            # This very claim was committed; an earlier run stopped before shelving it.
            return Outcome(known.id, shelf, known.group_status, msg_id=known.msg_id, recovered=True)
        answered = conn.execute(
            select(db.outbox.c.file_name).where(
                db.outbox.c.client_id == claim.client_id,
                db.outbox.c.claim_name == claim.path.name,
            )
        ).first()
        if answered is not None:  # a repeated upload, answered before a stop
            return Outcome(
                known.id,
                "duplicates",
                known.group_status,
                msg_id=known.msg_id,
                answer=answered[0],
                recovered=True,
            )
        first = conn.execute(
            select(db.outbox.c.body, db.outbox.c.msg_id, db.outbox.c.message).where(
                db.outbox.c.id == known.first_outbox_id
            )
        ).first()
        assert first is not None, "every recorded file has its first answer"
        local = now.astimezone(self.settings.timezone)
        # The same answer again, as a file of its own: every upload gets one. Its name
        # carries the original MsgId, so within one second the next free second is used.
        while conn.execute(
            select(db.outbox.c.id).where(
                db.outbox.c.client_id == claim.client_id,
                db.outbox.c.file_name == file_name(local, first.message, first.msg_id),
            )
        ).first():
            local += dt.timedelta(seconds=1)
        _, name = enqueue(
            conn,
            client_id=claim.client_id,
            message=first.message,
            msg_id=first.msg_id,
            created_local=local,
            body=first.body,
            file_id=known.id,
            claim_name=claim.path.name,
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

    # -- a new file ------------------------------------------------------------------------

    def _new_file(
        self,
        tx: LedgerTx,
        claim: Claim,
        sha: str,
        size: int,
        received: dt.datetime,
        now: dt.datetime,
        reader: Reader | None,
        copies: dict[int, PlainCopy],
    ) -> Outcome:
        conn = tx.conn
        if size > self.settings.max_file_bytes:
            too_big = Finding(
                Reason.FF01,
                f"the file has {size} bytes, more than the limit {self.settings.max_file_bytes}",
            )
            return self._reject(conn, claim, sha, size, received, now, too_big, None)
        assert reader is not None, "a file within the size limit has its reader (`process`)"
        with reader:
            events = iter(reader)
            first = next(events)
            if isinstance(first, ParsedFile):  # unusable before its group header ended
                assert first.failure is not None
                return self._reject(conn, claim, sha, size, received, now, first.failure, first)
            assert isinstance(first, ParsedHeader)
            duplicate = self._duplicate_msg_id(conn, claim, first)
            if duplicate is None:
                return self._accept(
                    tx, claim, sha, size, received, now, first, events, copies
                )
            # The whole file is read all the same: a file that is also broken is FF01.
            parsed = _summary(events)
            finding = parsed.failure or duplicate
            return self._reject(conn, claim, sha, size, received, now, finding, parsed)

    def _duplicate_msg_id(
        self, conn: Connection, claim: Claim, header: ParsedHeader
    ) -> Finding | None:
        used = conn.execute(
            select(db.files.c.id).where(
                db.files.c.client_id == claim.client_id,
                db.files.c.accepted_msg_id == header.msg_id,
            )
        ).first()
        if used is None:
            return None
        return Finding(Reason.DU01, f"MsgId {header.msg_id} was already used by a different file")

    def _file_row(
        self,
        claim: Claim,
        sha: str,
        size: int,
        received: dt.datetime,
        now: dt.datetime,
        parsed: ParsedFile | None,
    ) -> dict[str, Any]:
        receipt = claim.receipt or {}
        header = parsed.header if parsed is not None else None
        return {
            "client_id": claim.client_id,
            "sha256": sha,
            "size_bytes": size,
            "original_name": claim.original_name[:255],
            "received_at": received,
            "processed_at": now,
            "msg_id": header.msg_id[:35] if header else None,
            "message": parsed.message if parsed is not None and header else "UNKNOWN",
            "nb_of_txs": parsed.count if parsed is not None else 0,
            "sftp_user": receipt.get("sftp_user"),
            "source_ip": receipt.get("source_ip"),
            "key_fingerprint": receipt.get("key_fingerprint"),
            "reports": 1,
            "claim_name": claim.path.name,
        }

    def _reject(
        self,
        conn: Connection,
        claim: Claim,
        sha: str,
        size: int,
        received: dt.datetime,
        now: dt.datetime,
        finding: Finding,
        parsed: ParsedFile | None,
    ) -> Outcome:
        row = self._file_row(claim, sha, size, received, now, parsed)
        row.update(
            group_status=GroupStatus.RJCT.value,
            reason=finding.reason.value,
            additional_info=finding.info[:1000],
        )
        file_id = conn.execute(insert(db.files).values(**row).returning(db.files.c.id)).scalar_one()
        local = now.astimezone(self.settings.timezone)
        header = parsed.header if parsed is not None else None
        outbox_id, name = answers.issue(
            conn,
            client_id=claim.client_id,
            file_id=file_id,
            local=local,
            render=lambda msg_id: answers.build_rejection(
                msg_id=msg_id,
                created_at=local,
                bic=self.settings.bic,
                original_msg_id=header.msg_id if header else None,
                original_message=row["message"],
                nb_of_txs=_int_or_none(header.nb_of_txs) if header else None,
                reason=finding.reason,
                info=finding.short(),
            ),
        )
        conn.execute(
            update(db.files).where(db.files.c.id == file_id).values(first_outbox_id=outbox_id)
        )
        return Outcome(
            file_id,
            "rejected",
            GroupStatus.RJCT.value,
            finding.reason,
            finding.info,
            msg_id=row["msg_id"],
            answer=name,
        )

    def _accept(
        self,
        tx: LedgerTx,
        claim: Claim,
        sha: str,
        size: int,
        received: dt.datetime,
        now: dt.datetime,
        header: ParsedHeader,
        events: Iterator[Incoming],
        copies: dict[int, PlainCopy],
    ) -> Outcome:
        """Execute the file's chunks as they are read; only its summary says whether the
        file as a whole is valid. If it is not, `_Rejected` rolls everything back. The
        answer's plain copy is recorded in `copies` (by outbox id) for delivery."""
        conn = tx.conn
        row = self._file_row(claim, sha, size, received, now, ParsedFile(header=header))
        row.update(group_status="PDNG", accepted_msg_id=header.msg_id)
        file_id = conn.execute(insert(db.files).values(**row).returning(db.files.c.id)).scalar_one()
        with (
            contextlib.closing(answers.FirstReport(self.env.spool.tmp())) as report,
            contextlib.closing(FileProgress(
                self.env.spool.root, claim.client_id, claim.path.name, claim.original_name,
                _int_or_none(header.nb_of_txs), self.env.clock,
            )) as progress,
        ):
            run = FileRun(self.settings, tx, claim, file_id, sha, received, now, header, report)
            for event in events:
                if isinstance(event, Chunk):
                    run.execute_chunk(event.transactions, event.iban_problems)
                    progress.advance(run.counts.total())
                elif isinstance(event, ParsedPmtInf):
                    run.add_payment_info(event)
                elif isinstance(event, ParsedFile):
                    finding = event.failure or rules.file_findings(event)
                    if finding is not None:
                        raise _Rejected(finding, event)
                    run.finish()
                    parsed = event
            statements.notify(self.env, conn, run.references)
            local = now.astimezone(self.settings.timezone)
            conn.execute(
                update(db.files).where(db.files.c.id == file_id).values(nb_of_txs=parsed.count)
            )
            copy_path = self.env.spool.tmp() / f".{secrets.token_hex(8)}.report.xml"
            try:
                with open(copy_path, "wb") as copy:
                    outbox_id, name = answers.issue(
                        conn,
                        client_id=claim.client_id,
                        file_id=file_id,
                        local=local,
                        render=lambda msg_id: report.render(
                            msg_id=msg_id,
                            created_at=local,
                            bic=self.settings.bic,
                            original_msg_id=header.msg_id,
                            original_msg_name=pain001_v03.MESSAGE,
                            original_nb_of_txs=parsed.count,
                            original_ctrl_sum=_decimal_or_none(header.ctrl_sum),
                            copy=copy,
                        ),
                    )
            except BaseException:
                copy_path.unlink(missing_ok=True)
                raise
            # Hashed (for its seal) and synced while the transaction commits.
            copies[outbox_id] = PlainCopy(copy_path)
        group = derive(run.counts)
        conn.execute(
            update(db.files)
            .where(db.files.c.id == file_id)
            .values(first_outbox_id=outbox_id, group_status=group.value)
        )
        return Outcome(
            file_id,
            "archive",
            group.value,
            msg_id=header.msg_id,
            counts=dict(run.counts),
            amounts=dict(run.booked),
            answer=name,
            rejected=run.rejected,
        )

    # -- archive seal and findings -----------------------------------------------------------

    def _seal_archive(
        self, claim: Claim, archived_name: str, received: dt.datetime, sha256: bytes
    ) -> None:
        """The seal of an accepted batch, with its receipt, beside it in work/ (it moves
        into the archive with the file; its Reference URI is the archived name)."""
        from gateway.outbound.delivery import write_bytes_atomically
        from gateway.outbound.seal import receipt_properties

        assert self.env.sealer is not None
        receipt = claim.receipt or {}
        properties = receipt_properties(
            received_at=received,
            client_id=claim.client_id,
            sftp_user=str(receipt.get("sftp_user") or "unknown"),
            key_fingerprint=str(receipt.get("key_fingerprint") or "unknown"),
            source=str(receipt.get("source_ip") or "unknown"),
        )
        seal = self.env.sealer.sign_file(
            claim.path, properties=properties, name=archived_name, sha256=sha256
        )
        write_bytes_atomically(claim.path.parent, claim.path.name + ".sig", seal)

    def _write_findings(
        self, claim: Claim, outcome: Outcome, sha: str, size: int, received: dt.datetime
    ) -> None:
        from gateway.spool import write_text_atomically

        target = claim.path.with_name(claim.path.name + ".findings.txt")
        write_text_atomically(target, findings_text(claim, outcome, sha, size, received))


class _Rejected(Exception):
    """A file found invalid as a whole after its first chunks were executed."""

    def __init__(self, finding: Finding, parsed: ParsedFile) -> None:
        super().__init__(finding.info)
        self.finding = finding
        self.parsed = parsed


def _summary(events: Iterator[Incoming]) -> ParsedFile:
    """Read on to the end of the file, executing nothing, for its summary."""
    for event in events:
        if isinstance(event, ParsedFile):
            return event
    raise AssertionError("a read always ends with its summary")


def findings_text(
    claim: Claim, outcome: Outcome, sha: str, size: int, received: dt.datetime
) -> str:
    receipt = claim.receipt or {}
    lines = [
        f"File:        {claim.original_name}",
        f"Client:      {claim.client_id}",
        f"Received:    {received.isoformat()} by {receipt.get('sftp_user', 'unknown')} "
        f"from {receipt.get('source_ip', 'unknown')}",
        f"Size:        {size} bytes",
        f"SHA-256:     {sha}",
        f"MsgId:       {outcome.msg_id or '-'}",
        f"File number: {outcome.file_id}",
        f"Result:      {outcome.group_status}"
        + (f" {outcome.reason.value} ({outcome.reason.meaning})" if outcome.reason else ""),
    ]
    if outcome.info:
        lines.append(f"Why:         {outcome.info}")
    if outcome.counts:
        lines.append(
            "Transactions: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items()))
        )
    if outcome.amounts:
        from ledger.currency import format_minor

        lines.append(
            "Booked:      "
            + ", ".join(f"{format_minor(v, k)} {k}" for k, v in sorted(outcome.amounts.items()))
        )
    lines.append(f"Answer:      {outcome.answer or '(none: recovered after a restart)'}")
    if outcome.rejected:
        lines.append("")
        lines.append("Rejected transactions (position, EndToEndId, reason, why):")
        for seq, e2e, code, info in outcome.rejected[:rejections_listed_max]:
            lines.append(f"  #{seq + 1} {e2e} {code} {info}")
        more = outcome.counts.get(TxStatus.RJCT.value, 0) - len(outcome.rejected)
        if more > 0:
            lines.append(f"  … and {more} more: see the answer")
    return "\n".join(lines) + "\n"


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _decimal_or_none(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None
