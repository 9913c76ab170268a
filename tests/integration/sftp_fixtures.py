"""Helpers for driving a real built-in SFTP server with real clients.

The server runs on its own asyncio loop in a background thread so that the
blocking clients (OpenSSH `sftp`, paramiko) can be used from the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from gateway.clock import Clock
from gateway.settings import Settings, load
from gateway.sftp import UploadReceipt, start_server, stop_server

CLIENTS = {
    # client id -> users: (name, kind, mode, key name, from= option or None)
    "alpha": [
        ("alpha-erp", "system", "manage", "alpha", "127.0.0.1"),
        ("alpha-view", "person", "view", "alpha-view", None),
    ],
    "beta": [
        ("beta-erp", "system", "manage", "beta", "127.0.0.1"),
    ],
}
KEY_NAMES = ("alpha", "alpha-view", "beta", "stranger")


def make_keys(folder: Path) -> dict[str, Path]:
    """Generate ed25519 client keys with ssh-keygen; return private key paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = {}
    for name in KEY_NAMES:
        path = folder / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
            check=True,
        )
        keys[name] = path
    return keys


def write_config(
    base: Path,
    keys: dict[str, Path],
    *,
    client_keys: dict[str, dict[str, object]] | None = None,
    **sftp: object,
) -> Path:
    """A gateway TOML with two clients, their users' authorized_keys and `[sftp]` keys;
    `client_keys` adds keys to a client's table (`{"alpha": {"waiting_bytes_max": 10}}`)."""
    (base / "keys").mkdir(parents=True, exist_ok=True)
    lines = [
        "[gateway]",
        'spool_dir = "spool"',
        f"max_file_bytes = {sftp.pop('max_file_bytes', 1_000_000)}",
        "",
        "[sftp]",
        'listen = "127.0.0.1:0"',
        'host_key = "ssh_host_ed25519_key"',
    ]
    lines += [f"{name} = {json.dumps(value)}" for name, value in sftp.items()]
    for number, (client_id, users) in enumerate(CLIENTS.items(), start=90000000001):
        lines += ["", "[[client]]", f'id = "{client_id}"', f'name = "Client {client_id}"',
                  f'registration_number = "{number}"']
        extra = (client_keys or {}).get(client_id, {})
        lines += [f"{name} = {json.dumps(value)}" for name, value in extra.items()]
        for user, kind, mode, key_name, source in users:
            public = keys[key_name].with_suffix(".pub").read_text().strip()
            option = f'from="{source}" ' if source else ""
            (base / "keys" / f"{user}.pub").write_text(option + public + "\n")
            lines += [
                "  [[client.user]]",
                f'  name = "{user}"',
                f'  kind = "{kind}"',
                f'  mode = "{mode}"',
                f'  authorized_keys = "keys/{user}.pub"',
            ]
    path = base / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class EventLog:
    """A structlog-like logger that records (event, fields) for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def bind(self, **fields: Any) -> _Bound:
        return _Bound(self, fields)

    def _log(self, event: str, **fields: Any) -> None:
        with self._lock:
            self.events.append((event, fields))

    info = warning = error = debug = exception = _log

    def named(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [fields for name, fields in self.events if name == event]


@dataclass
class _Bound:
    log: EventLog
    fields: dict[str, Any]

    def bind(self, **fields: Any) -> _Bound:
        return _Bound(self.log, {**self.fields, **fields})

    def _log(self, event: str, **fields: Any) -> None:
        self.log._log(event, **{**self.fields, **fields})

    info = warning = error = debug = exception = _log


@dataclass
class RunningServer:
    settings: Settings
    keys: dict[str, Path]
    port: int
    log: EventLog
    loop: asyncio.AbstractEventLoop
    acceptor: Any
    receipts: list[UploadReceipt] = field(default_factory=list)

    @property
    def spool(self) -> Path:
        return self.settings.spool_dir

    def folder(self, client: str, area: str) -> Path:
        return self.spool / "clients" / client / area

    def receipt(self, client: str, name: str) -> dict[str, Any]:
        path = self.spool / "receipts" / client / f"{name}.json"
        result: dict[str, Any] = json.loads(path.read_text())
        return result

    def receipt_names(self, client: str) -> list[str]:
        folder = self.spool / "receipts" / client
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    def visible(self, client: str, area: str = "in") -> list[str]:
        return sorted(p.name for p in self.folder(client, area).iterdir())

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the server's loop (to read its state safely)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@dataclass
class ServerThread:
    """Runs `start_server` on a private loop in a daemon thread."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None

    def start(
        self, config: Path, keys: dict[str, Path], clock: Clock | None = None
    ) -> RunningServer:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        settings = load(config)
        log = EventLog()
        receipts: list[UploadReceipt] = []
        future: Future[Any] = asyncio.run_coroutine_threadsafe(
            start_server(settings, on_upload=receipts.append, logger=log, clock=clock), self.loop
        )
        acceptor = future.result(10)
        return RunningServer(
            settings=settings, keys=keys, port=acceptor.get_port(), log=log, loop=self.loop,
            acceptor=acceptor, receipts=receipts,
        )

    def stop(self, server: RunningServer) -> None:
        asyncio.run_coroutine_threadsafe(stop_server(server.acceptor), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        assert self.thread is not None
        self.thread.join(5)
        self.loop.close()


def paramiko_connect(
    server: RunningServer,
    user: str,
    key: str,
    *,
    source: str = "127.0.0.1",
    password: str | None = None,
) -> paramiko.Transport:
    """An authenticated paramiko transport (raises paramiko errors when refused)."""
    sock = socket.create_connection(
        ("127.0.0.1", server.port), timeout=10, source_address=(source, 0)
    )
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        if password is not None:
            transport.auth_password(user, password)
        else:
            pkey = paramiko.Ed25519Key.from_private_key_file(str(server.keys[key]))
            transport.auth_publickey(user, pkey)
    except BaseException:
        transport.close()
        raise
    return transport


def open_sftp(server: RunningServer, user: str, key: str, **kwargs: Any) -> paramiko.SFTPClient:
    transport = paramiko_connect(server, user, key, **kwargs)
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return client


@dataclass
class SftpResult:
    returncode: int
    stdout: str
    stderr: str


# Options for OpenSSH clients in tests: no host key prompts or files, only the given key.
OPENSSH_OPTIONS = (
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
)


def openssh_sftp(
    server: RunningServer, user: str, key: str, commands: list[str], cwd: Path,
    options: tuple[str, ...] = (),
) -> SftpResult:
    """Run the OpenSSH `sftp` client in batch mode; a failing command makes it exit non-zero.
    `options` come first, so they win over the defaults (`("-o", "KexAlgorithms=…")`)."""
    batch = cwd / f"batch-{time.monotonic_ns()}.txt"
    batch.write_text("\n".join(commands) + "\n")
    sftp = shutil.which("sftp")
    assert sftp is not None, "OpenSSH sftp client not installed"
    done = subprocess.run(
        [
            sftp, "-b", str(batch), "-i", str(server.keys[key]), "-P", str(server.port),
            *options, *OPENSSH_OPTIONS, f"{user}@127.0.0.1",
        ],
        cwd=cwd, capture_output=True, text=True, timeout=30,
    )
    return SftpResult(done.returncode, done.stdout, done.stderr)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@contextlib.contextmanager
def running_server(
    base: Path,
    keys: dict[str, Path],
    *,
    client_keys: dict[str, dict[str, object]] | None = None,
    clock: Clock | None = None,
    **sftp: object,
) -> Iterator[RunningServer]:
    """A started server on a fresh config and spool under `base`, stopped afterwards
    (`clock`: the environment's clock it is given; the system clock by default)."""
    thread = ServerThread()
    config = write_config(base, keys, client_keys=client_keys, **sftp)
    server = thread.start(config, keys, clock)
    try:
        yield server
    finally:
        thread.stop(server)
