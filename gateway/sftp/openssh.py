"""`sshd_config` blocks for deployments that use OpenSSH instead of the built-in server.

Each user gets a `Match User` block that jails it in its client's folder
(where it sees `/in` and `/out`, like the built-in server) and allows nothing
but `internal-sftp`. OpenSSH requires the chroot folder and every folder above
it to be owned by root and writable by nobody else; `in/` and `out/` below it
are owned by the gateway's account, with `in/` writable by the SFTP user (a
shared group) and `out/` readable only. Unlike the built-in server, sshd
cannot stop a `manage` user from overwriting or removing files in `in/`;
file permissions (and the gateway's claiming of files) must do that. Nor does
it bound upload sizes, a client's waiting bytes or its sessions: the output's
header says which filesystem quota and sshd settings take their place.
"""

from __future__ import annotations

from gateway.settings import Settings

# Requests internal-sftp refuses for every user (names as in `sftp-server -Q requests`).
DENIED_REQUESTS = ("symlink", "hardlink", "mkdir", "rmdir")


def _quote(value: str) -> str:
    if any(c in value for c in '"\n\r'):
        raise ValueError(f"path cannot be written into sshd_config: {value!r}")
    return f'"{value}"' if any(c.isspace() for c in value) else value


def sshd_config_blocks(settings: Settings) -> str:
    """The `Match User` blocks for every configured SFTP user, ready to append to sshd_config."""
    spool = settings.spool_dir.resolve()
    lines = [
        f"# ekase-gateway SFTP users, generated from {settings.config_path}",
        "# ChrootDirectory and every folder above it must be owned by root and not",
        "# writable by group or others (sshd refuses the login otherwise).",
        "# ForceCommand runs internal-sftp whatever the Subsystem line says.",
        "#",
        "# Under OpenSSH the built-in server's limits do not apply; they are the operator's.",
        "# - Size and waiting bytes: files over max_file_bytes "
        f"({settings.max_file_bytes}) are refused only once",
        "#   uploaded, and nothing bounds what a client leaves waiting (built-in:",
        f"#   sftp.client_waiting_bytes_max = {settings.sftp.client_waiting_bytes_max}). "
        "Set a filesystem quota (a project",
        "#   or group quota on clients/<client>/in) so that one client cannot fill the spool.",
        "# - Sessions: sshd has no per-user limit of its own (built-in:",
        f"#   sftp.sessions_per_user_max = {settings.sftp.sessions_per_user_max}): "
        "pam_limits maxlogins bounds logins per",
        "#   user, MaxStartups and PerSourcePenalties (OpenSSH 9.8+) unauthenticated ones,",
        "#   MaxSessions channels per connection; ClientAliveInterval/ClientAliveCountMax",
        "#   end dead sessions.",
    ]
    for client in settings.clients:
        chroot = spool / "clients" / client.id
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
