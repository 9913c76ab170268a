"""Creating the gateway's own keys on first start: the seal key and the SSH host key.

Both are written only when missing, so restarting never replaces a key that clients
or the treasury have already pinned. Private keys are mode 0600 in folders of mode 0700:
`Sealer.load` refuses a key that others can read. Time is passed in, never read here.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError, SealError
from gateway.files import key_exposure, write_atomically

# A certificate made on one machine is checked on others whose clocks may lag.
clock_skew_allowance = timedelta(hours=1)
rsa_key_bits = 3072

KeyAlgorithm = Literal["ecdsa-p256", "rsa"]


class SigningKeyInit(enum.Enum):
    """What `init_signing_key` did; the value is what `keys init` says of the key and
    its certificate."""

    PRESENT = "already present; certificate {cert}: already present"
    CERTIFICATE_ISSUED = "already present, kept; certificate {cert}: was missing, issued anew"
    CREATED = "created; certificate {cert}: created"


def init_signing_key(
    key_path: Path,
    cert_path: Path,
    *,
    subject_cn: str = "ekase-gateway TRELLV22",
    organization: str = "Valsts kase (State Treasury of Latvia) TRELLV22",
    days: int = 825,
    now: datetime,
    algorithm: KeyAlgorithm = "ecdsa-p256",
) -> SigningKeyInit:
    """Create the seal key and a self-signed certificate for it when missing, and say what
    was done: nothing when both exist; a key without a certificate is kept and gets a new
    certificate; a certificate without its key is an error (it cannot be used)."""
    if key_path.exists() and cert_path.exists():
        return SigningKeyInit.PRESENT
    if cert_path.exists():
        raise SealError(
            f"certificate {cert_path} exists but its key {key_path} does not; "
            "restore the key or remove the certificate"
        )
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    made = SigningKeyInit.CERTIFICATE_ISSUED if key_path.exists() else SigningKeyInit.CREATED
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise SealError(f"signing key {key_path} is neither ECDSA nor RSA")
        key = loaded
    else:
        if algorithm == "rsa":
            key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_key_bits)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        _write_private(key_path, key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    cert = _self_signed(key, subject_cn, organization, now, days)
    _make_private_dirs(cert_path.parent)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return made


HOST_KEY = "sftp.host_key"
NOT_A_HOST_KEY = "not an unencrypted OpenSSH private key"


def check_host_key_mode(path: Path) -> None:
    """The SSH host key is the service's own (mode 0600): one its group or anyone else may
    read or write is refused."""
    exposure = key_exposure(path)
    if exposure is not None:
        raise ConfigError(HOST_KEY, f"{path}: {exposure}")


def init_host_key(path: Path) -> str:
    """Create an OpenSSH ed25519 host key when missing; return its `SHA256:…` fingerprint."""
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        _write_private(path, key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ))
    check_host_key_mode(path)
    blob = base64.b64decode(host_public_key(path).split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def host_public_key(path: Path) -> str:
    """The host key's public half as OpenSSH writes it: `ssh-ed25519 AAAA…`."""
    try:
        loaded = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ConfigError(HOST_KEY, f"{path}: {NOT_A_HOST_KEY} ({exc})") from exc
    public = loaded.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode("ascii")


def known_hosts_line(host: str, port: int, public: str) -> str:
    """The line a client's `known_hosts` pins the server's key with (`HOST` where the
    server listens on every address: the name clients connect to goes there)."""
    name = "HOST" if host in ("0.0.0.0", "::", "") else host
    return f"{name if port == 22 else f'[{name}]:{port}'} {public}"


def _self_signed(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    subject_cn: str,
    organization: str,
    now: datetime,
    days: int,
) -> x509.Certificate:
    public = key.public_key()
    key_id = x509.SubjectKeyIdentifier.from_public_key(public)
    # The key in the subject too: a rollover's current and next certificates differ in
    # name, so a verifier that trusts both (xmlsec1, OpenSSL) finds a seal's issuer by
    # it — also for a current certificate made before they carried a key identifier —
    # and `verify`'s "signed by" tells an auditor which key sealed a file.
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"seal key {key_id.digest[:8].hex()}"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - clock_skew_allowance)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(key_id, critical=False)
        .add_extension(  # its own key named as its issuer's
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _not_writable(path: Path) -> ConfigError:
    # The keys belong to the account the service runs as: made by root, it could not read
    # them; made by that account in a folder it does not own, this is where it stops.
    return ConfigError(
        str(path),
        "permission denied; run `keys init` as the account the service runs as, owning "
        f"{path.parent} (systemd/install.sh does both)",
    )


def _make_private_dirs(folder: Path) -> None:
    # Path.mkdir(parents=True) ignores `mode` for the parents it creates; do each one.
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    for part in reversed(missing):
        try:
            part.mkdir(mode=0o700)
        except PermissionError as exc:
            raise _not_writable(part) from exc
        os.chmod(part, 0o700)  # mkdir's mode is filtered by the umask


def _write_private(path: Path, data: bytes) -> None:
    _make_private_dirs(path.parent)
    _write(path, data, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Whole or not at all (`files.write_atomically`), with its final mode; a folder the
    account may not write to is one line for the operator, not a traceback."""
    try:
        write_atomically(path, data, mode=mode)
    except PermissionError as exc:
        raise _not_writable(path) from exc
