"""The batches in `<spool>/awaiting/<client>/` (SPEC §11): the names of the states of a
waiting batch, where it lies, and `tidy`, which moves each batch that is no longer waiting
onto its shelf with a findings file listing every signature (repeatable: it moves
whatever the database says is no longer waiting, so a run stopped after its commit is
finished by the next)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from gateway import db
from gateway.environment import Environment
from gateway.files import sync_all, write_in_place
from gateway.inbound.intake import Intake
from gateway.shelving import Outcome, findings_text, recorded
from gateway.spool import ATTEMPTS_SUFFIX, SIDECAR_SUFFIXES
from gateway.statuses import TxStatus

log = structlog.get_logger("gateway.authorisation")

WAITING, EXECUTED, EXPIRED = "waiting", "executed", "expired"
CANCELLED = "annulled"  # cancelled by the client's camt.055 (`cancel_waiting`); ≤ 8 letters
CONTAINER = "ASiC-E"  # gw_files.message of a signature container's upload


def awaiting_folder(env: Environment, client_id: str) -> Path:
    return env.spool.awaiting(client_id)


def tidy(env: Environment, client_ids: Iterable[str]) -> list[Path]:
    """Move each batch in awaiting/ that is no longer waiting onto its shelf (executed:
    archive, expired: rejected), with its sidecars and a findings file. Repeatable."""
    moved = []
    for client_id in client_ids:
        folder = awaiting_folder(env, client_id)
        if not folder.is_dir():
            continue
        names = [p.name for p in folder.iterdir() if not _sidecar(p.name)]
        if not names:
            continue
        a, f = db.awaiting.c, db.files.c
        with env.engine.connect() as conn:
            rows = conn.execute(
                select(
                    db.awaiting, f.group_status, f.received_at.label("at"), f.size_bytes,
                    f.sftp_user, f.source_ip, f.key_fingerprint,
                )
                .join(db.files, db.files.c.id == a.file_id)
                .where(a.client_id == client_id, a.path.in_(names), a.state != WAITING)
            ).all()
        for row in rows:
            shelved = _shelve(env, folder / row.path, row)
            if shelved is not None:
                moved.append(shelved)
    return moved


def _sidecar(name: str) -> bool:
    """A file the spool keeps beside a batch (`spool.SIDECAR_SUFFIXES`: its receipt, seal
    and findings, which move with it), not a batch of its own."""
    return name.endswith((*SIDECAR_SUFFIXES, ATTEMPTS_SUFFIX)) or name.startswith(".")


def _shelve(env: Environment, path: Path, row: Any) -> Path | None:
    """Move the batch at `path` onto its shelf with its sidecars and findings; None if
    another process did so meanwhile (a cancellation's and a signature's pass tidy the
    same folder): whichever moves the batch first, its findings and receipt end up
    beside it once, and nothing is left in awaiting/."""
    kind = "archive" if row.state == EXECUTED else "rejected"
    closed = (row.closed_at or env.clock.now()).astimezone(env.settings.timezone).date()
    target = env.spool.shelf(kind, row.client_id, closed) / f"{row.file_id:08d}__{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    findings = path.with_name(path.name + ".findings.txt")
    with contextlib.suppress(FileNotFoundError):
        os.chmod(findings, 0o644)
    write_in_place(findings, _findings(env, row, path), mode=0o444, sync=False)
    written = [findings]
    if kind == "archive" and env.sealer is not None:  # SPEC §8: sealed like any accepted batch
        with contextlib.suppress(FileNotFoundError):  # shelved by the other meanwhile
            seal = env.sealer.sign_received(
                path, name=target.name, sha256=row.sha256, received_at=db.as_utc(row.at),
                client_id=row.client_id, sftp_user=row.sftp_user,
                key_fingerprint=row.key_fingerprint, source=row.source_ip,
            )  # fmt: skip
            written.append(path.with_name(path.name + ".sig"))
            write_in_place(written[-1], seal, sync=False)
    with contextlib.suppress(FileNotFoundError):  # moved by the other, which synced them
        sync_all(written)
    for suffix in SIDECAR_SUFFIXES:  # the spool's own list: the receipt goes too
        with contextlib.suppress(FileNotFoundError):  # moved by the other already
            os.replace(path.with_name(path.name + suffix), target.with_name(target.name + suffix))
    with contextlib.suppress(PermissionError, FileNotFoundError):
        os.chmod(path, 0o444)
    try:
        os.replace(path, target)
        moved = True
    except FileNotFoundError:
        moved = False  # shelved by the other meanwhile (the same target)
    sync_all({target.parent, path.parent})
    if not moved:
        return None
    log.info("batch.shelved", client=row.client_id, file_id=row.file_id, shelf=kind)
    return target


def _findings(env: Environment, row: Any, path: Path) -> str:
    """The findings of the batch of `row` as of any other file (`shelving.findings_text`:
    its MsgId, its result as its answers told it, its transactions, what was booked, its
    final answer), then what it waited for and every signature received."""
    intake, outcome = _as_shelved(env, row, path)
    closed = db.as_utc(row.closed_at) if row.closed_at is not None else intake.now
    lines = [
        findings_text(intake, outcome).rstrip("\n"),
        f"Waited for:  {row.level} signature(s) on {row.debited}; "
        f"{_CLOSED[row.state]} {closed.isoformat()}",
        "Signatures (container file, signer, certificate subject and serial, signing time, "
        "right, effect):",
    ]
    s = db.signatures.c
    with env.engine.connect() as conn:
        for sig in conn.execute(
            select(db.signatures).where(s.awaiting_id == row.id).order_by(s.id)
        ):
            # The signing time the signer claims, in UTC with its offset, as every time here.
            signed = db.as_utc(sig.signing_time).isoformat() if sig.signing_time else "-"
            lines.append(
                f"  file {sig.container_file_id} {sig.signatory or '-'}; {sig.subject or '-'}; "
                f"serial {sig.serial or '-'}; {signed}; "
                f"{sig.signatory_right or '-'}; {_effect(sig)}: {sig.detail}"
            )
    return "\n".join(lines) + "\n"


def _effect(sig: Any) -> str:
    """What a signature did for its batch: its reason code, or whether it counted."""
    return sig.reason or ("counted" if sig.counted else "not counted")


_CLOSED = {
    EXECUTED: "authorised and run as if received at",
    EXPIRED: "expired at",
    CANCELLED: "cancelled by the client at",
}


def _as_shelved(env: Environment, row: Any, path: Path) -> tuple[Intake, Outcome]:
    """The batch's intake and outcome as the database has them once it stopped waiting
    (`tidy` is repeatable, so nothing of the run that ended the waiting is at hand): its
    payments as they stand and its final answer (`first_outbox_id`). An expired or
    cancelled batch recorded no payments: its answer rejected every one of them."""
    with env.engine.connect() as conn:
        file = conn.execute(select(db.files).where(db.files.c.id == row.file_id)).one()
        outcome = recorded(conn, file, "archive" if row.state == EXECUTED else "rejected")
    outcome.counts = outcome.counts or {TxStatus.RJCT.value: file.nb_of_txs}
    intake = Intake(
        client_id=file.client_id, path=path, original_name=file.original_name,
        user=file.sftp_user, source_ip=file.source_ip, key_fingerprint=file.key_fingerprint,
        sha256=file.sha256, size=file.size_bytes, received=db.as_utc(file.received_at),
        now=env.clock.now(), timezone=env.settings.timezone,
    )  # fmt: skip
    return intake, outcome
