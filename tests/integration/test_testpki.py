"""The test PKI the demo writes, and loading `[signing] signatory_ca`/`signatory_crl`."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway import testpki
from gateway.errors import ConfigError
from gateway.inbound import asice, xades
from gateway.inbound.asice import Container
from gateway.sign_command import sign_container

NOW = datetime(2026, 11, 25, 10, 15, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> testpki.Pki:
    return testpki.make_pki(NOW)


def test_written_pki_loads_as_the_configuration_would_and_judges_each_signatory(
        tmp_path: Path, pki: testpki.Pki) -> None:
    """What the demo writes is what a configuration points at: the CA and CRL load, the
    keys are private, and each test signatory gets the verdict it was made for."""
    files = testpki.write_pki(pki, tmp_path / "pki")
    trust = xades.load_trust([files.ca], [files.crl])
    assert trust.cas == (pki.ca.cert,) and trust.crls == (pki.crl,)
    expected = {"first": None, "second": None,
                "expired": xades.Problem.CERTIFICATE_NOT_VALID,
                "revoked": xades.Problem.REVOKED, "foreign": xades.Problem.UNTRUSTED_CA}
    for stem, problem in expected.items():
        key, cert = files.keys[stem]
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        issued = getattr(pki, stem)
        assert cert.read_bytes() == issued.cert_pem()
        read = asice.read_container(
            sign_container("b.xml", b"<x/>", issued.key, issued.cert, NOW),
            unzipped_bytes_max=64 * 1024)
        assert isinstance(read, Container)
        [check] = xades.verify_container(read, trust, NOW)
        assert check.problem is problem, (stem, check.detail)


def test_a_CA_bundle_file_gives_every_certificate_and_a_DER_CRL_loads(
        tmp_path: Path, pki: testpki.Pki) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.ca.cert_pem() + pki.foreign_ca.cert_pem())
    der = tmp_path / "ca.crl"
    der.write_bytes(pki.crl.public_bytes(Encoding.DER))
    trust = xades.load_trust([bundle], [der])
    assert trust.cas == (pki.ca.cert, pki.foreign_ca.cert) and trust.crls == (pki.crl,)


def test_unusable_trust_files_are_configuration_errors_naming_the_key(
        tmp_path: Path, pki: testpki.Pki) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.cert_pem())
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate")
    foreign_crl = testpki.write_crl(testpki.revocation_list(pki.foreign_ca, [], now=NOW),
                                    tmp_path / "foreign.crl")
    cases = {
        "signing.signatory_ca[1]": ([ca, tmp_path / "missing.pem"], []),
        "signing.signatory_ca[0]": ([junk], []),
        "signing.signatory_crl[0]": ([ca], [junk]),
    }
    for where, (cas, crls) in cases.items():
        with pytest.raises(ConfigError) as caught:
            xades.load_trust(cas, crls)
        assert caught.value.path == where
    with pytest.raises(ConfigError, match=r"not signed by any signing\.signatory_ca"):
        xades.load_trust([ca], [foreign_crl])
