"""A PostgreSQL cluster of the test session's own, for machines where no server is named.

`make test` on a fresh machine has no `EKASE_TEST_DATABASE_URL`; rather than skip the
PostgreSQL half of the suite, the session runs the machine's own `initdb` and `pg_ctl`
in a temporary folder: a server on a free loopback port (its socket in that folder, so
nothing is shared with a system server), trust authentication for `postgres`, one
database `test`, no fsync (the data dies with the session). `stop` shuts it down and
removes the folder.

initdb and postgres refuse to run as root, and CI runs the suite as root: then the
cluster belongs to an unprivileged account (`nobody`), which owns the folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

URL_VARIABLE = "EKASE_TEST_DATABASE_URL"

# The account a root test run hands the cluster to.
cluster_account = "nobody"
# pg_ctl waits this long for the server to accept connections (a busy 2-core machine).
start_wait_seconds = 120
# A free port can be taken by someone else before the server binds it: try again.
start_attempts_max = 3

# Where distributions keep the server binaries when they are not on PATH.
_SERVER_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


@contextlib.contextmanager
def server_url(environ: Mapping[str, str]) -> Iterator[str | None]:
    """The server `EKASE_TEST_DATABASE_URL` names, else a throwaway cluster for the block
    (stopped and removed when it ends); None when neither exists."""
    named = environ.get(URL_VARIABLE)
    if named:
        yield named
        return
    bin_dir = find_server_binaries()
    if bin_dir is None:
        yield None
        return
    cluster = start(bin_dir)
    try:
        yield cluster.url
    finally:
        cluster.stop()


def find_server_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: PATH first, then the newest versioned one."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        folder = Path(on_path).resolve().parent
        if (folder / "pg_ctl").exists():
            return folder
    found: list[tuple[tuple[int, ...], Path]] = []
    for pattern in _SERVER_BIN_GLOBS:
        for folder in Path("/").glob(pattern.lstrip("/")):
            if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
                version = tuple(int(n) for n in re.findall(r"\d+", str(folder))) or (0,)
                found.append((version, folder))
    return max(found)[1] if found else None


@dataclass
class Cluster:
    folder: Path
    bin_dir: Path
    port: int
    account: str | None  # who runs the server; None: this process's user

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def pause(self) -> None:
        """Stop the server as an outage would (connections cut); its data stays."""
        _run(self, "pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")

    def resume(self) -> None:
        """Start the paused server again on the same port."""
        _start(self)

    def stop(self) -> None:
        try:
            _run(self, "pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start(bin_dir: Path) -> Cluster:
    """initdb, start on a free loopback port, create database `test`; the caller stops it."""
    account = cluster_account if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="ekase-pg-"))
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(folder, bin_dir, 0, account)
    try:
        _run(
            cluster, "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )
        _start_on_free_port(cluster)
        _create_database(cluster)
    except BaseException:
        if cluster.port:
            cluster.stop()
        else:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return cluster


def _start_on_free_port(cluster: Cluster) -> None:
    for attempt in range(1, start_attempts_max + 1):
        cluster.port = _free_port()
        try:
            _start(cluster)
            return
        except subprocess.CalledProcessError:
            if attempt == start_attempts_max:
                raise RuntimeError(
                    f"throwaway PostgreSQL did not start:\n{cluster.log_tail()}"
                ) from None


def _start(cluster: Cluster) -> None:
    """`pg_ctl start` on the cluster's port, waiting until it accepts connections."""
    options = " ".join([
        "-c listen_addresses=127.0.0.1",
        f"-p {cluster.port}",
        f"-c unix_socket_directories='{cluster.folder}'",
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        "-c shared_buffers=32MB",
    ])
    _run(
        cluster, "pg_ctl", "start", "-D", str(cluster.data), "-w",
        "-t", str(start_wait_seconds), "-l", str(cluster.folder / "server.log"),
        "-o", options,
    )


def _create_database(cluster: Cluster) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("CREATE DATABASE test")


def _run(cluster: Cluster, program: str, *args: str) -> None:
    """Run a server program as the cluster's account, in its folder (never root's home)."""
    command = [str(cluster.bin_dir / program), *args]
    if cluster.account is None:
        subprocess.run(command, cwd=cluster.folder, check=True, capture_output=True, text=True)
        return
    entry = pwd.getpwnam(cluster.account)
    subprocess.run(
        command, cwd=cluster.folder, check=True, capture_output=True, text=True,
        user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C",
            "HOME": str(cluster.folder),
        },
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
