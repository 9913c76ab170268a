"""Our seals against the real `xmlsec1`: what a client or auditor runs must agree with us.

Each check runs `xmlsec1 --verify --trusted-pem CERT NAME.sig` in the file's folder, as
the specification tells clients to, and compares its verdict with `verify_file`.
"""

from __future__ import annotations

import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import init_signing_key
from gateway.outbound.delivery import deliver
from gateway.outbound.seal import Sealer, receipt_properties, seal_path, verify_file
from gateway.verify_command import run_verify

# Certificates are made around the real time, because a plain `xmlsec1 --verify`
# checks validity against the system clock.
NOW = datetime.now(UTC).replace(microsecond=0)
NAME = "20261125T101501_pain.002.001.03_GW20261125000042.xml"
XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<Document>\r\n <GrpHdr a="1"/></Document>\n'


def xmlsec_verify(xmlsec1: str, path: Path, cert: Path, *extra: str) -> bool:
    result = subprocess.run(
        [xmlsec1, "--verify", *extra, "--trusted-pem", str(cert), seal_path(path).name],
        cwd=path.parent, capture_output=True, timeout=60, check=False,
    )
    return result.returncode == 0


def make_sealer(folder: Path, label: str, algorithm: str = "ecdsa-p256",
                days: int = 825) -> tuple[Sealer, Path]:
    key, cert = folder / f"{label}.key", folder / f"{label}.pem"
    init_signing_key(key, cert, now=NOW, days=days, algorithm=algorithm,  # type: ignore[arg-type]
                     subject_cn=f"ekase-gateway {label}")
    return Sealer.load(key, cert, clock=lambda: NOW), cert


def sealed(folder: Path, sealer: Sealer, data: bytes = XML, name: str = NAME,
           **props: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    return deliver(tmp, folder, name, sealer, props or None)


@pytest.fixture(params=["ecdsa-p256", "rsa"])
def algorithm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_good_seal_verifies_with_xmlsec1_and_with_us(xmlsec1: str, tmp_path: Path,
                                                     algorithm: str) -> None:
    """A delivered file checks out with the command the specification gives clients."""
    sealer, cert = make_sealer(tmp_path / "keys", "gw", algorithm)
    path = sealed(tmp_path / "out", sealer)
    assert xmlsec_verify(xmlsec1, path, cert)
    assert verify_file(path, trusted_certs=[cert], now=NOW).ok


def test_altered_file_fails_with_xmlsec1_and_with_us(xmlsec1: str, tmp_path: Path,
                                                     algorithm: str) -> None:
    """Editing a delivered file, even a line ending, is caught by xmlsec1 and by us."""
    sealer, cert = make_sealer(tmp_path / "keys", "gw", algorithm)
    path = sealed(tmp_path / "out", sealer)
    path.write_bytes(XML.replace(b"\r\n", b"\n"))
    assert not xmlsec_verify(xmlsec1, path, cert)
    assert verify_file(path, trusted_certs=[cert], now=NOW).problem == \
        "file altered (digest mismatch)"


def test_missing_seal_fails_with_xmlsec1_and_with_us(xmlsec1: str, tmp_path: Path) -> None:
    """A file without its .sig cannot be verified by either tool."""
    _, cert = make_sealer(tmp_path / "keys", "gw")
    path = tmp_path / NAME
    path.write_bytes(XML)
    assert not xmlsec_verify(xmlsec1, path, cert)
    assert verify_file(path, trusted_certs=[cert], now=NOW).problem == "missing seal"


def test_seal_by_other_key_fails_with_xmlsec1_and_with_us(xmlsec1: str, tmp_path: Path,
                                                          algorithm: str) -> None:
    """An intact seal made with a different key is rejected against the gateway certificate."""
    _, cert = make_sealer(tmp_path / "keys", "gw", algorithm)
    impostor, impostor_cert = make_sealer(tmp_path / "keys", "impostor", algorithm)
    path = sealed(tmp_path / "out", impostor)
    assert xmlsec_verify(xmlsec1, path, impostor_cert)  # the seal itself is fine ...
    assert not xmlsec_verify(xmlsec1, path, cert)  # ... but not by the gateway
    assert verify_file(path, trusted_certs=[cert], now=NOW).problem == \
        "signed by an untrusted certificate"


def test_expired_certificate_fails_with_xmlsec1_and_with_us(xmlsec1: str, tmp_path: Path) -> None:
    """Once the seal certificate has expired, both tools refuse the seal."""
    sealer, cert = make_sealer(tmp_path / "keys", "gw", days=30)
    path = sealed(tmp_path / "out", sealer)
    later = NOW + timedelta(days=31)
    at = ("--verification-time", later.strftime("%Y-%m-%d %H:%M:%S"))
    assert xmlsec_verify(xmlsec1, path, cert, "--verification-time",
                         (NOW + timedelta(days=29)).strftime("%Y-%m-%d %H:%M:%S"))
    assert not xmlsec_verify(xmlsec1, path, cert, *at)
    problem = verify_file(path, trusted_certs=[cert], now=later).problem
    assert problem is not None and problem.startswith("certificate expired")


def test_archive_seal_with_receipt_verifies_with_xmlsec1(xmlsec1: str, tmp_path: Path,
                                                         algorithm: str) -> None:
    """The archived batch's seal, carrying the receipt metadata, verifies with xmlsec1,
    and an edited receipt in it does not."""
    sealer, cert = make_sealer(tmp_path / "keys", "gw", algorithm)
    props = receipt_properties(received_at=NOW, client_id="LV-MIN-001", sftp_user="minfin",
                               key_fingerprint="SHA256:abcdef", source="192.0.2.10:50022")
    path = sealed(tmp_path / "archive", sealer, name="pain.001.xml", **props)
    assert xmlsec_verify(xmlsec1, path, cert)
    assert verify_file(path, trusted_certs=[cert], now=NOW).properties["sftp_user"] == "minfin"
    sig = seal_path(path)
    sig.write_bytes(sig.read_bytes().replace(b"192.0.2.10", b"192.0.2.99"))
    assert not xmlsec_verify(xmlsec1, path, cert)
    assert not verify_file(path, trusted_certs=[cert], now=NOW).ok


def test_big_file_seal_verifies_with_xmlsec1(xmlsec1: str, tmp_path: Path) -> None:
    """A 36 MB file (beyond the biggest batch we accept) is sealed so that xmlsec1 agrees."""
    sealer, cert = make_sealer(tmp_path / "keys", "gw")
    chunk = b"<Tx>" + b"y" * (1024 * 1024 - 9) + b"</Tx>"
    path = sealed(tmp_path / "out", sealer, data=b"<Doc>" + chunk * 36 + b"</Doc>")
    assert xmlsec_verify(xmlsec1, path, cert)
    assert run_verify(path, cert, NOW)[0] == 0


def test_delivery_never_shows_a_file_without_its_seal(xmlsec1: str, tmp_path: Path) -> None:
    """A client polling out/ during a burst of deliveries never sees NAME without NAME.sig."""
    sealer, cert = make_sealer(tmp_path / "keys", "gw")
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    unsealed: list[str] = []
    scans = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal scans
        while not done.is_set():
            names = set(os.listdir(out))
            scans += 1
            unsealed.extend(n for n in names
                            if n.endswith(".xml") and n + ".sig" not in names)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(150):
            tmp = work / f"{i}.part"
            tmp.write_bytes(XML.replace(b'a="1"', f'a="{i}"'.encode()))
            deliver(tmp, out, f"20261125T101501_pain.002.001.03_GW{i:014d}.xml", sealer)
    finally:
        done.set()
        watcher.join()
    assert unsealed == []
    assert scans > 150  # the watcher really looked while files were landing
    xml = sorted(p for p in out.iterdir() if p.suffix == ".xml")
    assert len(xml) == 150 and not [p for p in out.iterdir() if p.name.startswith(".")]
    for path in xml[::50]:
        assert xmlsec_verify(xmlsec1, path, cert)


def _certificate_of_an_earlier_version(key_path: Path, cert_path: Path) -> None:
    """The certificate `keys init` made before this version, for the key at `key_path`:
    the bare subject, no Authority Key Identifier."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key: Any = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    public = key.public_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "ekase-gateway TRELLV22"),
        x509.NameAttribute(
            NameOID.ORGANIZATION_NAME, "Valsts kase (State Treasury of Latvia) TRELLV22"
        ),
    ])  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("current", ["made by this version", "made by an earlier version"])
def test_during_a_rollover_xmlsec1_trusting_both_certificates_accepts_either_seal(
    xmlsec1: str, tmp_path: Path, current: str
) -> None:
    """README's key rollover: clients trust the current and the next certificate, both the
    gateway's name. xmlsec1 given both (in either order) must accept a file sealed with
    either key, as `verify --cert A --cert B` does (SPEC §8: they agree) — OpenSSL took the
    first certificate of that name as the issuer and refused the other key's seals (a
    tester). The first rollover after an upgrade has a current certificate of the earlier
    form (the bare name, no key identifier): the archive's seals verify too (a review)."""
    made = {}
    for label in ("current", "next"):
        key, cert = tmp_path / f"{label}.key", tmp_path / f"{label}.pem"
        init_signing_key(key, cert, now=NOW)
        if label == "current" and current == "made by an earlier version":
            _certificate_of_an_earlier_version(key, cert)
        made[label] = (Sealer.load(key, cert, clock=lambda: NOW), cert)
    certs = [made["current"][1], made["next"][1]]
    for label, (sealer, _) in made.items():
        path = sealed(tmp_path / label, sealer)
        for order in (certs, certs[::-1]):
            trusted = [arg for cert in order for arg in ("--trusted-pem", str(cert))]
            done = subprocess.run(
                [xmlsec1, "--verify", *trusted, seal_path(path).name],
                cwd=path.parent, capture_output=True, timeout=60, check=False,
            )
            assert done.returncode == 0, (label, done.stderr.decode()[-400:])
        assert run_verify(path, certs, NOW)[0] == 0
