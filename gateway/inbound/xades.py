"""Verifying the XAdES signatures in an ASiC-E container (SPEC §11).

Each `ds:Signature` in `META-INF/*signatures*.xml` must sign the data file, by its name,
with no transforms (a digest of its raw bytes, as DigiDoc and eParaksts make them), and
the XAdES `SignedProperties`, found by Id, holding `SigningTime` and `SigningCertificate`
or `SigningCertificateV2`; it may also sign other elements of itself (its KeyInfo), and
every reference is checked. Any other shape is refused rather than partly checked, so
nothing unsigned can pass as signed.

Canonicalisation is lxml's (libxml2, the code xmlsec1 uses); signatures and certificate
chains are `cryptography`'s (`x509.verification`, the webpki rules for the CA side; the
signer's own certificate may carry any extensions, as qualified signature certificates do).
C14N 1.1 is computed as 1.0: they differ only for `xml:*` attributes inherited from
outside the canonicalised subtree, and such a signature is refused rather than guessed.

Every outcome is a value (`SignatureCheck`); the `Problem` members map to SPEC §11 codes:
UNREADABLE → DS0B, OTHER_BYTES → DS17, UNTRUSTED_CA → DS0F, REVOKED → DS0C,
CERTIFICATE_NOT_VALID → DS0D.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from lxml import etree

from gateway.errors import ConfigError
from gateway.inbound.asice import Container, SignatureFile, name_problem
from gateway.inbound.names import subject_text
from gateway.xmldsig import C14N as EXC_C14N
from gateway.xmldsig import DS, METHODS, SHA256, signature_ok

XADES = "http://uri.etsi.org/01903/v1.3.2#"
ASIC = "http://uri.etsi.org/02918/v1.2.1#"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
NS = {"ds": DS, "xades": XADES}

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
WITH_COMMENTS = "#WithComments"
# (exclusive, with comments) for each canonicalisation we accept
_CANONICAL = {
    C14N_10: (False, False),
    C14N_10 + WITH_COMMENTS: (False, True),
    C14N_11: (False, False),
    C14N_11 + WITH_COMMENTS: (False, True),
    EXC_C14N: (True, False),
    EXC_C14N + "WithComments": (True, True),
}
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
_DIGESTS = {SHA256: "sha256", SHA384: "sha384", SHA512: "sha512"}
# A certificate digest only names the certificate inside signed data; SHA-1 is still what
# many XAdES v1.3.2 `SigningCertificate` elements carry.
_CERT_DIGESTS = {SHA1: "sha1", **_DIGESTS}

signature_elements_max = 16  # per signatures file
key_info_certificates_max = 8
inner_references_max = 4  # '#Id' references besides SignedProperties (e.g. to KeyInfo)
chain_depth_max = 4


class Problem(enum.Enum):
    """Why a signature does not count; the SPEC §11 code is in each comment."""

    UNREADABLE = "unreadable"  # DS0B: container or signature unreadable, or not intact
    OTHER_BYTES = "other-bytes"  # DS17: signature over other bytes than the batch
    UNTRUSTED_CA = "untrusted-ca"  # DS0F: certificate not from the signatory CA
    REVOKED = "revoked"  # DS0C: certificate revoked
    CERTIFICATE_NOT_VALID = "certificate-not-valid"  # DS0D: expired or not yet valid


@dataclass(frozen=True, slots=True)
class Trust:
    """What signatories' certificates must chain to (`[signing] signatory_ca`) and the
    optional revocation lists (`signatory_crl`), loaded once by the shell."""

    cas: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()


def load_trust(cas: Sequence[Path], crls: Sequence[Path] = ()) -> Trust:
    """`[signing] signatory_ca` (PEM files, each one or more certificates) and
    `signatory_crl` (PEM or DER), read once at start. A file that cannot be used is a
    ConfigError naming its key path; so is a CRL that none of the CAs signed."""
    certificates: list[x509.Certificate] = []
    for n, path in enumerate(cas):
        where = f"signing.signatory_ca[{n}]"
        try:
            certificates.extend(x509.load_pem_x509_certificates(_config_file(path, where)))
        except ValueError as exc:
            raise ConfigError(where, f"{path}: not a PEM certificate ({exc})") from exc
    lists: list[x509.CertificateRevocationList] = []
    for n, path in enumerate(crls):
        where = f"signing.signatory_crl[{n}]"
        data = _config_file(path, where)
        try:
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_crl(data))
        except ValueError as exc:
            raise ConfigError(where, f"{path}: not a CRL ({exc})") from exc
        if not any(_crl_signed_by(crl, ca) for ca in certificates):
            raise ConfigError(where, f"{path}: not signed by any signing.signatory_ca")
        lists.append(crl)
    return Trust(tuple(certificates), tuple(lists))


def _config_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(where, f"{path}: {exc.strerror}") from exc


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verdict on one `ds:Signature`. `certificate` and `signing_time` are filled in
    whenever they could be read, also for a signature that does not count."""

    source: str  # e.g. "META-INF/signatures0.xml" or "META-INF/signatures0.xml#2"
    problem: Problem | None
    detail: str  # English, for the findings file and AddtlInf
    certificate: x509.Certificate | None = None
    signing_time: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def subject(self) -> str | None:
        return subject_text(self.certificate.subject) if self.certificate else None

    @property
    def serial(self) -> int | None:
        return self.certificate.serial_number if self.certificate else None


def verify_container(
    container: Container, trust: Trust, received_at: datetime
) -> tuple[SignatureCheck, ...]:
    """Every signature in the container, in file order. `received_at` is when the
    container was received: certificates must be valid then (not at the self-declared
    signing time)."""
    digest = functools.cache(container.digest)  # the data file is hashed once per algorithm
    checks: list[SignatureCheck] = []
    for file in container.signatures:
        checks.extend(_file_checks(file, container.data_name, digest, trust, received_at))
    return tuple(checks)


def verify_signature_file(
    file: SignatureFile, data_name: str, data: bytes, trust: Trust, received_at: datetime
) -> tuple[SignatureCheck, ...]:
    """Each `ds:Signature` of one signatures file (a file may hold several)."""
    return _file_checks(file, data_name, digests_of(data), trust, received_at)


def digests_of(data: bytes) -> Callable[[str], bytes]:
    """The digest of `data` by a `hashlib` name, each worked out once."""
    return functools.cache(lambda algorithm: hashlib.new(algorithm, data).digest())


def _file_checks(
    file: SignatureFile,
    data_name: str,
    digest: Callable[[str], bytes],
    trust: Trust,
    received_at: datetime,
) -> tuple[SignatureCheck, ...]:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    try:
        root = _parse(file.xml)
        elements = _signature_elements(root)
    except _Unreadable as exc:
        return (SignatureCheck(file.name, Problem.UNREADABLE, str(exc)),)
    checks = []
    for position, element in enumerate(elements, start=1):
        source = file.name if len(elements) == 1 else f"{file.name}#{position}"
        try:
            checks.append(_check(source, element, data_name, digest, trust, received_at))
        except (ValueError, UnsupportedAlgorithm) as exc:
            # cryptography parses parts of a certificate only when asked; a client's
            # malformed certificate can surface anywhere in the checks.
            checks.append(SignatureCheck(source, Problem.UNREADABLE,
                                         f"signature cannot be checked ({exc})"))
    return tuple(checks)


# --- one signature ----------------------------------------------------------------------


class _Unreadable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Intact:
    """A signature whose value, signed properties and data digest all check out; who
    signed is not yet trusted."""

    certificate: x509.Certificate
    others: tuple[x509.Certificate, ...]  # further certificates from KeyInfo
    signing_time: datetime


def _check(
    source: str,
    element: Any,
    data_name: str,
    digest: Callable[[str], bytes],
    trust: Trust,
    received_at: datetime,
) -> SignatureCheck:
    found = check_intact(element, data_name, digest)
    if not isinstance(found, Intact):
        problem, detail, cert, when = found
        return SignatureCheck(source, problem, detail, cert, when)
    cert, when = found.certificate, found.signing_time

    # Judged when received, never at the signing time the signature declares (SPEC §11):
    # a signer's clock set wrong refused a certificate valid on the day (a tester).
    failed = certificate_problem(cert, trust, received_at, found.others)
    if failed is not None:
        return SignatureCheck(source, *failed, cert, when)
    who = common_name(cert.subject)
    return SignatureCheck(source, None, f"valid signature by {who}", cert, when)


def certificate_problem(
    cert: x509.Certificate, trust: Trust, received_at: datetime,
    others: Sequence[x509.Certificate] = (), when: str = "when received",
) -> tuple[Problem, str] | None:
    """Why a signature under `cert` (with `others` from its KeyInfo) received at
    `received_at` (`when`, as the text says it) cannot count — not from the signatory
    CA, revoked, outside its validity or its chain's — or None; the signing time is the
    signature's to check."""
    chain = _chain(cert, others, trust.cas, received_at)
    if isinstance(chain, str):
        return Problem.UNTRUSTED_CA, chain
    revoked = _revocation(_up_to_root(chain, trust.cas), trust.crls, received_at)
    if revoked:
        return Problem.REVOKED, revoked
    for link in chain:
        invalid = _validity_problem(link, received_at, when)
        if invalid:
            return Problem.CERTIFICATE_NOT_VALID, invalid
    return None


def check_intact(
    element: Any, data_name: str, digest: Callable[[str], bytes]
) -> Intact | tuple[Problem, str, x509.Certificate | None, datetime | None]:
    """The cryptographic half: the signature value over SignedInfo, the SignedProperties'
    digest and the data file's digest. Also the signing side's read-back check. A problem
    names the certificate only once the signature value verified with it, and the signing
    time only once the signed properties did too: unverified claims are not reported.
    `digest`: the data file's digest by a `hashlib` name (`digests_of`)."""
    cert: x509.Certificate | None = None
    when: datetime | None = None
    try:
        info = _one(element, "ds:SignedInfo")
        exclusive, comments, prefixes = _canonicalisation(_one(info, "ds:CanonicalizationMethod"))
        method = _one(info, "ds:SignatureMethod").get("Algorithm")
        if method not in METHODS:
            raise _Unreadable(f"signature method {method} not accepted")
        data_ref, props_ref, inner_refs = _references(info)
        props = _signed_properties(element, props_ref)
        inner = [(ref, _inner(element, ref)) for ref in inner_refs]
        claimed_time = _signing_time(props)
        certs = _key_info_certificates(element)
        claimed_cert = _signing_certificate(props, certs)
        value = _b64(_one(element, "ds:SignatureValue").text, "SignatureValue")
        signed_info = _canonical(info, exclusive, comments, prefixes)
        if not signature_ok(claimed_cert, method, signed_info, value):
            raise _Unreadable("the signature value does not verify (the signature was altered)")
        cert = claimed_cert
        if not _reference_digest_ok(props_ref, props):
            raise _Unreadable("the signed properties were altered (digest mismatch)")
        for ref, target in inner:
            if not _reference_digest_ok(ref, target):
                raise _Unreadable(f"{ref.get('URI')[:40]} was altered (digest mismatch)")
        when = claimed_time
        algorithm = _DIGESTS[_one(data_ref, "ds:DigestMethod").get("Algorithm")]
        signed_digest = _b64(_one(data_ref, "ds:DigestValue").text, "DigestValue")
    except _Unreadable as exc:
        return Problem.UNREADABLE, str(exc), cert, when
    uri = data_ref.get("URI") or ""
    if uri != data_name and unquote(uri) != data_name:
        return (Problem.OTHER_BYTES,
                f"the signature is over {unquote(uri)[:60]!r}, not {data_name!r}", cert, when)
    if signed_digest != digest(algorithm):
        return (Problem.OTHER_BYTES, f"the signature is over other bytes than {data_name!r}",
                cert, when)
    others = tuple(c for c in certs if c != cert)
    return Intact(cert, others, when)


def _references(info: Any) -> tuple[Any, Any, list[Any]]:
    """Exactly one reference to the data file (no transforms), one to SignedProperties,
    and possibly a few more to elements of the signature itself (some signers also sign
    their KeyInfo); every one of them is checked."""
    refs = info.xpath("ds:Reference", namespaces=NS)
    props = [r for r in refs if r.get("Type") == SIGNED_PROPERTIES_TYPE]
    inner = [r for r in refs if r not in props and (r.get("URI") or "").startswith("#")]
    data = [r for r in refs if r not in props and r not in inner]
    if len(props) != 1 or len(data) != 1 or len(inner) > inner_references_max:
        raise _Unreadable(
            f"expected one data reference and one SignedProperties reference, found "
            f"{len(data)} and {len(props)} (and {len(inner)} others)"
        )
    ref = data[0]
    uri = ref.get("URI") or ""
    if not uri or ":" in uri or name_problem(unquote(uri)):
        raise _Unreadable(f"the data reference {uri[:60]!r} is not a file name in the container")
    if ref.xpath("ds:Transforms", namespaces=NS):
        raise _Unreadable("the data reference has transforms (it must sign the file's bytes)")
    for reference in refs:
        if _one(reference, "ds:DigestMethod").get("Algorithm") not in _DIGESTS:
            raise _Unreadable("a reference's digest is not SHA-256, SHA-384 or SHA-512")
    return ref, props[0], inner


def _inner(signature: Any, ref: Any) -> Any:
    """The element a '#Id' reference names. It must be unique in the document and inside
    this signature: an Id found elsewhere (signature wrapping) is refused."""
    uri = ref.get("URI") or ""
    ident = uri[1:]
    matches = signature.getroottree().xpath("//*[@Id=$i]", i=ident) if ident else []
    if len(matches) != 1:
        raise _Unreadable(f"Id {ident[:40]!r} found {len(matches)} times")
    element = matches[0]
    if not any(a is signature for a in element.iterancestors()):
        raise _Unreadable(f"#{ident[:40]} is not inside this signature")
    if element.tag == f"{{{DS}}}SignedInfo" or any(
        a.tag == f"{{{DS}}}SignedInfo" for a in element.iterancestors()
    ):
        raise _Unreadable(f"#{ident[:40]} is inside SignedInfo")
    if len(ref.xpath("ds:Transforms/ds:Transform", namespaces=NS)) > 1:
        raise _Unreadable(f"more than one transform on the reference to #{ident[:40]}")
    return element


def _signed_properties(signature: Any, ref: Any) -> Any:
    """This signature's own SignedProperties, in its ds:Object."""
    props = _inner(signature, ref)
    if props.tag != f"{{{XADES}}}SignedProperties":
        raise _Unreadable(f"{ref.get('URI')[:40]} is not xades:SignedProperties")
    qualifying = props.getparent()
    if (
        qualifying.tag != f"{{{XADES}}}QualifyingProperties"
        or qualifying.getparent().tag != f"{{{DS}}}Object"
        or qualifying.getparent().getparent() is not signature
    ):
        raise _Unreadable("SignedProperties are not inside this signature's ds:Object")
    target = qualifying.get("Target")
    if signature.get("Id") and target != "#" + signature.get("Id"):
        raise _Unreadable("QualifyingProperties target another signature")
    return props


def _reference_digest_ok(ref: Any, element: Any) -> bool:
    """A same-document reference without transforms is canonicalised with C14N 1.0; with
    one, by that canonicalisation. Comments never reach a '#Id' reference's digest."""
    transforms = ref.xpath("ds:Transforms/ds:Transform", namespaces=NS)
    exclusive, prefixes = False, None
    if transforms:
        exclusive, _, prefixes = _canonicalisation(transforms[0])
    octets = _canonical(element, exclusive, False, prefixes)
    algorithm = _DIGESTS[_one(ref, "ds:DigestMethod").get("Algorithm")]
    expected = _b64(_one(ref, "ds:DigestValue").text, "DigestValue")
    return hashlib.new(algorithm, octets).digest() == expected


def _signing_time(props: Any) -> datetime:
    text = _one(props, "xades:SignedSignatureProperties/xades:SigningTime").text or ""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Unreadable(f"SigningTime {text[:40]!r} is not a date and time") from exc
    if when.tzinfo is None:
        raise _Unreadable("SigningTime has no time zone")
    return when.astimezone(UTC)


def _key_info_certificates(signature: Any) -> tuple[x509.Certificate, ...]:
    texts = signature.xpath("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    if not texts or len(texts) > key_info_certificates_max:
        raise _Unreadable(f"KeyInfo holds {len(texts)} certificates")
    certs = []
    for text in texts:
        try:
            certs.append(x509.load_der_x509_certificate(_b64(text.text, "X509Certificate")))
        except ValueError as exc:
            raise _Unreadable(f"a KeyInfo certificate cannot be read ({exc})") from exc
    return tuple(certs)


def _signing_certificate(props: Any, certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """The KeyInfo certificate whose digest the signed SigningCertificate(V2) carries."""
    signed = props.xpath(
        "xades:SignedSignatureProperties/xades:SigningCertificateV2/xades:Cert"
        " | xades:SignedSignatureProperties/xades:SigningCertificate/xades:Cert",
        namespaces=NS,
    )
    if not signed:
        raise _Unreadable("no SigningCertificate or SigningCertificateV2")
    first = signed[0]
    algorithm = _one(first, "xades:CertDigest/ds:DigestMethod").get("Algorithm")
    if algorithm not in _CERT_DIGESTS:
        raise _Unreadable(f"certificate digest method {algorithm} not accepted")
    expected = _b64(_one(first, "xades:CertDigest/ds:DigestValue").text, "CertDigest")
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        if hashlib.new(_CERT_DIGESTS[algorithm], der).digest() == expected:
            return cert
    raise _Unreadable("the signed SigningCertificate is not the certificate in KeyInfo")


# --- trust -------------------------------------------------------------------------------


def _chain(
    cert: x509.Certificate,
    others: Sequence[x509.Certificate],
    cas: Sequence[x509.Certificate],
    received_at: datetime,
) -> list[x509.Certificate] | str:
    """The verified chain (signer first), or why there is none. Checked at a moment inside
    the signer's own validity, so an expired signer from our CA is told apart (DS0D) from a
    signer of another CA (DS0F)."""
    if not cas:
        return "no signatory CA is configured"
    moment = min(max(received_at, cert.not_valid_before_utc), cert.not_valid_after_utc)
    verifier = (
        PolicyBuilder()
        .store(Store(list(cas)))
        .time(moment)
        .max_chain_depth(chain_depth_max)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(cert, list(others))
    except VerificationError as exc:
        # A signer outside its own validity when received is refused for that (DS0D)
        # whenever our CA issued it: also when no one moment lies inside both their
        # validities (a CA certificate re-issued with the same key after the signer's
        # expired). The CA's signature on it is what says it is ours.
        issuer_ca = next((ca for ca in cas if _issued_by(cert, ca)), None)
        if issuer_ca is not None and _validity_problem(cert, received_at, "") is not None:
            return [cert, issuer_ca]
        issuer = common_name(cert.issuer)
        if issuer_ca is None:  # another CA's: who issued it is all there is to say
            return f"certificate not from the signatory CA: issued by {issuer}"
        # Ours, refused for something else (the CA itself not valid then, an extension):
        # the verifier's own words are the only account of it.
        return f"certificate issued by {issuer} does not chain to the signatory CA ({exc})"
    return list(verified.chain)


def _up_to_root(
    chain: Sequence[x509.Certificate], cas: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """`chain` on past the signatory CA it ends at, through the configured CAs that
    issued that one, for `_revocation` only: an intermediate listed beside its root is
    still judged by the root's CRL, whichever of them the operator listed. (Not for the
    validity of the chain: a root re-issued with the same key may be listed twice, one
    copy expired.)"""
    chain = list(chain)
    while len(chain) <= chain_depth_max:
        top = chain[-1]
        if top.issuer == top.subject:  # a root
            break
        issuer = next((ca for ca in cas if ca not in chain and _issued_by(top, ca)), None)
        if issuer is None:
            break
        chain.append(issuer)
    return chain


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether `ca` signed `cert` (its name and signature; not its validity)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _revocation(
    chain: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    received_at: datetime,
) -> str | None:
    """Revoked before the container was received, by a CRL its issuer signed."""
    for cert, issuer in itertools.pairwise(chain):
        for crl in crls:
            if not _crl_signed_by(crl, issuer):
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None and entry.revocation_date_utc <= received_at:
                when = entry.revocation_date_utc.date().isoformat()
                return f"certificate of {common_name(cert.subject)} revoked on {when}"
    return None


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    public = ca.public_key()
    if crl.issuer != ca.subject or not isinstance(
        public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    ):
        return False
    return crl.is_signature_valid(public)


def _validity_problem(cert: x509.Certificate, moment: datetime, when: str) -> str | None:
    who = common_name(cert.subject)
    if moment > cert.not_valid_after_utc:
        return f"certificate of {who} expired on {cert.not_valid_after_utc.date()} ({when})"
    if moment < cert.not_valid_before_utc:
        return f"certificate of {who} not valid before {cert.not_valid_before_utc.date()} ({when})"
    return None


def common_name(name: x509.Name) -> str:
    """The common name people recognise; the full name when there is none."""
    common = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else subject_text(name)


# --- XML ------------------------------------------------------------------------------


def _parse(xml: bytes) -> Any:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_blank_text=False,
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise _Unreadable(f"signature file is not XML ({exc})") from exc
    if root.getroottree().docinfo.doctype:
        raise _Unreadable("signature file has a DOCTYPE")
    return root


def _signature_elements(root: Any) -> list[Any]:
    """ASiC-E wraps signatures in asic:XAdESSignatures; a bare ds:Signature is accepted."""
    if root.tag == f"{{{DS}}}Signature":
        return [root]
    if root.tag != f"{{{ASIC}}}XAdESSignatures":
        raise _Unreadable(f"root element {root.tag[:80]} is not asic:XAdESSignatures")
    found = root.xpath("ds:Signature", namespaces=NS)
    if not found:
        raise _Unreadable("no ds:Signature in the signature file")
    if len(found) > signature_elements_max:
        raise _Unreadable(f"{len(found)} signatures in one file; at most "
                          f"{signature_elements_max}")
    return list(found)


def _canonicalisation(element: Any) -> tuple[bool, bool, list[str] | None]:
    algorithm = element.get("Algorithm")
    if algorithm not in _CANONICAL:
        raise _Unreadable(f"canonicalisation {algorithm} not accepted")
    exclusive, comments = _CANONICAL[algorithm]
    prefixes = None
    if exclusive:
        found = element.xpath("*[local-name()='InclusiveNamespaces']/@PrefixList")
        if found:
            prefixes = str(found[0]).split() or None
            if prefixes and "#default" in prefixes:
                raise _Unreadable("InclusiveNamespaces '#default' is not supported")
    return exclusive, comments, prefixes


def _canonical(element: Any, exclusive: bool, comments: bool,
               prefixes: list[str] | None) -> bytes:
    if not exclusive:
        # Inclusive C14N of a subtree carries xml:* attributes inherited from ancestors
        # (and 1.1 fixes some up): lxml does not, so such input is refused, not guessed.
        for ancestor in element.iterancestors():
            if any(k.startswith("{http://www.w3.org/XML/1998/namespace}")
                   for k in ancestor.attrib):
                raise _Unreadable("xml:* attributes around signed XML are not supported")
    data: bytes = etree.tostring(
        element, method="c14n", exclusive=exclusive, with_comments=comments,
        inclusive_ns_prefixes=prefixes,
    )
    return data


def _one(where: Any, path: str) -> Any:
    found = where.xpath(path, namespaces=NS)
    if len(found) != 1:
        raise _Unreadable(f"expected exactly one {path}, found {len(found)}")
    return found[0]


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Unreadable(f"{what} is not base64") from exc
