"""Seals: detached XMLDSig signatures (`NAME.sig`) over the files the gateway writes.

A seal signs two things: the file itself, by its relative name (`Reference URI="NAME"`,
SHA-256 over the raw bytes, no transforms), and a `ds:Object` inside the seal holding
signed properties (always `signed_at`; for archived inbound batches also the receipt
metadata). `xmlsec1 --verify --trusted-pem CERT NAME.sig`, run in the file's folder,
checks both, and so does `verify_file` here.

Why SignedInfo is built here with lxml instead of by `signxml.XMLSigner`: signxml 5 cannot
digest an external file as an octet stream. Given a non-`#` reference URI in detached mode
it digests the canonical form (C14N 1.1) of an XML tree passed in memory and declares that
transform. xmlsec1 accepts that, but the seal then protects the parsed XML, not the bytes
the client receives (attribute spacing, line endings and the XML declaration could change
unnoticed), the whole file must be parsed into memory, and non-XML files cannot be sealed.
With `exclude_c14n_transform_element=True` signxml still digests the canonical form and
writes an empty, schema-invalid `<Transforms/>`, which xmlsec1 rejects. Its verifier, given
a `uri_resolver`, needs the whole file in memory as bytes. So we hash the file streaming
(hashlib over chunks), build the small SignedInfo ourselves, canonicalise it with lxml's
exclusive C14N (libxml2, the same code xmlsec1 uses; signxml calls the same function) and
sign with `cryptography`. The algorithm identifiers are signxml's (a test holds the
constants in `gateway.xmldsig` equal to its enums; signxml is not needed at run time).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from lxml.builder import ElementMaker

from gateway.errors import SealError
from gateway.files import key_exposure, sha256_file
from gateway.xmldsig import (
    C14N,
    DS,
    SHA256,
    PrivateKey,
    b64,
    c14n,
    method_of,
    sign,
    signature_ok,
    unb64,
    utc_text,
)

GW = "urn:ekase-gateway:seal:1"
OBJECT_TYPE = DS + "Object"
SIGNATURE_ID = "ekase-seal"
OBJECT_ID = "ekase-seal-properties"
SIGNED_AT = "signed_at"

seal_bytes_max = 1024 * 1024  # a seal is a few KiB; anything bigger is not ours
properties_count_max = 32
property_value_chars_max = 1024
rsa_key_bits_min = 2048
_PROPERTY_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")



def seal_path(path: Path) -> Path:
    """Where the seal of `path` lives: beside it, `NAME.sig`."""
    return path.with_name(path.name + ".sig")


def receipt_properties(
    *, received_at: datetime, client_id: str, sftp_user: str, key_fingerprint: str, source: str
) -> dict[str, str]:
    """The signed receipt metadata of an accepted inbound batch, under agreed names."""
    return {
        "received_at": utc_text(received_at),
        "client_id": client_id,
        "sftp_user": sftp_user,
        "key_fingerprint": key_fingerprint,
        "source_address": source,
    }


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict on one file and its seal. A bad seal is a value, not an exception."""

    ok: bool
    problem: str | None = None
    signer: str | None = None
    signed_at: datetime | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for a person: what was checked and what it proved."""
        if not self.ok:
            return f"seal NOT valid: {self.problem}"
        when = self.signed_at.isoformat() if self.signed_at else "unknown time"
        return f"seal valid: signed by {self.signer} at {when}"


@dataclass(frozen=True, slots=True)
class Sealer:
    """The gateway's signing key and certificate, checked once at start-up."""

    key: PrivateKey
    cert: x509.Certificate
    clock: Callable[[], datetime]  # the environment's (`gateway.clock`)

    @classmethod
    def load(
        cls, key_path: Path, cert_path: Path, *, clock: Callable[[], datetime],
        names: tuple[str, str] = ("signing key", "certificate"),
    ) -> Sealer:
        """The key and certificate at these paths, checked; `names` say what each is in
        what went wrong (the configuration's key paths, where they come from it)."""
        key_name, cert_name = names
        key = _load_key(key_path, key_name)
        cert = _load_cert(cert_path, cert_name)
        if _spki(key.public_key()) != _spki(cert.public_key()):
            raise SealError(f"{key_name} {key_path} does not match {cert_name} {cert_path}")
        sealer = cls(key=key, cert=cert, clock=clock)
        sealer._check_validity(sealer.clock())
        return sealer

    def sign_received(
        self, path: Path, *, name: str, sha256: str, received_at: datetime, client_id: str,
        sftp_user: str | None, key_fingerprint: str | None, source: str | None,
    ) -> bytes:  # fmt: skip
        """The seal of an accepted inbound batch at `path` (shelved as `name`, its
        SHA-256 hex `sha256`), carrying its receipt (`receipt_properties`; what is not
        known, e.g. a batch dropped without SFTP, as "unknown")."""
        properties = receipt_properties(
            received_at=received_at, client_id=client_id, sftp_user=sftp_user or "unknown",
            key_fingerprint=key_fingerprint or "unknown", source=source or "unknown",
        )  # fmt: skip
        return self.sign_file(
            path, properties=properties, name=name, sha256=bytes.fromhex(sha256)
        )

    def sign_file(
        self,
        path: Path,
        *,
        properties: Mapping[str, str] | None = None,
        name: str | None = None,
        sha256: bytes | None = None,
    ) -> bytes:
        """The seal document for `path`. `name` is the file's final name when `path` is
        still a temporary file; the Reference URI is that name, relative. `sha256` is the
        file's digest when the caller has just computed it from the same, unchanging
        bytes (a claimed file in work/), so a big file is not read twice."""
        now = self.clock()
        self._check_validity(now)
        props = {SIGNED_AT: utc_text(now), **_checked(properties or {})}
        method = method_of(self.key)
        signature, signed_info, obj = _skeleton(
            quote(name or path.name, safe=""), method, self.cert, props
        )
        etree.indent(signature)  # before digesting: whitespace is part of what is signed
        digests = signed_info.findall(f"{{{DS}}}Reference/{{{DS}}}DigestValue")
        digests[0].text = b64(sha256 if sha256 is not None else file_sha256(path))
        digests[1].text = b64(hashlib.sha256(c14n(obj)).digest())
        value = sign(self.key, c14n(signed_info))
        signature.find(f"{{{DS}}}SignatureValue").text = b64(value)
        document: bytes = etree.tostring(signature, xml_declaration=True, encoding="UTF-8")
        # Read back before anyone relies on it (pair assertion): the serialised SignedInfo
        # must still carry our signature.
        reread = etree.fromstring(document, _parser()).find(f"{{{DS}}}SignedInfo")
        assert signature_ok(self.cert, method, c14n(reread), value), "seal does not verify"
        return document + b"\n"

    def _check_validity(self, now: datetime) -> None:
        problem = _validity_problem(self.cert, now)
        if problem:
            subject = self.cert.subject.rfc4514_string()
            raise SealError(f"signing {problem} ({subject}); renew the certificate")


def verify_file(path: Path, *, trusted_certs: Sequence[Path], now: datetime) -> Verification:
    """Check `path` against `NAME.sig` beside it. Any of `trusted_certs` may have signed
    (current and next certificate during a rollover); at least one is required.

    There is no check without a trust anchor: the certificate inside a seal proves
    nothing about who made it (anyone can make a key and a certificate with the
    gateway's subject and seal an altered file with it), so "integrity only" would
    call a forgery valid."""
    if isinstance(trusted_certs, str | Path) or not trusted_certs:
        raise SealError("no trusted certificate to verify the seal against")
    anchors = [_load_cert(p, "trusted certificate") for p in trusted_certs]
    sig = seal_path(path)
    if not _is_file(path, "it"):
        if not _is_file(sig, "its seal"):  # a path that names nothing: the caller's mistake
            raise SealError("no such file (nor its seal)")
        return Verification(ok=False, problem="no such file (the seal exists)")
    if not _is_file(sig, "its seal"):
        return Verification(ok=False, problem="missing seal")
    try:
        seal = _parse(sig, quote(path.name, safe=""))
    except _OtherFile as exc:
        return Verification(ok=False, problem=str(exc))
    except _Unreadable as exc:
        return Verification(ok=False, problem=f"seal unreadable: {exc}")
    except OSError as exc:  # there, but not the verifier's to read: the command's problem
        raise SealError(f"its seal cannot be read: {exc.strerror}") from exc
    signer = seal.cert.subject.rfc4514_string()

    def fail(problem: str) -> Verification:
        return Verification(ok=False, problem=problem, signer=signer)

    if not any(_vouches(a, seal.cert) for a in anchors):
        return fail("signed by an untrusted certificate")
    issuers = [a for a in anchors if a != seal.cert and _vouches(a, seal.cert)]
    for cert in [seal.cert, *issuers]:
        problem = _validity_problem(cert, now)
        if problem:
            return fail(problem)
    if not signature_ok(seal.cert, seal.method, seal.signed_info_c14n, seal.value):
        return fail("seal signature invalid (the .sig was altered)")
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise SealError(f"it cannot be read: {exc.strerror}") from exc
    if digest != seal.file_digest:
        return fail("file altered (digest mismatch)")
    if hashlib.sha256(seal.object_c14n).digest() != seal.object_digest:
        return fail("seal properties altered (digest mismatch)")
    props = dict(seal.properties)
    signed_at = props.pop(SIGNED_AT, None)
    try:
        when = datetime.fromisoformat(signed_at) if signed_at else None
    except ValueError:
        return fail("seal unreadable: signed_at is not a timestamp")
    return Verification(ok=True, signer=signer, signed_at=when, properties=props)


# --- building -------------------------------------------------------------------------


def _skeleton(
    uri: str, method: str, cert: x509.Certificate, props: Mapping[str, str]
) -> tuple[Any, Any, Any]:
    """A seal to fill in: a copy of the certificate's template with the file's URI and
    the properties."""
    signature = copy.deepcopy(_template(method, cert))
    signed_info, obj = signature[0], signature[3]
    signed_info[2].set("URI", uri)  # the file's Reference
    holder = obj[0][0][0]  # SignatureProperties/SignatureProperty/SealProperties
    for name, value in props.items():
        etree.SubElement(holder, f"{{{GW}}}Property", Name=name).text = value
    return signature, signed_info, obj


@functools.lru_cache(maxsize=4)
def _template(method: str, cert: x509.Certificate) -> Any:
    """The parts of a seal that are the same for every file signed with `cert` (built
    once per process; `_skeleton` copies it)."""
    E = ElementMaker(namespace=DS, nsmap={"ds": DS})
    G = ElementMaker(namespace=GW, nsmap={"gw": GW})
    signed_info = E.SignedInfo(
        E.CanonicalizationMethod(Algorithm=C14N),
        E.SignatureMethod(Algorithm=method),
        E.Reference(E.DigestMethod(Algorithm=SHA256), E.DigestValue(), URI=""),
        E.Reference(
            E.Transforms(E.Transform(Algorithm=C14N)),
            E.DigestMethod(Algorithm=SHA256),
            E.DigestValue(),
            URI="#" + OBJECT_ID,
            Type=OBJECT_TYPE,
        ),
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    obj = E.Object(
        E.SignatureProperties(
            E.SignatureProperty(G.SealProperties(), Target="#" + SIGNATURE_ID)
        ),
        Id=OBJECT_ID,
    )
    return E.Signature(
        signed_info,
        E.SignatureValue(),
        E.KeyInfo(E.X509Data(E.X509Certificate(b64(der)))),
        obj,
        Id=SIGNATURE_ID,
    )


def _checked(properties: Mapping[str, str]) -> dict[str, str]:
    if len(properties) > properties_count_max:
        raise ValueError(f"at most {properties_count_max} seal properties")
    for name, value in properties.items():
        if name == SIGNED_AT or not _PROPERTY_NAME.fullmatch(name):
            raise ValueError(f"seal property name not allowed: {name!r}")
        if len(value) > property_value_chars_max:
            raise ValueError(f"seal property {name} longer than {property_value_chars_max}")
    return dict(properties)


# --- reading and checking -------------------------------------------------------------


def _is_file(path: Path, what: str) -> bool:
    """Whether `path` is a file; one that cannot be looked at (a folder not the auditor's
    to enter, a name too long) is the command's problem, not a verdict (`SealError`)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise SealError(f"{what} cannot be read: {exc.strerror}") from exc


class _Unreadable(Exception):
    pass


class _OtherFile(_Unreadable):
    """A well-formed seal whose Reference names another file."""


@dataclass(frozen=True, slots=True)
class _Seal:
    method: str
    cert: x509.Certificate
    signed_info_c14n: bytes
    value: bytes
    file_digest: bytes
    object_digest: bytes
    object_c14n: bytes
    properties: Mapping[str, str]


def _parse(sig: Path, uri: str) -> _Seal:
    """Accept exactly the shape we write, so nothing unsigned can pass as signed."""
    if sig.stat().st_size > seal_bytes_max:
        raise _Unreadable(f"bigger than {seal_bytes_max} bytes")
    try:
        root = etree.fromstring(sig.read_bytes(), _parser())
    except etree.XMLSyntaxError as exc:
        raise _Unreadable(f"not XML ({exc})") from exc
    ns = {"ds": DS, "gw": GW}

    def one(where: Any, xpath: str) -> Any:
        found = where.xpath(xpath, namespaces=ns)
        if len(found) != 1:
            raise _Unreadable(f"expected exactly one {xpath}")
        return found[0]

    if root.tag != f"{{{DS}}}Signature":
        raise _Unreadable("not an XML signature")
    info = one(root, "ds:SignedInfo")
    method = one(info, "ds:SignatureMethod/@Algorithm")
    if one(info, "ds:CanonicalizationMethod/@Algorithm") != C14N:
        raise _Unreadable("unexpected canonicalization method")
    refs = info.xpath("ds:Reference", namespaces=ns)
    if len(refs) != 2 or refs[1].get("URI") != "#" + OBJECT_ID:
        raise _Unreadable(f"references are not (the file, #{OBJECT_ID})")
    if refs[0].get("URI") != uri:  # a file renamed with its seal, or another's seal
        named = refs[0].get("URI")
        raise _OtherFile(f"seal of another file: it names {named!r}, not {uri!r}")
    if refs[0].xpath("ds:Transforms", namespaces=ns):
        raise _Unreadable("the file reference must not have transforms")
    if one(refs[1], "ds:Transforms/ds:Transform/@Algorithm") != C14N:
        raise _Unreadable("unexpected transform on the properties reference")
    if any(one(r, "ds:DigestMethod/@Algorithm") != SHA256 for r in refs):
        raise _Unreadable("digest is not SHA-256")
    obj = one(root, f"ds:Object[@Id='{OBJECT_ID}']")
    props: dict[str, str] = {}
    for prop in obj.xpath("ds:SignatureProperties/ds:SignatureProperty/gw:SealProperties/"
                          "gw:Property", namespaces=ns):
        name = prop.get("Name")
        if not name or name in props:
            raise _Unreadable("property without name or twice")
        props[name] = prop.text or ""
    try:
        cert = x509.load_der_x509_certificate(
            unb64(one(root, "ds:KeyInfo/ds:X509Data/ds:X509Certificate[1]").text)
        )
        return _Seal(
            method=method,
            cert=cert,
            signed_info_c14n=c14n(info),
            value=unb64(one(root, "ds:SignatureValue").text),
            file_digest=unb64(one(refs[0], "ds:DigestValue").text),
            object_digest=unb64(one(refs[1], "ds:DigestValue").text),
            object_c14n=c14n(obj),
            properties=props,
        )
    except ValueError as exc:
        raise _Unreadable(f"bad base64 or certificate ({exc})") from exc


def _vouches(anchor: x509.Certificate, cert: x509.Certificate) -> bool:
    """The trusted certificate is the signer's (self-signed) or directly issued it."""
    if anchor == cert:
        return True
    try:
        cert.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _validity_problem(cert: x509.Certificate, now: datetime) -> str | None:
    if now > cert.not_valid_after_utc:
        return f"certificate expired on {cert.not_valid_after_utc.isoformat()}"
    if now < cert.not_valid_before_utc:
        return f"certificate not valid before {cert.not_valid_before_utc.isoformat()}"
    return None


# --- small helpers --------------------------------------------------------------------


def file_sha256(path: Path) -> bytes:
    return bytes.fromhex(sha256_file(path).sha256)


def _parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _spki(public: Any) -> bytes:
    data: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SealError(f"{what} {path} not found") from exc
    except OSError as exc:
        raise SealError(f"{what} {path} cannot be read: {exc.strerror}") from exc


def _load_key(path: Path, what: str) -> PrivateKey:
    """The private key at `path`. What the file is comes first: a certificate given as the
    key (`--key` and `--cert` swapped) is no secret, and "chmod 600" would mislead."""
    data = _read(path, what)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        if b"-----BEGIN CERTIFICATE-----" in data:
            raise SealError(
                f"{what} {path} is a certificate, not a private key "
                "(key and certificate swapped?)"
            ) from exc
        raise SealError(f"{what} {path} is not an unencrypted PEM private key") from exc
    exposure = key_exposure(path)
    if exposure is not None:
        raise SealError(f"{what} {path}: {exposure}")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= rsa_key_bits_min:
        return key
    raise SealError(f"{what} {path}: use ECDSA P-256 or RSA of {rsa_key_bits_min}+ bits")


def _load_cert(path: Path, what: str) -> x509.Certificate:
    data = _read(path, what)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise SealError(f"{what} {path} is not a PEM X.509 certificate") from exc
