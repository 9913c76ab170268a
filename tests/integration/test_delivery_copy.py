"""An answer rendered and committed in this process is delivered from its plain copy;
what lands in out/ must be exactly the row's bytes, and no copy may be left behind."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from gateway import db
from gateway.outbound import outbox
from gateway.outbound.seal import verify_file
from tests.integration.test_seal_xmlsec import xmlsec_verify
from tests.pipeline_fixtures import CLIENT_A, Batch, Installation


def _row_bytes(inst: Installation, name: str) -> bytes:
    with inst.env.engine.connect() as conn:
        body = conn.execute(
            sa.select(db.outbox.c.body).where(db.outbox.c.file_name == name)
        ).scalar_one()
    return zlib.decompress(body)


def test_delivered_answer_is_the_committed_one(tmp_path: Path, database_url: str) -> None:
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        batch = Batch(msg_id="COPY-1")
        for n in range(50):
            batch.tx(f"E2E-{n}", "1.00")
        answer = inst.submit(batch.build(), name="a.xml")
        assert answer.path.read_bytes() == _row_bytes(inst, answer.path.name)
        # rejected late, after its chunks were executed (NbOfTxs does not match)
        late = Batch(msg_id="COPY-2", group_nb="7").tx("E2E-X", "1.00").build()
        rejected = inst.submit(late, name="b.xml")
        assert rejected.group_reasons == ["AM18"]
        assert rejected.path.read_bytes() == _row_bytes(inst, rejected.path.name)
        assert list(inst.env.spool.tmp().iterdir()) == []
    finally:
        inst.close()


def test_the_archived_batch_and_its_answer_carry_valid_seals(
    tmp_path: Path, xmlsec1: str
) -> None:
    """End to end: the archive seal (made from the digest the reading child sends) and
    the answer's seal (from the digest taken while its transaction commits) verify with
    xmlsec1 and with `verify_file`."""
    inst = Installation.create(tmp_path / "gw", need_sealer=True)
    try:
        batch = Batch(msg_id="SEAL-1")
        for n in range(20):
            batch.tx(f"E2E-{n}", "1.00")
        answer = inst.submit(batch.build(), name="sealed.xml")
        cert = inst.settings.signing.certificate
        for path in (answer.shelf, answer.path):
            assert verify_file(path, trusted_certs=[cert], now=inst.clock.now()).ok, path
            assert xmlsec_verify(xmlsec1, path, cert), path
    finally:
        inst.close()


def test_two_processes_delivering_one_clients_outbox_write_each_answer_once(
    tmp_path: Path, database_url: str
) -> None:
    """The leader delivers every client's outbox in each pass while the client's own worker
    delivers it too: both read the same undelivered row, and each renamed it into out/ —
    a client that had fetched and removed the answer found it there again (a reviewer).
    Here one delivery is held after its read until the other has had its chance: the
    answer is written into out/ once, by one of them."""
    inst = Installation.create(tmp_path / "gw", database_url=database_url)
    try:
        with inst.env.engine.begin() as conn:
            outbox.enqueue(
                conn, client_id=CLIENT_A, message="pain.002.001.03", msg_id="TWICE-1",
                created_local=inst.clock.now(), body=zlib.compress(b"<Document/>"),
            )  # fmt: skip
        read, other_done = threading.Event(), threading.Event()
        calls = 0

        def held_after_its_read() -> sa.Connection:
            nonlocal calls
            calls += 1
            if calls == 2:  # the pending rows were read: the other delivers meanwhile
                read.set()
                other_done.wait(3)  # (with the fix it waits for this one: not forever)
            return inst.env.engine.connect()

        written: dict[str, list[str]] = {}

        def deliver(name: str, factory: Callable[[], sa.Connection]) -> None:
            written[name] = outbox.deliver_pending(
                factory, inst.env.spool, None, inst.clock.now(), clients={CLIENT_A}
            )

        first = threading.Thread(target=deliver, args=("first", held_after_its_read))
        first.start()
        assert read.wait(10)
        second = threading.Thread(target=deliver, args=("second", inst.env.engine.connect))
        second.start()
        second.join(1.5)
        other_done.set()
        first.join(10)
        second.join(10)
        assert not first.is_alive() and not second.is_alive()
        assert sorted(n for names in written.values() for n in names) == [
            n.name for n in inst.env.spool.outbox(CLIENT_A).iterdir()
        ], written
    finally:
        inst.close()
