"""XML-DSig pieces shared by our seals (`outbound/seal.py`) and signatories' XAdES
signatures (`inbound/xades.py`, `sign_command.py`): algorithm names, canonical form,
base64, and signing and checking a SignedInfo with `cryptography` (never hand-rolled:
lxml canonicalises, cryptography signs). XMLDSig carries ECDSA as the raw r||s pair,
cryptography as DER; the conversion lives here once.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"  # exclusive C14N: what we write
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
ECDSA_SHA256 = _MORE + "ecdsa-sha256"
RSA_SHA256 = _MORE + "rsa-sha256"
# Signature methods accepted when checking, by kind of key and digest.
METHODS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    _MORE + "rsa-sha256": ("rsa", hashes.SHA256()),
    _MORE + "rsa-sha384": ("rsa", hashes.SHA384()),
    _MORE + "rsa-sha512": ("rsa", hashes.SHA512()),
    _MORE + "ecdsa-sha256": ("ecdsa", hashes.SHA256()),
    _MORE + "ecdsa-sha384": ("ecdsa", hashes.SHA384()),
    _MORE + "ecdsa-sha512": ("ecdsa", hashes.SHA512()),
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def method_of(key: PrivateKey) -> str:
    """The SignatureMethod we sign with for `key` (SHA-256)."""
    return ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else RSA_SHA256


def sign(key: PrivateKey, data: bytes) -> bytes:
    """The SignatureValue of canonical `data` (RSA PKCS#1 v1.5 or ECDSA r||s, SHA-256)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def signature_ok(cert: x509.Certificate, method: str, data: bytes, value: bytes) -> bool:
    """Whether `value` is `cert`'s signature of `data` by `method` (one of `METHODS`)."""
    if method not in METHODS:
        return False
    kind, digest = METHODS[method]
    try:
        public = cert.public_key()
        if kind == "rsa" and isinstance(public, rsa.RSAPublicKey):
            public.verify(value, data, padding.PKCS1v15(), digest)
            return True
        if kind == "ecdsa" and isinstance(public, ec.EllipticCurvePublicKey):
            size = (public.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                return False
            r, s = int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            public.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return False  # method and key type disagree


def c14n(element: Any) -> bytes:
    """Exclusive canonical XML of `element`, without comments."""
    data: bytes = etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    return data


def utc_text(moment: datetime) -> str:
    """An xs:dateTime in UTC (`…Z`); a naive moment is refused."""
    if moment.tzinfo is None:
        raise ValueError("signature times must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes:
    """Base64 text as found in XML (whitespace allowed); ValueError if it is not."""
    return base64.b64decode("".join((text or "").split()), validate=True)
