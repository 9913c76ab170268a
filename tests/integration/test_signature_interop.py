"""Signatory containers against the real `xmlsec1`, both ways (SPEC §11), and `sign` as a
signatory runs it.

Ours are checked with the command the issue gives:
`xmlsec1 --verify --trusted-pem CA.pem --id-attr:Id <xades>:SignedProperties
--url-map:<data name> <data file> META-INF/signatures0.xml`; and signatures that
`xmlsec1 --sign` makes from a XAdES template (other canonicalisations and digests than
ours) must be accepted by our verifier.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from lxml.builder import ElementMaker

from gateway import asice_writer, cli, testpki
from gateway.inbound import asice, xades
from gateway.inbound.asice import Container, ContainerProblem, Refusal, SignatureFile
from gateway.inbound.xades import ASIC, DS, XADES, Problem, Trust

# xmlsec1 checks certificates against the real clock, so the PKI is made around it.
NOW = datetime.now(UTC).replace(microsecond=0)
BATCH = b'<?xml version="1.0" encoding="UTF-8"?>\n<Document>\r\n  <x a="1"/></Document>\n'
ID_ATTR = f"{XADES}:SignedProperties"


@pytest.fixture(scope="module")
def pki() -> testpki.Pki:
    return testpki.make_pki(NOW)


@pytest.fixture
def ca_pem(tmp_path: Path, pki: testpki.Pki) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(pki.ca.cert_pem())
    return path


def xmlsec_verify(xmlsec1: str, container: bytes, folder: Path, ca: Path,
                  signature: str = "META-INF/signatures0.xml") -> subprocess.CompletedProcess[str]:
    """Unpack and run the issue's command. The data file is put elsewhere under another
    name, so only `--url-map` can lead xmlsec1 to it (xmlsec1 matches the unescaped name)."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(container)) as archive:
        data_name = next(n for n in archive.namelist() if "/" not in n and n != "mimetype")
        (folder / "data.bin").write_bytes(archive.read(data_name))
        archive.extractall(folder / "unpacked", [n for n in archive.namelist()
                                                 if n.startswith("META-INF/")])
    return subprocess.run(
        [xmlsec1, "--verify", "--trusted-pem", str(ca), "--id-attr:Id", ID_ATTR,
         f"--url-map:{data_name}", str(folder / "data.bin"), signature],
        cwd=folder / "unpacked", capture_output=True, text=True, timeout=60, check=False,
    )


def ours(container: bytes, pki: testpki.Pki) -> list[xades.SignatureCheck]:
    read = asice.read_container(container, unzipped_bytes_max=1024 * 1024)
    assert isinstance(read, Container), read
    return list(xades.verify_container(read, Trust((pki.ca.cert,), (pki.crl,)), NOW))


# --- ours, checked by xmlsec1 ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa"])
def test_container_we_make_verifies_with_xmlsec1(xmlsec1: str, tmp_path: Path,
                                                 algorithm: str) -> None:
    """An ERP integrator or auditor can check our containers with a tool of their own."""
    from gateway.sign_command import sign_container

    pki = testpki.make_pki(NOW, algorithm=algorithm)  # type: ignore[arg-type]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.cert_pem())
    container = sign_container("maksājumi 1.xml", BATCH, pki.first.key, pki.first.cert, NOW)
    result = xmlsec_verify(xmlsec1, container, tmp_path / "check", ca)
    assert result.returncode == 0, result.stderr
    assert [c.ok for c in ours(container, pki)] == [True]


def test_xmlsec1_and_we_both_refuse_a_changed_batch(xmlsec1: str, tmp_path: Path,
                                                    pki: testpki.Pki, ca_pem: Path) -> None:
    from gateway.sign_command import sign_container

    container = sign_container("batch.xml", BATCH, pki.first.key, pki.first.cert, NOW)
    read = asice.read_container(container, unzipped_bytes_max=1024 * 1024)
    assert isinstance(read, Container)
    changed = asice_writer.write_container("batch.xml", BATCH.replace(b"\r\n", b"\n"),
                                    read.signatures, moment=NOW)
    checked = xmlsec_verify(xmlsec1, changed, tmp_path / "u", ca_pem)
    assert checked.returncode != 0 and "FAIL" in checked.stdout + checked.stderr, \
        "xmlsec1 read the data and found the digest wrong (not: could not open it)"
    assert [c.problem for c in ours(changed, pki)] == [Problem.OTHER_BYTES]


def test_xmlsec1_and_we_both_refuse_a_certificate_of_another_CA(
        xmlsec1: str, tmp_path: Path, pki: testpki.Pki, ca_pem: Path) -> None:
    from gateway.sign_command import sign_container

    container = sign_container("batch.xml", BATCH, pki.foreign.key, pki.foreign.cert, NOW)
    checked = xmlsec_verify(xmlsec1, container, tmp_path / "u", ca_pem)
    assert checked.returncode != 0 and "certificate" in checked.stderr
    assert [c.problem for c in ours(container, pki)] == [Problem.UNTRUSTED_CA]


# --- xmlsec1's, checked by us -------------------------------------------------------------

C14N_10 = xades.C14N_10
C14N_11 = xades.C14N_11
EXC = xades.EXC_C14N
SHA256, SHA384, SHA512 = xades.SHA256, xades.SHA384, xades.SHA512
MORE = "http://www.w3.org/2001/04/xmldsig-more#"


def template(data_name: str, cert: bytes, *, c14n: str, digest: str, method: str,
             wrapped: bool, signing_time: datetime) -> bytes:
    """A XAdES-BES template as a third-party signer fills it: SigningTime and the
    certificate digest written in, digests and the signature value left to xmlsec1."""
    E = ElementMaker(namespace=DS, nsmap={"ds": DS})
    X = ElementMaker(namespace=XADES, nsmap={"xades": XADES})
    props = X.SignedProperties(
        X.SignedSignatureProperties(
            X.SigningTime(signing_time.strftime("%Y-%m-%dT%H:%M:%SZ")),
            X.SigningCertificateV2(X.Cert(X.CertDigest(
                E.DigestMethod(Algorithm=SHA256),
                E.DigestValue(base64.b64encode(hashlib.sha256(cert).digest()).decode()),
            ))),
        ),
        Id="xmlsec-SignedProperties",
    )
    signature = E.Signature(
        E.SignedInfo(
            E.CanonicalizationMethod(Algorithm=c14n),
            E.SignatureMethod(Algorithm=method),
            E.Reference(E.DigestMethod(Algorithm=digest), E.DigestValue(),
                        URI=quote(data_name, safe="")),
            E.Reference(E.Transforms(E.Transform(Algorithm=c14n)),
                        E.DigestMethod(Algorithm=digest), E.DigestValue(),
                        Type=xades.SIGNED_PROPERTIES_TYPE, URI="#xmlsec-SignedProperties"),
        ),
        E.SignatureValue(),
        E.KeyInfo(E.X509Data()),
        E.Object(X.QualifyingProperties(props, Target="#xmlsec-S0")),
        Id="xmlsec-S0",
    )
    root = signature
    if wrapped:
        root = ElementMaker(namespace=ASIC, nsmap={"asic": ASIC}).XAdESSignatures(signature)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


CASES = {
    "C14N 1.1, SHA-256, RSA (DigiDoc's choice)":
        (C14N_11, SHA256, "rsa", MORE + "rsa-sha256", True),
    "C14N 1.0, SHA-384, ECDSA": (C14N_10, SHA384, "ecdsa-p256", MORE + "ecdsa-sha384", True),
    "exclusive C14N, SHA-512, RSA-SHA512": (EXC, SHA512, "rsa", MORE + "rsa-sha512", True),
    "C14N 1.1, SHA-256, ECDSA, bare Signature root":
        (C14N_11, SHA256, "ecdsa-p256", MORE + "ecdsa-sha256", False),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_signature_made_by_xmlsec1_from_a_xades_template_is_accepted(
        xmlsec1: str, tmp_path: Path, case: tuple[str, str, str, str, bool]) -> None:
    c14n, digest, algorithm, method, wrapped = case
    pki = testpki.make_pki(NOW, algorithm=algorithm)  # type: ignore[arg-type]
    key, cert = testpki.write_issued(pki.second, tmp_path, "signer")
    data_name = "maksājumi 1.xml"
    (tmp_path / "data.xml").write_bytes(BATCH)
    signed_at = NOW - timedelta(minutes=3)
    (tmp_path / "template.xml").write_bytes(template(
        data_name, pki.second.cert.public_bytes(Encoding.DER), c14n=c14n, digest=digest,
        method=method, wrapped=wrapped, signing_time=signed_at,
    ))
    run = subprocess.run(
        [xmlsec1, "--sign", "--privkey-pem", f"{key},{cert}", "--id-attr:Id", ID_ATTR,
         f"--url-map:{data_name}", str(tmp_path / "data.xml"),
         "--output", "signed.xml", "template.xml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert run.returncode == 0, run.stderr
    signed = (tmp_path / "signed.xml").read_bytes()
    container = asice_writer.write_container(
        data_name, BATCH, [SignatureFile("META-INF/signatures0.xml", signed)], moment=NOW)
    [result] = ours(container, pki)
    assert result.ok, result.detail
    assert result.certificate == pki.second.cert and result.signing_time == signed_at
    # And the same signature over other bytes is DS17, as with our own.
    other = asice_writer.write_container(data_name, BATCH + b" ", [SignatureFile(
        "META-INF/signatures0.xml", signed)], moment=NOW)
    assert [c.problem for c in ours(other, pki)] == [Problem.OTHER_BYTES]


# --- `ekase-gateway sign` -----------------------------------------------------------------


def test_sign_command_then_second_signatory_both_verified_by_us_and_xmlsec1(
        xmlsec1: str, tmp_path: Path, pki: testpki.Pki, ca_pem: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's flow: the first signatory signs the batch, the second signs the
    container the first made; both signatures hold, for us and for xmlsec1."""
    batch = tmp_path / "payroll.xml"
    batch.write_bytes(BATCH)
    first_key, first_cert = testpki.write_issued(pki.first, tmp_path / "keys", "first")
    second_key, second_cert = testpki.write_issued(pki.second, tmp_path / "keys", "second")

    assert cli.main(["sign", str(batch), "--key", str(first_key), "--cert",
                     str(first_cert)]) == 0
    out = tmp_path / "payroll.asice"
    line = capsys.readouterr().out
    assert str(out) in line and hashlib.sha256(BATCH).hexdigest() in line
    assert cli.main(["sign", str(out), "--key", str(second_key), "--cert",
                     str(second_cert)]) == 0
    container = out.read_bytes()
    assert batch.read_bytes() == BATCH, "the batch itself is left alone"

    results = ours(container, pki)
    assert [(r.source, r.ok, r.certificate) for r in results] == [
        ("META-INF/signatures0.xml", True, pki.first.cert),
        ("META-INF/signatures1.xml", True, pki.second.cert),
    ]
    for name in ("META-INF/signatures0.xml", "META-INF/signatures1.xml"):
        checked = xmlsec_verify(xmlsec1, container, tmp_path / name[-5], ca_pem, name)
        assert checked.returncode == 0, checked.stderr


def test_sign_command_with_out_and_its_refusals(tmp_path: Path, pki: testpki.Pki,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Usage problems exit 2 with one line; nothing is overwritten."""
    batch = tmp_path / "b.xml"
    batch.write_bytes(BATCH)
    key, cert = testpki.write_issued(pki.first, tmp_path / "keys", "first")
    _, other_cert = testpki.write_issued(pki.second, tmp_path / "keys", "second")
    out = tmp_path / "sent" / "x.sce"
    out.parent.mkdir()
    args = ["sign", str(batch), "--key", str(key), "--cert", str(cert), "--out", str(out)]
    assert cli.main(args) == 0 and out.is_file()
    before = out.read_bytes()

    assert cli.main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert cli.main(["sign", str(batch), "--key", str(key), "--cert", str(other_cert),
                     "--out", str(tmp_path / "y.asice")]) == 2
    assert "does not match" in capsys.readouterr().err
    os.chmod(key, 0o644)
    assert cli.main(["sign", str(batch), "--key", str(key), "--cert", str(cert),
                     "--out", str(tmp_path / "z.asice")]) == 2
    assert "mode 0644 gives its group and everyone access to it" in capsys.readouterr().err
    os.chmod(key, 0o600)
    # Swapped: the certificate (mode 0644, as certificates are) given as the key is named
    # for what it is, not told to be chmod 600.
    assert cli.main(["sign", str(batch), "--key", str(cert), "--cert", str(key),
                     "--out", str(tmp_path / "w.asice")]) == 2
    assert f"signing key {cert} is a certificate, not a private key" in capsys.readouterr().err
    broken = tmp_path / "broken.asice"
    broken.write_bytes(b"PK not really")
    assert cli.main(["sign", str(broken), "--key", str(key), "--cert", str(cert)]) == 2
    assert "container refused" in capsys.readouterr().err
    assert not (tmp_path / "y.asice").exists() and not (tmp_path / "z.asice").exists()
    # Mistakes of paths: one line and exit 2 each, never a traceback.
    for words, said in (
        ([str(batch), "--out", str(tmp_path / "nowhere" / "x.asice")],
         f"{tmp_path / 'nowhere' / 'x.asice'}: cannot be written (No such file or directory)"),
        ([str(tmp_path)], f"{tmp_path}: not a file"),
        ([str(tmp_path / "missing.xml")], f"{tmp_path / 'missing.xml'}: not a file"),
        ([str(batch), "--out", str(tmp_path)],
         f"--out {tmp_path} exists; remove it or name another"),
    ):
        assert cli.main(["sign", *words, "--key", str(key), "--cert", str(cert)]) == 2, words
        assert capsys.readouterr().err.splitlines() == [f"ekase-gateway: {said}"], words


def test_sign_refuses_an_expired_certificate(tmp_path: Path, pki: testpki.Pki,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "b.xml"
    batch.write_bytes(BATCH)
    key, cert = testpki.write_issued(pki.expired, tmp_path / "keys", "expired")
    assert cli.main(["sign", str(batch), "--key", str(key), "--cert", str(cert)]) == 2
    assert "expired" in capsys.readouterr().err
    assert not (tmp_path / "b.asice").exists()


# --- containers on disk ---------------------------------------------------------------------


def test_200_MB_container_is_refused_by_its_size_without_being_read(tmp_path: Path) -> None:
    """A sparse 200 MB file: refused from its size alone, holding almost nothing in memory."""
    big = tmp_path / "huge.asice"
    with big.open("wb") as f:
        f.truncate(200 * 1024 * 1024)
    tracemalloc.start()
    try:
        result = asice.read_container(big, unzipped_bytes_max=100 * 1024 * 1024 + 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result, ContainerProblem) and result.refusal is Refusal.TOO_BIG
    assert peak < 1024 * 1024


def test_zip_bomb_on_disk_is_refused_reading_at_most_the_limit(tmp_path: Path) -> None:
    """A bomb in a file (as the pipeline meets it): memory stays near the limit, not the
    bomb's size, whatever its header says."""
    path = tmp_path / "bomb.asice"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), asice.MIMETYPE)
        with archive.open("batch.xml", "w", force_zip64=False) as entry:
            block = bytes(1024 * 1024)
            for _ in range(300):
                entry.write(block)
    assert path.stat().st_size < 1024 * 1024
    tracemalloc.start()
    try:
        result = asice.read_container(path, unzipped_bytes_max=8 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result, ContainerProblem) and result.refusal is Refusal.BOMB
    assert peak < 16 * 1024 * 1024


def test_path_traversal_container_on_disk_is_refused_and_nothing_is_written(
        tmp_path: Path) -> None:
    path = tmp_path / "evil.edoc"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), asice.MIMETYPE)
        archive.writestr("batch.xml", BATCH)
        archive.writestr("../../x", b"evil")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    result = asice.read_container(path, unzipped_bytes_max=1024 * 1024)
    assert isinstance(result, ContainerProblem) and result.refusal is Refusal.UNSAFE_NAME
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
