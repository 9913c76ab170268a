"""What happened to a file (`Outcome`), and the last stage of its run: its seal (an
accepted batch), its findings file, and its move out of work/ onto its shelf.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from gateway import db
from gateway.environment import Environment
from gateway.files import sync_all, write_in_place
from gateway.inbound.intake import Intake
from gateway.outbound import answers
from gateway.outbound.outbox import Isolate
from gateway.pull_codes import RequestReason
from gateway.reasons import Reason
from gateway.spool import FINDINGS_SUFFIX, Claim
from gateway.statuses import TxStatus
from gateway.text import shown
from ledger.currency import format_minor

rejections_listed_max = 1000  # the findings file lists this many rejected payments


@dataclass(slots=True)
class Outcome:
    """What happened to one file: for the canonical log line, the findings file and tests."""

    file_id: int
    shelf: str  # archive | rejected | duplicates | awaiting | trials
    group_status: str
    reason: Reason | RequestReason | None = None  # RequestReason: a request's admi.002
    info: str | None = None
    msg_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)  # booked per currency, minor units
    answer: str | None = None
    rejected: list[tuple[int, str, str, str]] = field(default_factory=list)  # seq, e2e, code, info
    recovered: bool = False


def recorded(conn: Connection, file: Any, shelf: str, *, recovered: bool = False) -> Outcome:
    """What happened to the file of row `file` as the database has it, for a file whose
    run's outcome is not at hand — finished by a later run (after a restart, or once its
    client's folder works again), a waiting batch shelved once it stopped waiting: its
    payments as they stand, what they booked, those rejected, and its first answer."""
    p, o = db.payments.c, db.outbox.c
    mine = p.file_id == file.id
    ok, rjct = TxStatus.ACSC.value, TxStatus.RJCT.value
    booked = conn.execute(
        select(p.currency, func.sum(p.amount_minor))
        .where(mine, p.status == ok)
        .group_by(p.currency)
    )
    rejected = conn.execute(
        select(p.seq, p.end_to_end_id, p.reason, p.additional_info)
        .where(mine, p.status == rjct)
        .order_by(p.seq)
        .limit(rejections_listed_max)
    )
    answer = conn.execute(select(o.file_name).where(o.id == file.first_outbox_id)).scalar()
    return Outcome(
        file.id, shelf, file.group_status, _reason(file.reason),
        None if shelf == "archive" else file.additional_info, msg_id=file.msg_id,
        counts=dict(answers.status_counts(conn, file.id)),
        amounts={str(k): int(n) for k, n in booked},
        answer=answer, rejected=[(n, e2e, c or "", i or "") for n, e2e, c, i in rejected],
        recovered=recovered,
    )  # fmt: skip


def _reason(code: str | None) -> Reason | RequestReason | None:
    """A file's recorded reason code: a payment file's, or a request's (admi.002)."""
    if code in {r.value for r in Reason}:
        return Reason(code)
    return RequestReason(code) if code in {r.value for r in RequestReason} else None


# -- shelving ----------------------------------------------------------------------------------


def shelve_all(
    env: Environment,
    done: Sequence[tuple[Claim, Intake, Outcome]],
    isolate: Isolate | None = None,
) -> set[str]:
    """Seal (accepted batches), findings, and the move out of work/ onto its shelf, for
    each file of a group: every file's sidecars are written in place beside its claim in
    work/ and synced together, then each claim moves with them, then each shelf folder
    is synced once. Until a claim has moved, a run that stopped simply does it again.

    With `isolate`, a fault it takes as one client's (its work/ or its shelf refused)
    leaves that client's files in work/ and the others' are shelved; returns the clients
    whose files were left so."""
    held: set[str] = set()

    def each(step: Callable[[Claim, Intake, Outcome, Path], list[Path]]) -> list[Path]:
        written: list[Path] = []
        for (claim, intake, outcome), target in zip(done, targets, strict=True):
            if claim.client_id in held:
                continue
            try:
                written += step(claim, intake, outcome, target)
            except OSError as exc:
                if isolate is None or not isolate(claim.client_id, exc):
                    raise
                held.add(claim.client_id)
        return written

    targets = [_target(env, claim, intake, outcome) for claim, intake, outcome in done]
    sync_all(each(partial(_write_sidecars, env)))
    moved = each(lambda claim, _i, _o, target: [env.spool.shelve(claim, target, sync_folder=False)])
    sync_all({t.parent for t in moved})
    return held


def _target(env: Environment, claim: Claim, intake: Intake, outcome: Outcome) -> Path:
    if outcome.shelf == "awaiting":  # waits for signatures under its claim name (§11)
        return env.spool.awaiting(claim.client_id) / claim.path.name
    return env.spool.shelf_target(claim, outcome.shelf, outcome.file_id, intake.now_local.date())


def _write_sidecars(
    env: Environment, claim: Claim, intake: Intake, outcome: Outcome, target: Path
) -> list[Path]:
    """The seal of an accepted batch (naming the file as shelved at `target`) and the
    findings, beside the claim, not yet synced."""
    written = []
    if outcome.shelf == "archive" and env.sealer is not None:
        seal = env.sealer.sign_received(
            claim.path, name=target.name, sha256=intake.sha256, received_at=intake.received,
            client_id=intake.client_id, sftp_user=intake.user,
            key_fingerprint=intake.key_fingerprint, source=intake.source_ip,
        )  # fmt: skip
        written.append(claim.path.with_name(claim.path.name + ".sig"))
        write_in_place(written[-1], seal, mode=0o444, sync=False)  # immutable as the file
    written.append(claim.path.with_name(claim.path.name + FINDINGS_SUFFIX))
    write_in_place(written[-1], findings_text(intake, outcome), mode=0o444, sync=False)
    return written


def findings_text(intake: Intake, outcome: Outcome) -> str:
    """The human-readable findings file beside every shelved file."""
    lines = [
        f"File:        {intake.original_name}",
        f"Client:      {intake.client_id}",
        f"Received:    {intake.received.isoformat()} by {intake.user or 'unknown'} "
        f"from {intake.source_ip or 'unknown'}",
        f"Size:        {intake.size} bytes",
        f"SHA-256:     {intake.sha256}",
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
        # As instructed: a converted payment's amount is in its own currency, not the
        # debit in the account's (its pain.002 says that), so not "booked" (an auditor).
        lines.append(
            "Executed:    "
            + ", ".join(f"{format_minor(v, k)} {k}" for k, v in sorted(outcome.amounts.items()))
            + " (as instructed)"
        )
    lines.append(f"Answer:      {outcome.answer or '(none: recovered after a restart)'}")
    if outcome.rejected:
        lines.append("")
        lines.append("Rejected transactions (position, EndToEndId, reason, why):")
        for seq, e2e, code, why in outcome.rejected[:rejections_listed_max]:
            lines.append(f"  #{seq + 1} {e2e} {code} {why}")
        more = outcome.counts.get(TxStatus.RJCT.value, 0) - len(outcome.rejected)
        if more > 0:
            lines.append(f"  … and {more} more: see the answer")
    # Names and values a client chose are shown, never let change how a line reads.
    return "".join(shown(line) + "\n" for line in lines)
