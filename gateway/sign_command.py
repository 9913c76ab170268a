"""`ekase-gateway sign FILE --key KEY --cert CERT [--out FILE.asice]` (SPEC §11).

Makes the ASiC-E container a signatory uploads: the batch at the root and a XAdES-BES
signature in `META-INF/signatures<N>.xml` whose data reference is the file's name with no
transforms (SHA-256 of its bytes), plus `SignedProperties` with `SigningTime` and
`SigningCertificateV2`. Given a container instead of a batch, it adds one more signature
file to it (the second signatory signs what the first sent round).

The SignedInfo is built and signed the way the gateway's seals are (`outbound/seal.py`:
lxml builds it, exclusive C14N, `cryptography` signs); see there why not signxml. Every
signature made is read back with the verifier's own check before it is written.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from lxml.builder import ElementMaker

from gateway import asice_writer
from gateway.errors import UsageError
from gateway.files import write_atomically
from gateway.inbound import asice, route, xades
from gateway.outbound.seal import Sealer
from gateway.xmldsig import C14N, DS, SHA256, PrivateKey, b64, c14n, method_of, sign, utc_text

# What `sign` reads: a batch (or a container holding one) well beyond any upload limit.
sign_input_bytes_max = 1024 * 1024 * 1024


def make_signature(
    data_name: str,
    data: bytes,
    key: PrivateKey,
    cert: x509.Certificate,
    signing_time: datetime,
    *,
    signature_id: str = "S0",
) -> bytes:
    """One `asic:XAdESSignatures` document with one XAdES-BES signature over `data`."""
    E = ElementMaker(namespace=DS, nsmap={"ds": DS})
    X = ElementMaker(namespace=xades.XADES, nsmap={"xades": xades.XADES})
    A = ElementMaker(
        namespace=xades.ASIC, nsmap={"asic": xades.ASIC, "ds": DS, "xades": xades.XADES}
    )
    props_id, ref_id = f"{signature_id}-SignedProperties", f"{signature_id}-RefId0"
    der = cert.public_bytes(serialization.Encoding.DER)
    signed_info = E.SignedInfo(
        E.CanonicalizationMethod(Algorithm=C14N),
        E.SignatureMethod(
            Algorithm=method_of(key)
        ),
        E.Reference(
            E.DigestMethod(Algorithm=SHA256),
            E.DigestValue(b64(hashlib.sha256(data).digest())),
            Id=ref_id,
            URI=quote(data_name, safe=""),
        ),
        E.Reference(
            E.Transforms(E.Transform(Algorithm=C14N)),
            E.DigestMethod(Algorithm=SHA256),
            E.DigestValue(),
            Type=xades.SIGNED_PROPERTIES_TYPE,
            URI="#" + props_id,
        ),
    )
    props = X.SignedProperties(
        X.SignedSignatureProperties(
            X.SigningTime(utc_text(signing_time)),
            X.SigningCertificateV2(
                X.Cert(
                    X.CertDigest(
                        E.DigestMethod(Algorithm=SHA256),
                        E.DigestValue(b64(hashlib.sha256(der).digest())),
                    )
                )
            ),
        ),
        X.SignedDataObjectProperties(
            X.DataObjectFormat(
                X.MimeType(asice_writer.media_type(data_name)), ObjectReference="#" + ref_id
            )
        ),
        Id=props_id,
    )
    signature = E.Signature(
        signed_info,
        E.SignatureValue(Id=f"{signature_id}-SIG"),
        E.KeyInfo(E.X509Data(E.X509Certificate(b64(der)))),
        E.Object(X.QualifyingProperties(props, Target="#" + signature_id)),
        Id=signature_id,
    )
    root = A.XAdESSignatures(signature)
    etree.indent(root)  # before digesting: whitespace is part of what is signed
    digests = signed_info.findall(f"{{{DS}}}Reference/{{{DS}}}DigestValue")
    digests[1].text = b64(hashlib.sha256(c14n(props)).digest())
    signature.find(f"{{{DS}}}SignatureValue").text = b64(sign(key, c14n(signed_info)))
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    _assert_intact(document, data_name, data)
    return document + b"\n"


def sign_container(
    source_name: str,
    source: bytes,
    key: PrivateKey,
    cert: x509.Certificate,
    signing_time: datetime,
) -> bytes:
    """A container holding `source` signed; or, when `source` is a container already,
    the same container with one more signature file."""
    container = _as_container(source_name, source)
    existing: tuple[asice.SignatureFile, ...]
    if container is None:
        name = source_name
        problem = asice.name_problem(name)
        if problem or "/" in name:
            raise UsageError(f"{name}: this file name cannot be used in a container ({problem})")
        data, existing = source, ()
    else:
        name, existing = container.data_name, container.signatures
        assert container.data is not None, "read without a scratch file: held in memory"
        data = bytes(container.data)
    taken = {f.name for f in existing}
    number = next(n for n in range(len(taken) + 1) if _signature_name(n) not in taken)
    signature = make_signature(name, data, key, cert, signing_time, signature_id=f"S{number}")
    files = sorted(
        [*existing, asice.SignatureFile(_signature_name(number), signature)],
        key=lambda f: f.name,
    )
    return asice_writer.write_container(name, data, files, moment=signing_time)


def run_sign(
    file: Path, key: Path, cert: Path, out: Path | None, now: datetime
) -> tuple[int, str]:
    """The command: exit code and the line to print. Unusable key or certificate:
    SealError (exit 2); a file that cannot be signed: UsageError (exit 2)."""
    sealer = Sealer.load(key, cert, clock=lambda: now)
    try:
        if not file.is_file():
            raise UsageError(f"{file}: not a file")
        if file.stat().st_size > sign_input_bytes_max:
            raise UsageError(f"{file}: larger than {sign_input_bytes_max} bytes")
        source = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{file}: cannot be read ({exc.strerror})") from exc
    is_container = _as_container(file.name, source) is not None
    given = out is not None
    if out is None:
        out = file if is_container else file.with_name(f"{file.stem or file.name}.asice")
    if out.exists() and out.resolve() != file.resolve():
        said = "remove it or name another" if given else "remove it or pass --out"
        raise UsageError(f"{'--out ' if given else ''}{out} exists; {said}")
    if not is_container and out.resolve() == file.resolve():
        raise UsageError(f"--out {out} would overwrite the file being signed")
    container = sign_container(file.name, source, sealer.key, sealer.cert, now)
    try:
        write_atomically(out, container, mode=0o644)
    except OSError as exc:
        raise UsageError(f"{out}: cannot be written ({exc.strerror})") from exc
    read = asice.read_container(container, unzipped_bytes_max=sign_input_bytes_max)
    assert isinstance(read, asice.Container), "the container just written does not read back"
    who = xades.common_name(sealer.cert.subject)
    return 0, (
        f"{out}: {read.data_name} signed by {who} (serial {sealer.cert.serial_number:x}); "
        f"{len(read.signatures)} signature file(s); data SHA-256 {read.data_sha256.hex()}"
    )


def _as_container(name: str, source: bytes) -> asice.Container | None:
    """The container `source` is, or None for a plain file. A file that claims to be a
    container (by its name or its first bytes) but is not readable as one is refused."""
    claims = route.is_container_name(name) or route.claims_container(source)
    if not claims:
        return None
    read = asice.read_container(source, unzipped_bytes_max=sign_input_bytes_max)
    if isinstance(read, asice.ContainerProblem):
        raise UsageError(f"{name}: {read.describe()}")
    return read


def _signature_name(number: int) -> str:
    return f"META-INF/signatures{number}.xml"


def _assert_intact(document: bytes, data_name: str, data: bytes) -> None:
    """Pair assertion: what we wrote must pass the verifier's own cryptographic check."""
    root: Any = etree.fromstring(document)
    checked = xades.check_intact(
        root.find(f"{{{DS}}}Signature"), data_name, xades.digests_of(data)
    )
    assert isinstance(checked, xades.Intact), f"signature does not verify: {checked}"
