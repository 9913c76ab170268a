"""The SFTP front door: a built-in asyncssh server, and sshd configuration for OpenSSH.

    acceptor = await start_server(settings, on_upload=hint)
    ...
    await stop_server(acceptor)
"""

from __future__ import annotations

from gateway.sftp.fs import is_ignored_name
from gateway.sftp.receipts import UploadReceipt, receipt_path
from gateway.sftp.server import server_context, start_server, stop_server

__all__ = [
    "UploadReceipt",
    "is_ignored_name",
    "receipt_path",
    "server_context",
    "start_server",
    "stop_server",
]
