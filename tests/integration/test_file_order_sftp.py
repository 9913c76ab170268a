"""(Outside review.) Through the real SFTP server: a client's preserved timestamp (`put -p`)
decided its files' order; the order they were received does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gateway.spool import Spool
from tests.integration.sftp_fixtures import RunningServer, open_sftp


def test_an_upload_with_a_preserved_old_mtime_waits_behind_one_received_earlier(
    server: RunningServer, tmp_path: Path
) -> None:
    """first.xml is received, then second.xml, whose client keeps its local mtime (WinSCP's
    default, `put -p`): the server applies it to /in/second.xml (`session.setstat`). The
    receipts say first.xml came first; the spool takes second.xml first."""
    sftp = open_sftp(server, "alpha-erp", "alpha")
    for name in ("first.xml", "second.xml"):
        local = tmp_path / name
        local.write_bytes(b"<Document/>")
        sftp.put(str(local), f"/in/{name}")
    sftp.utime("/in/second.xml", (1_700_000_000, 1_700_000_000))  # its local time, kept
    sftp.close()
    received = {n: dt.datetime.fromisoformat(server.receipt("alpha", n)["received_at"])
                for n in ("first.xml", "second.xml")}  # fmt: skip
    assert received["first.xml"] < received["second.xml"]
    order = [p.name for p in Spool(server.spool).waiting("alpha")]
    assert order == ["first.xml", "second.xml"]
