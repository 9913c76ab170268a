"""The signatures kept for a batch waiting for signatures (SPEC §11, `gw_signatures`), as
the level rule counts them: each as judged when its container was received.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from sqlalchemy import Connection, select

from gateway import db
from gateway.signatories import Signatory
from gateway.signing_rights import Right


def counted_so_far(conn: Connection, row: Any) -> list[Signatory]:
    """The signatories whose signatures counted for the waiting batch of `row` (a
    `gw_awaiting` row) when their containers were received, in that order, as recorded
    then (valid for the account when the container is received). The level rule carries
    them over as it lets them count together (`signatories.carried`)."""
    s = db.signatures.c
    counted = s.counted.is_(True)
    rows = conn.execute(
        select(db.signatures).where(s.awaiting_id == row.id, counted).order_by(s.id)
    )
    return [
        Signatory(r.signatory, x509.load_der_x509_certificate(r.certificate),
                  Right(r.signatory_right))
        for r in rows
    ]  # fmt: skip
