"""What `sshd-config` and `install.sh --openssh` derive from the configuration and the spool
on disk (the real sshd meets it in tests/integration/system/test_openssh_mode.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import Settings
from gateway.sftp.openssh import accounts, accounts_table, client_group, sshd_config_blocks
from tests.unit.test_sshd_config import ERP, VIEW, _settings


def _linked_spool(tmp_path: Path) -> tuple[Settings, Path]:
    """The install.sh layout: the spool is the service's, its clients/ a link to a tree
    that is root's all the way down (sshd's condition for a chroot)."""
    state = tmp_path / "var-lib-ekase-gateway"
    tree = state / "sftp"
    (tree / "iestade-a").mkdir(parents=True)
    spool = state / "spool"
    spool.mkdir()
    (spool / "clients").symlink_to("../sftp")
    return _settings(spool, (ERP, VIEW)), tree


def test_chroot_directory_is_the_real_folder_behind_the_link(tmp_path: Path) -> None:
    """sshd checks every folder of the ChrootDirectory path for root ownership, so the
    printed path must not pass through the service account's spool: the link is followed."""
    settings, tree = _linked_spool(tmp_path)
    text = sshd_config_blocks(settings)
    assert f"ChrootDirectory {tree / 'iestade-a'}\n" in text
    assert "spool/clients" not in text


def test_accounts_name_each_user_with_its_clients_group_and_chroot(tmp_path: Path) -> None:
    """install.sh reads one line per SFTP user: client, group, chroot, login, mode."""
    settings, tree = _linked_spool(tmp_path)
    lines = [line.split("\t") for line in accounts_table(settings).splitlines()]
    chroot = str(tree / "iestade-a")
    assert lines == [
        ["iestade-a", "ekase-iestade-a", chroot, "a-erp", "manage"],
        ["iestade-a", "ekase-iestade-a", chroot, "a-view", "view"],
    ]


def test_a_client_id_too_long_for_a_group_name_is_refused(tmp_path: Path) -> None:
    """Linux group names stop at 32 characters: a longer `ekase-<client>` is refused with
    the limit named, before any account is made."""
    settings, _ = _linked_spool(tmp_path)
    client = dataclasses.replace(settings.clients[0], id="a" * 27)
    assert len(client_group(client.id)) == 33
    with pytest.raises(ValueError, match="at most 26 characters"):
        accounts(dataclasses.replace(settings, clients=(client,)))


@pytest.mark.parametrize("name", ["root", "sync", "ekase"])
def test_a_login_name_the_machine_has_is_refused_for_openssh_only(
    tmp_path: Path, name: str
) -> None:
    """Under OpenSSH each user is an account of the machine: `root`, the usual system names
    and the service account would hand their login to a client's key. `sshd-config` and
    install.sh's table refuse them naming the key; the built-in server, whose users are
    its own, takes them (a configuration that worked keeps working)."""
    settings, _ = _linked_spool(tmp_path)
    user = dataclasses.replace(settings.clients[0].users[0], name=name)
    client = dataclasses.replace(settings.clients[0], users=(user,))
    named = dataclasses.replace(settings, clients=(client,))
    for derive in (sshd_config_blocks, accounts_table):
        with pytest.raises(ConfigError, match=rf"client\[0\]\.user\[0\]\.name: '{name}' is"):
            derive(named)
