"""The outbox: messages owed to clients are database rows first, files second.

A message is rendered and stored (zlib-compressed) in the same database
transaction as the ledger effect it reports. Delivery into `out/` is a separate
step that can run any number of times: it writes the file under its final name
(seal first) and only then marks the row delivered, so a crash in between
delivers the same bytes under the same name again — never a second, different file.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import secrets
import threading
import zlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from gateway import db
from gateway.files import folders_locked, fsync_file
from gateway.outbound.deflate import Compressor, Copy
from gateway.outbound.delivery import Delivery, deliver_all
from gateway.outbound.seal import Sealer
from gateway.spool import Spool
from ledger.engine import writing

decompress_chunk_bytes = 1 << 20
delivery_round_messages_max = 64  # messages moved into out/ between two folder syncs
background_sync_bytes_min = 1 << 20  # a plain copy this big is synced while the caller commits


def render(write: Callable[[BinaryIO], None], copy: Copy | None = None) -> bytes:
    """Run a streaming writer into compressed bytes (and the plain bytes into `copy`)."""
    sink = Compressor(copy)
    try:
        write(sink)  # type: ignore[arg-type]  # duck-typed binary stream
        return sink.finish()
    finally:
        sink.close()


class PlainCopy:
    """The plain bytes of an answer being rendered, written to a file in the spool's
    tmp/ and hashed as they pass (for the seal), so that delivery neither reads nor
    inflates them back (a 100,000-payment answer is ~35 MB). A big copy is flushed to
    disk by a thread while the caller commits; a small one is synced with the rest of
    its delivery round."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self._size = 0
        self._flush: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, data: bytes) -> int:
        assert self._file is not None, "written after close"
        self._hash.update(data)
        self._size += len(data)
        return self._file.write(data)

    def close(self) -> None:
        """Done writing: a big copy starts going to disk."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        if self._size > background_sync_bytes_min:
            self._flush = threading.Thread(target=self._sync, daemon=True)
            self._flush.start()

    def _sync(self) -> None:
        try:
            fsync_file(self.path)
        except BaseException as exc:  # handed to whoever delivers the copy
            self._error = exc

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def delivery(self, folder: Path, name: str) -> Delivery:
        """The copy, ready for `delivery.deliver_all`."""
        self.close()
        synced = False
        if self._flush is not None:
            self._flush.join()
            if self._error is not None:
                raise self._error
            synced = True
        return Delivery(self.path, folder, name, self._hash.digest(), synced=synced)


def file_name(created_local: dt.datetime, message: str, msg_id: str) -> str:
    """SPEC §8: `<YYYYMMDDTHHMMSS>_<message type>_<MsgId>.xml` (local treasury time)."""
    return f"{created_local:%Y%m%dT%H%M%S}_{message}_{msg_id}.xml"


_ENQUEUE = insert(db.outbox).returning(db.outbox.c.id)  # built once: every answer runs it


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
    report_no: int | None = None,
) -> tuple[int, str]:
    name = file_name(created_local, message, msg_id)
    outbox_id = conn.execute(
        _ENQUEUE,
        {
            "client_id": client_id,
            "message": message,
            "msg_id": msg_id,
            "file_name": name,
            "created_at": created_local,
            "body": body,
            "file_id": file_id,
            "claim_name": claim_name,
            "report_no": report_no,
        },
    ).scalar_one()
    return int(outbox_id), name


def answer_to_claim(conn: Connection, client_id: str, claim_name: str) -> str | None:
    """The names of the answers already issued to a repeated upload (by its claim name)."""
    o = db.outbox.c
    found = conn.execute(
        select(o.file_name).where(o.client_id == client_id, o.claim_name == claim_name)
        .order_by(o.id)
    ).scalars().all()  # fmt: skip
    return ", ".join(found) or None


def belong_to(conn: Connection, outbox_ids: Sequence[int], file_id: int) -> None:
    """Note the messages `outbox_ids` as the reports, in order, that answer the file
    `file_id` (a report request's copies, issued before its row was written)."""
    o = db.outbox.c
    for report_no, outbox_id in enumerate(outbox_ids, start=1):
        conn.execute(
            update(db.outbox).where(o.id == outbox_id)
            .values(file_id=file_id, report_no=report_no)
        )  # fmt: skip


def answers_of(conn: Connection, file_row: Any) -> list[int]:
    """The reports that answered the file `file_row`, in order: its first answer, then
    those noted as its further reports (`report_no` 2, 3, …: a batch's follow-ups of
    later runs, a report request's further copies) — not a signature's answer about it,
    nor the copies a repeated upload was given."""
    o = db.outbox.c
    further = conn.execute(
        select(o.id)
        .where(o.file_id == file_row.id, o.report_no > 1, o.claim_name.is_(None))
        .order_by(o.id)
    ).scalars().all()  # fmt: skip
    first = [file_row.first_outbox_id] if file_row.first_outbox_id is not None else []
    return [*first, *further]


def enqueue_again(
    conn: Connection, outbox_id: int, created_local: dt.datetime, *, claim_name: str
) -> str:
    """The message `outbox_id` once more, as a file of its own (a repeated upload gets
    its original answer again). Its name carries the original MsgId, so when that
    second's name is taken the next free second is used (`first_free`). Returns the new
    name."""
    first = conn.execute(select(db.outbox).where(db.outbox.c.id == outbox_id)).one()
    local = free_second(
        conn, first.client_id, lambda at: file_name(at, first.message, first.msg_id),
        created_local,
    )  # fmt: skip
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


def named(conn: Connection, client_id: str, name: str) -> int | None:
    """The client's message of file name `name`, if there is one (names are unique per
    client, `uq_gw_outbox_name`)."""
    o = db.outbox.c
    found = select(o.id).where(o.client_id == client_id, o.file_name == name)
    return conn.execute(found).scalar()


def free_second(
    conn: Connection, client_id: str, name_at: Callable[[dt.datetime], str], local: dt.datetime
) -> dt.datetime:
    """The first second from `local` on at which the client has no message named
    `name_at(second)` (`first_free`): a file name carries its second."""
    return first_free(lambda at: named(conn, client_id, name_at(at)) is not None, local)


def first_free(taken: Callable[[dt.datetime], bool], local: dt.datetime) -> dt.datetime:
    """The first second from `local` on that is not `taken`, in a few look-ups however
    many repeats of one answer came (not one look-up per repeat before it). The names of
    one message taken from `local` on form one run of seconds (each repeat took the first
    free second from its own moment, and moments only grow), so doubling the step finds a
    free second past the run and halving back finds the run's end; what is returned was
    looked up free."""
    if not taken(local):
        return local
    low, step = 0, 1  # low: seconds after `local` found taken
    while taken(local + dt.timedelta(seconds=low + step)):
        low, step = low + step, step * 2
    high = low + step  # found free
    while high - low > 1:
        middle = (low + high) // 2
        if taken(local + dt.timedelta(seconds=middle)):
            low = middle
        else:
            high = middle
    return local + dt.timedelta(seconds=high)


# Whether a fault met for a client is that client's own (`faults.Held.isolate`): the
# client held. Delivery and shelving both take one.
Isolate = Callable[[str, OSError], bool]


def deliver_pending(
    conn_factory: Callable[[], Connection],
    spool: Spool,
    sealer: Sealer | None,
    now: dt.datetime,
    rendered: dict[int, PlainCopy] | None = None,
    *,
    clients: Collection[str] | None = None,
    isolate: Isolate | None = None,
) -> list[str]:
    """Write every undelivered message (of `clients`, if given) into its client's `out/`;
    returns the names written.

    `rendered` may hold, by outbox id, the plain copy of a message this process has just
    rendered and committed: it is delivered as it is, and sealed with the digest taken
    meanwhile, instead of being read back and inflated (a 100,000-payment answer is
    ~35 MB). Any other message — after a restart, always — comes from its row. Messages
    go out in rounds (`delivery.deliver_all`: each folder synced once per round, not
    once per file), each round marked delivered in one transaction afterwards.

    A round that fails is, with `isolate`, delivered again client by client (delivery is
    repeatable): a client whose part fails with a fault `isolate` takes as that client's
    keeps its messages in the outbox, and the others' are delivered all the same."""
    rendered = rendered if rendered is not None else {}
    written: list[str] = []
    with conn_factory() as conn:
        query = select(db.outbox.c.id, db.outbox.c.client_id, db.outbox.c.file_name).where(
            db.outbox.c.delivered_at.is_(None)
        )
        if clients is not None:
            query = query.where(db.outbox.c.client_id.in_(sorted(clients)))
        pending = conn.execute(query.order_by(db.outbox.c.id)).all()
    held: set[str] = set()
    for start in range(0, len(pending), delivery_round_messages_max):
        round_ = [r for r in pending[start : start + delivery_round_messages_max]
                  if r[1] not in held]  # fmt: skip
        if not round_:
            continue
        try:
            written += _deliver_round(conn_factory, spool, sealer, now, round_, rendered)
        except OSError:
            if isolate is None:
                raise
            for client_id in dict.fromkeys(row[1] for row in round_):
                part = [row for row in round_ if row[1] == client_id]
                try:
                    written += _deliver_round(conn_factory, spool, sealer, now, part, rendered)
                except OSError as exc:
                    if not isolate(client_id, exc):
                        raise
                    held.add(client_id)
    return written


_OWED = select(db.outbox.c.id).where(
    db.outbox.c.id.in_(bindparam("ids", expanding=True)), db.outbox.c.delivered_at.is_(None)
)


def _deliver_round(
    conn_factory: Callable[[], Connection],
    spool: Spool,
    sealer: Sealer | None,
    now: dt.datetime,
    round_: Sequence[Row[Any, Any, Any]],
    rendered: dict[int, PlainCopy],
) -> list[str]:
    """One round into its folders, then marked delivered: what is still owed once they are
    held, as two processes may deliver one client's outbox (the leader, every client's)
    and an answer moved into out/ twice is found again by a client that had taken it."""
    with folders_locked({spool.outbox(row[1]) for row in round_}):
        with conn_factory() as conn:
            ids = [row[0] for row in round_]
            owed = set(conn.execute(_OWED, {"ids": ids}).scalars())
        round_ = [row for row in round_ if row[0] in owed]
        items: list[Delivery] = []
        try:
            for outbox_id, client_id, name in round_:
                items.append(_prepared(conn_factory, spool, outbox_id, client_id, name, rendered))
            deliver_all(items, sealer)
        finally:
            for item in items:
                item.tmp.unlink(missing_ok=True)  # not moved after all
        if round_:
            with conn_factory() as conn, writing(conn):
                conn.execute(
                    update(db.outbox)
                    .where(db.outbox.c.id.in_([row[0] for row in round_]))
                    .values(delivered_at=now)
                )
    return [row[2] for row in round_]


def _prepared(
    conn_factory: Callable[[], Connection],
    spool: Spool,
    outbox_id: int,
    client_id: str,
    name: str,
    rendered: dict[int, PlainCopy],
) -> Delivery:
    """A message ready to move into `out/`: its plain copy, or its row inflated."""
    copy = rendered.pop(outbox_id, None)
    if copy is not None and copy.path.exists():
        return copy.delivery(spool.outbox(client_id), name)
    with conn_factory() as conn:
        body = conn.execute(
            select(db.outbox.c.body).where(db.outbox.c.id == outbox_id)
        ).scalar_one()
    tmp = spool.tmp() / f".{outbox_id}.{secrets.token_hex(4)}.xml"
    _inflate(body, tmp)
    return Delivery(tmp, spool.outbox(client_id), name, None)


def _inflate(body: bytes, target: Path) -> None:
    """The message stored compressed as `body`, into `target`; a body that ends before its
    end (a damaged row) is an I/O error, never a message cut short. `target` is gone when
    it fails (a full disk: retried each pass, it would leave one more file each time)."""
    z = zlib.decompressobj()
    compressed = memoryview(body)
    try:
        with open(target, "wb") as handle:
            for start in range(0, len(body), decompress_chunk_bytes):
                data: bytes | memoryview = compressed[start : start + decompress_chunk_bytes]
                while data:  # regular XML inflates ~10-fold and more: a piece at a time
                    handle.write(z.decompress(data, decompress_chunk_bytes))
                    data = z.unconsumed_tail
            handle.write(z.flush())
        if not z.eof:
            raise OSError(errno.EIO, "the message stored in the outbox ends early", str(target))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
