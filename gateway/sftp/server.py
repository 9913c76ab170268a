"""The built-in SFTP server (asyncssh): start-up, shutdown and the spool folders it needs.

`connection.Connection` handles authentication and limits for each TCP
connection; `session.SftpSession` carries out file requests on each SFTP
channel, confined by the pure rules in `fs`; `guard` holds the limits.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from pathlib import Path
from typing import Any

import asyncssh
import structlog

from gateway.settings import Settings
from gateway.sftp import fs
from gateway.sftp.connection import Connection
from gateway.sftp.context import ServerContext, UploadHook
from gateway.sftp.guard import AuthPenalty, PenaltyPolicy, SessionLimit
from gateway.sftp.session import SftpSession

STALE_UPLOAD_SECONDS = 24 * 3600
KEEPALIVE_SECONDS_MAX = 60

_servers: weakref.WeakKeyDictionary[asyncssh.SSHAcceptor, ServerContext] = (
    weakref.WeakKeyDictionary()
)

# Start-up


def _load_or_create_host_key(path: Path, log: Any) -> asyncssh.SSHKey:
    if path.exists():
        return asyncssh.read_private_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.export_private_key("openssh"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)
    (path.parent / (path.name + ".pub")).write_bytes(key.export_public_key("openssh"))
    log.info("sftp.host_key.created", path=str(path), fingerprint=key.get_fingerprint("sha256"))
    return key


def prepare_spool(settings: Settings, now: float, log: Any) -> None:
    """Create `in/`, `out/` and the receipts folder of every client; drop day-old uploads."""
    for client in settings.clients:
        root = settings.spool_dir / "clients" / client.id
        for area in fs.AREAS:
            (root / area).mkdir(parents=True, exist_ok=True)
        (settings.spool_dir / "receipts" / client.id).mkdir(parents=True, exist_ok=True)
        with os.scandir(root / "in") as entries:
            for entry in entries:
                if not fs.is_internal_name(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if age > STALE_UPLOAD_SECONDS:
                    os.unlink(entry.path)
                    log.info("sftp.upload.stale_removed", client=client.id, file=entry.name)


async def start_server(
    settings: Settings,
    *,
    on_upload: UploadHook | None = None,
    logger: Any = None,
) -> asyncssh.SSHAcceptor:
    """Listen on `settings.sftp.host:port` (0: any free port, see `acceptor.get_port()`).

    `on_upload` is called on this event loop each time a file becomes visible
    in a client's `in/` folder, after its receipt is written; it must not block.
    Stop with `await stop_server(acceptor)`.
    """
    log = logger if logger is not None else structlog.get_logger()
    cfg = settings.sftp
    prepare_spool(settings, time.time(), log)
    host_key = _load_or_create_host_key(cfg.host_key, log)
    ctx = ServerContext(
        settings=settings,
        log=log,
        on_upload=on_upload,
        penalty=AuthPenalty(
            PenaltyPolicy(
                failures_before_penalty=cfg.auth_failures_before_penalty,
                penalty_seconds_max=float(cfg.auth_penalty_seconds_max),
            ),
            clock=time.monotonic,
        ),
        sessions=SessionLimit(cfg.sessions_per_user_max),
    )

    def sftp_factory(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        return SftpSession(chan, ctx)

    acceptor = await asyncssh.listen(
        cfg.host,
        cfg.port,
        server_factory=lambda: Connection(ctx),
        server_host_keys=[host_key],
        config=None,
        reuse_address=True,
        public_key_auth=True,
        password_auth=False,
        kbdint_auth=False,
        host_based_auth=False,
        gss_host=None,
        gss_kex=False,
        gss_auth=False,
        allow_pty=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        sftp_factory=sftp_factory,
        sftp_version=3,
        login_timeout=cfg.login_timeout_seconds,
        keepalive_interval=min(KEEPALIVE_SECONDS_MAX, cfg.idle_timeout_seconds),
        keepalive_count_max=3,
    )
    _servers[acceptor] = ctx
    log.info(
        "sftp.listening",
        host=cfg.host,
        port=acceptor.get_port(),
        host_key_fingerprint=host_key.get_fingerprint("sha256"),
        clients=len(settings.clients),
    )
    return acceptor


async def stop_server(acceptor: asyncssh.SSHAcceptor, *, timeout_seconds: float = 5.0) -> None:
    """Stop listening and close every connection (uploads not yet closed are discarded)."""
    acceptor.close()
    ctx = _servers.pop(acceptor, None)
    if ctx is not None:
        conns = [c.conn for c in list(ctx.connections) if c.conn is not None]
        for conn in conns:
            conn.disconnect(asyncssh.DISC_BY_APPLICATION, "Server shutting down")
        if conns:
            await asyncio.wait(
                [asyncio.ensure_future(conn.wait_closed()) for conn in conns],
                timeout=timeout_seconds,
            )
        ctx.log.info("sftp.stopped")
    await acceptor.wait_closed()

