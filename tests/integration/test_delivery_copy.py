"""An answer rendered and committed in this process is delivered from its plain copy;
what lands in out/ must be exactly the row's bytes, and no copy may be left behind."""

from __future__ import annotations

import zlib
from pathlib import Path

import sqlalchemy as sa

from gateway import db
from gateway.outbound.seal import verify_file
from tests.integration.test_seal_xmlsec import xmlsec_verify
from tests.pipeline_fixtures import Batch, Installation


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
