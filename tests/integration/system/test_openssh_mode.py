"""The OpenSSH deployment mode against a real sshd (issue 15.2, SPEC §4).

`systemd/install.sh --openssh` lays out the chroot tree, the client groups and the SFTP
accounts; sshd runs on a free loopback port with a generated configuration that holds
the `Match User` blocks of `ekase-gateway sshd-config` verbatim; the daemon runs as the
service account and its watcher takes what OpenSSH wrote in place once it has settled.
Clients are OpenSSH's `sftp` and paramiko.

Root only: sshd, `useradd`, chroot.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from gateway.samples import iban_lv
from tests.conftest import need
from tests.integration.system.helpers import (
    INSTALL_SH,
    TAG,
    Accounts,
    Site,
    answer_for,
    batch,
    daemon_as,
    free_port,
    groups_of,
    keygen,
    public_key,
    run_as,
    run_install,
    wait_for,
)

# They share the session's pip-installed environment: with `pytest -n`, on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

A, B = f"o{TAG}a", f"o{TAG}b"  # client ids, unique to the session (their groups are system-wide)
A_ERP, A_VIEW, B_ERP = f"{A}-erp", f"{A}-view", f"{B}-erp"
IBAN_A = iban_lv("TREL", 9_100_000_000_011)
IBAN_B = iban_lv("TREL", 9_100_000_000_012)


@dataclass
class Sshd:
    site: Site
    port: int
    keys: dict[str, Path]  # key name -> private key
    work: Path  # root's folder for client-side files
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return "sshd log:\n" + self.log.read_text(errors="replace")[-chars:]

    def chroot(self, client: str) -> Path:
        return self.site.state / "sftp" / client

    def sftp(self, user: str, key: str, commands: list[str]) -> subprocess.CompletedProcess[str]:
        """OpenSSH `sftp -b`: the batch stops at the first failing command (exit 1)."""
        script = self.work / f"batch-{user}-{len(list(self.work.glob('batch-*')))}.txt"
        script.write_text("\n".join(commands) + "\n")
        return subprocess.run(
            ["sftp", "-b", str(script), "-i", str(self.keys[key]), "-P", str(self.port),
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             f"{user}@127.0.0.1"],
            cwd=self.work, capture_output=True, text=True, timeout=60,
        )

    def paramiko(self, user: str, key: str) -> paramiko.SFTPClient:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=30)
            transport.auth_publickey(
                user, paramiko.Ed25519Key.from_private_key_file(str(self.keys[key]))
            )
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
        except BaseException:
            transport.close()
            raise
        return client


def _close(client: paramiko.SFTPClient) -> None:
    transport = client.get_channel().get_transport()  # type: ignore[union-attr]
    client.close()
    transport.close()


def _config(prefix: Path, sftp_port: int) -> str:
    spool = prefix / "var" / "lib" / "ekase-gateway" / "spool"
    private = prefix / "etc" / "ekase-gateway" / "private"
    lines = [
        "[gateway]",
        f'spool_dir = "{spool}"',
        f'database_url = "sqlite:///{spool}/ledger.sqlite3"',
        f'log_file = "{spool}/log/gateway.jsonl"',
        "rescan_seconds = 1",
        "settle_seconds = 1",
        "",
        "[sftp]",
        f'listen = "127.0.0.1:{sftp_port}"',  # the built-in server runs too, unused here
        f'host_key = "{private}/ssh_host_ed25519_key"',
        "",
        "[signing]",
        f'key = "{private}/gateway.key"',
        f'certificate = "{private}/gateway.crt"',
    ]
    for number, (client, iban, users) in enumerate((
        (A, IBAN_A, [(A_ERP, "system", "manage"), (A_VIEW, "person", "view")]),
        (B, IBAN_B, [(B_ERP, "system", "manage")]),
    ), start=90000000001):  # fmt: skip
        lines += ["", "[[client]]", f'id = "{client}"', f'name = "Client {client}"',
                  f'registration_number = "{number}"',
                  "  [[client.account]]", f'  iban = "{iban}"', '  currency = "EUR"']
        for user, kind, mode in users:
            lines += ["  [[client.user]]", f'  name = "{user}"', f'  kind = "{kind}"',
                      f'  mode = "{mode}"', f'  authorized_keys = "keys/{user}.pub"']
    return "\n".join(lines) + "\n"


def _sshd_config(folder: Path, port: int, blocks: str) -> str:
    host_key = keygen(folder / "ssh_host_ed25519_key", "test sshd")
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {folder / 'sshd.pid'}",
        "UsePAM no",
        "StrictModes yes",
        "PermitRootLogin no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthorizedKeysFile none",
        "LogLevel VERBOSE",
        # As in a distribution's sshd_config: the blocks' ForceCommand replaces it.
        "Subsystem sftp internal-sftp",
        "",
        blocks,
    ])


@pytest.fixture(scope="module")
def sshd(installed_site: Site, root_scratch: Path) -> Iterator[Sshd]:
    sshd_program = shutil.which("sshd") or "/usr/sbin/sshd"
    need(Path(sshd_program).exists(), "sshd not installed (apt-get install openssh-server)")
    account = f"eko{TAG}"
    made = Accounts(users=[A_ERP, A_VIEW, B_ERP, account],
                    groups=[f"ekase-{A}", f"ekase-{B}"])
    prefix = root_scratch / "openssh"
    work = prefix / "client"
    keys_dir = prefix / "etc" / "ekase-gateway" / "keys"
    keys_dir.mkdir(parents=True)
    keys = {
        name: keygen(work / "keys" / name, name)
        for name in ("a-erp", "a-erp-far", "a-view", "b-erp")
    }
    (keys_dir / f"{A_ERP}.pub").write_text(
        f'from="127.0.0.1" {public_key(keys["a-erp"])}\n'
        f'from="10.9.9.9" {public_key(keys["a-erp-far"])}\n'
    )
    (keys_dir / f"{A_VIEW}.pub").write_text(public_key(keys["a-view"]) + "\n")
    (keys_dir / f"{B_ERP}.pub").write_text(f'from="127.0.0.1" {public_key(keys["b-erp"])}\n')
    given = prefix / "given.toml"
    given.write_text(_config(prefix, free_port()))
    site = Site(prefix, account, installed_site.venv)
    sshd_process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(2):  # a second run changes nothing and must not fail
            run_install("--prefix", str(prefix), "--user", account, "--venv", str(site.venv),
                        "--config", str(given), "--openssh", "--no-systemctl")
        run_as(account, site.gateway, "ledger", "fund", "-c", site.config, "--iban", IBAN_A,
               "--amount", "100.00", "--key", f"test-{TAG}")
        blocks = run_as(account, site.gateway, "sshd-config", "-c", site.config).stdout
        folder = prefix / "sshd"
        folder.mkdir()
        config = folder / "sshd_config"
        config.write_text(_sshd_config(folder, port := free_port(), blocks))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        checked = subprocess.run([sshd_program, "-t", "-f", str(config)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        log = folder / "sshd.log"
        with open(log, "wb") as sink:
            sshd_process = subprocess.Popen(
                [sshd_program, "-D", "-e", "-f", str(config)], stdout=sink, stderr=sink
            )
        server = Sshd(site, port, keys, work, log)
        assert wait_for(lambda: _accepts(port) or sshd_process.poll() is not None)
        assert sshd_process.poll() is None, server.tail()
        # With the capabilities install.sh's drop-in gives the unit in OpenSSH mode.
        drop_in = prefix / "etc/systemd/system/ekase-gateway.service.d/openssh.conf"
        caps = tuple(
            cap.removeprefix("CAP_").lower()
            for line in drop_in.read_text().splitlines()
            if line.startswith("AmbientCapabilities=")
            for cap in line.partition("=")[2].split()
        )
        assert caps == ("dac_read_search",), drop_in.read_text()
        with daemon_as(site, prefix / "daemon.out", caps=caps):
            yield server
    finally:
        if sshd_process is not None and sshd_process.poll() is None:
            sshd_process.terminate()
            sshd_process.wait(30)
        for problem in made.remove():
            pytest.fail(problem)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_install_made_the_accounts_sshd_needs(sshd: Sshd) -> None:
    """Each SFTP user exists with its client's group, the service account is in every
    client's group, and the chroot folders are root's down to the client's folder."""
    assert f"ekase-{A}" in groups_of(A_ERP) and f"ekase-{A}" in groups_of(A_VIEW)
    assert f"ekase-{B}" in groups_of(B_ERP) and f"ekase-{A}" not in groups_of(B_ERP)
    assert {f"ekase-{A}", f"ekase-{B}"} <= groups_of(sshd.site.account)
    chroot = sshd.chroot(A)
    for folder in [chroot, *chroot.parents]:
        info = folder.stat()
        assert info.st_uid == 0 and not info.st_mode & 0o022, folder
    assert (sshd.site.spool / "clients").resolve() == chroot.parent


def test_upload_with_openssh_sftp_is_answered_and_can_be_downloaded(sshd: Sshd) -> None:
    """`sftp put` into /in (written in place, no receipt): the daemon's watcher takes it
    once settled and archives it, the pain.002 and its seal appear in /out, and the client
    downloads both."""
    msg_id = f"OSSH-{TAG}"
    local = sshd.work / f"{msg_id}.xml"
    local.write_bytes(batch(msg_id, IBAN_A))
    put = sshd.sftp(A_ERP, "a-erp", [f"put {local} /in/{msg_id}.xml"])
    assert put.returncode == 0, put.stderr + sshd.tail()
    out = sshd.chroot(A) / "out"
    assert wait_for(lambda: answer_for(out, msg_id) is not None), sshd.site.spool
    found = answer_for(out, msg_id)
    assert found is not None
    answer, group_status = found
    assert group_status in ("ACSC", "ACCP"), answer.read_text()[:2000]
    assert not (sshd.chroot(A) / "in" / f"{msg_id}.xml").exists()
    # Shelved like any upload, though the file is the SFTP user's and not the daemon's.
    archive = sshd.site.spool / "archive" / A
    assert wait_for(lambda: any(archive.glob(f"*/*__{msg_id}.xml"))), sshd.site.spool

    downloads = sshd.work / "downloads"
    downloads.mkdir()
    get = sshd.sftp(A_ERP, "a-erp", [f"get /out/{answer.name} {downloads}/",
                                      f"get /out/{answer.name}.sig {downloads}/"])
    assert get.returncode == 0, get.stderr + sshd.tail()
    assert (downloads / answer.name).read_bytes() == answer.read_bytes()
    assert (downloads / f"{answer.name}.sig").read_bytes().startswith(b"<")


def test_an_upload_of_a_file_only_its_owner_may_read_is_answered(sshd: Sshd) -> None:
    """OpenSSH's `put` sends the local file's mode: an ERP's export made under umask 077
    (0600) landed 0600, the SFTP user's alone, and the service account (in the client's
    group) could not read it: the client was held, this file and every later one
    unanswered. In OpenSSH mode the unit reads them with CAP_DAC_READ_SEARCH (install.sh's
    drop-in)."""
    msg_id = f"OSSH600-{TAG}"
    local = sshd.work / f"{msg_id}.xml"
    local.write_bytes(batch(msg_id, IBAN_A))
    local.chmod(0o600)
    put = sshd.sftp(A_ERP, "a-erp", [f"put {local} /in/{msg_id}.xml"])
    assert put.returncode == 0, put.stderr + sshd.tail()
    out = sshd.chroot(A) / "out"
    assert wait_for(lambda: answer_for(out, msg_id) is not None), sshd.site.spool


def test_a_trial_put_into_test_is_answered_and_moves_no_money(sshd: Sshd) -> None:
    """`sftp put` into /test (SPEC §15): the daemon answers it `_TEST_` in /out and
    shelves it in trials/, nothing archived."""
    msg_id = f"OTRY-{TAG}"
    local = sshd.work / f"{msg_id}.xml"
    local.write_bytes(batch(msg_id, IBAN_A))
    put = sshd.sftp(A_ERP, "a-erp", [f"put {local} /test/{msg_id}.xml"])
    assert put.returncode == 0, put.stderr + sshd.tail()
    out = sshd.chroot(A) / "out"
    assert wait_for(lambda: any(out.glob("*_TEST_pain.002.001.03_*.xml"))), sshd.tail()
    trials = sshd.site.spool / "trials" / A
    assert wait_for(lambda: any(trials.glob(f"*/*__{msg_id}.xml"))), sshd.site.spool
    assert not any((sshd.site.spool / "archive" / A).glob(f"*/*__{msg_id}.xml"))


def test_a_user_is_confined_to_its_clients_folder(sshd: Sshd) -> None:
    """The chroot shows `/in`, `/out` and `/test` (SPEC §15) only: `..` leads nowhere, the
    machine's files and the other client's folder are out of reach (by relative and by
    absolute path), and nothing can be written beside in/, out/ and test/ or linked."""
    client = sshd.paramiko(A_ERP, "a-erp")
    try:
        assert sorted(client.listdir("/")) == ["in", "out", "test"]
        assert sorted(client.listdir("/..")) == ["in", "out", "test"]
        assert client.normalize("../../..") == "/"
        for outside in ("/etc/passwd", "/../etc/passwd", f"/../{B}/in",
                        str(sshd.chroot(B) / "in"), str(sshd.site.config)):
            with pytest.raises(OSError):
                client.stat(outside)
        with pytest.raises(OSError):
            client.listdir(f"/../{B}")
        with pytest.raises(OSError):
            client.open("/planted.xml", "wb").close()
        with pytest.raises(OSError):
            client.symlink("/out", "/in/link")
    finally:
        _close(client)


def test_a_key_limited_by_from_is_refused_from_elsewhere(sshd: Sshd) -> None:
    """authorized_keys `from="10.9.9.9"` is honoured: that key is refused from 127.0.0.1,
    while the same user's key allowed from 127.0.0.1 logs in."""
    with pytest.raises(paramiko.AuthenticationException):
        sshd.paramiko(A_ERP, "a-erp-far")
    refused = sshd.sftp(A_ERP, "a-erp-far", ["ls /in"])
    assert refused.returncode != 0
    _close(sshd.paramiko(A_ERP, "a-erp"))


def test_a_view_user_reads_out_but_cannot_write(sshd: Sshd) -> None:
    """A `view` user (internal-sftp -R) lists and reads /out and cannot upload, rename or
    remove anything."""
    note = sshd.chroot(A) / "out" / f"note-{TAG}.txt"
    note.write_text("for the accountant\n")
    note.chmod(0o640)  # the group (the client's, from the setgid folder) reads it
    client = sshd.paramiko(A_VIEW, "a-view")
    try:
        assert note.name in client.listdir("/out")
        with client.open(f"/out/{note.name}") as handle:
            assert handle.read() == b"for the accountant\n"
        with pytest.raises(OSError):
            client.open("/in/view.xml", "wb").close()
        with pytest.raises(OSError):
            client.rename(f"/out/{note.name}", f"/in/{note.name}")
        with pytest.raises(OSError):
            client.remove(f"/out/{note.name}")
    finally:
        _close(client)
    assert note.exists()
    put = sshd.sftp(A_VIEW, "a-view", [f"put {note} /in/view.xml"])
    assert put.returncode != 0
    assert not (sshd.chroot(A) / "in" / "view.xml").exists()


def test_a_user_named_as_an_account_the_machine_has_is_refused(
    installed_site: Site, root_scratch: Path
) -> None:
    """install.sh --openssh made the SFTP account only if it was missing: a user named as an
    account the machine already had (not one it made) was adopted, and the generated
    `Match User` block handed that login to the client's key. Now it stops, naming it, and
    the account is left as it was."""
    own, account = f"x{TAG}own", f"ekr{TAG}"
    client = f"r{TAG}a"
    made = Accounts(users=[f"{client}-erp", own, account],
                    groups=[f"ekase-{client}", f"ekase-r{TAG}b", own])  # fmt: skip
    prefix = root_scratch / "adopted"
    try:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", "--user-group", "--comment", "someone else's", own],
                       check=True)  # fmt: skip
        keys_dir = prefix / "etc" / "ekase-gateway" / "keys"
        keys_dir.mkdir(parents=True)
        key = public_key(keygen(prefix / "client" / "k", "k"))
        text = _config(prefix, free_port()).replace(A, client).replace(B, f"r{TAG}b")
        text = text.replace(f'"{client}-view"', f'"{own}"')
        text = text.replace(f"{client}-view.pub", f"{own}.pub")
        for user in (f"{client}-erp", own, f"r{TAG}b-erp"):
            (keys_dir / f"{user}.pub").write_text(f'from="127.0.0.1" {key}\n')
        given = prefix / "given.toml"
        given.write_text(text)
        done = subprocess.run(
            ["bash", str(INSTALL_SH), "--prefix", str(prefix), "--user", account, "--venv",
             str(installed_site.venv), "--config", str(given), "--openssh", "--no-systemctl"],
            cwd="/", capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"SFTP user {own} is an account this machine has already" in done.stderr
        assert groups_of(own) == {own}
        # Checked before anything of the tree is made: the row before it made its group and
        # account, and a half-applied install was left (a reviewer).
        for kind, name in (("passwd", f"{client}-erp"), ("group", f"ekase-{client}")):
            found = subprocess.run(["getent", kind, name], capture_output=True, check=False)
            assert found.returncode == 2, (kind, name, found.stdout)
    finally:
        for problem in made.remove():
            pytest.fail(problem)
