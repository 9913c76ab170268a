"""A test PKI for signatories (SPEC §11): for the demo and the tests, never for production.

It makes what a real signatory CA (eParaksts, a national eID CA) would hand out: a CA
certificate, signatories' certificates for signing (non-repudiation), and a CRL. Which
signature right a person holds is the treasury's configuration, not something in the
certificate, so the "first" and "second" signatories differ only by name here. Time is
passed in; keys are ECDSA P-256 unless RSA is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
Algorithm = Literal["ecdsa-p256", "rsa"]

ca_days = 3650
signatory_days = 3 * 365
rsa_key_bits = 2048  # test keys: the smallest size the verifier and the seal accept


@dataclass(frozen=True, slots=True)
class Issued:
    """A private key and its certificate."""

    key: PrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class Pki:
    """Everything the demo and the bad-input tests need, made at `now`."""

    ca: Issued
    first: Issued  # a valid signatory, to be configured with the first right
    second: Issued  # a valid signatory, to be configured with the second right
    expired: Issued  # from the CA; its certificate ended a day before `now`
    revoked: Issued  # from the CA; listed in `crl`
    foreign_ca: Issued
    foreign: Issued  # a signatory certificate from `foreign_ca`
    crl: x509.CertificateRevocationList  # by `ca`, revoking `revoked`


def make_pki(now: datetime, *, algorithm: Algorithm = "ecdsa-p256") -> Pki:
    ca = new_ca("Test Signatory CA", now=now, algorithm=algorithm)
    foreign_ca = new_ca("Some Other CA", now=now, algorithm=algorithm)
    revoked = new_signatory(ca, "Rita Atsaukta", now=now, algorithm=algorithm)
    return Pki(
        ca=ca,
        first=new_signatory(ca, "Pirmā Paraksta Tiesība", now=now, algorithm=algorithm),
        second=new_signatory(ca, "Otrā Paraksta Tiesība", now=now, algorithm=algorithm),
        expired=new_signatory(
            ca, "Beidzies Sertifikāts", now=now, algorithm=algorithm,
            not_before=now - timedelta(days=400), not_after=now - timedelta(days=1),
        ),
        revoked=revoked,
        foreign_ca=foreign_ca,
        foreign=new_signatory(foreign_ca, "Svešs Parakstītājs", now=now, algorithm=algorithm),
        crl=revocation_list(ca, [revoked.cert], now=now, revoked_at=now - timedelta(days=2)),
    )


def new_key(algorithm: Algorithm = "ecdsa-p256") -> PrivateKey:
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_key_bits)
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(common_name: str, *, now: datetime, algorithm: Algorithm = "ecdsa-p256") -> Issued:
    key = new_key(algorithm)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ekase-gateway test"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now + timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def new_signatory(
    ca: Issued,
    common_name: str,
    *,
    now: datetime,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    algorithm: Algorithm = "ecdsa-p256",
    person_code: str | None = None,
) -> Issued:
    """A person's signing certificate, as a qualified-signature CA issues it (its
    subject's serialNumber: `person_code`, by default a new person's)."""
    key = new_key(algorithm)
    given, _, surname = common_name.partition(" ")
    serial = x509.random_serial_number()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.GIVEN_NAME, given),
            x509.NameAttribute(NameOID.SURNAME, surname or given),
            x509.NameAttribute(
                NameOID.SERIAL_NUMBER, person_code or f"PNOLV-{serial % 10**11:011d}"
            ),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=signatory_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, cert)


def revocation_list(
    ca: Issued,
    revoked: Sequence[x509.Certificate],
    *,
    now: datetime,
    revoked_at: datetime | None = None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - timedelta(hours=1))
        .next_update(now + timedelta(days=7))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(revoked_at or now)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


@dataclass(frozen=True, slots=True)
class PkiFiles:
    """Where `write_pki` put things: what a configuration and the demo's commands name."""

    ca: Path
    crl: Path
    keys: dict[str, tuple[Path, Path]]  # "first", "second", ...: (key, certificate)


def write_pki(pki: Pki, folder: Path) -> PkiFiles:
    """The CA, its CRL and every signatory's key and certificate, under `folder`."""
    ca = folder / "ca.pem"
    folder.mkdir(parents=True, exist_ok=True)
    ca.write_bytes(pki.ca.cert_pem())
    keys = {
        stem: write_issued(getattr(pki, stem), folder / "signatories", stem)
        for stem in ("first", "second", "expired", "revoked", "foreign")
    }
    return PkiFiles(ca=ca, crl=write_crl(pki.crl, folder / "ca.crl.pem"), keys=keys)


def write_issued(issued: Issued, folder: Path, stem: str) -> tuple[Path, Path]:
    """`stem.key` (mode 0600, as `ekase-gateway sign` requires) and `stem.pem`."""
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, issued.key_pem())
    finally:
        os.close(fd)
    cert_path.write_bytes(issued.cert_pem())
    return key_path, cert_path


def write_crl(crl: x509.CertificateRevocationList, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
