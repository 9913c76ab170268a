"""The SSH algorithms the built-in server may offer, by name (no asyncssh import here).

An SSH audit (ssh-audit, a penetration test) flags SHA-1 anywhere, 64-bit
tags (`umac-64`), the ssh.com `@ssh.com` family, CBC and RC4 ciphers, the
secp256k1 curve and RSA key exchange. None of those can be configured: the
lists below are everything `[sftp] kex_algorithms`, `ciphers` and `macs` may
name, and the defaults are the modern subset offered when the file names none.

The default key exchanges are the post-quantum hybrids (ML-KEM; sntrup where
the installed asyncssh has it, which needs liboqs), curve25519 and the fixed
4096/8192-bit groups 16 and 18. `diffie-hellman-group-exchange-sha256` is
allowed but not a default: asyncssh hands a client that asks for a 1024-bit
group exactly that, which an audit flags, and every client we know offers
curve25519 or group 16 (OpenSSH, paramiko, PuTTY/WinSCP, FileZilla, Go's ssh).

The MACs matter only with the CTR ciphers (the AEAD ciphers carry their own
tag); the encrypt-then-MAC SHA-2 pair is what OpenSSH and paramiko pick. The
older encrypt-and-MAC `hmac-sha2-256`/`-512` may be named for a client that
has no ETM.
"""

from __future__ import annotations

KEX_DEFAULT = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
)
KEX_ALLOWED = (
    *KEX_DEFAULT,
    "diffie-hellman-group-exchange-sha256",
    "mlkem768nistp256-sha256",
    "mlkem1024nistp384-sha384",
    "curve448-sha512",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group15-sha512",
    "diffie-hellman-group17-sha512",
)

CIPHERS_DEFAULT = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
CIPHERS_ALLOWED = CIPHERS_DEFAULT

MACS_DEFAULT = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
)
MACS_ALLOWED = (
    *MACS_DEFAULT,
    "umac-128-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
)

# Signature algorithms for host keys and client keys: no `ssh-rsa` (RSA with SHA-1),
# no `ssh-dss`, no `@ssh.com` variants, no secp256k1.
SIGNATURES_ALLOWED = (
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
)

# What a connecting client reads in the first line; no product or library version.
SERVER_VERSION = "eKase"
