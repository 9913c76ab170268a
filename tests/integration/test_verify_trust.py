"""`ekase-gateway verify` never calls a seal valid without a trusted certificate
(SPEC §8, §9; issue 14, item 2).

The forgery is the one a client could meet: a real pain.002 from the gateway, its
payment changed from PDNG to ACSC, sealed again with a key of the forger's own whose
certificate carries the very subject of the gateway's. `verify` with the gateway's
certificate (`--cert`) or its configuration (`-c`) refuses it, as `xmlsec1` does;
without either, `verify` refuses to judge at all.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from gateway.files import write_atomically
from gateway.keys import init_signing_key
from gateway.outbound.seal import Sealer, seal_path
from tests.integration.test_seal_xmlsec import xmlsec_verify
from tests.pipeline_fixtures import TODAY, Batch, Installation

EXE = str(Path(sys.executable).with_name("ekase-gateway"))


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _made_out_to(key_path: Path, cert_path: Path, subject: x509.Name) -> None:
    """A certificate for the key at `key_path` carrying `subject` (a forger's choice)."""
    from typing import Any

    from cryptography.hazmat.primitives import hashes, serialization

    key: Any = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=3650))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Installation, Path, Path]:
    """An installation, a genuine pain.002 it sealed (payments PDNG), and a forgery of it."""
    base = tmp_path_factory.mktemp("verify")
    inst = Installation.create(base / "gw", need_sealer=True)
    later = (TODAY + dt.timedelta(days=7)).isoformat()
    answer = inst.submit(Batch(msg_id="FUTURE", execution_date=later).tx("F-1", "10.00").build())
    inst.close()
    assert answer.statuses() == {"F-1": "PDNG"}
    genuine = answer.path

    forged_dir = base / "forged"
    forged_dir.mkdir()
    forged = forged_dir / genuine.name
    text = genuine.read_text(encoding="utf-8")
    assert "<TxSts>PDNG</TxSts>" in text
    forged.write_text(text.replace(">PDNG<", ">ACSC<").replace(">ACCP<", ">ACSC<"), "utf-8")
    # Another key, its certificate made out to the gateway's own subject.
    keys = base / "forger"
    init_signing_key(keys / "forger.key", keys / "forger.crt", now=inst.clock.now(), days=3650)
    real_cert = inst.settings.signing.certificate
    _made_out_to(keys / "forger.key", keys / "forger.crt", certificate(real_cert).subject)
    assert certificate(keys / "forger.crt").subject == certificate(real_cert).subject
    forger = Sealer.load(keys / "forger.key", keys / "forger.crt", clock=inst.clock.now)
    write_atomically(seal_path(forged), forger.sign_file(forged))
    return inst, genuine, forged


def test_a_forged_seal_fails_with_the_gateway_certificate_or_configuration(
    pair: tuple[Installation, Path, Path], xmlsec1: str
) -> None:
    """A PDNG turned ACSC and re-sealed by another key of the same subject: `verify
    --cert gateway.crt` and `verify -c CONFIG` exit 1 saying the signer is not trusted,
    and xmlsec1 with the same certificate agrees."""
    inst, _, forged = pair
    cert = inst.settings.signing.certificate
    for anchor in (["--cert", str(cert)], ["-c", str(inst.config)]):
        done = gateway("verify", str(forged), *anchor)
        assert done.returncode == 1, (anchor, done.stdout, done.stderr)
        untrusted = "seal NOT valid: signed by an untrusted certificate"
        assert done.stdout.strip() == f"{forged}: {untrusted}"
    assert not xmlsec_verify(xmlsec1, forged, cert)


def test_the_genuine_answer_verifies_with_either_anchor(
    pair: tuple[Installation, Path, Path], xmlsec1: str
) -> None:
    """The gateway's own pain.002 checks out with its certificate, with its configuration,
    and with xmlsec1; the line names the signer."""
    inst, genuine, _ = pair
    cert = inst.settings.signing.certificate
    for anchor in (["--cert", str(cert)], ["-c", str(inst.config)]):
        done = gateway("verify", str(genuine), *anchor)
        assert done.returncode == 0, (anchor, done.stdout, done.stderr)
        assert done.stdout.startswith(f"{genuine}: seal valid: signed by ")
        assert "integrity only" not in done.stdout
    assert xmlsec_verify(xmlsec1, genuine, cert)


def test_without_a_trusted_certificate_verify_refuses_to_judge(
    pair: tuple[Installation, Path, Path],
) -> None:
    """`verify FILE` alone, forged or genuine, exits 2 with one line saying it needs
    --cert or -c: a seal is never called valid on the strength of the certificate it
    carries itself."""
    _, genuine, forged = pair
    for path in (forged, genuine):
        done = gateway("verify", str(path))
        assert done.returncode == 2, (done.stdout, done.stderr)
        lines = (done.stdout + done.stderr).strip().splitlines()
        assert len(lines) == 1, lines
        assert "--cert" in lines[0] and "-c CONFIG" in lines[0] and "valid" not in lines[0]


def test_a_trusted_certificate_that_is_not_there_is_named_where_it_was_given(
    pair: tuple[Installation, Path, Path],
) -> None:
    """SPEC §9: exit 2 with one clear line on a usage or configuration error, naming the
    key path — on stderr, not as if it were the verdict: `--cert` for the command line's,
    `signing.certificate` for the configuration's."""
    inst, genuine, _ = pair
    missing = inst.base / "nowhere.pem"
    config = inst.config.with_name("moved.toml")
    config.write_text(
        inst.config.read_text(encoding="utf-8").replace(
            'certificate = "signing/gateway.crt"', f'certificate = "{missing}"'
        ),
        encoding="utf-8",
    )
    for anchor, given_as in ((("--cert", str(missing)), "--cert"),
                             (("-c", str(config)), "signing.certificate")):  # fmt: skip
        done = gateway("verify", str(genuine), *anchor)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert done.stdout == ""
        assert done.stderr.strip() == f"ekase-gateway: {given_as}: {missing} not found"


def test_a_trusted_certificate_that_cannot_be_looked_at_is_a_usage_error(
    pair: tuple[Installation, Path, Path], tmp_path: Path
) -> None:
    """A `--cert` whose folder an auditor may not enter (the installed layout's private/
    is 0700) made `verify` exit 1 with a bare PermissionError (a tester): looking at a
    certificate's path can fail, and it is then a usage error like a missing one, exit 2
    with one line. A name too long for the file system fails the same way, also as root."""
    inst, genuine, _ = pair
    cert = tmp_path / ("c" * 300 + ".pem")
    done = gateway("verify", str(genuine), "--cert", str(cert))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.startswith(f"ekase-gateway: --cert: {cert} cannot be read: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # The FILE itself, likewise (it was a traceback, a review).
    file = tmp_path / ("f" * 300 + ".xml")
    trusted = str(inst.base / "signing" / "gateway.crt")
    done = gateway("verify", str(file), "--cert", trusted)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"ekase-gateway: {file}: it cannot be read: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_file_or_seal_there_but_not_ours_to_read_is_a_usage_error(
    pair: tuple[Installation, Path, Path], tmp_path: Path
) -> None:
    """An answer or its seal the auditor may not read (mode 000): exit 2 with one line,
    not a PermissionError with exit 1 (a tester). As root, run without the capabilities
    that read anything (`setpriv`), as an auditor's account is."""
    import os

    inst, genuine, _ = pair
    trusted = str(inst.base / "signing" / "gateway.crt")
    for closed, said in (("file", "it"), ("seal", "its seal")):
        folder = tmp_path / closed
        folder.mkdir()
        for part in (genuine, genuine.with_name(genuine.name + ".sig")):
            shutil.copy(part, folder / part.name)
        target = folder / (genuine.name + (".sig" if closed == "seal" else ""))
        target.chmod(0o000)
        command = [EXE, "verify", str(folder / genuine.name), "--cert", trusted]
        if os.geteuid() == 0:
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--",
                       *command]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        target.chmod(0o600)
        assert done.returncode == 2, (closed, done.stdout, done.stderr)
        assert done.stderr.strip() == (
            f"ekase-gateway: {folder / genuine.name}: {said} cannot be read: Permission denied"
        ), done.stderr


def test_verify_with_the_configuration_neither_writes_nor_opens_the_database(
    pair: tuple[Installation, Path, Path],
) -> None:
    """`verify -c CONFIG` only reads the configuration's certificates: with the spool and
    database pointing nowhere (a database that cannot be reached, a spool that does
    not exist) it still gives its verdict, and creates nothing."""
    inst, genuine, forged = pair
    text = inst.config.read_text(encoding="utf-8")
    text = text.replace('spool_dir = "spool"', 'spool_dir = "absent/spool"').replace(
        'database_url = "sqlite:///spool/ledger.sqlite3"',
        'database_url = "postgresql+psycopg://nobody@127.0.0.1:1/none"',
    )
    assert "absent/spool" in text and "nobody@" in text
    config = inst.config.with_name("auditor.toml")
    config.write_text(text, encoding="utf-8")
    assert gateway("verify", str(genuine), "-c", str(config)).returncode == 0
    assert gateway("verify", str(forged), "-c", str(config)).returncode == 1
    assert not (inst.base / "absent").exists()


def test_next_certificate_from_the_configuration_is_trusted(
    pair: tuple[Installation, Path, Path], tmp_path: Path
) -> None:
    """During a rollover the configuration names the current and the next certificate:
    a file sealed with either verifies with `-c`; one sealed with a third does not."""
    inst, genuine, _ = pair
    base = tmp_path / "rollover"
    shutil.copytree(genuine.parent, base / "out")
    now = inst.clock.now()
    for label in ("next", "third"):
        init_signing_key(base / f"{label}.key", base / f"{label}.crt", now=now, days=3650)
    config = inst.config.with_name("rollover.toml")
    config.write_text(
        inst.config.read_text(encoding="utf-8").replace(
            'certificate = "signing/gateway.crt"',
            f'certificate = "signing/gateway.crt"\nnext_certificate = "{base / "next.crt"}"',
        ),
        encoding="utf-8",
    )
    for label, expected in (("next", 0), ("third", 1)):
        document = base / f"{label}.xml"
        document.write_bytes(genuine.read_bytes())
        sealer = Sealer.load(base / f"{label}.key", base / f"{label}.crt", clock=lambda: now)
        write_atomically(seal_path(document), sealer.sign_file(document))
        done = gateway("verify", str(document), "-c", str(config))
        assert done.returncode == expected, (label, done.stdout, done.stderr)
    assert gateway("verify", str(genuine), "-c", str(config)).returncode == 0
