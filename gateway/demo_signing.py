"""The demo's signatory authorisation (SPEC §11): a two-level account of `iestade-a`, a test
CA with a "first" and a "second" signatory (their keys under `demo/pki/`), a sample batch
debiting that account, and the commands to sign it and upload the containers.

    demo/pki/ca.pem                        the test CA ([signing] signatory_ca)
    demo/pki/ca.crl.pem                    its revocation list ([signing] signatory_crl)
    demo/pki/signatories/first.key|.pem    Anna Vadītāja, first right (the head)
    demo/pki/signatories/second.key|.pem   Ilze Grāmatvede, second right (chief accountant)
    demo/signatures/two-signatures.xml     a batch from the two-level account
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from gateway import testpki
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes

CLIENT = "iestade-a"
ACCOUNT = iban_lv("TREL", 9_100_000_000_004)  # EUR, two signatures
FUNDING = "50000.00"
LEVEL = 2
SAMPLE = "two-signatures"
SIGNATORIES = (("Anna Vadītāja", "first", "first"), ("Ilze Grāmatvede", "second", "second"))


def ensure_pki(folder: Path, now: dt.datetime) -> None:
    """The test CA and signatories, made once (kept when the demo is made again)."""
    if (folder / "pki" / "ca.pem").exists():
        return
    testpki.write_pki(testpki.make_pki(now), folder / "pki")


def account_lines() -> list[str]:
    return [
        "  [[client.account]]",
        f'  iban = "{ACCOUNT}"',
        '  currency = "EUR"',
        f"  authorisation = {LEVEL}  # SPEC §11: a first and a second signature",
    ]


def signatory_lines() -> list[str]:
    lines = []
    for name, right, stem in SIGNATORIES:
        lines += [
            "  [[client.signatory]]",
            f'  name = "{name}"',
            f'  certificate = "pki/signatories/{stem}.pem"',
            f'  right = "{right}"',
        ]
    return lines


def signing_lines() -> list[str]:
    """The test CA, and its revocation list (its `revoked` card: DS0C)."""
    return ['signatory_ca = ["pki/ca.pem"]', 'signatory_crl = ["pki/ca.crl.pem"]']


def write_sample(folder: Path, day: dt.date) -> None:
    path = folder / "signatures" / f"{SAMPLE}.xml"
    if path.exists():
        return
    txs = [
        SampleTx("SIGN-1", "2400.00", iban_lv("HABA", 22_000_010), "SIA Remontdarbi",
                 creditor_bic="HABALV22", remittance="Līgums 7/2026"),
        SampleTx("SIGN-2", "600.00", iban_lv("UNLA", 33_000_011), "SIA Tīrība",
                 creditor_bic="UNLALV2X", remittance="Rēķins 4410"),
    ]  # fmt: skip
    total = str(sum((Decimal(t.amount) for t in txs), Decimal(0)))
    msg_id = f"DEMO-{day:%Y%m%d}-SIGN"
    batch = SampleBatch(
        msg_id=msg_id, created_at=f"{day.isoformat()}T09:00:00",
        initiating_party="Budžeta iestāde A ERP", nb_of_txs=str(len(txs)), ctrl_sum=total,
        payment_infos=[SamplePmtInf(
            pmt_inf_id=f"{msg_id}-P1", debtor_iban=ACCOUNT, debtor_name="Budžeta iestāde A",
            execution_date=day.isoformat(), nb_of_txs=str(len(txs)), ctrl_sum=total,
            transactions=txs,
        )],
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_bytes(batch))


def sign_commands(folder: Path, shown: Callable[[Path], str], program: str) -> list[str]:
    """`ekase-gateway sign` (as `program`) for each signatory, one container each."""
    sample = folder / "signatures" / f"{SAMPLE}.xml"
    commands = []
    for _, _, stem in SIGNATORIES:
        key = folder / "pki" / "signatories" / f"{stem}.key"
        cert = key.with_suffix(".pem")
        out = folder / "signatures" / f"{SAMPLE}.{stem}.asice"
        commands.append(" ".join([
            program, "sign", shlex.quote(shown(sample)), "--key", shlex.quote(shown(key)),
            "--cert", shlex.quote(shown(cert)), "--out", shlex.quote(shown(out)),
        ]))  # fmt: skip
    return commands


def instructions(folder: Path, shown: Callable[[Path], str], program: str) -> list[str]:
    """What the demo prints about signatures: the account, the commands, what happens."""
    samples = folder / "signatures"
    puts = [f"put {shown(samples / name)} /in/" for name in
            (f"{SAMPLE}.xml", f"{SAMPLE}.first.asice", f"{SAMPLE}.second.asice")]  # fmt: skip
    return [
        f"Signatures (SPEC §11): {ACCOUNT} needs a first and a second signature.",
        "Sign the sample as each signatory (test CA and keys under pki/):",
        *(f"  {c}" for c in sign_commands(folder, shown, program)),
        "Upload with the sftp command above, the batch and then each container:",
        *(f"  {p}" for p in puts),
        f"The batch waits in {shown(folder / 'spool' / 'awaiting')}/ (PDNG, saying what is "
        "missing); the first",
        "signature leaves it waiting (the second right must sign); the second releases it,",
        "and it executes as any batch does (at once on a business day before its cut-off).",
    ]
