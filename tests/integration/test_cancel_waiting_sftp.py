"""SPEC §11 and §15 through the real daemon and its SFTP server, on SQLite and
PostgreSQL: a batch waiting for signatures is cancelled by a camt.055 uploaded to `/in`
— camt.029 CNCL, a follow-up pain.002 RJCT DS02 — and a signature uploaded after it
changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from gateway.testpki import Pki
from tests.integration.daemon_fixtures import (
    FUNDED_MINOR,
    Install,
    answers,
    batch,
    ledger_balance_minor,
    running_daemon,
    wait_for,
)
from tests.integration.test_authorisation_sftp import (
    _answer_count,
    _infos,
    _put,
    _reasons,
    _state,
    signing_install,
)
from tests.signature_fixtures import signed
from tests.unit import pull_samples as s

__all__ = ["signing_install"]  # the fixture, used by name


def test_a_waiting_batch_cancelled_through_sftp(
    signing_install: tuple[Install, Pki], assert_valid: Any
) -> None:
    install, pki = signing_install
    now = dt.datetime.now(dt.UTC)
    data = batch("SIG-C", "alpha", 3)
    out = install.folder("alpha", "out")
    request = s.to_bytes(
        s.camt055("09", msg_id="CXL-SFTP", original_msg_id="SIG-C", whole_group=True,
                  payment_infos=())
    )  # fmt: skip
    with running_daemon(install) as daemon:
        daemon.wait_started()
        _put(install, "pay.xml", data)
        _answer_count(install, 1)
        assert _state(install) == ["waiting"]

        _put(install, "cxl.xml", request)
        assert wait_for(lambda: len(list(out.glob("*_camt.029.001.10_*.xml"))) == 1, 30), (
            daemon.tail()
        )
        (resolution,) = out.glob("*_camt.029.001.10_*.xml")
        assert_valid(resolution, "camt.029.001.10")
        doc = etree.parse(str(resolution))
        assert doc.xpath("//*[local-name()='Conf']/text()") == ["CNCL"]
        assert doc.xpath("//*[local-name()='TxCxlSts']/text()") == ["ACCR"] * 3
        follow_up = _answer_count(install, 2)[-1]
        assert_valid(follow_up, "pain.002.001.03")
        assert answers(out)[-1].group_status == "RJCT"
        assert _reasons(follow_up)[0] == "DS02"
        assert _state(install) == ["annulled"]

        _put(install, "late.asice", signed("pay.xml", data, pki.first, now))
        late = _answer_count(install, 3)[-1]
        assert "cancelled by the client before it was signed" in _infos(late)
        assert "changes nothing" in _infos(late)
        assert _state(install) == ["annulled"]
        assert ledger_balance_minor(install, "alpha") == FUNDED_MINOR
        rejected = install.spool / "rejected" / "alpha"
        assert wait_for(lambda: bool(list(rejected.glob("*/*pay.xml"))), 10)
