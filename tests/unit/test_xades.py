"""Verifying XAdES signatures in containers: who signed and when, or the SPEC §11 problem
(DS0B unreadable, DS17 other bytes, DS0F another CA, DS0C revoked, DS0D not valid).

In memory only; signatures made by other software (xmlsec1) are checked in
tests/integration/test_signature_interop.py.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway import asice_writer, testpki
from gateway.inbound import asice, xades
from gateway.inbound.asice import Container, SignatureFile
from gateway.inbound.xades import DS, XADES, Problem, Trust
from gateway.sign_command import make_signature, sign_container
from gateway.xmldsig import c14n as _c14n
from gateway.xmldsig import sign as _sign

NOW = datetime(2026, 11, 25, 10, 15, 1, tzinfo=UTC)
BATCH = b'<?xml version="1.0" encoding="UTF-8"?>\n<Document>\r\n  <x a="1"/></Document>\n'
NAME = "batch.xml"
PKI = testpki.make_pki(NOW)
TRUST = Trust(cas=(PKI.ca.cert,), crls=(PKI.crl,))


def container(*signatures: bytes, data: bytes = BATCH, name: str = NAME) -> Container:
    files = [SignatureFile(f"META-INF/signatures{n}.xml", s) for n, s in enumerate(signatures)]
    blob = asice_writer.write_container(name, data, files, moment=NOW)
    read = asice.read_container(blob, unzipped_bytes_max=1024 * 1024)
    assert isinstance(read, Container)
    return read


def signature(who: testpki.Issued = PKI.first, *, data: bytes = BATCH, name: str = NAME,
              at: datetime = NOW, ident: str = "S0") -> bytes:
    return make_signature(name, data, who.key, who.cert, at, signature_id=ident)


def check(*signatures: bytes, received: datetime = NOW, trust: Trust = TRUST,
          data: bytes = BATCH) -> list[xades.SignatureCheck]:
    return list(xades.verify_container(container(*signatures, data=data), trust, received))


def only(*signatures: bytes, **kwargs: Any) -> xades.SignatureCheck:
    [result] = check(*signatures, **kwargs)
    return result


def edit(document: bytes, change: Any) -> bytes:
    root = etree.fromstring(document)
    change(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def resigned(document: bytes, change: Any, who: testpki.Issued = PKI.first) -> bytes:
    """`edit`, then sign SignedInfo again: the change is one the signer made, so only
    the shape check can refuse it."""

    def change_and_sign(root: Any) -> None:
        change(root)
        value = _sign(who.key, _c14n(find(root, "//ds:SignedInfo")))
        find(root, "//ds:SignatureValue").text = base64.b64encode(value).decode()

    return edit(document, change_and_sign)


def find(root: Any, path: str) -> Any:
    return root.xpath(path, namespaces={"ds": DS, "xades": XADES})[0]


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "rsa"])
def test_good_signature_names_the_signer_and_the_signing_time(algorithm: str) -> None:
    """A signatory's container checks out, with certificate subject, serial and time."""
    pki = testpki.make_pki(NOW, algorithm=algorithm)  # type: ignore[arg-type]
    at = NOW - timedelta(minutes=5)
    result = only(signature(pki.second, at=at),
                  trust=Trust(cas=(pki.ca.cert,), crls=(pki.crl,)))
    assert result.ok, result.detail
    assert result.certificate == pki.second.cert
    assert result.serial == pki.second.cert.serial_number
    assert result.subject is not None and "CN=Otrā Paraksta Tiesība" in result.subject
    assert result.signing_time == at
    assert result.detail == "valid signature by Otrā Paraksta Tiesība"


def test_signature_over_other_bytes_is_DS17() -> None:
    """A signature made for another batch, put into a container with this batch."""
    result = only(signature(data=BATCH.replace(b'a="1"', b'a="2"')))
    assert result.problem is Problem.OTHER_BYTES
    assert result.certificate == PKI.first.cert, "who signed is still reported"


def test_signature_naming_another_file_is_DS17() -> None:
    result = only(signature(name="other.xml"))
    assert result.problem is Problem.OTHER_BYTES and "other.xml" in result.detail


def test_certificate_from_another_CA_is_DS0F() -> None:
    result = only(signature(PKI.foreign))
    assert result.problem is Problem.UNTRUSTED_CA
    # The client's AddtlInf: who issued it, not the verifier's words ("candidates exhausted").
    assert result.detail == "certificate not from the signatory CA: issued by Some Other CA"


def test_no_signatory_CA_configured_is_DS0F() -> None:
    assert only(signature(), trust=Trust(cas=())).problem is Problem.UNTRUSTED_CA


def test_expired_certificate_is_DS0D() -> None:
    result = only(signature(PKI.expired, at=NOW - timedelta(days=3)))
    assert result.problem is Problem.CERTIFICATE_NOT_VALID
    assert "expired" in result.detail and "when received" in result.detail


def test_expired_certificate_of_a_reissued_CA_is_DS0D_not_DS0F() -> None:
    """The signatory CA's certificate was issued again with the same key after a signer's
    expired, so no moment lies inside both: the CA's signature on the certificate says it
    is ours, and it is refused for what is wrong with it — expired (DS0D)."""
    old = testpki.new_ca("Signatory CA", now=NOW - timedelta(days=400))
    signer = testpki.new_signatory(
        old, "Edgars Ozols", now=NOW, not_before=NOW - timedelta(days=390),
        not_after=NOW - timedelta(days=20),
    )  # fmt: skip
    again = (
        x509.CertificateBuilder()
        .subject_name(old.cert.subject)
        .issuer_name(old.cert.subject)
        .public_key(old.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=10))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .sign(old.key, hashes.SHA256())
    )  # fmt: skip
    signed = signature(signer, at=NOW - timedelta(days=25))
    result = only(signed, trust=Trust(cas=(again,), crls=()))
    assert result.problem is Problem.CERTIFICATE_NOT_VALID, result.detail
    assert "expired" in result.detail
    # a stranger's expired certificate is still not ours
    stranger = testpki.new_signatory(
        testpki.new_ca("Other CA", now=NOW), "Ieva Kalna", now=NOW,
        not_after=NOW - timedelta(days=20), not_before=NOW - timedelta(days=30),
    )  # fmt: skip
    theirs = signature(stranger, at=NOW - timedelta(days=25))
    other = only(theirs, trust=Trust(cas=(again,), crls=()))
    assert other.problem is Problem.UNTRUSTED_CA


def test_validity_is_judged_when_received_not_at_the_declared_signing_time() -> None:
    """Signed while the certificate was valid, received after it expired: DS0D. And a
    signing time claimed inside the validity does not rescue an expired certificate."""
    signed = signature(PKI.first, at=NOW)
    late = PKI.first.cert.not_valid_after_utc + timedelta(seconds=1)
    assert only(signed, received=late).problem is Problem.CERTIFICATE_NOT_VALID
    assert only(signed, received=NOW).ok


def test_a_declared_signing_time_outside_the_certificate_changes_nothing() -> None:
    """SPEC §11: a signatory counts if valid when the container is received, "not at the
    self-declared signing time". A signing time after the certificate's end, or before its
    start (a signer's clock set wrong), was refused DS0D with the certificate valid on the
    day it came (a tester); the time is what the findings show, and nothing more."""
    cert = PKI.first.cert
    for at in (cert.not_valid_before_utc - timedelta(days=1),
               cert.not_valid_after_utc + timedelta(days=1)):  # fmt: skip
        result = only(signature(PKI.first, at=at), received=NOW)
        assert result.ok, result.detail
        assert result.signing_time == at


def test_revoked_certificate_is_DS0C() -> None:
    result = only(signature(PKI.revoked))
    assert result.problem is Problem.REVOKED and "revoked on" in result.detail


def test_revocation_after_the_container_was_received_does_not_count() -> None:
    crl = testpki.revocation_list(PKI.ca, [PKI.first.cert], now=NOW,
                                  revoked_at=NOW + timedelta(hours=1))
    assert only(signature(), trust=Trust(cas=(PKI.ca.cert,), crls=(crl,))).ok


def test_a_CRL_not_signed_by_the_CA_is_ignored() -> None:
    """Anyone can write a CRL naming our CA as issuer; only the CA's own signature counts."""
    impostor = testpki.Issued(PKI.foreign_ca.key, PKI.ca.cert)
    forged = testpki.revocation_list(impostor, [PKI.first.cert], now=NOW)
    assert only(signature(), trust=Trust(cas=(PKI.ca.cert,), crls=(forged,))).ok


def test_without_CRLs_nothing_is_revoked() -> None:
    assert only(signature(PKI.revoked), trust=Trust(cas=(PKI.ca.cert,))).ok


def test_a_data_file_in_a_folder_is_signed_and_its_signatures_count() -> None:
    """A container may hold its data file in a folder (SPEC §11: no path outside its
    root): `sign` adds a signature over it, and that signature counts (its reference
    names the folder; it was refused as "not a file name in the container", so the batch
    could only expire: an outside review)."""
    folder = asice_writer.write_container("pay/batch.xml", BATCH, [], moment=NOW)
    once = sign_container("pay.asice", folder, PKI.first.key, PKI.first.cert, NOW)
    twice = sign_container("pay.asice", once, PKI.second.key, PKI.second.cert, NOW)
    read = asice.read_container(twice, unzipped_bytes_max=1024 * 1024)
    assert isinstance(read, Container) and read.data_name == "pay/batch.xml"
    results = xades.verify_container(read, TRUST, NOW)
    assert [r.ok for r in results] == [True, True], [r.detail for r in results]


def test_intermediate_CA_in_KeyInfo_completes_the_chain() -> None:
    """Qualified CAs issue from an intermediate; the signature carries it in KeyInfo."""
    root = _ca("Root CA", None)
    middle = _ca("Issuing CA", 0, issuer=root)
    person = testpki.new_signatory(middle, "Vidējā Ķēde", now=NOW)
    signed = make_signature(NAME, BATCH, person.key, person.cert, NOW)
    trust = Trust(cas=(root.cert,))
    assert only(signed, trust=trust).problem is Problem.UNTRUSTED_CA

    def add_intermediate(doc: Any) -> None:
        data = find(doc, "//ds:X509Data")
        cert = etree.SubElement(data, f"{{{DS}}}X509Certificate")
        cert.text = base64.b64encode(middle.cert.public_bytes(serialization.Encoding.DER))

    result = only(edit(signed, add_intermediate), trust=trust)
    assert result.ok, result.detail
    assert result.certificate == person.cert


def test_an_intermediate_its_root_revoked_fails_whichever_CAs_are_listed() -> None:
    """SPEC §11: DS0C, certificate revoked. A signer under an intermediate CA that the
    root's CRL revokes does not count, also when the operator lists the intermediate
    beside the root as a signatory CA (it was the chain's end then, and the root's CRL
    was never asked about it: an outside review)."""
    root = _ca("Root CA", None)
    middle = _ca("Issuing CA", 0, issuer=root)
    person = testpki.new_signatory(middle, "Atsauktā Ķēde", now=NOW)
    signed = make_signature(NAME, BATCH, person.key, person.cert, NOW)
    revoked = testpki.revocation_list(root, [middle.cert], now=NOW)
    for cas in ((root.cert, middle.cert), (middle.cert, root.cert)):
        result = only(signed, trust=Trust(cas=cas, crls=(revoked,)))
        assert result.problem is Problem.REVOKED, result.detail
        assert "certificate of Issuing CA revoked on" in result.detail
    assert only(signed, trust=Trust(cas=(root.cert, middle.cert))).ok  # no CRL: it counts


def test_an_expired_copy_of_a_reissued_root_listed_beside_it_refuses_no_one() -> None:
    """The operator lists the issuing CA and both certificates of its root (the old one,
    expired, and its re-issue with the same key): the signer counts, whichever comes
    first. The chain is taken past the intermediate for the root's CRL only, never for
    validity (a review of the fix above found every signer refused DS0D)."""
    root = _ca("Root CA", None)
    middle = _ca("Issuing CA", 0, issuer=root)
    person = testpki.new_signatory(middle, "Derīgs Parakstītājs", now=NOW)
    signed = make_signature(NAME, BATCH, person.key, person.cert, NOW)
    old_root = _reissued(root, days_before=4000, days_after=-5)
    revoked = testpki.revocation_list(root, [middle.cert], now=NOW)
    for cas in ((middle.cert, root.cert, old_root), (middle.cert, old_root, root.cert)):
        result = only(signed, trust=Trust(cas=cas))
        assert result.ok, (cas.index(old_root), result.detail)
        assert only(signed, trust=Trust(cas=cas, crls=(revoked,))).problem is Problem.REVOKED


def _reissued(root: testpki.Issued, *, days_before: int, days_after: int) -> x509.Certificate:
    """`root` issued again with the same key and name, another validity."""
    return (
        x509.CertificateBuilder().subject_name(root.cert.subject).issuer_name(root.cert.subject)
        .public_key(root.key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=days_before))
        .not_valid_after(NOW + timedelta(days=days_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .sign(root.key, hashes.SHA256())
    )  # fmt: skip


def _ca(name: str, path_length: int | None, issuer: testpki.Issued | None = None
        ) -> testpki.Issued:
    key = testpki.new_key()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder().subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=10)).not_valid_after(NOW + timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            (issuer.key if issuer else key).public_key()), critical=False)
        .sign(issuer.key if issuer else key, hashes.SHA256())
    )
    return testpki.Issued(key, cert)


def test_url_encoded_data_reference_is_accepted() -> None:
    """DigiDoc writes 'maksājumi 1.xml' as 'maks%C4%81jumi%201.xml'."""
    name = "maksājumi 1.xml"
    signed = signature(name=name)
    assert b'URI="maks%C4%81jumi%201.xml"' in signed
    [result] = xades.verify_container(container(signed, name=name), TRUST, NOW)
    assert result.ok, result.detail


def test_each_signature_in_a_file_and_each_file_is_checked() -> None:
    """Two signatures in one file plus a second file: three verdicts, each with its source."""
    one = etree.fromstring(signature(PKI.first, ident="S0"))
    other = etree.fromstring(signature(PKI.foreign, ident="S1"))
    one.append(other.find(f"{{{DS}}}Signature"))
    both = etree.tostring(one)
    results = check(both, signature(PKI.second, ident="S2"))
    assert [(r.source, r.problem) for r in results] == [
        ("META-INF/signatures0.xml#1", None),
        ("META-INF/signatures0.xml#2", Problem.UNTRUSTED_CA),
        ("META-INF/signatures1.xml", None),
    ]


# --- DS0B: unreadable or not intact ------------------------------------------------------


def _set_signing_time(doc: Any) -> None:
    find(doc, "//xades:SigningTime").text = "2020-01-01T00:00:00Z"


def _flip_signature_value(doc: Any) -> None:
    node = find(doc, "//ds:SignatureValue")
    raw = bytearray(base64.b64decode(node.text))
    raw[5] ^= 1
    node.text = base64.b64encode(bytes(raw)).decode()


def _swap_certificate(doc: Any) -> None:
    der = PKI.second.cert.public_bytes(serialization.Encoding.DER)
    find(doc, "//ds:X509Certificate").text = base64.b64encode(der).decode()


def _add_transform(doc: Any) -> None:
    ref = find(doc, "//ds:Reference[1]")
    transforms = etree.Element(f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=xades.C14N_10)
    ref.insert(0, transforms)


def _add_reference(doc: Any) -> None:
    info = find(doc, "//ds:SignedInfo")
    info.append(etree.fromstring(etree.tostring(find(doc, "//ds:Reference[1]"))))


def _drop_signing_certificate(doc: Any) -> None:
    node = find(doc, "//xades:SigningCertificateV2")
    node.getparent().remove(node)


def _duplicate_id(doc: Any) -> None:
    decoy = etree.SubElement(find(doc, "//ds:Signature"), f"{{{DS}}}Object")
    etree.SubElement(decoy, f"{{{XADES}}}SignedProperties", Id="S0-SignedProperties")


def _sha1_signature_method(doc: Any) -> None:
    find(doc, "//ds:SignatureMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")


def _garbage_digest(doc: Any) -> None:
    find(doc, "//ds:Reference[1]/ds:DigestValue").text = "not base64 !!"


TAMPERED = {
    "signing time changed": _set_signing_time,
    "signature value changed": _flip_signature_value,
    "certificate swapped": _swap_certificate,
    "SignedProperties Id twice (wrapping)": _duplicate_id,
    "no SigningCertificate": _drop_signing_certificate,
}


@pytest.mark.parametrize("change", TAMPERED.values(), ids=TAMPERED.keys())
def test_altered_signature_is_DS0B(change: Any) -> None:
    """Changed after signing: what it says can no longer be trusted."""
    result = only(edit(signature(), change))
    assert result.problem is Problem.UNREADABLE, result.detail
    assert result.signing_time is None, "an unverified signing time is not reported"


def test_an_unverified_signer_is_not_named() -> None:
    """A signature value that does not verify proves nothing about who signed."""
    result = only(edit(signature(), _flip_signature_value))
    assert result.problem is Problem.UNREADABLE and result.certificate is None


UNSUPPORTED = {
    "transform on the data reference": _add_transform,
    "a third reference": _add_reference,
    "SHA-1 signature method": _sha1_signature_method,
    "digest not base64": _garbage_digest,
}


@pytest.mark.parametrize("change", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_signature_of_a_shape_we_do_not_accept_is_DS0B(change: Any) -> None:
    """Signed that way by the signer (SignedInfo signed again): refused by its shape."""
    result = only(resigned(signature(), change))
    assert result.problem is Problem.UNREADABLE, result.detail


def _sign_key_info(doc: Any) -> None:
    """What some signers add: a third reference, to their own KeyInfo."""
    key_info = find(doc, "//ds:KeyInfo")
    key_info.set("Id", "S0-KeyInfo")
    ref = etree.SubElement(find(doc, "//ds:SignedInfo"), f"{{{DS}}}Reference", URI="#S0-KeyInfo")
    transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=xades.EXC_C14N)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=xades.SHA256)
    digest = etree.SubElement(ref, f"{{{DS}}}DigestValue")
    digest.text = base64.b64encode(hashlib.sha256(_c14n(key_info)).digest()).decode()


def test_a_signed_KeyInfo_reference_is_checked_and_accepted() -> None:
    signed = resigned(signature(), _sign_key_info)
    assert only(signed).ok

    def add_certificate(doc: Any) -> None:
        extra = etree.SubElement(find(doc, "//ds:X509Data"), f"{{{DS}}}X509Certificate")
        extra.text = base64.b64encode(PKI.ca.cert.public_bytes(serialization.Encoding.DER))

    result = only(edit(signed, add_certificate))
    assert result.problem is Problem.UNREADABLE and "altered" in result.detail


def test_a_reference_to_an_element_outside_the_signature_is_DS0B() -> None:
    def point_outside(doc: Any) -> None:
        _sign_key_info(doc)
        doc.set("Id", "outside")
        find(doc, "//ds:Reference[@URI='#S0-KeyInfo']").set("URI", "#outside")

    result = only(resigned(signature(), point_outside))
    assert result.problem is Problem.UNREADABLE and "not inside this signature" in result.detail


def test_resigning_alone_keeps_a_signature_valid() -> None:
    """The helper above is not what makes those signatures fail."""
    assert only(resigned(signature(), lambda doc: None)).ok


UNREADABLE = {
    "garbage": b"\x00\x01garbage",
    "not XML": b"<unclosed",
    "other root": b"<root/>",
    "empty wrapper": b"<asic:XAdESSignatures xmlns:asic='http://uri.etsi.org/02918/v1.2.1#'/>",
    "DOCTYPE with entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>'
                           b"<x>&e;</x>",
}


@pytest.mark.parametrize("xml", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_signature_file_is_DS0B(xml: bytes) -> None:
    result = only(xml)
    assert result.problem is Problem.UNREADABLE
    assert result.certificate is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_no_damaged_signature_file_crashes_the_verifier(position: int, flip: int) -> None:
    """Any single damaged byte gives verdicts, never an exception, and never a pass that
    changed what was signed."""
    good = signature()
    damaged = bytearray(good)
    damaged[position % len(damaged)] ^= flip
    results = xades.verify_signature_file(SignatureFile("META-INF/signatures0.xml",
                                                        bytes(damaged)), NAME, BATCH, TRUST, NOW)
    assert results
    for result in results:
        assert result.ok or result.problem in Problem
        if result.ok:  # only bytes outside what is signed (e.g. whitespace in KeyInfo)
            assert result.certificate == PKI.first.cert
            assert result.signing_time == NOW


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_no_malformed_certificate_crashes_the_verifier(position: int, flip: int) -> None:
    """A damaged certificate that the signer nevertheless signed with (its digest and the
    signature made again), so the damage reaches the chain and validity checks: verdicts,
    never an exception; and never a pass for a certificate the CA did not issue."""
    der = bytearray(PKI.first.cert.public_bytes(serialization.Encoding.DER))
    der[position % len(der)] ^= flip

    def swap(doc: Any) -> None:
        find(doc, "//ds:X509Certificate").text = base64.b64encode(bytes(der)).decode()
        find(doc, "//xades:CertDigest/ds:DigestValue").text = base64.b64encode(
            hashlib.sha256(bytes(der)).digest()).decode()
        props = find(doc, "//xades:SignedProperties")
        find(doc, "//ds:Reference[2]/ds:DigestValue").text = base64.b64encode(
            hashlib.sha256(_c14n(props)).digest()).decode()

    [result] = check(resigned(signature(), swap))
    assert result.problem in Problem or result.ok
    assert not result.ok or bytes(der) == PKI.first.cert.public_bytes(serialization.Encoding.DER)


def test_naive_received_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        check(signature(), received=NOW.replace(tzinfo=None))


def test_sign_container_adds_a_signature_file_to_an_existing_container() -> None:
    """The second signatory signs the container the first sent round: both count."""
    first = sign_container(NAME, BATCH, PKI.first.key, PKI.first.cert, NOW)
    both = sign_container("x.asice", first, PKI.second.key, PKI.second.cert, NOW)
    read = asice.read_container(both, unzipped_bytes_max=1024 * 1024)
    assert isinstance(read, Container) and read.data == BATCH
    results = xades.verify_container(read, TRUST, NOW)
    assert [(r.source, r.ok, r.certificate) for r in results] == [
        ("META-INF/signatures0.xml", True, PKI.first.cert),
        ("META-INF/signatures1.xml", True, PKI.second.cert),
    ]
