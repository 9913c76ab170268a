"""Standard clients' habits against the built-in SFTP server: paramiko's put (a stat after
the close), OpenSSH's scp (an fsetstat of the size written), asyncssh's get (ranges)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.sftp import UploadReceipt, server_context
from tests.integration.sftp_fixtures import RunningServer, open_sftp


def _claim_at_once(server: RunningServer, taken: Path) -> None:
    """Take every upload out of in/ (and its receipt) the moment it is visible, as a daemon
    that is idle does: before the client's next request arrives."""
    ctx = server_context(server.acceptor)
    assert ctx is not None
    taken.mkdir()

    def claim(receipt: UploadReceipt) -> None:
        shutil.move(receipt.path, taken / receipt.file_name)
        receipt.receipt_path.unlink()

    server.call(lambda: setattr(ctx, "on_upload", claim))


def test_paramiko_put_confirms_an_upload_the_gateway_took_at_once(
    server: RunningServer, tmp_path: Path
) -> None:
    """paramiko's put (confirm=True) stats the file after closing it: the session that
    uploaded it is answered with its attributes though the gateway has claimed it."""
    _claim_at_once(server, tmp_path / "taken")
    sftp = open_sftp(server, "alpha-erp", "alpha")
    for n in range(20):
        local = tmp_path / f"batch-{n}.xml"
        local.write_bytes(b"<Document/>" * (n + 1))
        attrs = sftp.put(str(local), f"/in/batch-{n}.xml")
        assert attrs.st_size == local.stat().st_size
    assert server.visible("alpha") == []
    assert len(list((tmp_path / "taken").iterdir())) == 20
    other = open_sftp(server, "alpha-erp", "alpha")  # another session sees what is there
    with pytest.raises(FileNotFoundError):
        other.stat("/in/batch-0.xml")
    with pytest.raises(FileNotFoundError):
        sftp.stat("/in/never-uploaded.xml")
    other.close()
    sftp.close()
