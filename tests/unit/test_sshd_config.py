"""`ekase-gateway sshd-config`: Match blocks for OpenSSH deployments."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.settings import (
    ClientSettings,
    Settings,
    SftpSettings,
    SigningSettings,
    UserSettings,
)
from gateway.sftp.openssh import sshd_config_blocks


def _settings(spool: Path, users: tuple[UserSettings, ...]) -> Settings:
    client = ClientSettings(
        id="iestade-a", name="A", registration_number="1", notifications=False,
        accounts=(), users=users,
    )
    return Settings(
        config_path=Path("/etc/ekase/gateway.toml"), spool_dir=spool, database_url="sqlite://",
        timezone=ZoneInfo("Europe/Riga"), bic="TRELLV22", cutoff_internal=dt.time(18),
        cutoff_external=dt.time(15, 30), max_future_days=90, max_file_bytes=1, max_transactions=1,
        eod_time=dt.time(18, 30), log_file=None, sftp=SftpSettings(),
        signing=SigningSettings(key=Path("k"), certificate=Path("c")), clients=(client,),
    )


ERP = UserSettings("a-erp", "system", "manage", Path("/etc/ekase/keys/a-erp.pub"))
VIEW = UserSettings("a-view", "person", "view", Path("/etc/ekase/keys/a-view.pub"))


def _block(text: str, user: str) -> list[str]:
    block = text.split(f"Match User {user}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_each_user_is_jailed_in_its_clients_folder() -> None:
    """Each user gets a Match block chrooting it to its client's folder, starting in /in."""
    text = sshd_config_blocks(_settings(Path("/srv/spool"), (ERP, VIEW)))
    erp = _block(text, "a-erp")
    assert "ChrootDirectory /srv/spool/clients/iestade-a" in erp
    assert "AuthorizedKeysFile /etc/ekase/keys/a-erp.pub" in erp
    force = next(line for line in erp if line.startswith("ForceCommand"))
    assert force.startswith("ForceCommand internal-sftp")
    assert "-d /in" in force and "-R" not in force.split()


def test_view_users_are_read_only() -> None:
    """A view user's internal-sftp runs with -R (read-only)."""
    text = sshd_config_blocks(_settings(Path("/srv/spool"), (ERP, VIEW)))
    force = next(line for line in _block(text, "a-view") if line.startswith("ForceCommand"))
    assert "-R" in force.split() and "-d /in" in force


@pytest.mark.parametrize(
    "line",
    [
        "AllowTcpForwarding no", "X11Forwarding no", "PermitTTY no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "AllowAgentForwarding no",
    ],
)
def test_everything_but_sftp_is_off(line: str) -> None:
    """Forwarding, terminals and passwords are switched off for every gateway user."""
    text = sshd_config_blocks(_settings(Path("/srv/spool"), (ERP, VIEW)))
    for user in ("a-erp", "a-view"):
        assert line in _block(text, user)


def test_blocks_end_by_returning_to_global_scope() -> None:
    """Appending the output to sshd_config does not capture later lines in the last Match."""
    text = sshd_config_blocks(_settings(Path("/srv/spool"), (ERP,)))
    assert text.rstrip().splitlines()[-1] == "Match all"


def test_paths_with_spaces_are_quoted() -> None:
    """A spool path with a space still gives a valid sshd_config line."""
    user = dataclasses.replace(ERP, authorized_keys=Path("/etc/my keys/a.pub"))
    text = sshd_config_blocks(_settings(Path("/srv/my spool"), (user,)))
    block = _block(text, "a-erp")
    assert 'ChrootDirectory "/srv/my spool/clients/iestade-a"' in block
    assert 'AuthorizedKeysFile "/etc/my keys/a.pub"' in block


def test_output_says_which_limits_are_the_operators() -> None:
    """An operator choosing OpenSSH reads that size, waiting-bytes and session limits are theirs
    to set (filesystem quota, sshd settings): the built-in server's limits do not apply."""
    settings = _settings(Path("/srv/spool"), (ERP,))
    text = sshd_config_blocks(settings)
    header = text.split("\nMatch User", 1)[0]
    assert all(line.startswith("#") for line in header.splitlines() if line)
    assert "filesystem quota" in header
    assert "sftp.client_waiting_bytes_max = 2147483648" in header
    assert "MaxSessions" in header and "sftp.sessions_per_user_max = 16" in header
