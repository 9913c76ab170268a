"""The demo's two-level account (SPEC §11): the printed `ekase-gateway sign` commands make
containers that, uploaded after the batch, first leave it waiting and then execute it."""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from lxml import etree

from gateway import demo_signing
from gateway.demo import ensure_demo
from gateway.demo_run import instructions
from gateway.environment import open_environment
from gateway.pipeline import Pipeline
from tests.integration.daemon_fixtures import free_port

BIN = Path(sys.executable).parent
NS = "{urn:iso:std:iso:20022:tech:xsd:pain.002.001.03}"


def _answers(out: Path) -> list[tuple[str, str]]:
    found = []
    for path in sorted(out.glob("*_pain.002.001.03_*.xml")):
        tree = etree.parse(str(path))
        status = tree.findtext(f".//{NS}OrgnlGrpInfAndSts/{NS}GrpSts") or ""
        info = " ".join(e.text or "" for e in tree.iter(f"{NS}AddtlInf"))
        found.append((status, info))
    return found


def test_demo_two_level_account_signed_with_the_printed_commands(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    demo = ensure_demo(tmp_path / "demo", port=free_port(), now=now)
    text = instructions(demo, now)
    assert demo_signing.ACCOUNT in text
    assert any(a.iban == demo_signing.ACCOUNT and a.authorisation == 2
               for a in demo.settings.client("iestade-a").accounts)  # fmt: skip
    commands = [line.strip() for line in text.splitlines()
                if line.strip().startswith("ekase-gateway sign ")]  # fmt: skip
    assert len(commands) == 2, text
    for command in commands:
        argv = shlex.split(command)
        argv[0] = str(BIN / "ekase-gateway")
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    env = open_environment(demo.settings)
    try:
        pipeline = Pipeline(env)
        inbox = demo.settings.spool_dir / "clients" / "iestade-a" / "in"
        out = demo.settings.spool_dir / "clients" / "iestade-a" / "out"
        samples = demo.folder / "signatures"
        steps = ["two-signatures.xml", "two-signatures.first.asice",
                 "two-signatures.second.asice"]  # fmt: skip
        for name in steps:
            shutil.copy(samples / name, inbox / f".{name}.part")
            (inbox / f".{name}.part").rename(inbox / name)
            pipeline.run_once()
        found = _answers(out)
        assert found[0][0] == "PDNG" and "0 of 2 signatures" in found[0][1], found
        assert "1 of 2 signatures; a signatory with the second right must sign" in found[1][1]
        assert "authorised" in found[2][1]
        assert found[3][0] in ("ACSC", "ACCP"), found
        # The demo's CRL is configured: its revoked card is told DS0C, not "not a
        # signatory" (a tester could not show DS0C with the demo as made).
        revoked = demo.folder / "pki" / "signatories" / "revoked"
        other = tmp_path / "other.xml"
        other.write_bytes((samples / "two-signatures.xml").read_bytes().replace(
            b"</MsgId>", b"-R</MsgId>", 1))  # fmt: skip
        subprocess.run([str(BIN / "ekase-gateway"), "sign", str(other), "--key",
                        f"{revoked}.key", "--cert", f"{revoked}.pem", "--out",
                        str(inbox / "revoked.asice")], check=True, capture_output=True,
                       timeout=60)  # fmt: skip
        pipeline.run_once()
        [(status, info)] = _answers(out)[len(found):]
        assert "DS0C" in info or "revoked" in info, (status, info)
    finally:
        env.close()
