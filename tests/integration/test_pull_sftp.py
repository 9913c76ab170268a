"""The pull side through the real SFTP server of a running daemon (SPEC §15).

A client uploads with paramiko and OpenSSH `sftp`: a future-dated batch, a camt.055
cancelling one of its payments, a camt.060 asking for today so far, and a hostile
request; it downloads camt.029, the follow-up pain.002, camt.052 and admi.002, each
valid against its official XSD (or pyiso20022's model where we have none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from pyiso20022.admi.admi_002_001_01 import Document as Admi002

from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes
from tests.integration.daemon_fixtures import (
    Daemon,
    answers,
    answers_per_msg_id,
    batch,
    close_sftp,
    iban,
    ledger_balance_minor,
    make_install,
    openssh_sftp,
    running_daemon,
    sftp_client,
    today_riga,
    wait_for,
)
from tests.unit import pull_samples as s


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    install = make_install(tmp_path_factory.mktemp("pull"), settle_seconds=1)
    with running_daemon(install) as running:
        running.wait_started()
        yield running


def future_batch(msg_id: str) -> bytes:
    day = (today_riga() + dt.timedelta(days=10)).isoformat()
    txs = [
        SampleTx(f"{msg_id}-{n}", "3.00", iban_lv("HABA", 20_000 + n), creditor_bic="HABALV22")
        for n in range(3)
    ]
    pmt = SamplePmtInf(
        pmt_inf_id=f"{msg_id}-P", debtor_iban=iban("alpha"), transactions=txs,
        execution_date=day, nb_of_txs="3", ctrl_sum="9.00",
    )  # fmt: skip
    return to_bytes(SampleBatch(msg_id=msg_id, nb_of_txs="3", ctrl_sum="9.00", payment_infos=[pmt]))


def appeared(out: Path, part: str, timeout: float = 20.0) -> list[Path]:
    wait_for(lambda: any(out.glob(f"*{part}*.xml")), timeout)
    return sorted(out.glob(f"*{part}*.xml"))


def local(path: Path, part: str) -> str | None:
    found = etree.parse(str(path)).xpath(
        "//" + "/".join(f"*[local-name()='{p}']" for p in part.split("/"))
    )
    return found[0].text if found else None


@pytest.mark.timeout(120)
def test_cancel_and_ask_through_sftp(daemon: Daemon, tmp_path: Path, assert_valid) -> None:  # type: ignore[no-untyped-def]
    install = daemon.install
    out = install.folder("alpha", "out")
    client = sftp_client(install, "alpha-erp")
    try:
        with client.open("/in/future.xml", "wb") as handle:
            handle.write(future_batch("SFTP-F"))
        assert appeared(out, "pain.002"), daemon.tail()
        txs = (s.CancelTx(end_to_end_id="SFTP-F-1", instr_id=None, amount="3.00"),)
        request = s.camt055(
            "09", msg_id="SFTP-CXL", original_msg_id="SFTP-F",
            payment_infos=(s.CancelPmtInf(pmt_inf_id="SFTP-F-P", transactions=txs),),
        )  # fmt: skip
        with client.open("/in/cancel.xml", "wb") as handle:
            handle.write(s.to_bytes(request))
        (answer,) = appeared(out, "camt.029.001.10")
        wait_for(lambda: len(list(out.glob("*pain.002*.xml"))) == 2, 10)
        client.get(f"/out/{answer.name}", str(tmp_path / answer.name))
        client.get(f"/out/{answer.name}.sig", str(tmp_path / f"{answer.name}.sig"))
        names = client.listdir("/out")
    finally:
        close_sftp(client)
    got = tmp_path / answer.name
    assert_valid(got, "camt.029.001.10")
    assert local(got, "Sts/Conf") == "CNCL"
    assert local(got, "TxInfAndSts/TxCxlSts") == "ACCR"
    follow_ups = [n for n in names if "pain.002" in n and n.endswith(".xml")]
    assert len(follow_ups) == 2
    reasons = [local(out / n, "TxInfAndSts/StsRsnInf/Rsn/Cd") for n in follow_ups]
    assert "DS02" in reasons

    # today so far, with OpenSSH sftp
    wanted = s.Wanted(
        message="camt.052.001.02", iban=iban("alpha"), from_date=today_riga().isoformat(),
        to_date=None, from_time=None,
    )  # fmt: skip
    (tmp_path / "ask.xml").write_bytes(s.to_bytes(s.camt060("05", (wanted,), msg_id="SFTP-ASK")))
    openssh_sftp(install, "alpha-erp", ["put ask.xml /in/ask.xml"], tmp_path)
    (report,) = appeared(out, "camt.052.001.02")
    openssh_sftp(install, "alpha-erp", [f"get /out/{report.name}"], tmp_path)
    assert_valid(tmp_path / report.name, "camt.052.001.02")

    # a hostile request: admi.002, and the daemon goes on
    bad = s.hostile(s.to_bytes(s.camt060("05", (wanted,))), "camt.060.001.05")["too deep"]
    (tmp_path / "bad.xml").write_bytes(bad)
    openssh_sftp(install, "alpha-erp", ["put bad.xml /in/bad.xml"], tmp_path)
    (reject,) = appeared(out, "admi.002.001.01")
    s.parse_back(reject.read_bytes(), Admi002)
    assert local(reject, "Rsn/RjctgPtyRsn") == "FF01"
    assert daemon.process.poll() is None

    def logged() -> set[str]:  # the line follows the delivery: wait for it
        return {e["file"] for e in daemon.events("file.processed") if e.get("client") == "alpha"}

    wanted_files = {"future.xml", "cancel.xml", "ask.xml", "bad.xml"}
    assert wait_for(lambda: logged() >= wanted_files, 10), logged()


@pytest.mark.timeout(120)
def test_trial_run_through_sftp(daemon: Daemon, tmp_path: Path, assert_valid) -> None:  # type: ignore[no-untyped-def]
    """A batch put into /test is answered _TEST_ in /out; no money moves; the same MsgId
    is still free for /in."""
    install = daemon.install
    out = install.folder("alpha", "out")
    before = ledger_balance_minor(install, "alpha")
    (tmp_path / "try.xml").write_bytes(batch("SFTP-TRY", "alpha", 2))
    openssh_sftp(install, "alpha-erp", ["put try.xml /test/try.xml"], tmp_path)
    (answer,) = appeared(out, "_TEST_pain.002.001.03")
    assert_valid(answer, "pain.002.001.03")
    statuses = etree.parse(str(answer)).xpath("//*[local-name()='TxSts']/text()")
    assert len(statuses) == 2 and set(statuses) <= {"ACCP", "PDNG"}
    assert local(answer, "OrgnlGrpInfAndSts/StsRsnInf/AddtlInf") == "trial run, nothing executed"
    assert ledger_balance_minor(install, "alpha") == before
    assert list(install.spool.glob("trials/alpha/*/*-TEST__try.xml"))
    (tmp_path / "real.xml").write_bytes(batch("SFTP-TRY", "alpha", 2))
    openssh_sftp(install, "alpha-erp", ["put real.xml /in/real.xml"], tmp_path)
    wait_for(lambda: answers_per_msg_id(out)["SFTP-TRY"] == 2, 20)
    real = [
        a for a in answers(out) if a.original_msg_id == "SFTP-TRY" and "_TEST_" not in a.path.name
    ]
    assert len(real) == 1 and real[0].group_status in ("ACSC", "PDNG", "ACCP"), daemon.tail()
