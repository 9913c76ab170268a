"""Helpers for driving the real daemon (`ekase-gateway run`) as a subprocess.

An installation is a folder with a configuration, client keys (ssh-keygen),
seal keys and funded accounts; the daemon runs on a free loopback port and
writes its JSON log to a file the tests read. Every started process is killed
when the helper's context ends, whatever the test did.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from lxml import etree

from gateway.environment import open_environment
from gateway.funding import fund
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes
from gateway.settings import Settings, load
from tests.pipeline_fixtures import make_signing_key

BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "ekase-gateway")
PAIN002 = "{urn:iso:std:iso:20022:tech:xsd:pain.002.001.03}"
FUNDED = "1000000.00"
FUNDED_MINOR = 100_000_000

# client id -> its SFTP user (system, manage) and its EUR account number
CLIENTS = {"alpha": 9_100_000_000_001, "beta": 9_100_000_000_002, "bulk": 9_100_000_000_003}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def iban(client: str) -> str:
    return iban_lv("TREL", CLIENTS[client])


@dataclass
class Install:
    base: Path
    config: Path
    port: int
    keys: dict[str, Path]  # user -> private key

    @property
    def settings(self) -> Settings:
        return load(self.config)

    @property
    def spool(self) -> Path:
        return self.base / "spool"

    def folder(self, client: str, area: str) -> Path:
        if area in ("in", "out"):
            return self.spool / "clients" / client / area
        return self.spool / area / client


def make_install(base: Path, *, port: int | None = None, **gateway: object) -> Install:
    """A configuration with the clients above, each with a funded EUR account."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "keys").mkdir()
    port = port or free_port()
    lines = ["[gateway]", 'spool_dir = "spool"', 'log_file = "spool/log/gateway.jsonl"']
    lines += [f"{k} = {v}" for k, v in gateway.items()]
    lines += [
        "",
        "[sftp]",
        f'listen = "127.0.0.1:{port}"',
        'host_key = "ssh_host_ed25519_key"',
        "sessions_per_user_max = 16",
        "auth_failures_before_penalty = 50",
    ]
    keys = {}
    for index, (client, account) in enumerate(CLIENTS.items()):
        user = f"{client}-erp"
        private = base / "keys" / user
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user, "-f", str(private)],
            check=True,
        )
        public = private.with_name(user + ".pub").read_text().strip()
        (base / "keys" / f"{user}.authorized").write_text(f'from="127.0.0.1" {public}\n')
        keys[user] = private
        lines += [
            "",
            "[[client]]",
            f'id = "{client}"',
            f'name = "Client {client}"',
            f'registration_number = "{90000000001 + index}"',
            "  [[client.account]]",
            f'  iban = "{iban_lv("TREL", account)}"',
            '  currency = "EUR"',
            "  [[client.user]]",
            f'  name = "{user}"',
            '  kind = "system"',
            '  mode = "manage"',
            f'  authorized_keys = "keys/{user}.authorized"',
        ]
    config = base / "gateway.toml"
    config.write_text("\n".join(lines) + "\n")
    settings = load(config)
    make_signing_key(settings)  # valid before any moment a test pins its daemon's clock to
    env = open_environment(settings, need_sealer=False)
    try:
        for client in CLIENTS:
            fund(env, iban(client), FUNDED, key=f"test:{client}")
    finally:
        env.close()
    return Install(base, config, port, keys)


# -- batches -----------------------------------------------------------------------------------


def today_riga() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(load_zone()).date()


def load_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Riga")


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def batch(
    msg_id: str, client: str, count: int, amount_minor: int = 100, day: dt.date | None = None
) -> bytes:
    """A valid pain.001 of `count` external payments with end-to-end ids unique to `msg_id`,
    to execute on `day` (today in Riga)."""
    amount = money(amount_minor)
    txs = [
        SampleTx(
            end_to_end_id=f"{msg_id}-{n}",
            amount=amount,
            creditor_iban=iban_lv("HABA", 10_000 + n),
            creditor_bic="HABALV22",
        )
        for n in range(count)
    ]
    total = money(amount_minor * count)
    return to_bytes(
        SampleBatch(
            msg_id=msg_id,
            nb_of_txs=str(count),
            ctrl_sum=total,
            payment_infos=[
                SamplePmtInf(
                    pmt_inf_id=f"{msg_id}-P",
                    debtor_iban=iban(client),
                    transactions=txs,
                    execution_date=(day or today_riga()).isoformat(),
                    nb_of_txs=str(count),
                    ctrl_sum=total,
                )
            ],
        )
    )


def drop(folder: Path, name: str, data: bytes, *, age_seconds: float = 60.0) -> Path:
    """Put a complete file into in/ the way an OpenSSH upload finally lies there (no receipt)."""
    tmp = folder / f".{name}.writing"
    tmp.write_bytes(data)
    past = time.time() - age_seconds
    os.utime(tmp, (past, past))
    target = folder / name
    os.replace(tmp, target)
    return target


# -- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    path: Path
    original_msg_id: str
    group_status: str
    tx_statuses: Counter[str]


def answers(out: Path) -> list[Answer]:
    """Every pain.002 in `out/`, parsed."""
    found = []
    for path in sorted(out.glob("*_pain.002.001.03_*.xml")):
        tree = etree.parse(str(path))
        group = tree.find(f".//{PAIN002}OrgnlGrpInfAndSts")
        assert group is not None, path
        found.append(
            Answer(
                path=path,
                original_msg_id=group.findtext(f"{PAIN002}OrgnlMsgId") or "",
                group_status=group.findtext(f"{PAIN002}GrpSts") or "",
                tx_statuses=Counter(
                    e.text or "" for e in tree.iter(f"{PAIN002}TxSts")
                ),
            )
        )
    return found


def answers_per_msg_id(*outs: Path) -> Counter[str]:
    return Counter(a.original_msg_id for out in outs for a in answers(out))


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# -- the daemon process ----------------------------------------------------------------------


@dataclass
class Daemon:
    install: Install
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def wait_started(self, timeout: float = 20.0) -> dict[str, Any]:
        ok = wait_for(
            lambda: bool(self.events("daemon.started")) or self.process.poll() is not None,
            timeout,
        )
        if not ok or self.process.poll() is not None:
            raise AssertionError(f"daemon did not start:\n{self.log_path.read_text()[-3000:]}")
        return self.events("daemon.started")[0]

    def tail(self, chars: int = 3000) -> str:
        """The end of the daemon's log, for assertion messages."""
        return "daemon log:\n" + self.log_path.read_text(errors="replace")[-chars:]

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@contextlib.contextmanager
def running_daemon(
    install: Install, *, env: dict[str, str] | None = None, name: str = "daemon"
) -> Iterator[Daemon]:
    """`ekase-gateway run -c CONFIG` as a subprocess; killed (SIGKILL) when the block ends."""
    index = len(list(install.base.glob(f"{name}-*.log")))
    log_path = install.base / f"{name}-{index}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [GATEWAY, "run", "-c", str(install.config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    daemon = Daemon(install, log_path, process)
    try:
        yield daemon
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


# -- SFTP clients ------------------------------------------------------------------------------


def sftp_client(install: Install, user: str) -> paramiko.SFTPClient:
    sock = socket.create_connection(("127.0.0.1", install.port), timeout=10)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        key = paramiko.Ed25519Key.from_private_key_file(str(install.keys[user]))
        transport.auth_publickey(user, key)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
    except BaseException:
        transport.close()
        raise
    return client


def close_sftp(client: paramiko.SFTPClient) -> None:
    transport = client.get_channel().get_transport()  # type: ignore[union-attr]
    client.close()
    transport.close()


def openssh_sftp(install: Install, user: str, commands: list[str], cwd: Path) -> str:
    """OpenSSH `sftp -b`: a failing command fails the run (CalledProcessError)."""
    script = cwd / f"batch-{time.monotonic_ns()}.txt"
    script.write_text("\n".join(commands) + "\n")
    done = subprocess.run(
        [
            "sftp", "-b", str(script), "-i", str(install.keys[user]), "-P", str(install.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            f"{user}@127.0.0.1",
        ],
        cwd=cwd, capture_output=True, text=True, timeout=30, check=True,
    )
    return done.stdout


def ledger_balance_minor(install: Install, client: str) -> int:
    """`ekase-gateway ledger balance` as an operator runs it, in minor units."""
    out = subprocess.run(
        [GATEWAY, "ledger", "balance", "-c", str(install.config), "--iban", iban(client)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()
    assert out[1] == "EUR", out
    whole, _, cents = out[0].replace(",", "").partition(".")
    return int(whole) * 100 + int(cents or 0)

