"""The outbox: messages owed to clients are database rows first, files second.

A message is rendered and stored (zlib-compressed) in the same database
transaction as the ledger effect it reports. Delivery into `out/` is a separate
step that can run any number of times: it writes the file under its final name
(seal first) and only then marks the row delivered, so a crash in between
delivers the same bytes under the same name again — never a second, different file.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, insert, select, update

from gateway import db
from gateway.files import fsync_file
from gateway.outbound.delivery import deliver
from gateway.outbound.seal import Sealer, file_sha256
from gateway.spool import Spool

compress_level = 3  # fast; reports are regular XML and shrink ~10x anyway
decompress_chunk_bytes = 1 << 20


class _Compressor:
    """A write-only binary stream that compresses what the writers give it (and, if
    asked, writes it as it is to `copy` too)."""

    def __init__(self, copy: BinaryIO | None = None) -> None:
        self._z = zlib.compressobj(compress_level)
        self._parts: list[bytes] = []
        self._copy = copy

    def write(self, data: bytes) -> int:
        self._parts.append(self._z.compress(data))
        if self._copy is not None:
            self._copy.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def finish(self) -> bytes:
        self._parts.append(self._z.flush())
        return b"".join(self._parts)


def render(write: Callable[[BinaryIO], None], copy: BinaryIO | None = None) -> bytes:
    """Run a streaming writer into compressed bytes (and the plain bytes into `copy`)."""
    sink = _Compressor(copy)
    write(sink)  # type: ignore[arg-type]  # duck-typed binary stream
    return sink.finish()


class PlainCopy:
    """The plain bytes of an answer just rendered, in a file in the spool's tmp/. While
    the caller commits, a thread readies it for delivery: it works out the digest for
    the seal (hashlib lets go of the GIL) and flushes the file to disk, so that after
    the commit neither the seal nor `delivery.deliver`'s sync reads or waits for 35 MB."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._ready, daemon=True)
        self._thread.start()

    def _ready(self) -> None:
        try:
            self._digest = file_sha256(self.path)
            fsync_file(self.path)
        except BaseException as exc:  # handed to whoever asks for the digest
            self._error = exc

    def digest(self) -> bytes:
        """The file's SHA-256 (waits for the thread)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest


def file_name(created_local: dt.datetime, message: str, msg_id: str) -> str:
    """SPEC §8: `<YYYYMMDDTHHMMSS>_<message type>_<MsgId>.xml` (local treasury time)."""
    return f"{created_local:%Y%m%dT%H%M%S}_{message}_{msg_id}.xml"


def enqueue(
    conn: Connection,
    *,
    client_id: str,
    message: str,
    msg_id: str,
    created_local: dt.datetime,
    body: bytes,
    file_id: int | None = None,
    claim_name: str | None = None,
) -> tuple[int, str]:
    name = file_name(created_local, message, msg_id)
    outbox_id = conn.execute(
        insert(db.outbox)
        .values(
            client_id=client_id,
            message=message,
            msg_id=msg_id,
            file_name=name,
            created_at=created_local,
            body=body,
            file_id=file_id,
            claim_name=claim_name,
        )
        .returning(db.outbox.c.id)
    ).scalar_one()
    return int(outbox_id), name


def answer_to_claim(conn: Connection, client_id: str, claim_name: str) -> str | None:
    """The name of the answer already issued to a repeated upload (by its claim name)."""
    found = conn.execute(
        select(db.outbox.c.file_name).where(
            db.outbox.c.client_id == client_id, db.outbox.c.claim_name == claim_name
        )
    ).first()
    return str(found[0]) if found is not None else None


def enqueue_again(
    conn: Connection, outbox_id: int, created_local: dt.datetime, *, claim_name: str
) -> str:
    """The message `outbox_id` once more, as a file of its own (a repeated upload gets
    its original answer again). Its name carries the original MsgId, so within one
    second the next free second is used. Returns the new name."""
    first = conn.execute(select(db.outbox).where(db.outbox.c.id == outbox_id)).one()
    local = created_local
    while conn.execute(
        select(db.outbox.c.id).where(
            db.outbox.c.client_id == first.client_id,
            db.outbox.c.file_name == file_name(local, first.message, first.msg_id),
        )
    ).first():
        local += dt.timedelta(seconds=1)
    _, name = enqueue(
        conn,
        client_id=first.client_id,
        message=first.message,
        msg_id=first.msg_id,
        created_local=local,
        body=first.body,
        file_id=first.file_id,
        claim_name=claim_name,
    )
    return name


def deliver_pending(
    conn_factory: Callable[[], Connection],
    spool: Spool,
    sealer: Sealer | None,
    now: dt.datetime,
    rendered: dict[int, PlainCopy] | None = None,
) -> list[str]:
    """Write every undelivered message into its client's `out/`; returns the names written.

    `rendered` may hold, by outbox id, the plain copy of a message this process has just
    rendered and committed: it is delivered as it is, and sealed with the digest taken
    meanwhile, instead of being read back and inflated (a 100,000-payment answer is
    ~35 MB). Any other message — after a restart, always — comes from its row."""
    rendered = rendered if rendered is not None else {}
    written: list[str] = []
    with conn_factory() as conn:
        pending = conn.execute(
            select(db.outbox.c.id, db.outbox.c.client_id, db.outbox.c.file_name)
            .where(db.outbox.c.delivered_at.is_(None))
            .order_by(db.outbox.c.id)
        ).all()
    for outbox_id, client_id, name in pending:
        copy = rendered.pop(outbox_id, None)
        sha256: bytes | None = None
        if copy is not None and copy.path.exists():
            tmp, sha256 = copy.path, copy.digest()
        else:
            with conn_factory() as conn:
                body = conn.execute(
                    select(db.outbox.c.body).where(db.outbox.c.id == outbox_id)
                ).scalar_one()
            tmp = spool.tmp() / f".{outbox_id}.{secrets.token_hex(4)}.xml"
            _inflate(body, tmp)
        try:
            deliver(tmp, spool.outbox(client_id), name, sealer, sha256=sha256)
        finally:
            if tmp.exists():
                tmp.unlink()
        with conn_factory() as conn, conn.begin():
            conn.execute(
                update(db.outbox).where(db.outbox.c.id == outbox_id).values(delivered_at=now)
            )
        written.append(name)
    return written


def _inflate(body: bytes, target: os.PathLike[str]) -> None:
    z = zlib.decompressobj()
    with open(target, "wb") as handle:
        for start in range(0, len(body), decompress_chunk_bytes):
            handle.write(z.decompress(body[start : start + decompress_chunk_bytes]))
        handle.write(z.flush())
