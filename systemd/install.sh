#!/usr/bin/env bash
# Install ekase-gateway as a systemd service: the service account, folders and their
# ownership, a virtual environment with the package, the keys, a starter configuration,
# the unit and (with --openssh) the OpenSSH chroot tree, the SFTP accounts and the sshd
# drop-in. Run as root; running it again repairs ownership, upgrades the package from
# SOURCE and creates the folders of clients added to the configuration since.
#
#   systemd/install.sh [--prefix DIR] [--user NAME] [--source PATH] [--venv DIR]
#                      [--config FILE] [--openssh] [--no-systemctl]
#
# Layout (see systemd/README.md for why):
#   /opt/ekase-gateway/.venv            root:root     the code
#   /etc/ekase-gateway/                 root:USER     0750 (0751 with --openssh: sshd reads
#     gateway.toml                      root:USER     0640       keys/ as the SFTP user)
#     keys/                             root:root     0755  clients' authorized_keys (0644)
#     private/                          USER:USER     0700  seal key, certificate, SSH host key
#   /var/lib/ekase-gateway/             root:root     0755
#     spool/                            USER:USER     0750  StateDirectory=ekase-gateway/spool:
#                                                           the gateway's (work, archive, log,
#                                                           ledger.sqlite3, …)
#   with --openssh also:
#     spool/clients -> ../sftp                              a link: sshd needs root up to the
#     sftp/                             root:root     0755  chroot, and systemd never re-owns
#     sftp/<client>/                    root:root     0755  what lies outside its StateDirectory
#     sftp/<client>/in                  USER:ekase-<client> 2770
#     sftp/<client>/out                 USER:ekase-<client> 2750
#     sftp/<client>/test                USER:ekase-<client> 2770  (trial runs, SPEC §15)
#   /etc/systemd/system/ekase-gateway.service
#   /etc/ssh/sshd_config.d/ekase-gateway.conf               (--openssh: generated Match blocks)
#
# --prefix DIR puts all of it under DIR (tests, staging); the accounts are real all the same,
# and the generated files name the prefixed paths. systemctl is not called with a prefix.

set -euo pipefail
umask 022

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

here="$(cd "$(dirname "$0")" && pwd)"
prefix=""
account="ekase"
source_path="$(dirname "$here")"
venv=""
given_config=""
openssh=0
systemctl=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
        --user) account="${2:?--user needs a name}"; shift 2 ;;
        --source) source_path="${2:?--source needs a path}"; shift 2 ;;
        --venv) venv="${2:?--venv needs a folder}"; shift 2 ;;
        --config) given_config="${2:?--config needs a file}"; shift 2 ;;
        --openssh) openssh=1; shift ;;
        --no-systemctl) systemctl=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (it creates an account and root-owned folders)"
if [ -n "$prefix" ]; then
    mkdir -p "$prefix"
    prefix="$(cd "$prefix" && pwd)"
    systemctl=0
fi

code="$prefix/opt/ekase-gateway"
venv="${venv:-$code/.venv}"
etc="$prefix/etc/ekase-gateway"
config="$etc/gateway.toml"
private="$etc/private"
state="$prefix/var/lib/ekase-gateway"
spool="$state/spool"
sftp_root="$state/sftp"
unit_dir="$prefix/etc/systemd/system"
sshd_dropin="$prefix/etc/ssh/sshd_config.d/ekase-gateway.conf"
gateway="$venv/bin/ekase-gateway"
nologin="$(command -v nologin || echo /usr/sbin/nologin)"

# Commands the service account runs itself, so that what they create is its own.
# Under the unit's umask: what they create is not for others to read.
as_service() { (cd / && umask 0027 && runuser -u "$account" -- "$@"); }

# -- before anything changes ---------------------------------------------------------------
# Earlier instructions put a SQLite database in $state itself, then the service's folder:
# this layout makes that folder root's, where SQLite could no longer make its journal
# files beside the database (the upgrade stopped half-way, the service could not start).
for found in "$state"/*.sqlite3 "$state"/*.db; do
    [ -e "$found" ] || continue
    die "$found lies in $state itself (an earlier layout), which this layout makes root's:
  stop the service; move it, with its -wal and -shm files, into $spool;
  set database_url = \"sqlite:///$spool/$(basename "$found")\" in $config; run install.sh again"
done
# A daemon of the release before must not run on the schema this one migrates (nor on this
# release's code, read as it imports it): stopped here, started again at the end.
stopped=0
if [ "$systemctl" = 1 ] && systemctl is-active --quiet ekase-gateway.service; then
    say "stopping ekase-gateway.service for the upgrade (it starts again at the end)"
    systemctl stop ekase-gateway.service
    stopped=1
fi
# Whatever stops the script after that (a mistake in the configuration just edited, pip
# without a network, `sshd -t`), the service runs again as it did: a failed routine re-run
# must not leave the treasury's gateway down.
again() {
    local rc=$?
    if [ "$rc" != 0 ] && [ "$stopped" = 1 ]; then
        echo "install.sh: starting ekase-gateway.service again (stopped for the upgrade)" >&2
        systemctl start ekase-gateway.service || true
    fi
}
trap again EXIT

# -- the service account -------------------------------------------------------------------
if ! getent passwd "$account" >/dev/null; then
    useradd --system --user-group --home-dir "$state" --no-create-home \
        --shell "$nologin" --comment "ekase-gateway service" "$account"
    say "created account $account"
fi
group="$(id -gn "$account")"

# -- folders ---------------------------------------------------------------------------------
install -d -o root -g root -m 0755 "$code" "$state"
mkdir -p "$unit_dir"
install -d -o root -g "$group" -m "$([ "$openssh" = 1 ] && echo 0751 || echo 0750)" "$etc"
install -d -o root -g root -m 0755 "$etc/keys"
install -d -o "$account" -g "$group" -m 0700 "$private"
install -d -o "$account" -g "$group" -m 0750 "$spool"
# Keys made by root before (the old instructions) become the service's; it must read them.
chown -R "$account:$group" "$private"

# -- the code ----------------------------------------------------------------------------------
if [ ! -x "$gateway" ] || [ "$venv" = "$code/.venv" ]; then
    if [ ! -x "$venv/bin/python" ]; then
        python="${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}"
        "$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
            || die "$python is older than 3.11"
        "$python" -m venv "$venv" || die "cannot create $venv (apt-get install python3-venv)"
    fi
    say "installing $source_path into $venv"
    # Built from a copy: a build writes build/ and *.egg-info into the folder it builds,
    # and the source folder is not ours to write (nor safe to build in while someone else
    # builds there).
    copy="$(mktemp -d)"
    tar -C "$source_path" --exclude=./.git --exclude=./.venv --exclude=./build \
        --exclude='*.egg-info' --exclude=./demo --exclude='__pycache__' --exclude='.*_cache' \
        -cf - . | tar -C "$copy" -xf - || { rm -rf "$copy"; die "cannot copy $source_path"; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "$copy" \
        || { rm -rf "$copy"; die "pip could not install $source_path"; }
    rm -rf "$copy"
fi
as_service "$venv/bin/python" -c '' \
    || die "$account cannot run $venv/bin/python (a Python under a private home folder?)"

# -- the configuration ---------------------------------------------------------------------
if [ -n "$given_config" ]; then
    install -o root -g "$group" -m 0640 "$given_config" "$config"
elif [ ! -e "$config" ]; then
    cat > "$config" <<EOF
# ekase-gateway, written by systemd/install.sh. Every key with its default is in
# config/gateway.example.toml. Add [[client]] tables with their users' authorized_keys
# in $etc/keys/, then run install.sh again (with --openssh it makes the new clients'
# folders and accounts) and restart the service.

[gateway]
spool_dir = "$spool"
database_url = "sqlite:///$spool/ledger.sqlite3"
log_file = "$spool/log/gateway.jsonl"

[sftp]
listen = "127.0.0.1:2222"           # the built-in server; "0.0.0.0:2222" to serve the network
host_key = "$private/ssh_host_ed25519_key"

[signing]
key = "$private/gateway.key"
certificate = "$private/gateway.crt"
EOF
    say "wrote a starter configuration $config"
fi
chown root:"$group" "$config"
chmod 0640 "$config"
configured_spool="$("$venv/bin/python" -c '
import sys
from gateway.errors import ConfigError
from gateway.settings import load
try:
    print(load(sys.argv[1]).spool_dir)
except ConfigError as exc:
    sys.exit(f"install.sh: {exc}")' "$config")" || die "$config is not a valid configuration"
[ "$configured_spool" = "$spool" ] \
    || die "$config: spool_dir is $configured_spool; this layout needs $spool (or lay it out by hand, see systemd/README.md)"
# Public keys: sshd (StrictModes) reads them as the SFTP user and wants them root's.
find "$etc/keys" -maxdepth 1 -type f -exec chown root:root {} + -exec chmod 0644 {} +

# -- OpenSSH: the chroot tree, the client groups and accounts, the sshd drop-in ----------------
if [ "$openssh" = 1 ]; then
    table="$("$venv/bin/python" -c '
import sys
from gateway.errors import ConfigError
from gateway.settings import load
from gateway.sftp.openssh import accounts_table
try:
    print(accounts_table(load(sys.argv[1])), end="")
except (ConfigError, ValueError) as exc:
    sys.exit(f"install.sh: {exc}")' "$config")" || die "cannot read $config"
    # Every SFTP user is checked before anything of the tree is made (a refusal halfway left
    # groups, folders and the accounts of the rows before it). A user is an account of this
    # machine made for it: never the gateway's own, nor one the machine had (its OpenSSH
    # block would hand that login to the client's key).
    while IFS=$'\t' read -r client client_group chroot user mode; do
        [ -n "$client" ] || continue
        [ "$user" != "$account" ] || die "SFTP user $user is the gateway's own account: rename it in $config"
        if entry=$(getent passwd "$user"); then
            case "$(echo "$entry" | cut -d: -f5)" in
                "ekase-gateway SFTP ("*) ;;
                *) die "SFTP user $user is an account this machine has already: rename it in $config" ;;
            esac
        fi
    done <<< "$table"
    install -d -o root -g root -m 0755 "$sftp_root"
    if [ -L "$spool/clients" ]; then
        ln -sfn ../sftp "$spool/clients"
    elif [ -e "$spool/clients" ]; then
        die "$spool/clients is a folder: stop the service, move its contents into $sftp_root, remove it, and run install.sh again"
    else
        ln -s ../sftp "$spool/clients"
    fi
    while IFS=$'\t' read -r client client_group chroot user mode; do
        [ -n "$client" ] || continue
        getent group "$client_group" >/dev/null || groupadd --system "$client_group"
        id -nG "$account" | tr ' ' '\n' | grep -qx "$client_group" \
            || usermod -a -G "$client_group" "$account"
        install -d -o root -g root -m 0755 "$chroot"
        install -d -o "$account" -g "$client_group" -m 2770 "$chroot/in"
        install -d -o "$account" -g "$client_group" -m 2750 "$chroot/out"
        install -d -o "$account" -g "$client_group" -m 2770 "$chroot/test"
        if ! getent passwd "$user" >/dev/null; then
            # '*': no password, but not locked — sshd refuses locked accounts when UsePAM is no.
            useradd --system --no-create-home --home-dir /nonexistent --shell "$nologin" \
                --gid "$client_group" --password '*' --comment "ekase-gateway SFTP ($client, $mode)" \
                "$user"
            say "created SFTP account $user ($client, $mode)"
        elif ! id -nG "$user" | tr ' ' '\n' | grep -qx "$client_group"; then
            usermod -a -G "$client_group" "$user" \
                || say "warning: add $user to group $client_group yourself"
        fi
    done <<< "$table"
    install -d -o root -g root -m 0755 "$(dirname "$sshd_dropin")"
    {
        echo "# Generated by systemd/install.sh from $config; run it again after changing"
        echo "# clients or users (or: ekase-gateway sshd-config -c $config)."
        echo "# See systemd/sshd-ekase.conf.example for what it is and what it needs."
        echo
        as_service "$gateway" sshd-config -c "$config"
    } > "$sshd_dropin.new"
    chmod 0644 "$sshd_dropin.new"
    mv "$sshd_dropin.new" "$sshd_dropin"
    say "wrote $sshd_dropin"
    if [ -z "$prefix" ] && command -v sshd >/dev/null; then
        sshd -t || die "sshd -t refuses the configuration; see $sshd_dropin"
        say "reload sshd to apply it: systemctl reload ssh"
    fi
fi

# -- keys and database, made by the service account itself ----------------------------------
as_service "$gateway" keys init -c "$config"
if [ "$openssh" = 1 ]; then  # (the line above names the built-in server's key)
    say "OpenSSH mode: clients pin sshd's own host key (ssh-keyscan -p PORT HOST), not the" \
        "built-in server's; keep the built-in server's [sftp] listen where no one reaches it"
fi
as_service "$gateway" db upgrade -c "$config"

# -- the unit ----------------------------------------------------------------------------------
sed -e "s|/opt/ekase-gateway/.venv|$venv|g" \
    -e "s|/etc/ekase-gateway|$etc|g" \
    -e "s|/var/lib/ekase-gateway|$state|g" \
    -e "s|^User=.*|User=$account|" \
    -e "s|^Group=.*|Group=$group|" \
    "$here/ekase-gateway.service" > "$unit_dir/ekase-gateway.service.new"
chmod 0644 "$unit_dir/ekase-gateway.service.new"
mv "$unit_dir/ekase-gateway.service.new" "$unit_dir/ekase-gateway.service"
say "installed $unit_dir/ekase-gateway.service"
# logrotate for the JSON log (`log_file` above): this install's path and account.
logrotate_dir="$prefix/etc/logrotate.d"
install -d -o root -g root -m 0755 "$logrotate_dir"
sed -e "s|/var/lib/ekase-gateway|$state|g" \
    -e "s|^\( *create [0-7]*\) ekase ekase$|\1 $account $group|" \
    "$here/ekase-gateway.logrotate" > "$logrotate_dir/ekase-gateway.new"
chmod 0644 "$logrotate_dir/ekase-gateway.new"
mv "$logrotate_dir/ekase-gateway.new" "$logrotate_dir/ekase-gateway"
say "installed $logrotate_dir/ekase-gateway"
# OpenSSH mode: an upload is its SFTP user's file, made with the mode the client sends
# (OpenSSH's put sends the local file's: an ERP's export under umask 077 is 0600), which
# the service, in the client's group only, could not read: the client was held for good.
openssh_unit="$unit_dir/ekase-gateway.service.d/openssh.conf"
if [ "$openssh" = 1 ]; then
    install -d -o root -g root -m 0755 "$(dirname "$openssh_unit")"
    printf '%s\n' "# Written by install.sh --openssh: the gateway reads the SFTP users' uploads" \
        "# whatever mode their client gave them (see systemd/README.md)." "[Service]" \
        "CapabilityBoundingSet=CAP_DAC_READ_SEARCH" "AmbientCapabilities=CAP_DAC_READ_SEARCH" \
        > "$openssh_unit"
    chmod 0644 "$openssh_unit"
    say "installed $openssh_unit"
else
    rm -f "$openssh_unit"
fi

if [ "$systemctl" = 1 ]; then
    systemctl daemon-reload
    systemctl enable ekase-gateway.service
    systemctl restart ekase-gateway.service
    say "started: systemctl status ekase-gateway"
else
    say "done; systemctl not called"
fi
