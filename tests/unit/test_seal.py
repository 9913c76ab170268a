"""Seals as a client and the treasury see them: signing, verifying, keys, delivery.

These use small temporary files (a seal is about a file on disk) but no external tools;
the agreement with `xmlsec1` is in tests/integration/test_seal_xmlsec.py.
"""

from __future__ import annotations

import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError, SealError
from gateway.files import write_atomically
from gateway.keys import SigningKeyInit, init_host_key, init_signing_key
from gateway.outbound.delivery import deliver
from gateway.outbound.seal import Sealer, receipt_properties, seal_path, verify_file
from gateway.verify_command import NO_TRUST_ANCHOR, run_verify

NOW = datetime(2026, 11, 25, 10, 15, 1, tzinfo=UTC)
NAME = "20261125T101501_pain.002.001.03_GW20261125000042.xml"
XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<Document><GrpHdr  a="1"/></Document>\n'


def make_pki(folder: Path, label: str, algorithm: str = "ecdsa-p256", *, days: int = 825,
             now: datetime = NOW) -> tuple[Path, Path]:
    key, cert = folder / f"{label}.key", folder / f"{label}.pem"
    init_signing_key(key, cert, now=now, days=days, algorithm=algorithm,  # type: ignore[arg-type]
                     subject_cn=f"ekase-gateway {label}")
    return key, cert


@pytest.fixture(params=["ecdsa-p256", "rsa"])
def pki(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    return make_pki(tmp_path / "keys", "current", request.param)


@pytest.fixture
def sealer(pki: tuple[Path, Path]) -> Sealer:
    return Sealer.load(*pki, clock=lambda: NOW)


def sealed_file(folder: Path, sealer: Sealer, data: bytes = XML, **props: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / NAME
    path.write_bytes(data)
    seal_path(path).write_bytes(sealer.sign_file(path, properties=props or None))
    return path


def test_sealed_file_verifies_and_names_signer_and_time(tmp_path: Path, sealer: Sealer,
                                                        pki: tuple[Path, Path]) -> None:
    """A client checking a delivered file with our certificate sees who sealed it and when."""
    path = sealed_file(tmp_path / "out", sealer)
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW + timedelta(days=1))
    assert verdict.ok, verdict.problem
    assert verdict.signer is not None and "CN=ekase-gateway current" in verdict.signer
    assert verdict.signed_at == NOW
    assert verdict.properties == {}


def test_seal_references_the_file_by_its_relative_name(tmp_path: Path, sealer: Sealer) -> None:
    """The .sig points at the file by its bare name, so it verifies wherever the pair is copied."""
    path = sealed_file(tmp_path / "out", sealer)
    seal = seal_path(path).read_bytes()
    assert f'URI="{NAME}"'.encode() in seal
    assert str(tmp_path).encode() not in seal


def test_altered_file_is_reported(tmp_path: Path, sealer: Sealer, pki: tuple[Path, Path]) -> None:
    """Changing even whitespace inside a tag of a sealed file makes verification fail."""
    path = sealed_file(tmp_path / "out", sealer)
    path.write_bytes(XML.replace(b"GrpHdr  a", b"GrpHdr a"))
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert not verdict.ok
    assert verdict.problem == "file altered (digest mismatch)"


def test_a_file_renamed_with_its_seal_is_told_as_another_files_seal(
    tmp_path: Path, sealer: Sealer, pki: tuple[Path, Path]
) -> None:
    """A seal names its file (Reference URI): a file and its .sig renamed together are
    refused saying whose seal it is, not "references are not (…)" (a tester)."""
    path = sealed_file(tmp_path / "out", sealer)
    moved = path.with_name("renamed.xml")
    path.rename(moved)
    path.with_name(path.name + ".sig").rename(moved.with_name("renamed.xml.sig"))
    verdict = verify_file(moved, trusted_certs=[pki[1]], now=NOW)
    assert (verdict.ok, verdict.problem) == (
        False, f"seal of another file: it names {NAME!r}, not 'renamed.xml'"
    )


def test_missing_seal_is_reported(tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """A file without its .sig is not accepted as sealed."""
    path = tmp_path / NAME
    path.write_bytes(XML)
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert (verdict.ok, verdict.problem) == (False, "missing seal")
    # a mistyped path (no file, no seal) is the caller's mistake, not a verdict; a file
    # gone from beside its seal is one
    with pytest.raises(SealError, match=r"^no such file \(nor its seal\)$"):
        verify_file(tmp_path / "typo.xml", trusted_certs=[pki[1]], now=NOW)
    path.with_name(NAME + ".sig").write_bytes(b"<Signature/>")
    path.unlink()
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert (verdict.ok, verdict.problem) == (False, "no such file (the seal exists)")


def test_seal_by_another_key_is_untrusted(tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """A seal made with a key other than the gateway's is rejected, even though it is intact."""
    other = Sealer.load(*make_pki(tmp_path / "other", "impostor"), clock=lambda: NOW)
    path = sealed_file(tmp_path / "out", other)
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert (verdict.ok, verdict.problem) == (False, "signed by an untrusted certificate")


def test_rollover_accepts_current_and_next_certificate(tmp_path: Path) -> None:
    """During a certificate rollover files sealed with either the old or the new key verify."""
    old_key, old_cert = make_pki(tmp_path / "k", "old")
    new_key, new_cert = make_pki(tmp_path / "k", "next")
    for key, cert, folder in [(old_key, old_cert, "a"), (new_key, new_cert, "b")]:
        path = sealed_file(tmp_path / folder, Sealer.load(key, cert, clock=lambda: NOW))
        assert verify_file(path, trusted_certs=[old_cert, new_cert], now=NOW).ok
        assert not verify_file(path, trusted_certs=[old_cert if cert == new_cert else new_cert],
                               now=NOW).ok


def test_expired_certificate_fails_verification(tmp_path: Path, sealer: Sealer,
                                                pki: tuple[Path, Path]) -> None:
    """After the certificate's end date the seal no longer counts (xmlsec1 judges the same)."""
    path = sealed_file(tmp_path / "out", sealer)
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW + timedelta(days=826))
    assert not verdict.ok
    assert verdict.problem is not None and verdict.problem.startswith("certificate expired")


def test_without_a_trusted_certificate_nothing_is_judged(tmp_path: Path,
                                                         sealer: Sealer) -> None:
    """There is no "integrity only" verdict: without a trusted certificate the check
    refuses to run, since the certificate inside a seal vouches for nothing."""
    path = sealed_file(tmp_path / "out", sealer)
    for nothing in ([], ()):
        with pytest.raises(SealError, match="no trusted certificate"):
            verify_file(path, trusted_certs=nothing, now=NOW)
    with pytest.raises(SealError, match="no trusted certificate"):
        verify_file(path, trusted_certs=None, now=NOW)  # type: ignore[arg-type]


def test_receipt_properties_are_signed_and_returned(tmp_path: Path, sealer: Sealer,
                                                    pki: tuple[Path, Path]) -> None:
    """The archive seal of an accepted batch carries who sent it, from where, and when."""
    props = receipt_properties(received_at=NOW - timedelta(seconds=3), client_id="LV-MIN-001",
                               sftp_user="minfin", key_fingerprint="SHA256:abc",
                               source="192.0.2.10:50022")
    path = sealed_file(tmp_path / "archive", sealer, **props)
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert verdict.ok, verdict.problem
    assert verdict.properties == {**props, "received_at": "2026-11-25T10:14:58Z"}


def test_edited_receipt_property_is_detected(tmp_path: Path, sealer: Sealer,
                                             pki: tuple[Path, Path]) -> None:
    """Someone editing the client id inside the archived seal cannot pass it off as signed."""
    path = sealed_file(tmp_path / "archive", sealer, client_id="LV-MIN-001")
    sig = seal_path(path)
    sig.write_bytes(sig.read_bytes().replace(b"LV-MIN-001", b"LV-MIN-002"))
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert (verdict.ok, verdict.problem) == (False, "seal properties altered (digest mismatch)")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda s: s.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA"),
         "seal signature invalid (the .sig was altered)"),
        (lambda s: s.replace(b"#ekase-seal-properties", b"#elsewhere"), "seal unreadable"),
        (lambda s: s.replace(b"xmlenc#sha256", b"xmldsig#sha1"), "seal unreadable"),
        (lambda s: s[:200], "seal unreadable"),
    ],
    ids=["signature-value", "reference-redirected", "weaker-digest", "truncated"],
)
def test_tampered_seal_is_rejected(tmp_path: Path, sealer: Sealer, pki: tuple[Path, Path],
                                   edit, problem: str) -> None:  # type: ignore[no-untyped-def]
    """A damaged or doctored .sig never verifies, and the message says the seal is the problem."""
    path = sealed_file(tmp_path / "out", sealer)
    sig = seal_path(path)
    sig.write_bytes(edit(sig.read_bytes()))
    verdict = verify_file(path, trusted_certs=[pki[1]], now=NOW)
    assert not verdict.ok
    assert verdict.problem is not None and verdict.problem.startswith(problem)


def test_seal_property_names_are_checked(tmp_path: Path, sealer: Sealer) -> None:
    """The signing time cannot be overridden by a caller, and names stay machine-readable."""
    path = tmp_path / NAME
    path.write_bytes(XML)
    for bad in ({"signed_at": "2000-01-01T00:00:00Z"}, {"Client Id": "x"}):
        with pytest.raises(ValueError, match="name not allowed"):
            sealer.sign_file(path, properties=bad)


def test_big_file_is_hashed_without_loading_it(tmp_path: Path, sealer: Sealer,
                                               pki: tuple[Path, Path]) -> None:
    """A 40 MB batch is sealed and verified with far less memory than its size."""
    path = tmp_path / NAME
    with path.open("wb") as f:
        for _ in range(40):
            f.write(b"<Tx>" + b"x" * (1024 * 1024 - 9) + b"</Tx>")
    tracemalloc.start()
    try:
        seal_path(path).write_bytes(sealer.sign_file(path))
        assert verify_file(path, trusted_certs=[pki[1]], now=NOW).ok
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


# --- loading the key -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o640, "its group"), (0o644, "its group and everyone"), (0o602, "everyone")],
)
def test_load_refuses_key_others_may_use(pki: tuple[Path, Path], mode: int, who: str) -> None:
    """An operator who left the seal key open to others is told exactly who and how to
    fix it (a 0640 key was said to be "readable by others": only its group may read it)."""
    os.chmod(pki[0], mode)
    with pytest.raises(SealError, match=rf"mode 0{mode:o} gives {who} access to it; chmod 600"):
        Sealer.load(*pki, clock=lambda: NOW)


def test_load_refuses_missing_files(tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """A wrong path in the configuration names the missing file at start-up."""
    with pytest.raises(SealError, match=r"signing key .*nope\.key not found"):
        Sealer.load(tmp_path / "nope.key", pki[1], clock=lambda: NOW)
    with pytest.raises(SealError, match=r"certificate .*nope\.pem not found"):
        Sealer.load(pki[0], tmp_path / "nope.pem", clock=lambda: NOW)


def test_load_refuses_key_and_certificate_that_do_not_match(tmp_path: Path,
                                                            pki: tuple[Path, Path]) -> None:
    """Pairing the key with someone else's certificate is caught before any file is sealed."""
    _, other_cert = make_pki(tmp_path / "o", "other")
    with pytest.raises(SealError, match="does not match"):
        Sealer.load(pki[0], other_cert, clock=lambda: NOW)


def test_load_refuses_garbage_key(tmp_path: Path, pki: tuple[Path, Path]) -> None:
    """A file that is not a PEM key is named as such."""
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"not a key")
    bad.chmod(0o600)
    with pytest.raises(SealError, match="not an unencrypted PEM private key"):
        Sealer.load(bad, pki[1], clock=lambda: NOW)


def test_expired_certificate_stops_sealing(pki: tuple[Path, Path]) -> None:
    """With an expired certificate the gateway will not start, and a running one stops sealing."""
    later = NOW + timedelta(days=900)
    with pytest.raises(SealError, match="certificate expired"):
        Sealer.load(*pki, clock=lambda: later)
    clock = iter([NOW, later])
    sealer = Sealer.load(*pki, clock=lambda: next(clock))
    with pytest.raises(SealError, match="certificate expired"):
        sealer.sign_file(pki[1])


# --- creating keys ---------------------------------------------------------------------


def test_init_signing_key_creates_private_p256_key_once(tmp_path: Path) -> None:
    """First start creates a private P-256 key and a certificate; later starts keep them."""
    key, cert = tmp_path / "etc" / "seal" / "seal.key", tmp_path / "etc" / "seal" / "seal.pem"
    assert init_signing_key(key, cert, now=NOW) is SigningKeyInit.CREATED
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc").stat().st_mode & 0o777 == 0o700
    first = key.read_bytes()
    assert init_signing_key(key, cert, now=NOW + timedelta(days=1)) is SigningKeyInit.PRESENT
    assert key.read_bytes() == first
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    assert isinstance(loaded.public_key(), ec.EllipticCurvePublicKey)
    assert loaded.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "ekase-gateway TRELLV22"
    assert loaded.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "Valsts kase (State Treasury of Latvia) TRELLV22"
    assert loaded.not_valid_after_utc == NOW + timedelta(days=825)
    assert Sealer.load(key, cert, clock=lambda: NOW).sign_file(cert)


def test_init_signing_key_keeps_a_key_whose_certificate_is_gone(tmp_path: Path) -> None:
    """A key whose certificate was removed is kept (clients may have pinned it) and only a
    certificate is issued for it — and that is what is reported, not "created"."""
    key, cert = make_pki(tmp_path, "kept")
    before = key.read_bytes()
    cert.unlink()
    assert init_signing_key(key, cert, now=NOW) is SigningKeyInit.CERTIFICATE_ISSUED
    assert key.read_bytes() == before
    assert Sealer.load(key, cert, clock=lambda: NOW).sign_file(cert)


def test_a_certificate_given_as_the_key_is_named_as_such(pki: tuple[Path, Path]) -> None:
    """Key and certificate swapped: the operator hears that the "key" is a certificate,
    not that it is readable by others (certificates are 0644) and should be chmod 600."""
    pki[1].chmod(0o644)
    with pytest.raises(SealError, match="is a certificate, not a private key"):
        Sealer.load(pki[1], pki[0], clock=lambda: NOW)


def test_init_signing_key_refuses_certificate_without_key(tmp_path: Path) -> None:
    """A certificate whose key was lost is not silently paired with a new key."""
    key, cert = make_pki(tmp_path, "lost")
    key.unlink()
    with pytest.raises(SealError, match="its key"):
        init_signing_key(key, cert, now=NOW)


def test_host_key_fingerprint_is_stable_and_matches_openssh(tmp_path: Path) -> None:
    """The host key fingerprint shown to clients is the one their SSH client will display."""
    path = tmp_path / "ssh" / "host_ed25519"
    first = init_host_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert init_host_key(path) == first
    assert first == asyncssh.read_private_key(path).get_fingerprint("sha256")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        init_host_key(path)


# --- delivery --------------------------------------------------------------------------


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    """A client's out/ and a work folder beside it."""
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    return out, work


def _written(path: Path, data: bytes = XML) -> Path:
    path.write_bytes(data)
    return path


def test_delivery_leaves_file_and_seal_and_no_temporaries(tmp_path: Path, sealer: Sealer,
                                                          pki: tuple[Path, Path]) -> None:
    """A client's out/ folder gets exactly NAME and NAME.sig, and they verify."""
    out, work = _folders(tmp_path)
    tmp = _written(work / "msg.partial")
    path = deliver(tmp, out, NAME, sealer)
    assert sorted(os.listdir(out)) == [NAME, NAME + ".sig"]
    assert not tmp.exists()
    assert verify_file(path, trusted_certs=[pki[1]], now=NOW).ok


def test_unsealed_delivery_writes_no_seal(tmp_path: Path) -> None:
    """Unsealed mode (tests only) delivers the file alone."""
    tmp = tmp_path / ".tmp"
    tmp.write_bytes(XML)
    deliver(tmp, tmp_path, NAME, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


@pytest.mark.parametrize("name", ["../x.xml", "a/b.xml", ".hidden.xml", ""])
def test_delivery_refuses_names_outside_or_hidden(tmp_path: Path, name: str) -> None:
    """A file name can neither escape the client's folder nor be hidden from the client."""
    tmp = tmp_path / ".tmp"
    tmp.write_bytes(XML)
    with pytest.raises(ValueError):
        deliver(tmp, tmp_path, name, None)
    assert [p.name for p in tmp_path.iterdir()] == [".tmp"]


def test_write_atomically_replaces_whole(tmp_path: Path) -> None:
    """A small file is either the old or the new content, never a mix, and no temp remains."""
    write_atomically(tmp_path / "a.txt", b"old content")
    write_atomically(tmp_path / "a.txt", b"new")
    assert (tmp_path / "a.txt").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# --- the verify command ----------------------------------------------------------------


def test_verify_command_exit_codes_and_lines(tmp_path: Path, sealer: Sealer,
                                             pki: tuple[Path, Path]) -> None:
    """`ekase-gateway verify` exits 0 naming signer and time, 1 naming what is wrong."""
    path = sealed_file(tmp_path / "out", sealer)
    code, line = run_verify(path, pki[1], NOW)
    assert code == 0
    assert "CN=ekase-gateway current" in line and "2026-11-25T10:15:01+00:00" in line
    assert run_verify(seal_path(path), pki[1], NOW)[0] == 0
    assert run_verify(path, None, NOW) == run_verify(path, [], NOW) == (2, NO_TRUST_ANCHOR)
    _, other = make_pki(tmp_path / "o", "other")
    assert run_verify(path, other, NOW) == (1, f"{path}: seal NOT valid: signed by an untrusted "
                                                "certificate")
    code, line = run_verify(path, pki[1], NOW + timedelta(days=1000))
    assert code == 1 and "certificate expired" in line
    path.write_bytes(XML + b"\n")
    assert run_verify(path, pki[1], NOW) == (1, f"{path}: seal NOT valid: file altered "
                                                "(digest mismatch)")
    seal_path(path).unlink()
    assert run_verify(path, pki[1], NOW) == (1, f"{path}: seal NOT valid: missing seal")
    assert run_verify(path, tmp_path / "absent.pem", NOW)[0] == 2


def test_algorithm_identifiers_are_signxmls() -> None:
    """Seals and signatures use signxml's identifiers without importing signxml at run time."""
    from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

    from gateway import xmldsig as seal

    assert CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value == seal.C14N
    assert DigestAlgorithm.SHA256.value == seal.SHA256
    assert SignatureMethod.ECDSA_SHA256.value == seal.ECDSA_SHA256
    assert SignatureMethod.RSA_SHA256.value == seal.RSA_SHA256


def test_delivering_again_after_a_crash_keeps_what_the_client_may_have_fetched(
    tmp_path: Path, sealer: Sealer, pki: tuple[Path, Path]
) -> None:
    """A crash after the renames, before the delivery was marked: delivering the same
    bytes again leaves the file and its seal as they were (a new seal would differ: another
    signing time). Other bytes under the name are replaced, seal and all."""
    out, work = _folders(tmp_path)
    path = deliver(_written(work / ".first"), out, NAME, sealer)
    seal = (out / (NAME + ".sig")).read_bytes()
    again = _written(work / ".again")
    deliver(again, out, NAME, sealer)
    assert (out / (NAME + ".sig")).read_bytes() == seal
    assert not again.exists() and sorted(os.listdir(out)) == [NAME, NAME + ".sig"]
    other = _written(work / ".other", XML.replace(b"<", b"<!-- other --><", 1))
    deliver(other, out, NAME, sealer)
    assert (out / (NAME + ".sig")).read_bytes() != seal
    assert verify_file(path, trusted_certs=[pki[1]], now=NOW).ok
