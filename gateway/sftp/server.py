"""The built-in SFTP server (asyncssh): start-up, shutdown and the spool folders it needs.

`connection.Connection` handles authentication and limits for each TCP
connection; `session.SftpSession` carries out file requests on each SFTP
channel, confined by the pure rules in `fs`; `guard` holds the limits.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import weakref
from pathlib import Path
from typing import Any, cast

import asyncssh
import structlog
from asyncssh.channel import SSHChannel
from asyncssh.encryption import get_encryption_algs
from asyncssh.kex import get_kex_algs
from asyncssh.mac import get_mac_algs
from asyncssh.public_key import get_public_key_algs

from gateway import keys, ssh_algorithms
from gateway.clock import Clock, SystemClock
from gateway.errors import ConfigError
from gateway.files import write_new
from gateway.settings import Settings
from gateway.sftp.connection import Connection
from gateway.sftp.context import REFUSAL_LOG_SECONDS, ServerContext, UploadHook
from gateway.sftp.guard import (
    HANDLES_PER_USER_MAX,
    AuthPenalty,
    LoginSlots,
    LogThrottle,
    OpenHandles,
    PenaltyPolicy,
    SessionLimit,
    Slots,
    handles_total_max,
)
from gateway.sftp.quota import WaitingBytes, usage_in, waiting_folders
from gateway.sftp.session import SftpSession
from gateway.spool import Spool

KEEPALIVE_SECONDS_MAX = 60


def _serve_no_copy_data() -> None:
    """asyncssh's SFTP server copies between two handles of a session on one small
    request from the client (`copy-data`), through our `read` and `write` in a loop that
    never yields: one small request copying an upload onto itself wrote up to
    `max_file_bytes` and held the event loop, every client's sessions waiting. No client we
    serve needs it (OpenSSH's sftp, WinSCP, paramiko send the bytes), and asyncssh has no
    switch for it: it is taken out of what the server offers and serves (a request for it
    is `unsupported`)."""
    handler = asyncssh.sftp.SFTPServerHandler
    # (An asyncssh that named it otherwise would leave it served: fail at start instead.)
    assert b"copy-data" in handler._packet_handlers, "asyncssh's copy-data handler moved"
    handler._extensions = [
        (name, value) for name, value in handler._extensions if name != b"copy-data"
    ]
    handler._packet_handlers = {
        kind: serve for kind, serve in handler._packet_handlers.items() if kind != b"copy-data"
    }


_serve_no_copy_data()

_servers: weakref.WeakKeyDictionary[asyncssh.SSHAcceptor, ServerContext] = (
    weakref.WeakKeyDictionary()
)

# Start-up


def _load_or_create_host_key(path: Path, log: Any) -> asyncssh.SSHKey:
    """The host key at `path` (its mode and content checked: a configuration error, one
    line, never a traceback), created when missing."""
    if path.exists():
        keys.check_host_key_mode(path)
        try:
            return asyncssh.read_private_key(path)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ConfigError(keys.HOST_KEY, f"{path}: {keys.NOT_A_HOST_KEY} ({exc})") from exc
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_new(path, key.export_private_key("openssh"), mode=0o600)
    (path.parent / (path.name + ".pub")).write_bytes(key.export_public_key("openssh"))
    log.info("sftp.host_key.created", path=str(path), fingerprint=key.get_fingerprint("sha256"))
    return key


def _available(key: str, names: tuple[str, ...], known: list[bytes], log: Any) -> list[str]:
    """The configured names this asyncssh implements, in the configured order.

    Settings accept only names from `gateway.ssh_algorithms`; some of those depend on
    what asyncssh was built with (sntrup needs liboqs), so they are dropped here.
    """
    have = {name.decode("ascii") for name in known}
    chosen = [name for name in names if name in have]
    dropped = [name for name in names if name not in have]
    if dropped:
        log.info("sftp.algorithms.unavailable", key=key, names=dropped)
    if not chosen:
        raise ConfigError(key, f"none of {', '.join(names)} is available in this asyncssh")
    return chosen


def _host_keypair(key: asyncssh.SSHKey, path: Path) -> asyncssh.SSHKeyPair:
    """The host key, offered only with modern signature algorithms (no `ssh-rsa`, SHA-1)."""
    (keypair,) = asyncssh.load_keypairs([key])
    allowed = [
        alg for alg in keypair.host_key_algorithms
        if alg.decode("ascii") in ssh_algorithms.SIGNATURES_ALLOWED
    ]
    if not allowed:
        raise ConfigError(
            "sftp.host_key", f"{path}: a {key.get_algorithm()} key cannot be offered; "
            "use ssh-ed25519 (created when the file is missing)"
        )
    keypair.host_key_algorithms = tuple(allowed)
    return keypair


def _signature_algorithms() -> list[str]:
    have = {name.decode("ascii") for name in get_public_key_algs()}
    return [name for name in ssh_algorithms.SIGNATURES_ALLOWED if name in have]


def _open_handles() -> Slots:
    """The open-file limits, the total from this process's descriptor limit as it is now
    (the unit's LimitNOFILE): a flood of open files must leave descriptors for accept()."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OpenHandles(HANDLES_PER_USER_MAX, handles_total_max(soft))


def _log_loop_errors(loop: asyncio.AbstractEventLoop, ctx: ServerContext) -> None:
    """Errors asyncio reports itself (an accept() out of descriptors, a callback that
    raised) become JSON log lines, once a minute per kind, instead of tracebacks on stdout
    (which carries only JSON lines, SPEC §9)."""

    def handle(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "unhandled error in the event loop")
        exc = context.get("exception")
        error = f"{type(exc).__name__}: {exc}" if exc is not None else None
        ctx.log_limited(
            f"loop {message} {type(exc).__name__}", "error", "loop.error",
            message=message, error=error, exc_info=exc,
        )  # fmt: skip

    loop.set_exception_handler(handle)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.handlers = [h for h in asyncio_log.handlers if not isinstance(h, _LoopLines)]
    asyncio_log.addHandler(_LoopLines(ctx))
    asyncio_log.propagate = False


class _LoopLines(logging.Handler):
    """What asyncio logs itself (`socket.send() raised exception.` for every write to a
    connection that is gone: a client pipelining 3,000 requests and dropping the socket
    wrote 2,439 such plain lines to stderr) as `loop.warning`/`loop.error` JSON lines,
    once a minute per message."""

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__(logging.WARNING)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        message = record.getMessage()
        self.ctx.log_limited(f"asyncio {message}", level, f"loop.{level}", message=message)


def refuse_non_sftp(process: asyncssh.SSHServerProcess[str]) -> None:
    """A shell or command request: say in one line what this server is, then close.

    OpenSSH's `ssh` prints what arrives on the channel's stderr; without this the
    user sees only "shell request failed on channel 0".
    """
    process.stderr.write(
        "This server speaks SFTP only: connect with sftp or an SFTP client (WinSCP, FileZilla).\r\n"
    )
    process.exit(1)


async def start_server(
    settings: Settings,
    *,
    on_upload: UploadHook | None = None,
    logger: Any = None,
    clock: Clock | None = None,
) -> asyncssh.SSHAcceptor:
    """Listen on `settings.sftp.host:port` (0: any free port, see `acceptor.get_port()`).

    `on_upload` is called on this event loop each time a file becomes visible
    in a client's `in/` folder, after its receipt is written; it must not block.
    Stop with `await stop_server(acceptor)`. `clock` is the environment's (the daemon
    passes its own): receipts are dated by it.
    """
    log = logger if logger is not None else structlog.get_logger()
    clock = clock or SystemClock()
    cfg = settings.sftp
    # The clients' folders, made as every start makes them (one client's that cannot be
    # made stops no one: the pipeline's passes hold that client until it is there).
    Spool(settings.spool_dir).prepare([c.id for c in settings.clients], log)
    host_key = _load_or_create_host_key(cfg.host_key, log)
    host_keypair = _host_keypair(host_key, cfg.host_key)
    kex = _available("sftp.kex_algorithms", cfg.kex_algorithms, get_kex_algs(), log)
    ciphers = _available("sftp.ciphers", cfg.ciphers, get_encryption_algs(), log)
    macs = _available("sftp.macs", cfg.macs, get_mac_algs(), log)
    temps: set[str] = set()  # `ServerContext.temps`
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
        logins=LoginSlots(
            cfg.unauthenticated_connections_max, cfg.unauthenticated_connections_per_address_max
        ),
        waiting=WaitingBytes(
            lambda client: usage_in(waiting_folders(settings.spool_dir, client), temps),
            time.monotonic,
        ),
        handles=_open_handles(),
        throttle=LogThrottle(REFUSAL_LOG_SECONDS, time.monotonic),
        clock=clock,
        temps=temps,
    )
    _log_loop_errors(asyncio.get_running_loop(), ctx)

    def sftp_factory(chan: SSHChannel[bytes]) -> asyncssh.SFTPServer:
        # A server channel (asyncssh may wrap it in its line editor, which passes through).
        return SftpSession(cast(asyncssh.SSHServerChannel[bytes], chan), ctx)

    acceptor = await asyncssh.listen(
        cfg.host,
        cfg.port,
        # Session channels are opened by Connection.session_requested, which counts them
        # against the user's limit (so no process_factory or sftp_factory here).
        server_factory=lambda: Connection(ctx, refuse_non_sftp, sftp_factory),
        server_host_keys=[host_keypair],
        server_version=ssh_algorithms.SERVER_VERSION,
        kex_algs=kex,
        encryption_algs=ciphers,
        mac_algs=macs,
        signature_algs=_signature_algorithms(),
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
        kex_algorithms=kex,
        ciphers=ciphers,
        macs=macs,
    )
    return acceptor


def server_context(acceptor: asyncssh.SSHAcceptor) -> ServerContext | None:
    """The shared state of a running server (sessions, refusals, waiting bytes), for metrics."""
    return _servers.get(acceptor)


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

