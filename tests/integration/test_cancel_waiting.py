"""A camt.055 for a batch still waiting for signatures (SPEC §11, §15), through the file
run on SQLite and PostgreSQL: naming the whole batch (its MsgId, its payment information
or all its payments) cancels it — camt.029 CNCL/ACCR, a follow-up pain.002 RJCT DS02, the
batch leaves awaiting/ for rejected/, and signatures arriving later change nothing; naming
only part of it is refused (RJCR AGNT) and it goes on waiting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyiso20022.camt.camt_029_001_03 import Document as Camt029v03
from sqlalchemy import func, select, update

from gateway import awaiting_shelf, db
from gateway.clock import FixedClock
from gateway.samples import SamplePmtInf, SampleTx
from gateway.status import collect
from gateway.status_report import render
from gateway.testpki import Pki
from tests.integration.pull_fixtures import Found, Out
from tests.integration.test_cancellations import by_type, tx_statuses
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    DEFAULT_NOW,
    EXTERNAL,
    EXTERNAL_BIC,
    TODAY,
    Batch,
    Installation,
    batch,
    write_config,
)
from tests.signature_fixtures import configure, make_pki_files, signed
from tests.unit import pull_samples as s

WHEN = DEFAULT_NOW.astimezone(dt.UTC)
BATCH = "WAIT-C"
DATA = batch(("E1", "10.00"), ("E2", "5.00"), msg_id=BATCH)


def signing_installation(base: Path, pki_dir: Path, database_url: str) -> tuple[Installation, Pki]:
    """Client A's main account needs two signatures: "First" and "Second"."""
    config = write_config(base, database_url=database_url)
    pki, files = make_pki_files(pki_dir, WHEN)
    configure(
        config, files, client_id=CLIENT_A, iban=A_MAIN, level=2,
        signatories={"First": ("first", "first"), "Second": ("second", "second")},
    )  # fmt: skip
    return Installation.open(base, config, now=WHEN), pki


@pytest.fixture
def signing(tmp_path: Path, database_url: str) -> Iterator[tuple[Installation, Pki]]:
    inst, pki = signing_installation(tmp_path / "gw", tmp_path / "pki", database_url)
    yield inst, pki
    inst.close()


def waits(inst: Installation, data: bytes = DATA, name: str = "pay.xml") -> Out:
    """Submit `data`; it waits for signatures. An `Out` past its first answer."""
    out = Out(inst.outbox(CLIENT_A))
    inst.drop(data, name)
    inst.run()
    (first,) = out.new()
    assert first.text("OrgnlGrpInfAndSts/GrpSts") == "PDNG"
    assert state(inst) == "waiting"
    return out


def state(inst: Installation, msg_id: str = BATCH) -> str:
    a, f = db.awaiting.c, db.files.c
    with inst.env.engine.connect() as conn:
        return str(
            conn.execute(
                select(a.state).join(db.files, f.id == a.file_id).where(f.msg_id == msg_id)
            ).scalar_one()
        )


def payments_of(inst: Installation, msg_id: str = BATCH) -> int:
    p = db.payments.c
    with inst.env.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(p.msg_id == msg_id)).scalar_one())


def request(version: str = "09", msg_id: str = "CXL-W1", **kw: Any) -> bytes:
    kw.setdefault("original_msg_id", BATCH)
    return s.to_bytes(s.camt055(version, msg_id=msg_id, **kw))


def whole_batch(version: str = "09", msg_id: str = "CXL-W1", original: str = BATCH) -> bytes:
    return request(version, msg_id, original_msg_id=original, whole_group=True, payment_infos=())


def txs(*named: tuple[str, str | None], pmt: str = f"{BATCH}-P1") -> s.CancelPmtInf:
    return s.CancelPmtInf(
        pmt_inf_id=pmt,
        transactions=tuple(
            s.CancelTx(end_to_end_id=e2e, instr_id=None, amount=amount, cancellation_id=f"C-{e2e}")
            for e2e, amount in named
        ),
    )


def asked(
    inst: Installation, out: Out, data: bytes, name: str = "cxl.xml"
) -> dict[str, list[Found]]:
    inst.drop(data, name)
    result = inst.run()
    assert len(result.outcomes) == 1 and inst.left_in(CLIENT_A) == []
    return by_type(out.new())


def check_cancelled(inst: Installation, found: dict[str, list[Found]], assert_valid: Any) -> None:
    """The batch was cancelled as a whole: RJCT DS02 follow-up, shelved in rejected/."""
    (follow_up,) = found["pain.002.001.03"]
    assert_valid(follow_up.path, "pain.002.001.03")
    assert follow_up.text("OrgnlGrpInfAndSts/OrgnlMsgId") == BATCH
    assert follow_up.text("OrgnlGrpInfAndSts/GrpSts") == "RJCT"
    assert follow_up.texts("TxInfAndSts/OrgnlEndToEndId") == ["E1", "E2"]
    assert follow_up.texts("TxInfAndSts/TxSts") == ["RJCT", "RJCT"]
    assert set(follow_up.texts("StsRsnInf/Rsn/Cd")) == {"DS02"}
    assert state(inst) == "annulled" and payments_of(inst) == 0
    awaiting = inst.spool / "awaiting" / CLIENT_A
    assert not [p for p in awaiting.iterdir() if not p.name.startswith(".")]
    (shelved,) = (inst.spool / "rejected" / CLIENT_A).glob("*/*pay.xml")
    findings = shelved.with_name(shelved.name + ".findings.txt").read_text()
    assert "Result:      RJCT DS02 (" in findings and "cancelled by the client at" in findings
    assert f"MsgId:       {BATCH}\n" in findings and "Transactions: RJCT 2\n" in findings
    assert "awaiting signatures" not in render(collect(inst.env, FixedClock(WHEN)))


def signatures_change_nothing(inst: Installation, pki: Pki, out: Out) -> None:
    before = inst.balance(A_MAIN)
    for n, who in enumerate((pki.first, pki.second)):
        inst.drop(signed("pay.xml", DATA, who, WHEN), f"pay-{n}.asice")
        inst.run()
        (answer,) = out.new()
        assert answer.text("OrgnlGrpInfAndSts/OrgnlMsgId") == BATCH
        assert answer.text("OrgnlGrpInfAndSts/GrpSts") == "RJCT"
        info = " ".join(answer.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
        assert "cancelled by the client before it was signed" in info, info
        assert "changes nothing" in info, info
    assert inst.balance(A_MAIN) == before
    assert state(inst) == "annulled" and payments_of(inst) == 0


@pytest.mark.parametrize("version", ["01", "09"])
def test_whole_batch_waiting_for_signatures_is_cancelled_and_never_executes(
    signing: tuple[Installation, Pki], version: str, assert_valid: Any
) -> None:
    inst, pki = signing
    out = waits(inst)
    data = whole_batch(version)
    if version == "09":
        assert_valid(data, "camt.055.001.09")
    found = asked(inst, out, data)
    message = "camt.029.001.10" if version == "09" else "camt.029.001.03"
    (answer,) = found[message]
    if version == "09":
        assert_valid(answer.path, message)
        assert answer.text("Sts/Conf") == "CNCL"
    else:
        s.parse_back(answer.path.read_bytes(), Camt029v03)
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["ACCR"]
    assert tx_statuses(answer) == [("E1", "ACCR", []), ("E2", "ACCR", [])]
    check_cancelled(inst, found, assert_valid)
    signatures_change_nothing(inst, pki, out)


def test_the_payment_information_or_every_payment_cancels_it(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    inst, _ = signing
    out = waits(inst)
    pmt = s.CancelPmtInf(pmt_inf_id=f"{BATCH}-P1", whole=True, transactions=())
    found = asked(inst, out, request(group_level=False, payment_infos=(pmt,)))
    (answer,) = found["camt.029.001.10"]
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "CNCL"
    assert answer.texts("OrgnlPmtInfAndSts/PmtInfCxlSts") == ["ACCR"]
    check_cancelled(inst, found, assert_valid)

    # a second batch, every payment named (one with its amount): cancelled too
    second = batch(("F1", "1.00"), ("F2", "2.00"), msg_id="WAIT-D")
    waits_d = Out(inst.outbox(CLIENT_A))
    inst.drop(second, "pay-d.xml")
    inst.run()
    waits_d.new()
    found = asked(
        inst, waits_d,
        request(original_msg_id="WAIT-D", msg_id="CXL-W2",
                payment_infos=(txs(("F1", "1.00"), ("F2", None), pmt="WAIT-D-P1"),)),
    )  # fmt: skip
    (answer,) = found["camt.029.001.10"]
    assert answer.text("Sts/Conf") == "CNCL"
    assert tx_statuses(answer) == [("F1", "ACCR", []), ("F2", "ACCR", [])]
    assert found["pain.002.001.03"][0].texts("TxInfAndSts/StsRsnInf/Rsn/Cd") == ["DS02"] * 2
    assert state(inst, "WAIT-D") == "annulled"


def test_every_notprovided_payment_named_by_its_amount_cancels_a_waiting_batch(
    signing: tuple[Installation, Pki],
) -> None:
    """NOTPROVIDED may repeat (SPEC §6): its payments are told apart by their original
    amounts, so naming both (5.00 and 6.00) names every payment and cancels the batch;
    naming NOTPROVIDED twice without amounts says which of neither (NOOR)."""
    inst, _ = signing
    data = batch(("NOTPROVIDED", "5.00"), ("NOTPROVIDED", "6.00"), msg_id="WAIT-N")
    out = Out(inst.outbox(CLIENT_A))
    inst.drop(data, "pay-n.xml")
    inst.run()
    out.new()
    pmt = "WAIT-N-P1"
    both = txs(("NOTPROVIDED", None), ("NOTPROVIDED", None), pmt=pmt)
    found = asked(inst, out, request(original_msg_id="WAIT-N", payment_infos=(both,)))
    (answer,) = found["camt.029.001.10"]
    assert tx_statuses(answer) == [("NOTPROVIDED", "RJCR", ["NOOR"])] * 2
    assert "2 payments of WAIT-N-P1 have EndToEndId NOTPROVIDED" in " ".join(
        answer.texts("AddtlInf")
    )
    assert state(inst, "WAIT-N") == "waiting"
    named = txs(("NOTPROVIDED", "6.00"), ("NOTPROVIDED", "5.00"), pmt=pmt)
    found = asked(inst, out, request(original_msg_id="WAIT-N", msg_id="CXL-W2",
                                     payment_infos=(named,)), name="cxl2.xml")  # fmt: skip
    (answer,) = found["camt.029.001.10"]
    assert answer.text("Sts/Conf") == "CNCL"
    assert answer.texts("TxInfAndSts/OrgnlInstdAmt") == ["6.00", "5.00"]
    assert state(inst, "WAIT-N") == "annulled"


def test_part_of_a_waiting_batch_is_refused_and_it_goes_on_waiting(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """SPEC §11 signs whole batches: cancelling one payment of a waiting batch is refused
    (RJCR AGNT, saying why); a wrong amount or an unknown payment is NOOR. The batch
    waits on, and its signatures execute all of it."""
    inst, pki = signing
    out = waits(inst)
    before = inst.balance(A_MAIN)
    for n, named in enumerate(((("E1", "10.00"),), (("E1", None), ("E2", "5.01")))):
        found = asked(inst, out, request(msg_id=f"CXL-P{n}", payment_infos=(txs(*named),)),
                      name=f"cxl-{n}.xml")  # fmt: skip
        (answer,) = found["camt.029.001.10"]  # and no follow-up: nothing changed
        assert_valid(answer.path, "camt.029.001.10")
        assert answer.text("Sts/Conf") == "RJCR"
        assert state(inst) == "waiting"
        results = tx_statuses(answer)
        if n == 0:
            assert results == [("E1", "RJCR", ["AGNT"])]
            info = " ".join(answer.texts("CxlStsRsnInf/AddtlInf"))
            assert f"the batch {BATCH} is waiting for signatures" in info, info
            assert "only as a whole" in info, info
        else:
            assert results == [("E1", "RJCR", ["AGNT"]), ("E2", "RJCR", ["NOOR"])]
            assert "original amount 5.01 EUR" in " ".join(answer.texts("AddtlInf"))
    for n, who in enumerate((pki.first, pki.second)):
        inst.drop(signed("pay.xml", DATA, who, WHEN), f"pay-{n}.asice")
        inst.run()
    assert state(inst) == "executed" and inst.balance(A_MAIN) == before - 1500
    # executed now: a cancellation finds its payments executed, the ordinary way
    found = asked(inst, out, whole_batch(msg_id="CXL-LATE"), name="late.xml")
    (answer,) = found["camt.029.001.10"]
    assert tx_statuses(answer) == [("E1", "RJCR", ["AGNT"]), ("E2", "RJCR", ["AGNT"])]
    assert "already executed" in " ".join(answer.texts("AddtlInf"))


def test_a_cancelled_batch_cancelled_again_is_agnt(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    inst, _ = signing
    out = waits(inst)
    asked(inst, out, whole_batch())
    for n, data in enumerate((whole_batch(msg_id="CXL-AGAIN"),
                              request(msg_id="CXL-AGAIN-2", payment_infos=(txs(("E1", None)),)))):
        found = asked(inst, out, data, name=f"again-{n}.xml")
        (answer,) = found["camt.029.001.10"]  # no follow-up
        assert_valid(answer.path, "camt.029.001.10")
        assert answer.text("Sts/Conf") == "RJCR"
        assert "already cancelled" in " ".join(answer.texts("AddtlInf"))
        assert "AGNT" in answer.texts("CxlStsRsnInf/Rsn/Cd")
    assert state(inst) == "annulled"


def test_a_trial_of_a_batch_needing_signatures_says_what_it_would_need(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """SPEC §15: in `/test` signature levels are reported ("would need 2 signatures") but
    not required — each payment as it would go once signed, the group as its payments
    give (§6: all ACCP, so ACCP)."""
    inst, _ = signing
    out = Out(inst.outbox(CLIENT_A))
    before = inst.balance(A_MAIN)
    (inst.env.spool.trial_box(CLIENT_A) / "try.xml").write_bytes(DATA)
    (outcome,) = inst.run().outcomes
    assert outcome.shelf == "trials" and outcome.group_status == "ACCP"
    (answer,) = out.new()
    assert "_TEST_pain.002.001.03_" in answer.path.name
    assert_valid(answer.path, "pain.002.001.03")
    assert answer.text("OrgnlGrpInfAndSts/GrpSts") == "ACCP"
    info = " ".join(answer.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
    assert "trial run, nothing executed" in info, info
    assert (
        "would need 2 signatures: a signatory with the first right and one with the "
        "second must sign" in info
    ), info
    assert answer.texts("TxInfAndSts/TxSts") == ["ACCP", "ACCP"]
    assert inst.balance(A_MAIN) == before
    with inst.env.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.awaiting)).scalar_one() == 0
    # every payment refused as if signed: in/ would still hold it for the signatures
    # first, and the trial says so (it said nothing of them), its status the payments'
    refused = batch(("R1", "0.001"), msg_id="TRY-R")
    (inst.env.spool.trial_box(CLIENT_A) / "try-r.xml").write_bytes(refused)
    inst.run()
    (all_refused,) = out.new()
    assert all_refused.text("OrgnlGrpInfAndSts/GrpSts") == "RJCT"
    info = " ".join(all_refused.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
    assert "would need 2 signatures: a signatory with the first right" in info, info
    assert all_refused.texts("TxInfAndSts/TxSts") == ["RJCT"]
    # an account that needs no signature: no word of them
    other = batch(("B1", "1.00"), msg_id="TRY-B", debtor=A_SMALL)
    (inst.env.spool.trial_box(CLIENT_A) / "try-b.xml").write_bytes(other)
    inst.run()
    (plain,) = out.new()
    assert plain.text("OrgnlGrpInfAndSts/GrpSts") == "ACCP"
    assert "signature" not in " ".join(plain.texts("AddtlInf"))


def test_one_payment_information_of_two_is_part_of_the_batch(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    """A batch of two payment informations: one of them named is refused; both named
    (under the batch's MsgId) cancel it, each payment ACCR."""
    inst, _ = signing
    two = Batch(msg_id="WAIT-2").tx("G1", "1.00")
    two.extra_pmts.append(
        SamplePmtInf(pmt_inf_id="WAIT-2-P2", debtor_iban=A_MAIN, execution_date=TODAY.isoformat(),
                     transactions=[SampleTx("G2", "2.00", EXTERNAL, creditor_bic=EXTERNAL_BIC)],
                     nb_of_txs="1", ctrl_sum="2.00")
    )  # fmt: skip
    out = Out(inst.outbox(CLIENT_A))
    inst.drop(two.build(), "pay-2.xml")
    inst.run()
    out.new()
    whole = [
        s.CancelPmtInf(pmt_inf_id=p, whole=True, transactions=())
        for p in ("WAIT-2-P1", "WAIT-2-P2")
    ]
    found = asked(inst, out, request(original_msg_id="WAIT-2", payment_infos=whole[1:]))
    (answer,) = found["camt.029.001.10"]
    assert answer.text("Sts/Conf") == "RJCR" and "pain.002.001.03" not in found
    assert answer.texts("OrgnlPmtInfAndSts/PmtInfCxlSts") == ["RJCR"]
    assert "only as a whole" in " ".join(answer.texts("AddtlInf"))
    assert state(inst, "WAIT-2") == "waiting"
    found = asked(
        inst, out, request(original_msg_id="WAIT-2", msg_id="CXL-BOTH", payment_infos=whole),
        name="both.xml",
    )
    (answer,) = found["camt.029.001.10"]
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "CNCL"
    assert answer.texts("OrgnlPmtInfAndSts/PmtInfCxlSts") == ["ACCR", "ACCR"]
    (follow_up,) = found["pain.002.001.03"]
    assert follow_up.texts("TxInfAndSts/OrgnlEndToEndId") == ["G1", "G2"]
    assert state(inst, "WAIT-2") == "annulled" and payments_of(inst, "WAIT-2") == 0


def test_a_batch_sent_in_its_container_is_cancelled_and_an_expired_one_is_agnt(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    inst, pki = signing
    out = Out(inst.outbox(CLIENT_A))
    inst.drop(signed("pay.xml", DATA, pki.first, WHEN), "pay.asice")  # the submission
    inst.drop(batch(("H1", "1.00"), msg_id="WAIT-OLD"), "old.xml")
    inst.run()
    out.new()
    assert state(inst) == "waiting" and state(inst, "WAIT-OLD") == "waiting"
    found = asked(inst, out, whole_batch())
    assert found["camt.029.001.10"][0].text("Sts/Conf") == "CNCL"
    (follow_up,) = found["pain.002.001.03"]
    assert follow_up.texts("TxInfAndSts/StsRsnInf/Rsn/Cd") == ["DS02", "DS02"]
    assert state(inst) == "annulled"
    assert list((inst.spool / "rejected" / CLIENT_A).glob("*/*pay.asice.data.xml"))

    inst.clock.set(WHEN + dt.timedelta(days=7))
    inst.run()
    out.new()
    assert state(inst, "WAIT-OLD") == "expired"
    found = asked(inst, out, whole_batch(msg_id="CXL-OLD", original="WAIT-OLD"))
    (answer,) = found["camt.029.001.10"]  # and no follow-up
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "RJCR"
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["RJCR"]
    assert "expired waiting for signatures" in " ".join(answer.texts("AddtlInf"))


@pytest.mark.parametrize("how", ["every payment", "its payment information"])
def test_naming_all_of_it_and_more_cancels_it_and_the_rest_is_noor(
    signing: tuple[Installation, Pki], assert_valid: Any, how: str
) -> None:
    """Every payment of the waiting batch named, and beside them one it does not have (a
    payment E9, or a payment information NO-SUCH-P9): the batch is cancelled — each of its
    payments was asked to be — and the unknown one is NOOR, as for any payment (PACR)."""
    inst, _ = signing
    out = waits(inst)
    if how == "every payment":
        infos = (txs(("E1", None), ("E2", "5.00"), ("E9", None)),)
        expected = [("E1", "ACCR", []), ("E2", "ACCR", []), ("E9", "RJCR", ["NOOR"])]
    else:
        unknown = s.CancelPmtInf(pmt_inf_id="NO-SUCH-P9", whole=True, transactions=())
        infos = (s.CancelPmtInf(pmt_inf_id=f"{BATCH}-P1", whole=True, transactions=()), unknown)
        expected = [("E1", "ACCR", []), ("E2", "ACCR", [])]
    found = asked(inst, out, request(payment_infos=infos))
    (answer,) = found["camt.029.001.10"]
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "PACR"
    assert tx_statuses(answer) == expected
    if how != "every payment":
        assert answer.texts("OrgnlPmtInfAndSts/PmtInfCxlSts") == ["ACCR", "RJCR"]
    check_cancelled(inst, found, assert_valid)


def test_a_batch_without_its_bytes_is_cancelled(
    signing: tuple[Installation, Pki], assert_valid: Any
) -> None:
    inst, _ = signing
    out = waits(inst)
    # the waiting batch's file lost from awaiting/: the whole batch is cancelled all the same
    (shelved,) = [
        p for p in (inst.spool / "awaiting" / CLIENT_A).iterdir() if p.name.endswith("pay.xml")
    ]
    shelved.unlink()
    found = asked(inst, out, whole_batch(msg_id="CXL-GONE"), name="gone.xml")
    (answer,) = found["camt.029.001.10"]
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "CNCL"
    assert answer.texts("OrgnlGrpInfAndSts/GrpCxlSts") == ["ACCR"]
    (follow_up,) = found["pain.002.001.03"]
    assert_valid(follow_up.path, "pain.002.001.03")
    assert follow_up.text("OrgnlGrpInfAndSts/GrpSts") == "RJCT"
    assert follow_up.texts("OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd") == ["DS02"]
    assert state(inst) == "annulled" and payments_of(inst) == 0


def test_a_batch_another_process_shelves_meanwhile_is_left_to_it(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes tidy awaiting/ at once (a cancellation's and a signature's): the one
    that finds the batch gone while it shelves it goes on. Nothing fails, and the batch
    and its findings are on their shelf once, nothing left in awaiting/."""
    inst, _ = signing
    waits(inst)
    with inst.env.engine.begin() as conn:  # another process cancelled it and committed
        conn.execute(update(db.awaiting).values(state="annulled", closed_at=WHEN))
    real = awaiting_shelf._findings
    others: list[Path] = []

    def the_other_process_first(*args: Any) -> str:
        monkeypatch.setattr(awaiting_shelf, "_findings", real)
        others.extend(awaiting_shelf.tidy(inst.env, [CLIENT_A]))
        return real(*args)

    monkeypatch.setattr(awaiting_shelf, "_findings", the_other_process_first)
    assert awaiting_shelf.tidy(inst.env, [CLIENT_A]) == []
    (shelved,) = others
    assert list(inst.env.spool.awaiting(CLIENT_A).iterdir()) == []
    names = sorted(p.name for p in shelved.parent.iterdir())
    assert names == [shelved.name, shelved.name + ".findings.txt"]


def test_a_cancellation_of_a_waiting_batch_whose_file_refuses_holds_that_client_alone(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) Answering the cancelled batch reads it again from awaiting/: a
    refusal there stopped the pass for every client, every pass. Now A is held (its
    camt.055 waits in work/) and B's file is answered."""
    from tests.integration.test_client_faults import refuse_within

    inst, _ = signing
    waits(inst)
    [batch_file] = (inst.spool / "awaiting" / CLIENT_A).glob("*__pay.xml")
    mend = refuse_within(monkeypatch, batch_file)
    inst.drop(whole_batch(), "cxl.xml")
    inst.drop(Batch(debtor=B_MAIN, msg_id="B1").tx("B1-1", "1.00").build(), "b1.xml", CLIENT_B)
    result = inst.run()
    assert [o.msg_id for o in result.outcomes] == ["B1"]
    assert CLIENT_A in result.held
    mend()
    assert inst.run().held == {} and not list(inst.env.spool.work(CLIENT_A).iterdir())


def test_a_cancellation_received_once_the_batch_expired_finds_it_expired(
    signing: tuple[Installation, Pki], monkeypatch: pytest.MonkeyPatch, assert_valid: Any
) -> None:
    """(Last stop's leftover.) The batch's waiting time is over at the start of Wed 2 Dec,
    but that day's expiry waits: A's awaiting/ refuses (or the daemon is down, OpenSSH
    receiving). A's camt.055 arrives on Wed at 11:00. Once run, it cancelled the batch
    (DS02), as if it still waited. It finds it expired (DS24), as the expiry at the day's
    start would have left it: RJCR, and the batch's follow-up says DS24."""
    from tests.integration.test_client_faults import refuse_within

    inst, _ = signing
    out = waits(inst)
    inst.clock.set(WHEN + dt.timedelta(days=7))  # Wed 2 Dec 10:00, the expiry day
    mend = refuse_within(monkeypatch, inst.spool / "awaiting" / CLIENT_A)
    assert CLIENT_A in inst.run().held and state(inst) == "waiting"
    inst.clock.set(WHEN + dt.timedelta(days=7, hours=1))  # 11:00
    inst.drop(whole_batch(), "cxl.xml")
    receipt = inst.env.spool.receipts(CLIENT_A) / "cxl.xml.json"  # as the SFTP server keeps
    receipt.write_text(f'{{"received_at": "{inst.clock.now().isoformat()}"}}')
    assert CLIENT_A in inst.run().held  # the request waits with its client
    inst.clock.set(WHEN + dt.timedelta(days=8))  # Thursday 10:00: the operator mends it
    mend()
    result = inst.run()
    assert result.held == {}
    assert state(inst) == "expired" and payments_of(inst) == 0
    written = out.new()
    (outcome,) = result.outcomes  # its answers named, the expiry's follow-up too (its log)
    assert sorted((outcome.answer or "").split(", ")) == sorted(f.path.name for f in written)
    found = by_type(written)
    (answer,) = found["camt.029.001.10"]
    assert_valid(answer.path, "camt.029.001.10")
    assert answer.text("Sts/Conf") == "RJCR"
    assert "expired waiting for signatures" in " ".join(answer.texts("AddtlInf"))
    (follow_up,) = found["pain.002.001.03"]
    assert set(follow_up.texts("StsRsnInf/Rsn/Cd")) == {"DS24"}


def test_a_payment_named_with_another_of_the_clients_accounts_is_not_the_one_named(
    signing: tuple[Installation, Pki],
) -> None:
    """A TxInf that names its debtor account (`OrgnlTxRef/DbtrAcct`) names a payment from
    that account: one of the client's other accounts names none of the waiting batch's
    payments (NOOR, the batch goes on waiting); its own account names them."""
    inst, _ = signing
    out = waits(inst)

    def every_payment(debtor: str, msg_id: str) -> s.CancelPmtInf:
        return s.CancelPmtInf(
            pmt_inf_id=f"{BATCH}-P1",
            transactions=tuple(
                s.CancelTx(end_to_end_id=e2e, instr_id=None, amount=None,
                           cancellation_id=f"{msg_id}-{e2e}", debtor_iban=debtor)
                for e2e in ("E1", "E2")
            ),
        )  # fmt: skip

    found = asked(inst, out, request(msg_id="CXL-S", payment_infos=(every_payment(A_SMALL, "S"),)))
    (answer,) = found["camt.029.001.10"]
    assert tx_statuses(answer) == [("E1", "RJCR", ["NOOR"]), ("E2", "RJCR", ["NOOR"])]
    assert f"debtor account {A_SMALL} is not the payment's ({A_MAIN})" in " ".join(
        answer.texts("AddtlInf")
    )
    assert state(inst) == "waiting"
    found = asked(inst, out, request(msg_id="CXL-M", payment_infos=(every_payment(A_MAIN, "M"),)))
    (answer,) = found["camt.029.001.10"]
    assert answer.text("Sts/Conf") == "CNCL"
    assert state(inst) == "annulled"
