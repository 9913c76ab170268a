"""What an SSH audit sees of the built-in server: its version line, its offer, and what
real clients (OpenSSH, paramiko) can and cannot negotiate with it (SPEC §9, issue 14.6)."""

from __future__ import annotations

import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncssh.kex import get_kex_algs

from gateway import ssh_algorithms
from tests.integration.sftp_fixtures import (
    RunningServer,
    open_sftp,
    openssh_sftp,
    running_server,
)

# Anything an audit flags: SHA-1, MD5, 64-bit tags, the ssh.com family, CBC and RC4,
# secp256k1, RSA key exchange, and the 1024-bit group of DH group exchange.
FLAGGED = ("sha1", "md5", "umac-64", "@ssh.com", "cbc", "arcfour", "1.3.132", "rsa1024",
           "rsa2048", "group1-", "group14", "group-exchange")
# Markers in the key-exchange list that are not algorithms (RFC 8308, OpenSSH's strict kex).
KEX_MARKERS = ["ext-info-s", "kex-strict-s-v00@openssh.com"]


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path]) -> Iterator[RunningServer]:
    with running_server(tmp_path / "gw", keys) as running:
        yield running


def server_hello(port: int) -> tuple[bytes, dict[str, list[str]]]:
    """The server's version line and its KEXINIT name-lists, read as a scanner would."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rb")
        version = stream.readline()
        sock.sendall(b"SSH-2.0-audit\r\n")
        (length,) = struct.unpack(">I", stream.read(4))
        packet = stream.read(length)
    payload = packet[1 : length - packet[0]]
    assert payload[0] == 20  # SSH_MSG_KEXINIT
    offset = 17  # message number and cookie
    names = ("kex", "host_key", "cipher_c2s", "cipher_s2c", "mac_c2s", "mac_s2c")
    lists: dict[str, list[str]] = {}
    for name in names:
        (size,) = struct.unpack(">I", payload[offset : offset + 4])
        lists[name] = payload[offset + 4 : offset + 4 + size].decode("ascii").split(",")
        offset += 4 + size
    return version, lists


def available_default_kex() -> list[str]:
    have = {name.decode("ascii") for name in get_kex_algs()}
    return [name for name in ssh_algorithms.KEX_DEFAULT if name in have]


def test_version_line_names_no_library(server: RunningServer) -> None:
    """The first line a client (or a port scanner) reads is `SSH-2.0-eKase`: no AsyncSSH and
    no version number to look up in a vulnerability database."""
    version, _ = server_hello(server.port)
    assert version == b"SSH-2.0-eKase\r\n"
    assert b"AsyncSSH" not in version


def test_offer_is_the_modern_set_only(server: RunningServer) -> None:
    """The server's KEXINIT lists exactly the modern defaults — nothing an audit flags — and
    the ed25519 host key; sntrup only where asyncssh can do it (then it is logged as left out)."""
    _, offer = server_hello(server.port)
    assert offer["kex"] == available_default_kex() + KEX_MARKERS
    assert "mlkem768x25519-sha256" in offer["kex"]
    assert offer["host_key"] == ["ssh-ed25519"]
    assert offer["cipher_c2s"] == offer["cipher_s2c"] == list(ssh_algorithms.CIPHERS_DEFAULT)
    assert offer["mac_c2s"] == offer["mac_s2c"] == [
        "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
    ]
    for names in offer.values():
        for name in names:
            assert not any(flag in name for flag in FLAGGED), name
    left_out = [n for n in ssh_algorithms.KEX_DEFAULT if n not in offer["kex"]]
    if left_out:
        (event,) = server.log.named("sftp.algorithms.unavailable")
        assert event["names"] == left_out


def test_openssh_refuses_to_connect_with_sha1(server: RunningServer, tmp_path: Path) -> None:
    """OpenSSH asking for SHA-1 key exchange, or for an SHA-1 MAC with a cipher that uses one,
    finds no match and does not connect."""
    (tmp_path / "pay.xml").write_bytes(b"<x/>")
    kex = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml"], tmp_path,
                       ("-o", "KexAlgorithms=diffie-hellman-group14-sha1", "-o", "LogLevel=INFO"))
    assert kex.returncode != 0
    assert "no matching key exchange method found" in kex.stderr
    mac = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml"], tmp_path,
                       ("-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1", "-o", "LogLevel=INFO"))
    assert mac.returncode != 0
    assert "no matching MAC found" in mac.stderr
    old_host_key = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml"], tmp_path,
                                ("-o", "HostKeyAlgorithms=ssh-rsa", "-o", "LogLevel=INFO"))
    assert old_host_key.returncode != 0
    assert server.visible("alpha") == []


def test_openssh_sha1_mac_with_aead_cipher_uses_no_mac(
    server: RunningServer, tmp_path: Path
) -> None:
    """`-o MACs=hmac-sha1` alone connects — with ChaCha20-Poly1305, whose own tag replaces a
    MAC, so SHA-1 is not used at all (`MAC: <implicit>` in OpenSSH's own report)."""
    (tmp_path / "pay.xml").write_bytes(b"<x/>")
    done = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml"], tmp_path,
                        ("-v", "-o", "MACs=hmac-sha1", "-o", "LogLevel=DEBUG1"))
    assert done.returncode == 0, done.stderr
    negotiated = [line for line in done.stderr.splitlines() if "kex: client->server" in line]
    assert negotiated and "chacha20-poly1305@openssh.com MAC: <implicit>" in negotiated[0]
    assert server.visible("alpha") == ["pay.xml"]


def test_default_clients_still_connect(server: RunningServer, tmp_path: Path) -> None:
    """OpenSSH's `sftp` and paramiko with their default settings (paramiko stands in for the
    older WinSCP-era clients) connect and upload, over algorithms from the modern set."""
    (tmp_path / "a.xml").write_bytes(b"<a/>")
    done = openssh_sftp(server, "alpha-erp", "alpha", ["put a.xml"], tmp_path,
                        ("-v", "-o", "LogLevel=DEBUG1"))
    assert done.returncode == 0, done.stderr
    assert "kex: algorithm: curve25519-sha256" in done.stderr  # OpenSSH 9.2 has no ML-KEM
    sftp = open_sftp(server, "alpha-erp", "alpha")
    with sftp.open("/in/b.xml", "wb") as handle:
        handle.write(b"<b/>")
    transport = sftp.get_channel().get_transport()  # type: ignore[union-attr]
    assert transport is not None
    assert transport.remote_version == "SSH-2.0-eKase"
    assert transport.host_key_type == "ssh-ed25519"
    assert transport.local_cipher in ssh_algorithms.CIPHERS_DEFAULT
    assert transport.local_mac in ssh_algorithms.MACS_DEFAULT
    sftp.close()
    assert server.visible("alpha") == ["a.xml", "b.xml"]


def test_rsa_host_key_is_never_used_with_sha1(tmp_path: Path, keys: dict[str, Path]) -> None:
    """An operator's RSA host key is offered as rsa-sha2-256/512 only: a client that insists
    on `ssh-rsa` (SHA-1 signatures) is refused, the others connect."""
    base = tmp_path / "gw"
    base.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f",
         str(base / "ssh_host_ed25519_key")],  # the configured path, holding an RSA key
        check=True,
    )
    with running_server(base, keys) as server:
        _, offer = server_hello(server.port)
        assert sorted(offer["host_key"]) == ["rsa-sha2-256", "rsa-sha2-512"]
        (tmp_path / "pay.xml").write_bytes(b"<x/>")
        old = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml"], tmp_path,
                           ("-o", "HostKeyAlgorithms=ssh-rsa", "-o", "LogLevel=INFO"))
        assert old.returncode != 0
        assert "no matching host key type found" in old.stderr
        new = openssh_sftp(server, "alpha-erp", "alpha", ["put pay.xml"], tmp_path)
        assert new.returncode == 0, new.stderr
        assert server.visible("alpha") == ["pay.xml"]


def test_configured_lists_replace_the_defaults(tmp_path: Path, keys: dict[str, Path]) -> None:
    """`[sftp] kex_algorithms`, `ciphers` and `macs` replace the offer: with only DH group 16,
    AES-256-CTR and HMAC-SHA-512-ETM configured, a client limited to curve25519 is refused."""
    with running_server(
        tmp_path / "gw", keys,
        kex_algorithms=["diffie-hellman-group16-sha512"],
        ciphers=["aes256-ctr"],
        macs=["hmac-sha2-512-etm@openssh.com"],
    ) as server:
        _, offer = server_hello(server.port)
        assert offer["kex"] == ["diffie-hellman-group16-sha512", *KEX_MARKERS]
        assert offer["cipher_c2s"] == ["aes256-ctr"]
        assert offer["mac_s2c"] == ["hmac-sha2-512-etm@openssh.com"]
        refused = openssh_sftp(server, "alpha-erp", "alpha", ["ls"], tmp_path,
                               ("-o", "KexAlgorithms=curve25519-sha256", "-o", "LogLevel=INFO"))
        assert "no matching key exchange method found" in refused.stderr
        allowed = openssh_sftp(server, "alpha-erp", "alpha", ["ls"], tmp_path)
        assert allowed.returncode == 0, allowed.stderr
