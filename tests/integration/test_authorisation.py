"""Signatory authorisation in the pipeline (SPEC §11), one pass at a time on a fixed clock:
a batch debiting a two-level account waits, signatures add up, the last one executes it,
bad signatures are answered with their DS code and change nothing, and a batch left
waiting expires RJCT DS24."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from gateway import asice_writer, authorisation, db, filerun, readahead, testpki
from gateway.clock import FixedClock
from gateway.inbound import asice
from gateway.inbound.identifiers import iban_lv
from gateway.inbound.reader import inline_bytes_max
from gateway.outbound.seal import verify_file
from gateway.reasons import PRECEDENCE, Reason
from gateway.samples import SamplePmtInf, SampleTx
from gateway.sign_command import make_signature
from gateway.signatories import person_code
from gateway.status import collect
from gateway.status_report import render
from gateway.testpki import Pki
from tests.integration import test_signature_interop as interop
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    DEFAULT_NOW,
    EXTERNAL,
    RIGA,
    TODAY,
    Answer,
    Batch,
    Installation,
    batch,
    write_config,
)
from tests.signature_fixtures import bad_containers, configure, make_pki_files, signed
from tests.unit import pull_samples

WHEN = DEFAULT_NOW.astimezone(dt.UTC)
PEOPLE: dict[str, testpki.Issued] = {}  # further signatories made by the fixture


@pytest.fixture
def signing(tmp_path: Path) -> Iterator[tuple[Installation, Pki]]:
    """Client A's main account needs two signatures: "First" (first right) and "Second"
    (second right); "Other" (first right) may sign only for A_SMALL."""
    base = tmp_path / "gw"
    config = write_config(base)
    pki, files = make_pki_files(tmp_path / "pki", WHEN)
    for stem in ("other", "retired", "stranger"):
        issued = testpki.new_signatory(pki.ca, f"{stem.title()} Person", now=WHEN)
        PEOPLE[stem] = issued
        testpki.write_issued(issued, tmp_path / "pki" / "signatories", stem)
    yesterday = (DEFAULT_NOW.date() - dt.timedelta(days=1)).isoformat()
    people = tmp_path / "pki" / "signatories"
    configure(
        config, files, client_id="iestade-a", iban=A_MAIN, level=2,
        signatories={"First": ("first", "first"), "Second": ("second", "second"),
                     "Other": ("first", people / "other.pem"),
                     "Retired": ("second", people / "retired.pem"),
                     "Revoked": ("second", "revoked")},
        extra={"Other": {"accounts": f'["{A_SMALL}"]'},
               "Retired": {"valid_until": yesterday}},
    )  # fmt: skip
    configure(
        config, files, client_id="iestade-b", iban=B_MAIN, level=None, ca=False,
        signatories={"Stranger": ("first", people / "stranger.pem")},
    )  # fmt: skip
    crl = f'signatory_crl = ["{files.crl}"]\nsignatory_ca = ['
    config.write_text(config.read_text().replace("signatory_ca = [", crl))
    inst = Installation.open(base, config, now=WHEN, need_sealer=True)
    yield inst, pki
    inst.close()


def _forged_copy(card: testpki.Issued) -> testpki.Issued:
    """A certificate of one's own making with `card`'s subject, issuer and serial number."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = testpki.new_key()
    cert = (
        x509.CertificateBuilder().subject_name(card.cert.subject).issuer_name(card.cert.issuer)
        .public_key(key.public_key()).serial_number(card.cert.serial_number)
        .not_valid_before(card.cert.not_valid_before_utc)
        .not_valid_after(card.cert.not_valid_after_utc)
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )  # fmt: skip
    return testpki.Issued(key, cert)


def _state(inst: Installation) -> list[str]:
    with inst.env.engine.connect() as conn:
        return [r.state for r in conn.execute(select(db.awaiting))]


@pytest.fixture(params=["held", "written"])
def container_data(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each container's data file held in memory as read, or written to its scratch file in
    tmp/ as a big one is (`asice.in_memory_bytes_max`)."""
    if request.param == "written":
        monkeypatch.setattr(asice, "in_memory_bytes_max", 0)


def _no_scratch_left(inst: Installation) -> None:
    assert not list((inst.spool / "tmp").glob("*.data.xml"))


def test_two_level_batch_waits_then_executes_with_the_second_signature(
    signing: tuple[Installation, Pki], assert_valid: Any, container_data: None
) -> None:
    """The ERP's batch waits (PDNG, what is missing, nothing booked); the first right's
    signature leaves it waiting and says the second right must sign; the second executes."""
    inst, pki = signing
    data = batch(("E1", "10.00"), ("E2", "5.00"), msg_id="WAIT-1")
    before = inst.balance(A_MAIN)
    inst.drop(data, "pay.xml")
    inst.run()
    [first] = inst.new_answers()
    assert first.group_status == "PDNG"
    assert set(first.statuses().values()) == {"PDNG"}
    assert "0 of 2 signatures" in " ".join(first.group_info)
    # SPEC §6: each PDNG says why it waits and until when (the day it expires, DS24)
    expires = authorisation.expires_on(DEFAULT_NOW, 5, dt.time(18, 30))
    assert first.tx("E1").additional_info == [
        f"waiting for the signatures of the account's signatories; rejected (DS24) on "
        f"{expires} if not complete"
    ]
    assert (inst.spool / "awaiting" / "iestade-a").is_dir()
    assert [p for p in (inst.spool / "awaiting" / "iestade-a").iterdir()
            if p.name.endswith("pay.xml")]  # fmt: skip
    assert inst.balance(A_MAIN) == before
    assert _state(inst) == ["waiting"]
    shown = render(collect(inst.env, FixedClock(WHEN)))
    assert "awaiting signatures:" in shown and "WAIT-1  0 of 2 signature(s)" in shown, shown

    inst.drop(signed("pay.xml", data, pki.first, WHEN), "pay.asice")
    inst.run()
    [ack] = inst.new_answers()
    assert ack.original_msg_id == "WAIT-1"
    assert ack.group_status == "PDNG"
    info = " ".join(ack.group_info)
    assert "1 of 2 signatures; a signatory with the second right must sign" in info, info
    # like every pain.002 (SPEC §6), it lists each transaction: PDNG while the batch waits
    assert ack.statuses() == {"E1": "PDNG", "E2": "PDNG"}, ack.statuses()
    assert ack.tx("E2").additional_info == first.tx("E2").additional_info
    assert_valid(ack.path, "pain.002.001.03")
    assert inst.balance(A_MAIN) == before
    assert "WAIT-1  1 of 2 signature(s)" in render(collect(inst.env, FixedClock(WHEN)))

    inst.drop(signed("pay.xml", data, pki.second, WHEN), "pay-2.asice")
    inst.run()
    ack2, final = inst.new_answers()
    assert "authorised: 2 of 2 signatures; released for execution as if received with this " \
        "signature: 2 payments executed (ACSC)" in " ".join(ack2.group_info), ack2.group_info
    assert final.group_status == "ACSC", final.group_info
    assert inst.balance(A_MAIN) == before - 1500
    assert _state(inst) == ["executed"]
    assert "awaiting signatures" not in render(collect(inst.env, FixedClock(WHEN)))
    assert not [p for p in (inst.spool / "awaiting" / "iestade-a").iterdir()
                if not p.name.startswith(".")]  # fmt: skip
    [shelved] = (inst.spool / "archive" / "iestade-a").glob("*/*pay.xml")
    findings = shelved.with_name(shelved.name + ".findings.txt").read_text()
    assert "First; " in findings and "Second; " in findings, findings
    assert f"serial {pki.second.cert.serial_number}" in findings
    assert "CN=" in findings and "counted" in findings
    assert f"serialNumber={person_code(pki.second.cert)}," in findings  # not `2.5.4.5=`
    # the signing time with its offset (it was written without one: an outside tester)
    signatures = findings.split("Signatures")[1].splitlines()[1:]
    assert all("+00:00; " in line for line in signatures), signatures
    assert "Received:" in findings and f"Size:        {len(data)} bytes" in findings
    # SPEC §8: an accepted batch is sealed in the archive, one that waited too
    verdict = verify_file(
        shelved, trusted_certs=[inst.settings.signing.certificate], now=dt.datetime.now(dt.UTC)
    )
    assert verdict.ok, verdict.problem
    assert verdict.properties["client_id"] == "iestade-a"
    assert len(list((inst.spool / "archive" / "iestade-a").glob("*/*.asice"))) == 2
    for answer in [first, ack, ack2, final]:
        assert_valid(answer.path, "pain.002.001.03")


def test_a_batch_of_a_client_with_guarded_accounts_is_read_once_unless_it_waits(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every batch of a client with an account that needs signatures was read twice: once
    to admit it (does it debit such an account?), and again to run it. It is run as usual,
    read once; the first payment information that debits a guarded account undoes the
    run, and that batch is read again to be admitted as waiting — nothing of the run
    stays (the payment of its first, unguarded, payment information included)."""
    from gateway import filerun

    inst, _pki = signing
    reads: list[str] = []
    real = filerun.reading.read

    def counted(path: Path, settings: Any) -> Any:
        reads.append(path.name)
        return real(path, settings)

    monkeypatch.setattr(filerun.reading, "read", counted)
    free, main = inst.balance(A_SMALL), inst.balance(A_MAIN)
    inst.drop(Batch(msg_id="FREE", debtor=A_SMALL).tx("F1", "1.00").build(), "free.xml")
    inst.run()
    [answer] = inst.new_answers()
    assert answer.group_status == "ACSC" and len(reads) == 1, reads  # read once
    assert inst.balance(A_SMALL) == free - 100
    mixed = Batch(msg_id="MIXED", debtor=A_SMALL).tx("M1", "2.00").build()
    guarded = Batch(msg_id="MIXED", debtor=A_MAIN).tx("M2", "3.00").build()
    # the first batch with a second payment information, from the guarded account
    body = guarded[guarded.index(b"<PmtInf>") : guarded.index(b"</PmtInf>") + 9]
    mixed = mixed.replace(b"</PmtInf>", b"</PmtInf>" + body.replace(b"-P1<", b"-P2<"), 1)
    mixed = mixed.replace(b"<NbOfTxs>1</NbOfTxs><CtrlSum>2.00</CtrlSum>",
                          b"<NbOfTxs>2</NbOfTxs><CtrlSum>5.00</CtrlSum>", 1)  # fmt: skip
    inst.drop(mixed, "mixed.xml")
    inst.run()
    [waits] = inst.new_answers()
    assert waits.group_status == "PDNG", waits.group_info
    assert "0 of 2 signatures" in " ".join(waits.group_info), waits.group_info
    assert waits.statuses() == {"M1": "PDNG", "M2": "PDNG"}
    assert len(reads) == 3 and all(r.endswith("mixed.xml") for r in reads[1:]), reads
    assert (inst.balance(A_SMALL), inst.balance(A_MAIN)) == (free - 100, main)
    assert _state(inst) == ["waiting"]


def test_bad_signatures_answered_with_their_code_and_change_nothing(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """Each bad container gets one pain.002 with its SPEC §11 code and the batch keeps
    waiting, nothing booked; the same signatory twice counts once (DS26)."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="WAIT-2")
    inst.drop(data, "pay.xml")
    inst.run()
    inst.new_answers()
    before = inst.balance(A_MAIN)
    cases = dict(bad_containers("pay.xml", data, pki, WHEN))
    cases["revoked.asice"] = (signed("pay.xml", data, pki.revoked, WHEN), "DS0C")
    cases["other-client.asice"] = (signed("pay.xml", data, PEOPLE["stranger"], WHEN), "DS0H")
    cases["not-allowed.asice"] = (signed("pay.xml", data, PEOPLE["other"], WHEN), "DS0H")
    cases["card-ended.asice"] = (signed("pay.xml", data, PEOPLE["retired"], WHEN), "DS0D")
    cases["forged.asice"] = (signed("pay.xml", data, _forged_copy(pki.first), WHEN), "DS0F")
    for name, (container, code) in cases.items():
        inst.drop(container, name)
        inst.run()
        [answer] = inst.new_answers()
        assert answer.group_reasons == [code], (name, answer.group_info)
        assert answer.group_status in ("PDNG", "RJCT"), name
        assert " ".join(answer.group_info), name
        assert_valid(answer.path, "pain.002.001.03")
    # one container, two signatures refused for different reasons: each code is given
    # SPEC §11: the findings list each signer with name and right — also a configured
    # signatory whose certificate failed (revoked): it was listed as "-" (an outside tester)
    s = db.signatures.c
    with inst.env.engine.connect() as conn:
        listed = set(conn.execute(select(s.reason, s.signatory, s.signatory_right)))
    assert {("DS0C", "Revoked", "second"), ("DS0D", "Retired", "second")} <= listed, listed
    # a certificate of no trusted CA that copies a card's issuer and serial names no one
    assert ("DS0F", "First", "first") not in listed, listed
    two = signed("pay.xml", signed("pay.xml", data, pki.revoked, WHEN), PEOPLE["stranger"], WHEN)
    inst.drop(two, "two-bad.asice")
    inst.run()
    [answer] = inst.new_answers()
    assert answer.group_reasons == sorted(["DS0C", "DS0H"], key=lambda c: PRECEDENCE[Reason(c)])
    assert_valid(answer.path, "pain.002.001.03")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "f1.asice")
    inst.run()
    inst.drop(signed("pay.xml", data, pki.first, WHEN + dt.timedelta(seconds=1)), "f2.asice")
    inst.run()
    a1, a2 = inst.new_answers()
    assert a1.group_reasons == []
    assert a2.group_reasons == ["DS26"], a2.group_info
    assert "1 of 2 signatures" in " ".join(a2.group_info)
    big = inst.inbox() / "big.asice"
    with big.open("wb") as handle:  # 200 MB, sparse: refused by its size, never read
        handle.truncate(200 * 1024 * 1024)
    inst.run()
    [too_big] = inst.new_answers()
    assert too_big.group_status == "RJCT" and too_big.group_reasons == ["DS0B"]
    text = Batch(msg_id="X").tx("E9", "1.00").build().replace(b"<?xml", b"<!-- -->\n<?xml")
    inst.drop(signed("note.xml", text, pki.first, WHEN), "not-pain.asice")
    inst.run()
    [not_pain] = inst.new_answers()
    assert not_pain.group_status == "RJCT" and not_pain.group_reasons == ["FF01"]
    # SPEC §6: nothing could be read, so the answer names the upload and its SHA-256
    [shelved] = (inst.spool / "rejected" / "iestade-a").glob("*/*__not-pain.asice")
    said = " ".join(not_pain.group_info)
    assert f"file not-pain.asice, SHA-256 {sha256(shelved.read_bytes()).hexdigest()}" in said
    assert "(its data file note.xml)" in said
    assert inst.balance(A_MAIN) == before
    assert _state(inst) == ["waiting"]
    with inst.env.engine.connect() as conn:
        assert conn.execute(select(db.payments.c.id)).all() == []


def test_container_instead_of_the_batch_and_expiry(
    signing: tuple[Installation, Pki], assert_valid: Any, container_data: None
) -> None:
    """A container is a submission of its own; one left waiting expires RJCT DS24 after
    `authorisation_days` business days, and a late signature changes nothing."""
    inst, pki = signing
    data = Batch(msg_id="WAIT-3").tx("E1", "1.00").build()
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "pay.asice")
    inst.run()
    [ack] = inst.new_answers()  # one upload, one answer: the batch's first
    assert ack.group_status == "PDNG" and ack.statuses() == {"E1": "PDNG"}
    assert "1 of 2" in " ".join(ack.group_info)
    # its data file waits in awaiting/ as a plain batch does: with its findings
    [waiting] = (inst.spool / "awaiting" / "iestade-a").glob("*pay.asice.data.xml.findings.txt")
    assert "MsgId:       WAIT-3" in waiting.read_text()
    assert f"Answer:      {ack.path.name}\n" in waiting.read_text()
    inst.clock.set(WHEN + dt.timedelta(days=7))
    inst.run()
    [expired] = inst.new_answers()
    assert expired.group_status == "RJCT" and expired.group_reasons == ["DS24"]
    assert expired.statuses() == {"E1": "RJCT"}
    assert [t.reasons for t in expired.transactions()] == [["DS24"]]
    assert_valid(expired.path, "pain.002.001.03")
    assert _state(inst) == ["expired"]
    [shelved] = (inst.spool / "rejected" / "iestade-a").glob("*/*pay.asice.data.xml")
    findings = shelved.with_name(shelved.name + ".findings.txt").read_text()
    assert "MsgId:       WAIT-3\n" in findings and "Transactions: RJCT 1\n" in findings
    assert "Result:      RJCT DS24 (" in findings, findings
    assert f"Answer:      {expired.path.name}\n" in findings, findings
    inst.drop(signed("pay.xml", data, pki.second, WHEN + dt.timedelta(days=7)), "late.asice")
    inst.run()
    [late] = inst.new_answers()
    assert late.group_reasons == ["DS24"]
    assert "changes nothing" in " ".join(late.group_info)
    _no_scratch_left(inst)


def test_stop_after_commit_before_shelving_keeps_the_batch_waiting(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stops after its commit and before shelving: the next run finds the
    waiting batch recorded and puts it in awaiting/ (not the archive), where the
    signatures find it; the container of such a run is kept in the archive."""
    inst, pki = signing
    data = batch(("E1", "3.00"), msg_id="WAIT-4")
    real = filerun.shelve_all

    def stopped(*args: object, **kwargs: object) -> None:
        raise RuntimeError("stopped before shelving")

    monkeypatch.setattr(filerun, "shelve_all", stopped)
    inst.drop(data, "pay.xml")
    with pytest.raises(RuntimeError):
        inst.run()
    monkeypatch.setattr(filerun, "shelve_all", real)
    inst.run()
    awaiting = inst.spool / "awaiting" / "iestade-a"
    assert [p.name for p in awaiting.iterdir() if p.name.endswith("pay.xml")]
    monkeypatch.setattr(filerun, "shelve_all", stopped)
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "one.asice")
    with pytest.raises(RuntimeError):
        inst.run()
    monkeypatch.setattr(filerun, "shelve_all", real)
    inst.run()
    assert list((inst.spool / "archive" / "iestade-a").glob("*/*one.asice"))
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "two.asice")
    inst.run()
    assert _state(inst) == ["executed"]
    answers = inst.new_answers()
    finals = [a for a in answers if a.group_status == "ACSC" and a.statuses()]
    assert len(finals) == 1, [(a.group_status, a.statuses()) for a in answers]


def test_file_level_checks_answer_at_once_and_a_mixed_file_waits_for_the_highest(
    signing: tuple[Installation, Pki],
) -> None:
    """A guarded batch invalid as a whole is rejected at once (nothing waits); a file
    debiting a two-level and an unguarded account waits as a whole for two signatures,
    and nothing of it is booked, not even the unguarded account's payment."""
    inst, pki = signing
    broken = Batch(msg_id="WAIT-5", group_sum="999.00").tx("E1", "1.00").build()
    inst.drop(broken, "broken.xml")
    inst.run()
    [answer] = inst.new_answers()
    assert answer.group_status == "RJCT" and answer.group_reasons == ["AM10"]
    assert _state(inst) == []

    small = SamplePmtInf("WAIT-6-P2", A_SMALL, [SampleTx("S1", "2.00", EXTERNAL,
                         creditor_bic="HABALV22")], execution_date=TODAY.isoformat())  # fmt: skip
    mixed = Batch(msg_id="WAIT-6", extra_pmts=[small]).tx("M1", "1.00").build()
    before = inst.balances()
    inst.drop(mixed, "mixed.xml")
    inst.run()
    [waiting] = inst.new_answers()
    assert waiting.group_status == "PDNG"
    assert set(waiting.statuses().values()) == {"PDNG"}
    assert set(waiting.pmt_statuses().values()) == {"PDNG"}
    assert "0 of 2 signatures" in " ".join(waiting.group_info)
    assert inst.balances() == before
    inst.drop(mixed.replace(b">M1<", b">M9<", 1), "same-msgid.xml")
    inst.drop(mixed, "again.xml")
    inst.run()
    found = sorted((a.group_status, tuple(a.group_reasons)) for a in inst.new_answers())
    assert found == [("PDNG", ()), ("RJCT", ("DU01",))], found
    for issued in (pki.first, pki.second):
        inst.drop(signed("mixed.xml", mixed, issued, WHEN), f"{issued.cert.serial_number}.asice")
        inst.run()
    final = inst.new_answers()[-1]
    assert final.statuses() == {"M1": "ACSC", "S1": "ACSC"}, final.statuses()


@pytest.mark.parametrize(
    ("fault", "many"),
    [
        ({"group_nb": "5"}, 1),
        ({"group_sum": "9.99"}, 1),
        ({"pmt_nb": "5"}, 1),
        ({"group_nb": "5"}, 4_000),  # read by the child, whose counts come at the end
    ],
    ids=["AM18 group", "AM10 group", "AM18 PmtInf", "AM18 group, streamed"],
)
def test_a_reused_msg_id_is_du01_before_counts_and_sums(
    signing: tuple[Installation, Pki], fault: dict[str, str], many: int
) -> None:
    """SPEC §6, precedence in `Reason` order: a client whose accounts need signatures
    reuses the MsgId of a file already booked in a file whose counts or sums are also
    wrong; the answer is DU01, not AM18 or AM10, and nothing waits."""
    inst, _ = signing
    booked = Batch(debtor=A_SMALL, msg_id="MON-BOOK").tx("B1", "1.00").build()
    assert inst.submit(booked, name="booked.xml").group_status == "ACSC"
    again = Batch(msg_id="MON-BOOK", **fault)
    for n in range(many):
        again.tx(f"R{n}", "1.00")
    data = again.build()
    assert (len(data) > inline_bytes_max) == (many > 1)
    answer = inst.submit(data, name="again.xml")
    assert answer.group_status == "RJCT"
    assert answer.group_reasons == ["DU01"], answer.group_info
    assert "MON-BOOK" in " ".join(answer.group_info)
    assert _state(inst) == []


def test_a_signature_made_by_xmlsec1_counts_like_ours(
    signing: tuple[Installation, Pki], xmlsec1: str, tmp_path: Path
) -> None:
    """The second signatory signs with another tool (xmlsec1 from a XAdES template): the
    gateway counts it, and with the first signatory's container the batch executes."""
    inst, pki = signing
    data = batch(("X1", "4.00"), msg_id="WAIT-8")
    inst.drop(data, "pay.xml")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "first.asice")
    inst.run()
    key, cert = testpki.write_issued(pki.second, tmp_path, "second")
    (tmp_path / "data.xml").write_bytes(data)
    (tmp_path / "template.xml").write_bytes(interop.template(
        "pay.xml", pki.second.cert.public_bytes(Encoding.DER), c14n=interop.C14N_11,
        digest=interop.SHA256, method=interop.MORE + "ecdsa-sha256", wrapped=True,
        signing_time=WHEN - dt.timedelta(minutes=3),
    ))  # fmt: skip
    subprocess.run(
        [xmlsec1, "--sign", "--privkey-pem", f"{key},{cert}", "--id-attr:Id", interop.ID_ATTR,
         "--url-map:pay.xml", str(tmp_path / "data.xml"), "--output", "signed.xml",
         "template.xml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    container = asice_writer.write_container(
        "pay.xml", data,
        [asice.SignatureFile("META-INF/signatures0.xml", (tmp_path / "signed.xml").read_bytes())],
        moment=WHEN,
    )  # fmt: skip
    inst.drop(container, "by-xmlsec1.asice")
    inst.run()
    found = inst.new_answers()
    [final] = [a for a in found if a.group_status == "ACSC" and a.statuses()]
    assert final.statuses() == {"X1": "ACSC"}, [a.group_info for a in found]
    assert any("authorised: 2 of 2" in " ".join(a.group_info) for a in found)


def test_a_plain_batch_after_its_containers_is_told_the_current_count(
    signing: tuple[Installation, Pki], assert_valid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container comes first (it is the submission); the plain batch uploaded after
    it is answered with what its signatures are now ("1 of 2"), not with the first answer
    ("0 of 2"), once even when the run stopped before shelving it. Once the containers
    have executed it, the plain batch gets the final answer again and executes nothing."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="WAIT-9")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "first.asice")
    inst.run()
    inst.new_answers()
    inst.drop(data, "pay.xml")
    with monkeypatch.context() as patch:
        patch.setattr(filerun, "shelve_all", _stopped)
        with pytest.raises(RuntimeError):
            inst.run()
    inst.run()
    [now] = inst.new_answers()
    assert now.original_msg_id == "WAIT-9" and now.group_status == "PDNG"
    info = " ".join(now.group_info)
    assert "1 of 2 signatures; a signatory with the second right must sign" in info, info
    assert now.statuses() == {"E1": "PDNG"}, now.statuses()
    assert_valid(now.path, "pain.002.001.03")
    before = inst.balance(A_MAIN)
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    final = inst.new_answers()[-1]
    assert final.group_status == "ACSC" and inst.balance(A_MAIN) == before - 1000
    inst.drop(data, "pay-again.xml")
    inst.run()
    [again] = inst.new_answers()
    assert again.group_status == "ACSC"
    assert again.statuses() == final.statuses() and inst.balance(A_MAIN) == before - 1000


def test_a_signature_for_an_authorised_batch_still_waiting_for_its_date_says_so(
    signing: tuple[Installation, Pki],
) -> None:
    """(Outside review.) A batch both signatories signed whose payments wait for their
    execution date (PDNG) was called "already executed" to a further signature: it is
    already authorised, and its payments run on their dates."""
    inst, pki = signing
    later = (DEFAULT_NOW.date() + dt.timedelta(days=1)).isoformat()  # Thursday
    data = Batch(msg_id="LATER-1", execution_date=later).tx("E1", "10.00").build()
    inst.drop(data, "pay.xml")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "first.asice")
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    assert inst.new_answers()[-1].group_status == "ACCP"  # authorised, its payment PDNG
    inst.drop(signed("pay.xml", data, PEOPLE["other"], WHEN), "third.asice")
    inst.run()
    [late] = inst.new_answers()
    info = " ".join(late.group_info)
    assert "already authorised" in info and "changes nothing" in info, info
    assert "executed" not in info, info


def test_a_container_uploaded_again_is_told_where_its_batch_stands(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """The same container bytes again: while the batch waits, the answer gives its
    signatures' current count (the signature counted once); once the batch has executed,
    that it was already executed and the signature changes nothing (SPEC §11), with
    GrpSts ACSC — not a copy of the first "1 of 2 signatures" PDNG answer."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="AGAIN-1")
    first = signed("pay.xml", data, pki.first, WHEN)
    inst.drop(data, "pay.xml")
    inst.drop(first, "first.asice")
    inst.run()
    inst.new_answers()
    inst.drop(first, "first-again.asice")
    inst.run()
    [waiting] = inst.new_answers()
    info = " ".join(waiting.group_info)
    assert waiting.group_status == "PDNG" and "1 of 2 signatures" in info, info
    assert "signature container" in info, info
    assert_valid(waiting.path, "pain.002.001.03")
    before = inst.balance(A_MAIN)
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    assert inst.new_answers()[-1].group_status == "ACSC"
    assert inst.balance(A_MAIN) == before - 1000
    inst.drop(first, "first-late.asice")
    inst.run()
    [late] = inst.new_answers()
    info = " ".join(late.group_info)
    assert late.original_msg_id == "AGAIN-1" and late.group_status == "ACSC", info
    assert "already executed; this signature changes nothing" in info, info
    assert_valid(late.path, "pain.002.001.03")
    assert inst.balance(A_MAIN) == before - 1000


def _reconfigured(inst: Installation, edit: Callable[[str], str]) -> Installation:
    """The installation after the operator changed its configuration (`edit` of the
    file's text) and restarted: the same spool and ledger, the same clock."""
    inst.close()
    inst.config.write_text(edit(inst.config.read_text()))
    again = Installation.open(inst.base, inst.config, now=WHEN, need_sealer=True, funded=False)
    inst.new_answers()
    again.new_answers()  # (those before the change)
    return again


def test_a_signature_refused_when_received_does_not_count_after_a_change(
    signing: tuple[Installation, Pki],
) -> None:
    """SPEC §11: signatories valid for the account *when their container is received*.
    Other's signature, refused then (not allowed on the account: DS0H), does not count
    once the operator allows Other on every account: Second's makes it 1 of 2, not 2."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="JUDGED-1")
    inst.drop(data, "pay.xml")
    inst.run()
    inst.drop(signed("pay.xml", data, PEOPLE["other"], WHEN), "other.asice")
    inst.run()
    _, refused = inst.new_answers()
    assert "0 of 2 signatures" in " ".join(refused.group_info), refused.group_info
    assert Reason.DS0H.value in refused.group_reasons, refused.group_reasons
    only_a_small = f'  accounts = ["{A_SMALL}"]\n'
    assert only_a_small in inst.config.read_text()
    inst = _reconfigured(inst, lambda text: text.replace(only_a_small, ""))
    before = inst.balance(A_MAIN)
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    second, *executed = inst.new_answers()
    info = " ".join(second.group_info)
    assert second.group_status == "PDNG" and "1 of 2 signatures" in info, info
    assert not executed
    assert inst.balance(A_MAIN) == before and _state(inst) == ["waiting"]
    inst.close()


def test_a_signature_counted_when_received_still_counts_after_a_change(
    signing: tuple[Installation, Pki],
) -> None:
    """Second's signature counted when received; after Second's card ended (the operator
    set `valid_until` to yesterday), First's completes the batch: 2 of 2, executed."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="JUDGED-2")
    inst.drop(data, "pay.xml")
    inst.run()
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    assert "1 of 2 signatures" in " ".join(inst.new_answers()[-1].group_info)
    ended = f'  valid_until = {(DEFAULT_NOW.date() - dt.timedelta(days=1)).isoformat()}\n'
    inst = _reconfigured(
        inst, lambda text: text.replace('  name = "Second"\n', '  name = "Second"\n' + ended)
    )
    before = inst.balance(A_MAIN)
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "first.asice")
    inst.run()
    first, *final = inst.new_answers()
    assert "authorised: 2 of 2 signatures" in " ".join(first.group_info), first.group_info
    assert [a.group_status for a in final] == ["ACSC"]
    assert inst.balance(A_MAIN) == before - 1000 and _state(inst) == ["executed"]
    inst.close()


def _stopped(*args: object, **kwargs: object) -> None:
    raise RuntimeError("stopped before shelving")


def _big_batch(msg_id: str) -> bytes:
    """A batch over `inline_bytes_max`: it is read by a child, so it can be read ahead."""
    data = batch(*((f"E{n}", "1.00") for n in range(4000)), msg_id=msg_id)
    assert len(data) > inline_bytes_max
    return data


def test_scan_reads_ahead_the_batch_a_waiting_container_completes(
    signing: tuple[Installation, Pki],
) -> None:
    """`scan --once` with containers first in line starts reading the waiting batch of
    their data file's size before the pass (`readahead.BatchAhead`): the first signature
    (1 of 2) leaves it, the second takes that very reading and executes the batch."""
    inst, pki = signing
    data = _big_batch("AHEAD-1")
    inst.drop(data, "pay.xml")
    inst.run()
    [waits] = inst.new_answers()
    assert waits.group_status == "PDNG"
    before = inst.balance(A_MAIN)
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "a-first.asice")
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "b-second.asice")
    first = readahead.start(inst.settings, WHEN)
    assert isinstance(first, readahead.BatchAhead)
    assert first.path.parent == inst.spool / "awaiting" / "iestade-a"
    assert first.reader is not None and first.reader.digest().sha256 == sha256(data).hexdigest()
    try:
        inst.pipeline.run_once(first)
        assert first.reader is None  # taken by the second signature's run
    finally:
        first.release()
    one, two, final = inst.new_answers()
    assert "1 of 2 signatures" in " ".join(one.group_info)
    assert "authorised" in " ".join(two.group_info)
    assert final.group_status == "ACSC" and inst.balance(A_MAIN) == before - 400_000
    assert _state(inst) == ["executed"]


def test_no_batch_is_read_ahead_for_a_container_that_names_none(
    signing: tuple[Installation, Pki],
) -> None:
    """A container whose data file matches no waiting batch's size, or that is no zip at
    all, starts no reading; the pass answers it as ever."""
    inst, pki = signing
    inst.drop(_big_batch("AHEAD-2"), "pay.xml")
    inst.run()
    inst.new_answers()
    other = _big_batch("AHEAD-3") + b"\n"
    inst.drop(signed("other.xml", other, pki.first, WHEN), "other.asice")
    assert readahead.start(inst.settings, WHEN) is None
    inst.run()
    answers = inst.new_answers()  # the other batch, submitted by its container, waits
    assert [a.group_status for a in answers] == ["PDNG"]
    inst.drop(b"not a zip", "broken.asice")
    assert readahead.start(inst.settings, WHEN) is None


def test_a_container_that_submits_and_completes_the_level_executes_at_once(
    signing: tuple[Installation, Pki], assert_valid: Any, container_data: None
) -> None:
    """SPEC §11: a container holding the batch and both signatures its account needs is a
    submission that never waits: it executes at once, answered with what its signatures
    did ("authorised: 2 of 2") and the final pain.002, never with a waiting answer saying
    "0 of 2 signatures". One holding one signature is answered once (one upload, one
    answer): its signature, "1 of 2", and every payment PDNG."""
    inst, pki = signing
    data = batch(("F1", "7.00"), msg_id="FULL-1")
    both = signed("pay.xml", signed("pay.xml", data, pki.first, WHEN), pki.second, WHEN)
    before = inst.balance(A_MAIN)
    inst.drop(both, "pay.asice")
    inst.run()
    ack, final = inst.new_answers()
    # authorised and run: the group's status is the run's (SPEC §6), not PDNG
    assert ack.group_status == "ACSC" and ack.original_msg_id == "FULL-1"
    assert ack.statuses() == {}, "the batch's own report lists its payments"
    said = (
        "authorised: 2 of 2 signatures; released for execution as if received with this "
        "signature: 1 payment"
    )
    assert f"{said} executed (ACSC)" in " ".join(ack.group_info), ack.group_info
    assert final.group_status == "ACSC" and final.statuses() == {"F1": "ACSC"}
    assert inst.balance(A_MAIN) == before - 700
    assert _state(inst) == ["executed"]
    inst.drop(data, "pay.xml")  # the same bytes again: the final answer once more
    inst.run()
    [again] = inst.new_answers()
    assert again.group_status == "ACSC" and inst.balance(A_MAIN) == before - 700
    for answer in (ack, final, again):
        assert_valid(answer.path, "pain.002.001.03")

    one = batch(("F2", "3.00"), msg_id="FULL-2")
    inst.drop(signed("one.xml", one, pki.first, WHEN), "one.asice")
    inst.run()
    [ack] = inst.new_answers()
    assert ack.statuses() == {"F2": "PDNG"} and ack.group_status == "PDNG"
    info = " ".join(ack.group_info)
    assert "with the first right" in info, info
    assert "1 of 2 signatures; a signatory with the second right must sign" in info, info
    assert_valid(ack.path, "pain.002.001.03")
    inst.drop(one, "one.xml")  # the batch itself after it: where its signatures stand
    inst.run()
    [now] = inst.new_answers()
    assert "1 of 2 signatures" in " ".join(now.group_info)
    _no_scratch_left(inst)


SATURDAY = dt.datetime(2026, 12, 5, 10, 0, tzinfo=RIGA).astimezone(dt.UTC)
MONDAY = "2026-12-07"


def _signed_on_saturday(inst: Installation, pki: Pki, msg_id: str) -> tuple[bytes, list[Any]]:
    """The tester's demo: a batch uploaded through SFTP (with its receipt) on a Saturday,
    then its first and its second signature; the answers to the second."""
    inst.clock.set(SATURDAY)
    data = batch(("W1", "10.00"), ("W2", "5.00"), msg_id=msg_id)
    receipts = inst.spool / "receipts" / "iestade-a"
    receipts.mkdir(parents=True, exist_ok=True)
    (receipts / "two-signatures.xml.json").write_text(json.dumps({
        "sftp_user": "erp", "source_ip": "192.0.2.7", "key_fingerprint": "SHA256:erp",
        "received_at": SATURDAY.isoformat(),
    }))  # fmt: skip
    inst.drop(data, "two-signatures.xml")
    inst.run()
    inst.drop(signed("two-signatures.xml", data, pki.first, SATURDAY), "x.first.asice")
    inst.run()
    inst.new_answers()
    inst.drop(signed("two-signatures.xml", data, pki.second, SATURDAY), "x.second.asice")
    inst.run()
    return data, inst.new_answers()


def test_a_signed_batch_takes_its_upload_receipt_into_the_archive(
    signing: tuple[Installation, Pki],
) -> None:
    """README: where a file lies is its state. The batch that waited for signatures is
    archived with its receipt beside it, like every other archived file, and nothing of
    it stays in awaiting/."""
    inst, pki = signing
    _signed_on_saturday(inst, pki, "SAT-1")
    awaiting = inst.spool / "awaiting" / "iestade-a"
    assert [p.name for p in awaiting.iterdir() if not p.name.startswith(".")] == []
    [shelved] = (inst.spool / "archive" / "iestade-a").glob("*/*two-signatures.xml")
    receipt = json.loads(shelved.with_name(shelved.name + ".receipt.json").read_text())
    assert receipt["sftp_user"] == "erp"


def test_the_findings_of_a_signed_batch_name_its_msgid_answer_and_true_result(
    signing: tuple[Installation, Pki],
) -> None:
    """The archive's findings of a batch executed after its signatures say what those of
    any other file say: its MsgId, its result as the client was told it (ACCP, its
    payments PDNG until Monday, not "executed"), and the name of its final answer."""
    inst, pki = signing
    _, (_, final) = _signed_on_saturday(inst, pki, "SAT-2")
    assert final.group_status == "ACCP" and set(final.statuses().values()) == {"PDNG"}
    [shelved] = (inst.spool / "archive" / "iestade-a").glob("*/*two-signatures.xml")
    findings = shelved.with_name(shelved.name + ".findings.txt").read_text()
    assert "MsgId:       SAT-2\n" in findings, findings
    assert "Result:      ACCP\n" in findings, findings
    assert "Transactions: PDNG 2\n" in findings, findings
    assert f"Answer:      {final.path.name}\n" in findings, findings
    assert "executed" not in findings.split("Signatures")[0], findings
    assert "by erp from 192.0.2.7" in findings, findings


def test_the_completing_signature_says_the_batch_waits_when_it_does(
    signing: tuple[Installation, Pki],
) -> None:
    """SPEC §11: once complete the batch runs as if received then. On a Saturday it is
    released, not executed: the answer to the second signature says its payments wait
    until Monday, as the final answer after it does."""
    inst, pki = signing
    _, (ack, final) = _signed_on_saturday(inst, pki, "SAT-3")
    info = " ".join(ack.group_info)
    assert "authorised: 2 of 2 signatures; released for execution" in info, info
    assert "executed now" not in info, info
    assert f"2 payments wait (PDNG) to execute on {MONDAY}" in info, info
    assert ack.msg_id < final.msg_id  # still answered before the final pain.002


def _trial(inst: Installation, data: bytes, name: str) -> Answer:
    """`data` put into client A's test/ and run: its one TEST answer."""
    folder = inst.env.spool.trial_box(CLIENT_A)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    inst.run()
    [answer] = inst.new_answers()
    assert "_TEST_pain.002.001.03_" in answer.path.name
    return answer


def test_a_container_in_test_is_a_trial_of_its_batch_with_its_signatures(
    signing: tuple[Installation, Pki], assert_valid: Any, container_data: None
) -> None:
    """SPEC §15: a file in test/ is checked exactly as in in/, signatures included. A
    container there (it crashed the worker) is a trial of its data file, its signatures
    judged as in/ would judge them; nothing is booked, recorded or shelved as waiting, and
    the batch's MsgId stays free. A broken container is answered DS0B, as in in/."""
    inst, pki = signing
    before = inst.balance(A_MAIN)
    data = batch(("T1", "10.00"), ("T2", "5.00"), msg_id="TRY-SIGNED")
    one = _trial(inst, signed("pay.xml", data, pki.first, WHEN), "one.asice")
    assert_valid(one.path, "pain.002.001.03")
    # signatures reported, not required (SPEC §15): the group as the payments once signed
    assert one.original_msg_id == "TRY-SIGNED" and one.group_status == "ACCP"
    assert one.statuses() == {"T1": "ACCP", "T2": "ACCP"}  # once signed
    info = " ".join(one.group_info)
    assert "trial run, nothing executed" in info
    assert (
        "would need more signatures: 1 of 2 signatures; a signatory with the second right "
        "must sign" in info
    ), info
    assert "this container's signatures: " in info

    both = signed("pay.xml", signed("pay.xml", data, pki.first, WHEN), pki.second, WHEN)
    done = _trial(inst, both, "both.asice")
    assert done.group_status == "ACCP" and done.statuses() == {"T1": "ACCP", "T2": "ACCP"}
    assert "(authorised: 2 of 2 signatures)" in " ".join(done.group_info), done.group_info

    broken = _trial(inst, b"PK\x03\x04 not a zip", "broken.asice")
    assert broken.group_status == "RJCT" and broken.group_reasons == ["DS0B"]
    assert inst.balance(A_MAIN) == before
    assert _state(inst) == []
    assert not [p for p in inst.env.spool.awaiting(CLIENT_A).glob("*") if p.is_file()]
    inst.drop(data, "real.xml")  # the MsgId was not used up
    inst.run()
    [real] = inst.new_answers()
    assert real.group_status == "PDNG" and "0 of 2 signatures" in " ".join(real.group_info)
    _no_scratch_left(inst)


def test_a_container_in_test_gives_the_codes_in_would_give(
    signing: tuple[Installation, Pki], assert_valid: Any, container_data: None
) -> None:
    """SPEC §15: test/ checks "exactly as in in/ … rejections as usual". A container whose
    signatures would not count was answered in words alone (AddtlInf), where in/ gives each
    code in StsRsnInf — DS0F, DS0H, DS17 (a tester). A good one gives none."""
    inst, pki = signing
    data = batch(("T1", "10.00"), msg_id="TRY-CODES")
    two = signed("pay.xml", signed("pay.xml", data, pki.revoked, WHEN), PEOPLE["stranger"], WHEN)
    cases = {
        "foreign.asice": (signed("pay.xml", data, pki.foreign, WHEN), ["DS0F"]),
        "stranger.asice": (signed("pay.xml", data, PEOPLE["stranger"], WHEN), ["DS0H"]),
        "other-bytes.asice": (bad_containers("pay.xml", data, pki, WHEN)["other-bytes.asice"][0],
                              ["DS17"]),
        "two-bad.asice": (two, sorted(["DS0C", "DS0H"], key=lambda c: PRECEDENCE[Reason(c)])),
        "good.asice": (signed("pay.xml", data, pki.first, WHEN), []),
    }  # fmt: skip
    for name, (container, codes) in cases.items():
        answer = _trial(inst, container, name)
        assert answer.group_reasons == codes, (name, answer.group_info)
        # signatures reported, not required (SPEC §15): the group as its payment would go
        assert answer.group_status == "ACCP", name
        assert "trial run, nothing executed" in " ".join(answer.group_info), name
        assert_valid(answer.path, "pain.002.001.03")
    assert _state(inst) == []


def test_a_container_in_test_for_a_batch_waiting_in_in_is_judged_with_its_signatures(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """SPEC §15: a container put into test/ for a batch already waiting in in/ (its first
    signature given) is a trial of what in/ would do with it: its signatures judged and
    counted with those the batch has — it was answered "the same bytes as file N… would
    not be executed again" — and each of its payments judged as the run would judge it
    once authorised (it said ACCP for the batch without a word on its payments, one of
    which the real run rejected: a tester). Nothing is recorded: the batch still waits
    for the same signature, and the real container completes it."""
    inst, pki = signing
    nowhere = iban_lv("TREL", 9_100_000_000_999)  # no such treasury account: AC01 when run
    data = Batch(msg_id="WAIT-TRY").tx("W1", "10.00").tx("W2", "5.00", nowhere).build()
    before = inst.balance(A_MAIN)
    inst.drop(data, "pay.xml")
    inst.run()
    first = signed("pay.xml", data, pki.first, WHEN)
    inst.drop(first, "first.asice")
    inst.run()
    inst.new_answers()
    # the very bytes of the container in/ took: what in/ would do with them again (their
    # signature counted once already), not "the same bytes as file N" with OrgnlMsgId
    # UNKNOWN (the container's own row has no MsgId: a tester)
    same = _trial(inst, first, "first-again.asice")
    assert_valid(same.path, "pain.002.001.03")
    assert same.original_msg_id == "WAIT-TRY" and same.group_status == "PART"
    info = " ".join(same.group_info)
    assert "has signed already (counts once)" in info, info
    assert "it would need more signatures: 1 of 2 signatures" in info, info

    again = _trial(inst, signed("pay.xml", data, pki.first, WHEN), "again.asice")
    assert_valid(again.path, "pain.002.001.03")
    assert again.original_msg_id == "WAIT-TRY" and again.group_status == "PART"
    info = " ".join(again.group_info)
    assert "trial run, nothing executed" in info and "the same bytes" not in info, info
    assert "this container's signatures: " in info, info
    needs = "it would need more signatures: 1 of 2 signatures; a signatory with the second"
    assert needs in info, info
    assert again.statuses() == {"W1": "ACCP", "W2": "RJCT"}  # once signed
    assert again.tx("W2").reasons == ["AC01"]

    second = _trial(inst, signed("pay.xml", data, pki.second, WHEN), "second.asice")
    assert_valid(second.path, "pain.002.001.03")
    assert second.group_status == "PART", second.group_info
    info = " ".join(second.group_info)
    assert "authorised: 2 of 2 signatures; it would execute" in info, info
    assert second.statuses() == {"W1": "ACCP", "W2": "RJCT"}
    assert inst.balance(A_MAIN) == before and _state(inst) == ["waiting"]

    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    _, final = inst.new_answers()
    assert final.group_status == "PART" and final.statuses() == {"W1": "ACSC", "W2": "RJCT"}
    assert inst.balance(A_MAIN) == before - 1000


def _request(kind: str) -> bytes:
    if kind == "camt.060":
        day = TODAY.isoformat()
        wanted = pull_samples.Wanted(iban=A_MAIN, from_date=day, to_date=day)
        return pull_samples.to_bytes(pull_samples.camt060("05", [wanted], msg_id="REQ-SIGNED"))
    return pull_samples.to_bytes(pull_samples.camt055("09", msg_id="CXL-SIGNED"))


@pytest.mark.parametrize("kind", ["camt.060", "camt.055"])
def test_a_container_of_a_request_sent_before_is_ff01(
    signing: tuple[Installation, Pki], assert_valid: Any, kind: str
) -> None:
    """SPEC §11: a container whose data file is not a pain.001.001.03 is answered RJCT
    FF01 — also when its data file is the very bytes of a camt.060 sent before (it was
    answered as a batch "already executed"; the signature changes nothing) or of a
    camt.055 (whose status, its camt.029's `RJCR`, is no pain.002 status: the run failed
    on it three times and set the container aside unanswered)."""
    inst, pki = signing
    data = _request(kind)
    inst.drop(data, "req.xml")
    inst.run()
    inst.drop(signed("req.xml", data, pki.first, WHEN), "req.asice")
    inst.run()
    [answer] = inst.new_answers()
    assert_valid(answer.path, "pain.002.001.03")
    assert answer.group_status == "RJCT" and answer.group_reasons == ["FF01"], answer.group_info
    assert "not a batch (pain.001.001.03)" in " ".join(answer.group_info)


def test_a_container_named_like_a_plain_file_is_read_as_a_container(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """An ASiC-E container says what it is in its first bytes (a zip whose first entry is
    `mimetype`): uploaded as `sig.xml` it still counts its signature, as it would as
    `.asice`. (Read by its name as XML it was FF01, and since a repeat is told by its
    bytes, the same container could never be delivered again under its right name.)"""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="NAMED-1")
    inst.drop(data, "pay.xml")
    inst.run()
    inst.new_answers()
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "sig.xml")
    inst.run()
    [ack] = inst.new_answers()
    info = " ".join(ack.group_info)
    assert ack.original_msg_id == "NAMED-1" and ack.group_status == "PDNG", info
    assert "1 of 2 signatures" in info, info
    assert_valid(ack.path, "pain.002.001.03")


def test_a_signatures_answer_lists_the_waiting_batch_without_reading_it_again(
    signing: tuple[Installation, Pki], assert_valid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the batch's first answer listed (every transaction PDNG, why and until when) is
    kept with the waiting batch: the answer to a signature lists it from there, the same
    transactions with the same text, without parsing a 100,000-payment batch again for
    each signature; once the batch stops waiting its listing goes."""
    inst, pki = signing
    data = batch(("K1", "10.00"), ("K2", "5.00"), msg_id="KEPT-1")
    inst.drop(data, "pay.xml")
    inst.run()
    [first] = inst.new_answers()

    def not_again(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the waiting batch was read again")

    monkeypatch.setattr("gateway.waiting_report.reading.read", not_again)
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "first.asice")
    inst.run()
    [ack] = inst.new_answers()
    assert ack.statuses() == first.statuses() == {"K1": "PDNG", "K2": "PDNG"}
    assert ack.tx("K2").additional_info == first.tx("K2").additional_info
    assert "1 of 2 signatures" in " ".join(ack.group_info)
    assert_valid(ack.path, "pain.002.001.03")
    monkeypatch.undo()
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.run()
    assert inst.new_answers()[-1].group_status == "ACSC"
    with inst.env.engine.connect() as conn:
        assert conn.execute(select(db.awaiting_listings)).all() == []


def test_a_container_inside_a_container_is_ff01_and_leaves_the_inner_bytes_free(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """A container whose data file is itself a signature container is FF01 (its data file
    is no pain.001.001.03, SPEC §11) — and its inner container's bytes are not recorded
    as an upload: sent afterwards as they are, they count their signature (they were
    answered as a repeat of the FF01, and the batch waited on)."""
    inst, pki = signing
    data = batch(("N1", "10.00"), msg_id="NESTED-1")
    inst.drop(data, "pay.xml")
    inst.run()
    inst.new_answers()
    inner = signed("pay.xml", data, pki.first, WHEN)
    signature = make_signature("inner.asice", inner, pki.first.key, pki.first.cert, WHEN)
    nested = asice_writer.write_container(
        "inner.asice", inner, [asice.SignatureFile("META-INF/signatures0.xml", signature)],
        moment=WHEN,
    )  # fmt: skip
    inst.drop(nested, "nested.asice")
    inst.run()
    [refused] = inst.new_answers()
    assert refused.group_status == "RJCT" and refused.group_reasons == ["FF01"], refused.group_info
    assert "inner.asice is a signature container" in " ".join(refused.group_info)
    assert_valid(refused.path, "pain.002.001.03")
    inst.drop(inner, "first.asice")
    inst.run()
    [ack] = inst.new_answers()
    info = " ".join(ack.group_info)
    assert ack.original_msg_id == "NESTED-1" and "1 of 2 signatures" in info, info


def test_a_signature_not_needed_is_not_recorded_as_counted(tmp_path: Path) -> None:
    """One container signed by First, Second and Third for a level-2 batch: the batch runs
    on the first two; the findings say Third's was not counted (they said "counted" of
    every signature without a reason code: an outside tester), and the signatures kept
    count two."""
    base = tmp_path / "gw"
    config = write_config(base)
    pki, files = make_pki_files(tmp_path / "pki", WHEN)
    third = testpki.new_signatory(pki.ca, "Third Person", now=WHEN)
    testpki.write_issued(third, tmp_path / "pki" / "signatories", "third")
    configure(
        config, files, client_id="iestade-a", iban=A_MAIN, level=2,
        signatories={"First": ("first", "first"), "Second": ("second", "second"),
                     "Third": ("first", tmp_path / "pki" / "signatories" / "third.pem")},
    )  # fmt: skip
    inst = Installation.open(base, config, now=WHEN, need_sealer=True)
    try:
        data = batch(("T1", "10.00"), msg_id="THREE")
        container = data
        for person in (pki.first, pki.second, third):
            container = signed("pay.xml", container, person, WHEN)
        inst.drop(container, "pay.asice")
        inst.run()
        assert inst.new_answers()[-1].group_status == "ACSC"
        [shelved] = (inst.spool / "archive" / "iestade-a").glob("*/*pay.asice.data.xml")
        findings = shelved.with_name(shelved.name + ".findings.txt").read_text()
        effects = [line.split("; ")[-1].split(":")[0]
                   for line in findings.split("Signatures")[1].splitlines()[1:]]  # fmt: skip
        assert effects == ["counted", "counted", "not counted"], findings
        with inst.env.engine.connect() as conn:
            kept = conn.execute(select(db.signatures.c.signatory, db.signatures.c.counted)).all()
        assert sorted(map(tuple, kept)) == [("First", True), ("Second", True), ("Third", False)]
    finally:
        inst.close()


def test_a_signature_counted_before_migration_0017_still_counts(
    signing: tuple[Installation, Pki],
) -> None:
    """A batch waiting with First's signature when the gateway is upgraded (0016 → 0017):
    the upgrade marks that signature counted, so Second's completes the batch."""
    from pathlib import Path as _Path

    from alembic import command as alembic_command

    from gateway import migrations as gateway_migrations
    from ledger import migrations as ledger_migrations

    inst, pki = signing
    data = batch(("U1", "3.00"), msg_id="UPGRADE-1")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "pay.asice")
    inst.run()
    assert "1 of 2 signatures" in " ".join(inst.new_answers()[-1].group_info)
    assert gateway_migrations.__file__ is not None
    config = ledger_migrations.alembic_config(
        inst.env.engine, _Path(gateway_migrations.__file__).parent,
        gateway_migrations.VERSION_TABLE,
    )  # fmt: skip
    alembic_command.downgrade(config, "0016")  # as the release before wrote it
    gateway_migrations.run_upgrade(inst.env.engine)
    with inst.env.engine.connect() as conn:
        assert conn.execute(select(db.signatures.c.counted)).scalars().all() == [True]
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "pay-2.asice")
    inst.run()
    assert inst.new_answers()[-1].group_status == "ACSC"


def test_a_batch_completed_after_the_cut_off_waits_for_the_next_day_even_if_taken_then(
    signing: tuple[Installation, Pki],
) -> None:
    """SPEC §11: a batch runs as if received when it was complete. Its second signature
    came at 23:50 (after the cut-offs) and was taken at 00:00:05 (the daemon was down): the
    batch ran as if received at 00:00:05 and executed at once, ahead of the payments
    accepted for that day before it (an outside reviewer). It runs as if received at 23:50:
    its payment waits for the day and runs with its due payments."""
    inst, pki = signing
    data = batch(("E1", "10.00"), msg_id="LATE-SIG")
    inst.drop(data, "pay.xml")
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "pay.asice")
    inst.run()
    inst.new_answers()
    evening = dt.datetime.combine(TODAY, dt.time(23, 50), RIGA)
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "pay-2.asice")
    receipt = inst.env.spool.receipts(CLIENT_A) / "pay-2.asice.json"
    receipt.write_text(json.dumps({"received_at": evening.astimezone(dt.UTC).isoformat()}))
    thursday = dt.date(2026, 11, 26)
    inst.clock.set(dt.datetime.combine(thursday, dt.time(0, 0, 5), RIGA))
    inst.run()
    _, final, due = inst.new_answers()  # the container's answer, the batch's, the due run's
    assert final.statuses() == {"E1": "PDNG"}
    assert final.tx("E1").additional_info == [
        f"received 23:50, after the 15:30 cut-off for external payments; executes {thursday}"
    ]
    assert due.statuses() == {"E1": "ACSC"}  # with the day's due payments, in file order


def _waits_for_its_second(inst: Installation, pki: Pki, msg_id: str) -> bytes:
    """A batch of A's, sent in a container with its first signature: it waits (PDNG)."""
    data = Batch(msg_id=msg_id).tx("E1", "1.00").build()
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "pay.asice")
    inst.run()
    [ack] = inst.new_answers()
    assert ack.group_status == "PDNG"
    return data


def test_an_expiry_whose_awaiting_folder_refuses_holds_that_client_alone(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day A's batch expires its awaiting/ refuses (an operator's chmod): the expiry,
    which reads the batch again to answer it, failed every client's pass (the unit of work
    of every client's expiring batches). Now A is held and its batch expires once the
    folder is mended, then goes to its shelf; B's file is answered meanwhile."""
    from tests.integration.test_client_faults import refuse_within

    inst, pki = signing
    _waits_for_its_second(inst, pki, "WAIT-9")
    inst.clock.set(WHEN + dt.timedelta(days=7))
    inst.drop(Batch(debtor=B_MAIN, msg_id="B1").tx("B1-1", "1.00").build(), "b1.xml", CLIENT_B)
    awaiting = inst.spool / "awaiting" / CLIENT_A
    mend = refuse_within(monkeypatch, awaiting)
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["B1"]
    assert result.held[CLIENT_A].folder == str(awaiting)
    assert _state(inst) == ["waiting"] and inst.new_answers() == []
    mend()
    assert inst.run().held == {}
    [expired] = inst.new_answers()
    assert expired.group_reasons == ["DS24"] and _state(inst) == ["expired"]
    assert list(awaiting.glob("*pay.asice.data.xml")) == []
    assert list((inst.spool / "rejected" / CLIENT_A).glob("*/*pay.asice.data.xml"))


def test_a_late_signature_during_a_hold_over_the_day_does_not_execute_an_expired_batch(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) A's batch expires at the start of Wed 2 Dec; its awaiting/
    refuses that day, so the expiry waits. A's second signature arrives on Wed at 11:00
    (after the expiry: SPEC §11, it changes nothing). The operator mends the folder on
    Thursday: the container, received before Thursday's start, ran before the expiry and
    executed the batch. A signature received once the waiting time is over counts for
    nothing, whenever it is run."""
    from tests.integration.test_client_faults import refuse_within

    inst, pki = signing
    data = _waits_for_its_second(inst, pki, "WAIT-L")
    before = inst.balance(A_MAIN)
    inst.clock.set(WHEN + dt.timedelta(days=7))  # Wed 2 Dec 10:00, the expiry day
    awaiting = inst.spool / "awaiting" / CLIENT_A
    mend = refuse_within(monkeypatch, awaiting)
    assert CLIENT_A in inst.run().held and _state(inst) == ["waiting"]
    inst.clock.set(WHEN + dt.timedelta(days=7, hours=1))  # 11:00: after the expiry
    inst.drop(signed("pay.xml", data, pki.second, inst.clock.now()), "late.asice")
    receipt = inst.env.spool.receipts(CLIENT_A) / "late.asice.json"  # as the SFTP server keeps
    receipt.write_text(json.dumps({"received_at": inst.clock.now().isoformat()}))
    assert CLIENT_A in inst.run().held  # the container waits with its client
    inst.clock.set(WHEN + dt.timedelta(days=8))  # Thursday 10:00: the operator mends it
    mend()
    (late,) = inst.run().outcomes
    answers = inst.new_answers()
    assert _state(inst) == ["expired"], [(a.group_status, a.group_reasons) for a in answers]
    assert inst.balance(A_MAIN) == before
    # its answer and the expiry's follow-up it wrote, both named (its log line counts them)
    assert sorted((late.answer or "").split(", ")) == sorted(a.path.name for a in answers)


def _waits(inst: Installation, data: bytes) -> None:
    """A's batch uploaded as it is: it waits for its signatures (PDNG)."""
    inst.drop(data, "pay.xml")
    inst.run()
    [ack] = inst.new_answers()
    assert ack.group_status == "PDNG"


def _both_sign_beside_b(inst: Installation, pki: Pki, data: bytes) -> None:
    """A's first and second signatories' containers for `data`, and a file of B's."""
    inst.drop(signed("pay.xml", data, pki.first, WHEN), "first.asice")
    inst.drop(signed("pay.xml", data, pki.second, WHEN), "second.asice")
    inst.drop(Batch(debtor=B_MAIN, msg_id="B1").tx("B1-1", "1.00").build(), "b1.xml", CLIENT_B)


def _awaiting_batch(inst: Installation, name: str) -> Path:
    [path] = [p for p in (inst.spool / "awaiting" / CLIENT_A).glob(f"*__{name}")]
    return path

def test_a_signature_completing_a_batch_whose_file_refuses_holds_that_client_alone(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) A's waiting batch file in awaiting/ cannot be opened (mode 000).
    Its last signature arrived with B's file: the run of the batch raised in the group's
    transaction, and the group and the pass failed as a fault of the machine, B waiting,
    every pass. Now that file's run is rolled back alone and A is held."""
    from tests.integration.test_client_faults import refuse_within

    inst, pki = signing
    data = Batch(msg_id="WAIT-R").tx("E1", "1.00").build()
    _waits(inst, data)
    refuse_within(monkeypatch, _awaiting_batch(inst, "pay.xml"))
    _both_sign_beside_b(inst, pki, data)
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["B1"]
    assert CLIENT_A in result.held


def test_a_clients_later_file_waits_behind_its_file_held_in_the_same_group(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Last stop's leftover.) A's last signature is held (its batch's file in awaiting/
    refuses) and A's next file, received after it, ran in the same group ahead of it: it
    could spend the money the signed batch was to pay. A's files run in the order they
    came: the later one waits behind the held one, in work/, and both run once mended."""
    from tests.integration.test_client_faults import refuse_within

    inst, pki = signing
    data = Batch(msg_id="WAIT-O").tx("E1", "1.00").build()
    _waits(inst, data)
    mend = refuse_within(monkeypatch, _awaiting_batch(inst, "pay.xml"))
    _both_sign_beside_b(inst, pki, data)
    inst.clock.set(WHEN + dt.timedelta(minutes=1))  # received after the signatures
    inst.drop(Batch(debtor=A_SMALL, msg_id="A2").tx("A2-1", "1.00").build(), "a2.xml")
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["B1"]
    assert CLIENT_A in result.held
    waiting = sorted(p.name.split("__")[-1] for p in (inst.spool / "work" / CLIENT_A).iterdir())
    assert waiting == ["a2.xml", "first.asice", "second.asice"]
    with inst.env.engine.connect() as conn:
        recorded = conn.execute(select(db.files.c.msg_id).order_by(db.files.c.id)).scalars()
        assert list(recorded) == ["WAIT-O", None, "B1"]  # the first signature; not A2
    mend()
    again = inst.run()
    assert again.held == {} and _state(inst) == ["executed"]
    assert [(o.msg_id, o.group_status) for o in again.outcomes][-1] == ("A2", "ACSC")


def test_a_completed_batch_whose_awaiting_folder_is_not_writable_stops_no_pass(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) A's awaiting/ listable but not writable (mode 0555): nothing
    holds A before its files run. A's last signature executes its batch; the tidy of
    awaiting/ after the commit failed the pass as the machine's fault, B's file, committed
    and answered in that group, never logged `file.processed`. Now A alone is held."""
    inst, pki = signing
    data = Batch(msg_id="WAIT-W").tx("E1", "1.00").build()
    _waits(inst, data)
    awaiting = inst.spool / "awaiting" / CLIENT_A
    real = os.replace

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        for each in (src, dst):
            if Path(os.fsdecode(each)).parent == awaiting:
                raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(src),
                                      None, os.fsdecode(dst))
        real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    _both_sign_beside_b(inst, pki, data)
    with structlog.testing.capture_logs() as logged:
        result = inst.run()
    assert CLIENT_A in result.held and "B1" in [o.msg_id for o in result.outcomes]
    assert [e["msg_id"] for e in logged if e["event"] == "file.processed"].count("B1") == 1


def test_a_signature_received_in_time_while_held_is_not_expired_by_the_days_start(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) A is held (its out/ refuses) when its completing signature is
    received, in time, the day before its batch expires: the signature waits with A's
    files. The next day's expiry expired the batch all the same (only a refusing awaiting/
    stopped it), and once A was mended its signature changed nothing. A held client's
    batches wait with its files; mended, the signature completes the batch."""
    from tests.integration.test_client_faults import _refuse_into

    inst, pki = signing
    data = _waits_for_its_second(inst, pki, "WAIT-H")
    before = inst.balance(A_MAIN)
    inst.clock.set(WHEN + dt.timedelta(days=6, hours=4))  # Tue 1 Dec 14:00
    mend = _refuse_into(monkeypatch, inst.outbox(CLIENT_A))
    inst.drop(b"not xml", "junk.xml")  # its FF01 answer waits: A held
    assert CLIENT_A in inst.run().held
    inst.clock.set(WHEN + dt.timedelta(days=6, hours=5))  # Tue 15:00: in time
    inst.drop(signed("pay.xml", data, pki.second, inst.clock.now()), "second.asice")
    receipt = inst.env.spool.receipts(CLIENT_A) / "second.asice.json"
    receipt.write_text(json.dumps({"received_at": inst.clock.now().isoformat()}))
    assert CLIENT_A in inst.run().held
    inst.clock.set(WHEN + dt.timedelta(days=7))  # Wednesday: the day it would expire
    assert CLIENT_A in inst.run().held and _state(inst) == ["waiting"]
    inst.clock.set(WHEN + dt.timedelta(days=8))  # Thursday: mended
    mend()
    inst.run()
    assert _state(inst) == ["executed"] and inst.balance(A_MAIN) < before
