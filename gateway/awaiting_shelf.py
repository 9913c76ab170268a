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
from gateway.spool import ATTEMPTS_SUFFIX, SIDECAR_SUFFIXES

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
    lines = [
        f"File:        {path.name}",
        f"Client:      {row.client_id}",
        f"Received:    {db.as_utc(row.at).isoformat()} by {row.sftp_user or 'unknown'} "
        f"from {row.source_ip or 'unknown'}",
        f"Size:        {row.size_bytes} bytes",
        f"SHA-256:     {row.sha256}",
        f"File number: {row.file_id}",
        f"Waited for:  {row.level} signature(s) on {row.debited}",
        f"Result:      {row.state} ({row.group_status})",
        "Signatures (container file, signer, certificate subject and serial, signing time, "
        "right, effect):",
    ]
    s = db.signatures.c
    with env.engine.connect() as conn:
        for sig in conn.execute(
            select(db.signatures).where(s.awaiting_id == row.id).order_by(s.id)
        ):
            lines.append(
                f"  file {sig.container_file_id} {sig.signatory or '-'}; {sig.subject or '-'}; "
                f"serial {sig.serial or '-'}; {sig.signing_time or '-'}; "
                f"{sig.signatory_right or '-'}; {sig.reason or 'counted'}: {sig.detail}"
            )
    return "\n".join(lines) + "\n"
