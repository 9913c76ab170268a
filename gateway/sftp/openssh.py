"""`sshd_config` blocks for deployments that use OpenSSH instead of the built-in server.

Each user gets a `Match User` block that jails it in its client's folder
(where it sees `/in`, `/out` and `/test`, like the built-in server) and allows nothing
but `internal-sftp`. OpenSSH requires the chroot folder and every folder above
it to be owned by root and writable by nobody else (it refuses the login
otherwise), so the printed `ChrootDirectory` is the real path: where
`<spool>/clients` is a link to a root-owned tree — the layout `systemd/install.sh
--openssh` makes, since the spool itself belongs to the service account — the
link is followed.

Below the chroot, `in/` and `out/` belong to the service account and to the
client's group (`client_group`), setgid so that what is written there keeps
that group: the client's SFTP users are its members and may write `in/` and
read `out/`; the service account is a member of every client's group, so it
can read what they upload. Unlike the built-in server, sshd cannot stop a
`manage` user from overwriting or removing files in `in/`; file permissions
(and the gateway's claiming of files) must do that. Nor does it bound upload
sizes, a client's waiting bytes or its sessions: the output's header says which
filesystem quota and sshd settings take their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError
from gateway.settings import Settings

# Requests internal-sftp refuses for every user (names as in `sftp-server -Q requests`).
DENIED_REQUESTS = ("symlink", "hardlink", "mkdir", "rmdir")


# The folders below a client's chroot: (name, mode). Owner: the service account; group: the
# client's. Setgid, so uploads and answers take the client's group.
CLIENT_AREAS = (("in", 0o2770), ("out", 0o2750), ("test", 0o2770))  # test/: trial runs
# Linux (shadow-utils) refuses longer group names.
group_name_chars_max = 32
# Here each user is an account of the machine: never one the machine has already (its
# `Match User` block would give that login to the client's key). The built-in server's
# users are its own, so these names are refused only for OpenSSH (install.sh also stops
# at any account of the machine it did not make).
SYSTEM_USER_NAMES = frozenset({"root", "daemon", "bin", "sys", "sync", "nobody", "sshd"})
SERVICE_ACCOUNT = "ekase"  # the gateway's own account (systemd/ekase-gateway.service)


def client_group(client_id: str) -> str:
    """The system group of a client's SFTP users in OpenSSH mode (and of its in/ and out/)."""
    return f"ekase-{client_id}"


def chroot_dir(settings: Settings, client_id: str) -> Path:
    """The client's folder as sshd must see it: every link followed."""
    return (settings.spool_dir / "clients" / client_id).resolve()


@dataclass(frozen=True, slots=True)
class Account:
    """One SFTP user as the operating system must know it in OpenSSH mode."""

    client_id: str
    group: str
    chroot: Path
    user: str
    mode: str  # "manage" | "view"


def accounts(settings: Settings) -> list[Account]:
    """Every configured SFTP user with its client's group and chroot (for `install.sh`);
    ConfigError for what OpenSSH mode cannot serve."""
    found = []
    for ci, client in enumerate(settings.clients):
        group = client_group(client.id)
        if len(group) > group_name_chars_max:
            raise ValueError(
                f"client {client.id}: OpenSSH mode needs a group {group!r}, longer than "
                f"{group_name_chars_max} characters; use a client id of at most "
                f"{group_name_chars_max - len(client_group(''))} characters"
            )
        for ui, user in enumerate(client.users):
            if user.name in SYSTEM_USER_NAMES or user.name == SERVICE_ACCOUNT:
                whose = "the gateway's own account" if user.name == SERVICE_ACCOUNT else (
                    "an account of the machine's own")  # fmt: skip
                raise ConfigError(
                    f"client[{ci}].user[{ui}].name",
                    f"{user.name!r} is {whose}: OpenSSH mode cannot serve it, choose another",
                )
            found.append(Account(client.id, group, chroot_dir(settings, client.id),
                                 user.name, user.mode))
    return found


def accounts_table(settings: Settings) -> str:
    """`accounts` as lines of `client group chroot user mode` (tab-separated) for scripts."""
    return "".join(
        f"{a.client_id}\t{a.group}\t{a.chroot}\t{a.user}\t{a.mode}\n" for a in accounts(settings)
    )


def _quote(value: str) -> str:
    if any(c in value for c in '"\n\r'):
        raise ValueError(f"path cannot be written into sshd_config: {value!r}")
    return f'"{value}"' if any(c.isspace() for c in value) else value


def sshd_config_blocks(settings: Settings) -> str:
    """The `Match User` blocks for every configured SFTP user, ready to append to sshd_config."""
    lines = [
        f"# ekase-gateway SFTP users, generated from {settings.config_path}",
        "# ChrootDirectory and every folder above it must be owned by root and not",
        "# writable by group or others (sshd refuses the login otherwise); in/, out/, test/",
        "# below it belong to the service account and the client's group (setgid), of",
        "# which the client's users and the service account are members. Users need an",
        "# unlocked account (`useradd -p '*'`) where UsePAM is no. systemd/install.sh",
        "# --openssh makes all of this.",
        "# ForceCommand runs internal-sftp whatever the Subsystem line says.",
        "#",
        "# Under OpenSSH the built-in server's limits do not apply; they are the operator's.",
        "# - Size and waiting bytes: files over max_file_bytes "
        f"({settings.max_file_bytes}) are refused only once",
        "#   uploaded, and nothing bounds what a client leaves waiting (built-in:",
        f"#   sftp.client_waiting_bytes_max = {settings.sftp.client_waiting_bytes_max}). "
        "No filesystem quota fits:",
        "#   a client's shelved originals keep its user, group and project id (a rename",
        "#   changes none), so a user, group or project quota would count the archive and",
        "#   in time refuse its uploads. Alert on the spool filesystem's free space instead.",
        "# - Sessions: sshd has no per-user limit of its own (built-in:",
        f"#   sftp.sessions_per_user_max = {settings.sftp.sessions_per_user_max}): "
        "pam_limits maxlogins bounds logins per",
        "#   user, MaxStartups and PerSourcePenalties (OpenSSH 9.8+) unauthenticated ones,",
        "#   MaxSessions channels per connection; ClientAliveInterval/ClientAliveCountMax",
        "#   end dead sessions.",
    ]
    accounts(settings)  # what OpenSSH mode cannot serve is refused first
    for client in settings.clients:
        chroot = chroot_dir(settings, client.id)
        modes = ", ".join(f"{name}/ {mode:04o}" for name, mode in CLIENT_AREAS)
        lines += [
            "",
            f"# {client.id}: {chroot} root:root 0755; {modes} owned by the service "
            f"account, group {client_group(client.id)}",
        ]
        for user in client.users:
            options = ["-d /in", "-u 0027", "-P " + ",".join(DENIED_REQUESTS)]
            if user.mode == "view":
                options.insert(0, "-R")
            lines += [
                "",
                f"# {client.id}: {user.name} ({user.kind}, {user.mode})",
                f"Match User {user.name}",
                f"    ChrootDirectory {_quote(str(chroot))}",
                f"    ForceCommand internal-sftp {' '.join(options)}",
                f"    AuthorizedKeysFile {_quote(str(user.authorized_keys.resolve()))}",
                "    PubkeyAuthentication yes",
                "    PasswordAuthentication no",
                "    KbdInteractiveAuthentication no",
                "    AllowTcpForwarding no",
                "    AllowStreamLocalForwarding no",
                "    AllowAgentForwarding no",
                "    X11Forwarding no",
                "    PermitTunnel no",
                "    PermitTTY no",
            ]
    lines += ["", "Match all", ""]
    return "\n".join(lines)
