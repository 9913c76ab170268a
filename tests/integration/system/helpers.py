"""Helpers for the tests that install the gateway on the machine itself: real accounts
(`useradd`), `systemd/install.sh`, the daemon run by an unprivileged account, a real sshd.

Names of accounts and groups made here carry a tag unique to the session, and every
fixture removes what it made. Nothing is created under /tmp: sshd refuses a chroot below
a world-writable folder, and a service account cannot enter pytest's private temp folders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import os
import pwd
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes

REPO = Path(__file__).resolve().parents[3]
INSTALL_SH = REPO / "systemd" / "install.sh"
# Where root-owned scratch folders go: root's all the way up, and not /tmp (see above).
SCRATCH_PARENT = Path("/var/lib")
# Unique per session: accounts and groups made by these tests never meet another run's.
TAG = secrets.token_hex(3)
PAIN002 = "{urn:iso:std:iso:20022:tech:xsd:pain.002.001.03}"
# The unit's UMask=: what the daemon creates is not for others to read.
service_umask = 0o027
# Generous: a busy 2-core machine. Waits poll for a condition and end as soon as it holds.
wait_seconds_max = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float = wait_seconds_max) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def keygen(path: Path, comment: str) -> Path:
    """An ed25519 key pair made by ssh-keygen; returns the private key's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    return path


def public_key(private: Path) -> str:
    return private.with_name(private.name + ".pub").read_text().strip()


# -- accounts ----------------------------------------------------------------------------------


@dataclass
class Accounts:
    """System users and groups to remove when a fixture ends (never `userdel -r`/`-f`:
    the accounts have no home of their own)."""

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def remove(self) -> list[str]:
        problems = []
        for user in reversed(self.users):
            if _exists(pwd.getpwnam, user):
                _wait_for_its_processes(user)
                done = subprocess.run(["userdel", user], capture_output=True, text=True)
                if done.returncode != 0:
                    problems.append(f"userdel {user}: {done.stderr.strip()}")
        for group in reversed(self.groups):
            if _exists(grp.getgrnam, group):
                done = subprocess.run(["groupdel", group], capture_output=True, text=True)
                if done.returncode != 0:
                    problems.append(f"groupdel {group}: {done.stderr.strip()}")
        return problems


def _wait_for_its_processes(user: str, seconds: float = 15.0) -> None:
    """A session's processes (sshd's, sftp-server) end shortly after its client, later on a
    busy machine; `userdel` refuses a user that still runs one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-u", user], capture_output=True).returncode != 0:
            return
        time.sleep(0.2)


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def groups_of(user: str) -> set[str]:
    entry = pwd.getpwnam(user)
    return {grp.getgrgid(gid).gr_name for gid in os.getgrouplist(user, entry.pw_gid)}


# -- install.sh and the installed site -------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """What install.sh made under a prefix."""

    prefix: Path
    account: str
    venv: Path

    @property
    def etc(self) -> Path:
        return self.prefix / "etc" / "ekase-gateway"

    @property
    def config(self) -> Path:
        return self.etc / "gateway.toml"

    @property
    def private(self) -> Path:
        return self.etc / "private"

    @property
    def state(self) -> Path:
        return self.prefix / "var" / "lib" / "ekase-gateway"

    @property
    def spool(self) -> Path:
        return self.state / "spool"

    @property
    def gateway(self) -> Path:
        return self.venv / "bin" / "ekase-gateway"

    def out(self, client: str) -> Path:
        return self.spool / "clients" / client / "out"


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    """systemd/install.sh with these options; a failure shows its output."""
    done = subprocess.run(
        ["bash", str(INSTALL_SH), *args], cwd="/", capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise AssertionError(
            f"install.sh {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def as_account(account: str, *command: str | Path, caps: tuple[str, ...] = ()) -> list[str]:
    """A command line that runs `command` as `account` with its groups (setpriv execs, so
    the pid is the command's own and killing it kills the command), and the capabilities
    `caps` (`dac_read_search`, …) as the unit's AmbientCapabilities gives them."""
    granted = [f"--inh-caps={','.join('+' + c for c in caps)}",
               f"--ambient-caps={','.join('+' + c for c in caps)}"] if caps else []
    return [
        "setpriv", f"--reuid={account}", f"--regid={account}", "--init-groups", "--reset-env",
        *granted, "--", *map(str, command),
    ]


def run_as(account: str, *command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        as_account(account, *command), cwd="/", capture_output=True, text=True, timeout=120,
        check=True,
    )


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    output: Path

    def tail(self, chars: int = 3000) -> str:
        return "daemon output:\n" + self.output.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def daemon_as(site: Site, output: Path, caps: tuple[str, ...] = ()) -> Iterator[Daemon]:
    """`ekase-gateway run` as the site's service account with the unit's umask (and the
    capabilities `caps`); stopped when the block ends."""
    with open(output, "wb") as sink:
        process = subprocess.Popen(
            as_account(site.account, site.gateway, "run", "-c", site.config, caps=caps),
            cwd="/", stdout=sink, stderr=subprocess.STDOUT, umask=service_umask,
        )
    daemon = Daemon(process, output)
    try:
        started = wait_for(
            lambda: b'"daemon.started"' in output.read_bytes() or process.poll() is not None
        )
        assert started and process.poll() is None, daemon.tail()
        yield daemon
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


# -- batches and answers -----------------------------------------------------------------------


def today_riga() -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/Riga")).date()


def batch(msg_id: str, debtor_iban: str, count: int = 3) -> bytes:
    """A valid pain.001 of `count` external payments of 1.00 EUR, dated today."""
    txs = [
        SampleTx(f"{msg_id}-{n}", "1.00", iban_lv("HABA", 10_000 + n), creditor_bic="HABALV22")
        for n in range(count)
    ]
    total = f"{count}.00"
    pmt = SamplePmtInf(
        f"{msg_id}-P", debtor_iban, txs, execution_date=today_riga().isoformat(),
        nb_of_txs=str(count), ctrl_sum=total,
    )
    return to_bytes(SampleBatch(msg_id, [pmt], nb_of_txs=str(count), ctrl_sum=total))


def answer_for(out: Path, msg_id: str) -> tuple[Path, str] | None:
    """The pain.002 in `out` answering `msg_id`, with its group status; None if none yet."""
    for path in sorted(out.glob("*_pain.002.001.03_*.xml")):
        tree = etree.parse(str(path))
        if tree.findtext(f".//{PAIN002}OrgnlMsgId") == msg_id:
            return path, tree.findtext(f".//{PAIN002}GrpSts") or ""
    return None
