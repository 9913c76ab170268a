"""A wrong configuration, whatever command meets it, is one line and exit 2 (SPEC §3, §9):
the key path and the problem, never a traceback. These mistakes show only once the file is
used — against the ledger it names, or the folders it points at — not when it is read."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.keys import init_signing_key
from gateway.settings import load
from tests.pipeline_fixtures import CLIENT_A, make_signing_key, write_config

EXE = str(Path(sys.executable).with_name("ekase-gateway"))

# The commands that open the database for writing, as an operator types them.
WRITERS = [
    ["db", "upgrade"],
    ["report", "--iban", "LV31TREL9100000000001"],
    ["scan", "--once"],
    ["eod"],
    ["run"],
]


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def assert_one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], done.stderr


@pytest.fixture(scope="module")
def used(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installation whose accounts exist in the ledger (`db upgrade` once)."""
    base = tmp_path_factory.mktemp("used")
    config = write_config(base)
    make_signing_key(load(config))
    assert gateway("db", "upgrade", "-c", str(config)).returncode == 0
    return config


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('currency = "EUR"', 'currency = "USD"'), "client[0].account[0].currency"),
        ((f'id = "{CLIENT_A}"', 'id = "ministrija"'), "client[0].account[0].iban"),
    ],
    ids=["currency", "client"],
)
@pytest.mark.parametrize("words", WRITERS, ids=lambda w: " ".join(w[:2]))
def test_an_existing_account_given_to_another_client_or_currency(
    used: Path, words: list[str], change: tuple[str, str], key: str
) -> None:
    """A configuration that gives an account the ledger holds to another client or currency
    is refused by every command that writes, naming the account's key path and what the
    ledger holds — exit 2, not a `ValueError` traceback and exit 1 (which systemd restarts
    for ever)."""
    config = used.with_name("moved.toml")
    config.write_text(used.read_text().replace(*change, 1))
    done = gateway(*words, "-c", str(config))
    assert_one_line(done, key, "LV31TREL9100000000001", f"exists in the ledger for {CLIENT_A}")


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ({"spool_dir": "a-file"}, ["gateway.spool_dir", "a-file is a file, not a folder"]),
        ({"spool_dir": "/proc/nope"}, ["gateway.spool_dir", "cannot create /proc/nope"]),
        ({"log_file": "/proc/x/gateway.jsonl"}, ["gateway.log_file", "/proc/x"]),
        ({"log_file": "."}, ["gateway.log_file", "Is a directory"]),
    ],
    ids=["spool-is-a-file", "spool-cannot-be-made", "log-cannot-be-made", "log-is-a-folder"],
)
@pytest.mark.parametrize(
    "command", [["status"], ["db", "upgrade"], ["scan", "--once"], ["eod"], ["run"]],
    ids=lambda w: w[0],
)
def test_a_path_that_cannot_be_used(
    tmp_path: Path, setting: dict[str, str], words: list[str], command: list[str]
) -> None:
    """A `spool_dir` or `log_file` the gateway cannot make or open is named with its key and
    why, exit 2 — by every command that uses it — not a NotADirectoryError or
    FileNotFoundError traceback. (`status` writes nothing, so it meets only a spool that is a
    file: a spool not made yet is an installation not started yet.)"""
    (tmp_path / "a-file").write_text("not a folder\n")
    config = write_config(tmp_path, **setting)
    now = dt.datetime.now(dt.UTC)
    init_signing_key(tmp_path / "signing/gateway.key", tmp_path / "signing/gateway.crt", now=now)
    done = gateway(*command, "-c", str(config))
    if command == ["status"] and "a-file" not in setting.values():
        assert "Traceback" not in done.stderr
        return
    assert_one_line(done, *words)


@pytest.mark.parametrize(
    ("content", "mode", "words"),
    [
        (b"garbage\n", 0o600, ["not an unencrypted OpenSSH private key"]),
        (b"", 0o600, ["not an unencrypted OpenSSH private key"]),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFhpZ2h0 public@key\n", 0o600,
         ["not an unencrypted OpenSSH private key"]),
        (None, 0o644, ["mode 0644 gives its group and everyone access to it; chmod 600"]),
        (None, 0o640, ["mode 0640 gives its group access to it; chmod 600"]),
    ],
    ids=["garbage", "empty", "a-public-key", "readable-by-others", "readable-by-its-group"],
)
@pytest.mark.parametrize("command", [["run"], ["keys", "init"]], ids=lambda w: w[0])
def test_a_host_key_that_cannot_be_used(
    tmp_path: Path, content: bytes | None, mode: int, words: list[str], command: list[str]
) -> None:
    """A host key file that is not a private key (garbage, empty, the public half) or that
    others can read stops `run` and `keys init` with one line naming `sftp.host_key` and
    the problem, exit 2 — not a KeyImportError traceback and exit 1, which systemd restarts
    every few seconds (and `run` used to accept a key readable by others)."""
    from gateway.keys import init_host_key

    config = write_config(tmp_path)
    settings = load(config)
    now = dt.datetime.now(dt.UTC)
    init_signing_key(settings.signing.key, settings.signing.certificate, now=now)
    path = settings.sftp.host_key
    init_host_key(path)
    if content is not None:
        path.write_bytes(content)
    path.chmod(mode)
    done = gateway(*command, "-c", str(config))
    assert_one_line(done, "sftp.host_key", str(path), *words)


@pytest.mark.parametrize(
    ("breaks", "key"),
    [
        (lambda s: s.signing.key.unlink(), "signing.key:"),
        (lambda s: s.signing.certificate.unlink(), "signing.certificate:"),
        (lambda s: s.signing.key.write_text("not a key\n"), "signing.key:"),
    ],
    ids=["key-missing", "certificate-missing", "key-garbage"],
)
def test_a_signing_key_or_certificate_that_cannot_be_used_is_named_by_its_key(
    tmp_path: Path, breaks: object, key: str
) -> None:
    """SPEC §3: one line naming the key path and the problem. A missing or broken seal key
    or certificate is named as `signing.key` / `signing.certificate` with its file (it
    said "signing key /…/gateway.key not found", no key path)."""
    config = write_config(tmp_path)
    settings = load(config)
    now = dt.datetime.now(dt.UTC)
    init_signing_key(settings.signing.key, settings.signing.certificate, now=now)
    breaks(settings)  # type: ignore[operator]
    done = gateway("eod", "-c", str(config))
    assert_one_line(done, key, str(tmp_path / "signing"))
