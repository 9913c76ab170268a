"""`systemd/install.sh` installs a service that works (issue 15.1): the documented install
used to make the configuration folder root's, so `keys init` as the service account
crashed, and as root it made a key the service could not read.

Root only: the script creates a real account. Run in a throwaway prefix.
"""

from __future__ import annotations

import re
import socket
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest

from gateway.samples import iban_lv
from tests.integration.system.helpers import (
    REPO,
    TAG,
    Site,
    answer_for,
    batch,
    daemon_as,
    free_port,
    keygen,
    public_key,
    run_as,
    run_install,
    wait_for,
)

# A pip install of the package into a new virtual environment, once per session and shared
# with test_openssh_mode: with `pytest -n`, on the same worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("system")]

CLIENT = "iestade-a"
USER = "iestade-a-erp"
IBAN = iban_lv("TREL", 9_100_000_000_001)


def _mode(path: Path) -> tuple[str, str, int]:
    import grp
    import pwd

    info = path.stat()
    return (pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name,
            stat.S_IMODE(info.st_mode))


def test_the_keys_are_the_service_accounts_and_the_configuration_readable(
    installed_site: Site,
) -> None:
    """The seal key and the SSH host key belong to the service account, readable by it
    alone; the configuration is root's and readable by the account's group; `keys init`
    run again as the account finds them (it crashed with PermissionError before)."""
    site = installed_site
    account = site.account
    assert _mode(site.private) == (account, account, 0o700)
    assert _mode(site.private / "gateway.key") == (account, account, 0o600)
    assert _mode(site.private / "ssh_host_ed25519_key") == (account, account, 0o600)
    assert _mode(site.config) == ("root", account, 0o640)
    assert _mode(site.etc)[:2] == ("root", account)
    again = run_as(account, site.gateway, "keys", "init", "-c", site.config)
    assert "already present" in again.stdout


def test_keys_init_in_a_folder_the_account_cannot_write_says_so_in_one_line(
    installed_site: Site,
) -> None:
    """The old instructions' mistake — a root-owned 0750 configuration folder — now ends
    `keys init` with exit 2 and one line naming the problem, not a traceback."""
    site = installed_site
    folder = site.prefix / "old-layout"
    folder.mkdir()
    folder.chmod(0o750)
    subprocess.run(["chgrp", site.account, str(folder)], check=True)
    config = folder / "gateway.toml"
    config.write_text(
        "[gateway]\n"
        f'spool_dir = "{site.spool}"\n'
        "[sftp]\n"
        'host_key = "ssh_host_ed25519_key"\n'
        "[signing]\n"
        'key = "signing/gateway.key"\n'
        'certificate = "signing/gateway.crt"\n'
    )
    config.chmod(0o644)
    with pytest.raises(subprocess.CalledProcessError) as failed:
        run_as(site.account, site.gateway, "keys", "init", "-c", config)
    assert failed.value.returncode == 2
    lines = failed.value.stderr.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0], failed.value.stderr
    assert "Traceback" not in failed.value.stderr


def test_the_unit_runs_the_installed_gateway_as_the_account(installed_site: Site) -> None:
    """The installed unit starts the installed program with the installed configuration
    as the service account, and its StateDirectory is the spool only — never the folder
    that holds the OpenSSH chroot tree, which systemd would re-own."""
    site = installed_site
    unit = (site.prefix / "etc" / "systemd" / "system" / "ekase-gateway.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if re.match(r"^[A-Z]\w*=", line)
    )
    assert settings["User"] == site.account
    assert settings["ExecStart"] == f"{site.gateway} run -c {site.config}"
    assert settings["StateDirectory"] == "ekase-gateway/spool"
    assert settings["ReadWritePaths"] == str(site.state)
    assert _mode(site.state) == ("root", "root", 0o755)
    assert _mode(site.spool)[:2] == (site.account, site.account)


def test_installed_service_answers_an_upload(installed_site: Site) -> None:
    """With a client added to the configuration and the script run again (idempotent:
    the keys stay as they were), the daemon, run as the service account, takes an SFTP
    upload and writes its pain.002 into the client's out/."""
    site = installed_site
    seal_key = (site.private / "gateway.key").read_bytes()
    client_key = keygen(site.prefix / "client-keys" / USER, USER)
    keys = site.etc / "keys"
    (keys / f"{USER}.pub").write_text(f'from="127.0.0.1" {public_key(client_key)}\n')
    port = free_port()
    given = site.prefix / "gateway.toml"
    given.write_text(
        site.config.read_text()
        .replace('listen = "127.0.0.1:2222"', f'listen = "127.0.0.1:{port}"')
        .replace("[gateway]\n", "[gateway]\nrescan_seconds = 1\n")
        + f"""
[[client]]
id = "{CLIENT}"
name = "Budžeta iestāde A"
registration_number = "90000000001"
  [[client.account]]
  iban = "{IBAN}"
  currency = "EUR"
  [[client.user]]
  name = "{USER}"
  kind = "system"
  mode = "manage"
  authorized_keys = "keys/{USER}.pub"
"""
    )
    run_install("--prefix", str(site.prefix), "--user", site.account, "--source", str(REPO),
                "--config", str(given), "--no-systemctl")
    assert (site.private / "gateway.key").read_bytes() == seal_key, "a second run keeps the key"
    run_as(site.account, site.gateway, "ledger", "fund", "-c", site.config, "--iban", IBAN,
           "--amount", "100.00", "--key", f"test-{TAG}")

    msg_id = f"INST-{TAG}"
    with daemon_as(site, site.prefix / "daemon.out") as daemon:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=30)
            transport.auth_publickey(USER, paramiko.Ed25519Key.from_private_key_file(
                str(client_key)))
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            with sftp.open(f"/in/{msg_id}.xml", "wb") as remote:
                remote.write(batch(msg_id, IBAN))
            sftp.close()
        finally:
            transport.close()
        out = site.out(CLIENT)
        assert wait_for(lambda: answer_for(out, msg_id) is not None), daemon.tail()
    found = answer_for(out, msg_id)
    assert found is not None
    path, group_status = found
    assert group_status in ("ACSC", "ACCP"), (group_status, path.read_text()[:2000])
    assert _mode(path)[0] == site.account


def test_logrotate_is_installed_for_this_installs_log_and_account(installed_site: Site) -> None:
    """The logrotate file goes where logrotate reads it, naming this install's log file and
    creating the new one as its service account (with `--user` and `--prefix` the shipped
    file's `ekase` and /var/lib paths would be wrong: tester 2)."""
    site = installed_site
    rotate = site.prefix / "etc" / "logrotate.d" / "ekase-gateway"
    text = rotate.read_text()
    assert f"{site.spool}/log/gateway.jsonl {{" in text.splitlines()
    assert f"    create 0640 {site.account} {site.account}" in text.splitlines()
    assert _mode(rotate) == ("root", "root", 0o644)


def test_an_earlier_layouts_database_is_refused_before_anything_changes(
    installed_site: Site,
) -> None:
    """Earlier instructions put the SQLite database in /var/lib/ekase-gateway itself, then
    the service's folder (`StateDirectory=ekase-gateway`). install.sh made that folder
    root's, SQLite could no longer make its journal beside the database, and the upgrade
    stopped half-way with the service unable to start (a tester). It is refused before
    anything changes, saying what to do; done, install.sh runs through."""
    import os
    import shutil

    account, gateway = installed_site.account, installed_site.venv / "bin" / "ekase-gateway"
    prefix = installed_site.prefix.parent / "earlier-layout"
    shutil.rmtree(prefix, ignore_errors=True)
    etc, state = prefix / "etc" / "ekase-gateway", prefix / "var" / "lib" / "ekase-gateway"
    for folder in (state / "spool", etc / "private"):
        folder.mkdir(parents=True)
    for folder in (state, state / "spool", etc / "private"):
        shutil.chown(folder, account, account)
    state.chmod(0o750)
    shutil.chown(etc, "root", account)
    etc.chmod(0o750)
    config = etc / "gateway.toml"
    earlier = (
        f'[gateway]\nspool_dir = "{state}/spool"\ndatabase_url = "sqlite:///{state}/ledger.sqlite3"'
        f'\n[sftp]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'host_key = "{etc}/private/ssh_host_ed25519_key"\n[signing]\n'
        f'key = "{etc}/private/gateway.key"\ncertificate = "{etc}/private/gateway.crt"\n'
    )
    config.write_text(earlier)
    shutil.chown(config, "root", account)
    config.chmod(0o640)
    try:
        for command in (("keys", "init"), ("db", "upgrade")):
            run_as(account, gateway, *command, "-c", config)
        install = ["--prefix", str(prefix), "--user", account, "--venv",
                   str(installed_site.venv), "--no-systemctl"]  # fmt: skip
        with pytest.raises(AssertionError) as refused:
            run_install(*install)
        said = str(refused.value)
        assert f"{state}/ledger.sqlite3 lies in {state} itself" in said, said
        assert f'database_url = "sqlite:///{state}/spool/ledger.sqlite3"' in said, said
        assert _mode(state) == (account, account, 0o750)  # nothing changed
        for name in os.listdir(state):  # what it says to do
            if name.startswith("ledger.sqlite3"):
                shutil.move(state / name, state / "spool" / name)
        config.write_text(earlier.replace(f"{state}/ledger", f"{state}/spool/ledger"))
        run_install(*install)
        assert _mode(state)[:2] == ("root", "root")
        assert "gateway schema" in run_as(account, gateway, "db", "upgrade", "-c", config).stdout
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
