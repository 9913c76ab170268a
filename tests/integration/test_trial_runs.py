"""Trial runs (SPEC §15): a file in `test/` is checked exactly as in `in/` and answered
`<stamp>_TEST_pain.002.001.03_<MsgId>.xml` ("trial run, nothing executed"): what
would execute now ACCP, what would wait PDNG, rejections as usual; nothing is booked,
no MsgId is used up, and the file is shelved in `trials/`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from gateway import db, status
from gateway.samples import SamplePmtInf, SampleTx
from ledger.schema import transfers
from tests.integration.pull_fixtures import Out
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    CLIENT_A,
    EXTERNAL,
    EXTERNAL_BIC,
    TODAY,
    Batch,
    Installation,
)


def trial_batch(msg_id: str = "TRY-1") -> bytes:
    later = (TODAY + dt.timedelta(days=5)).isoformat()
    b = Batch(msg_id=msg_id).tx("T-NOW", "10.00").tx("T-BAD", "1.005")
    later_tx = SampleTx("T-LATER", "2.00", EXTERNAL, creditor_bic=EXTERNAL_BIC)
    b.extra_pmts.append(
        SamplePmtInf(
            pmt_inf_id=f"{msg_id}-P2",
            debtor_iban=A_MAIN,
            transactions=[later_tx],
            execution_date=later,
            nb_of_txs="1",
            ctrl_sum="2.00",
        )
    )
    return b.build()


def counts(inst: Installation) -> tuple[int, int, int]:
    with inst.env.engine.connect() as conn:
        return (
            int(conn.execute(select(func.count()).select_from(transfers)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(db.files)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(db.payments)).scalar_one()),
        )


def trial(inst: Installation, data: bytes, name: str = "try.xml"):  # type: ignore[no-untyped-def]
    folder = inst.env.spool.trial_box(CLIENT_A)
    (folder / name).write_bytes(data)
    result = inst.run()
    assert len(result.outcomes) == 1 and list(folder.iterdir()) == []
    return result.outcomes[0]


def test_a_trial_checks_everything_and_moves_no_money(inst: Installation, assert_valid) -> None:  # type: ignore[no-untyped-def]
    before = (inst.balances(), counts(inst))
    out = Out(inst.outbox(CLIENT_A))
    outcome = trial(inst, trial_batch())
    assert outcome.shelf == "trials" and outcome.group_status == "PART"
    (answer,) = out.new()
    assert "_TEST_pain.002.001.03_" in answer.path.name
    assert_valid(answer.path, "pain.002.001.03")
    statuses = dict(
        zip(
            answer.texts("TxInfAndSts/OrgnlEndToEndId"),
            answer.texts("TxInfAndSts/TxSts"),
            strict=True,
        )
    )
    assert statuses == {"T-NOW": "ACCP", "T-BAD": "RJCT", "T-LATER": "PDNG"}
    assert answer.texts("TxInfAndSts/AcctSvcrRef") == []
    assert "trial run, nothing executed" in answer.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf")
    assert (inst.balances(), counts(inst)) == before
    assert list((inst.spool / "trials" / CLIENT_A).glob("*/00000000__*-TEST__try.xml"))
    # the MsgId was not used up: the same file in in/ is executed
    inst.new_answers()  # the trial's answer is seen
    real = inst.submit(trial_batch(), name="real.xml")
    assert real.statuses() == {"T-NOW": "ACSC", "T-BAD": "RJCT", "T-LATER": "PDNG"}
    assert inst.balance(A_MAIN) == before[0][A_MAIN] - 1000
    assert real.msg_id != answer.text("GrpHdr/MsgId")


def test_a_trial_is_judged_against_the_books_now(inst: Installation) -> None:
    out = Out(inst.outbox(CLIENT_A))
    inst.submit(Batch(msg_id="USED").tx("U-1", "1.00").build())
    out.new()
    used = trial(inst, Batch(msg_id="USED").tx("U-2", "2.00").build())
    (answer,) = out.new()
    assert used.group_status == "RJCT"
    assert answer.texts("OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd") == ["DU01"]
    poor = trial(inst, Batch(debtor=A_SMALL, msg_id="POOR").tx("P-1", "500.00").build(), "p.xml")
    (answer,) = out.new()
    assert poor.group_status == "RJCT"
    assert answer.texts("TxInfAndSts/StsRsnInf/Rsn/Cd") == ["AM04"]
    broken = trial(inst, b"<not xml", "b.xml")
    (answer,) = out.new()
    assert broken.group_status == "RJCT" and "_TEST_" in answer.path.name


def test_status_counts_trials_apart(inst: Installation) -> None:
    trial(inst, trial_batch())
    found = status.collect(inst.env, inst.clock)
    alpha = next(c for c in found.clients if c.client_id == CLIENT_A)
    assert (alpha.trials_today, alpha.processed_today) == (1, 0)


def test_a_trial_of_bytes_already_processed_says_so_and_stops_no_one(
    inst: Installation, assert_valid  # type: ignore[no-untyped-def]
) -> None:
    """The same bytes from in/ and then from test/ (or an unreadable file twice): the
    trial cannot be the file's first run; it is answered with what in/ would do (SPEC
    §6: not executed again), and the pass goes on with the other files."""
    data = trial_batch("DONE-1")
    first = inst.submit(data, name="real.xml")
    assert first.group_status == "PART"
    inst.submit(b"<not xml", name="junk.xml")
    out = Out(inst.outbox(CLIENT_A))
    before = (inst.balances(), counts(inst))
    (inst.spool / "clients" / CLIENT_A / "in").mkdir(exist_ok=True)
    inst.drop(Batch(msg_id="AFTER").tx("N-1", "1.00").build(), "after.xml")
    folder = inst.env.spool.trial_box(CLIENT_A)
    (folder / "again.xml").write_bytes(data)
    (folder / "junk-again.xml").write_bytes(b"<not xml")
    result = inst.run()
    assert sorted(o.shelf for o in result.outcomes) == ["archive", "trials", "trials"]
    answers = {a.path.name: a for a in out.new()}
    trials = [a for name, a in answers.items() if "_TEST_" in name]
    assert len(trials) == 2 and len(answers) == 3
    for answer in trials:
        assert_valid(answer.path, "pain.002.001.03")
        assert answer.text("OrgnlGrpInfAndSts/GrpSts") == "RJCT"
        assert answer.texts("OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd") == ["NARR"]
        info = " ".join(answer.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
        assert "trial run, nothing executed" in info and "the same bytes as file" in info
        assert "not be executed again" in info
    repeated = next(a for a in trials if a.text("OrgnlGrpInfAndSts/OrgnlMsgId") == "DONE-1")
    assert "real.xml" in " ".join(repeated.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
    transfers_, files_, payments_ = counts(inst)
    assert (transfers_, files_, payments_ - 1) == (before[1][0] + 1, before[1][1] + 1, before[1][2])


def test_a_request_in_test_is_refused_with_its_own_id(inst: Installation) -> None:
    """A camt.055 put into /test is not a batch: RJCT FF01, echoing the id it carries
    (`Assgnmt/Id`, where a camt.055 keeps its message id), not UNKNOWN."""
    from tests.unit import pull_samples

    data = pull_samples.to_bytes(pull_samples.camt055("09", msg_id="CXL-IN-TEST"))
    out = Out(inst.outbox(CLIENT_A))
    outcome = trial(inst, data, name="cxl.xml")
    (answer,) = out.new()
    assert outcome.group_status == "RJCT"
    assert answer.text("OrgnlGrpInfAndSts/OrgnlMsgId") == "CXL-IN-TEST"
    assert answer.text("OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd") == "FF01"
    # Said as what it is (it was "unsupported message 'camt.055.001.09'", a message in/
    # supports), in a document that starts as every answer of ours does.
    info = " ".join(answer.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
    assert "a camt.055.001.09 cannot be tried: test/ takes batches" in info, info
    assert answer.path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_a_request_sent_to_in_and_then_to_test_is_still_not_tried(inst: Installation) -> None:
    """The very bytes of a request already answered from /in, put into /test: they were
    answered as a repeated batch ("the same bytes as file N … would not be executed
    again"); a request is not tried, whether new or not."""
    from tests.unit import pull_samples

    data = pull_samples.to_bytes(pull_samples.camt055("09", msg_id="CXL-BOTH"))
    inst.drop(data, "cxl.xml")
    inst.run()
    out = Out(inst.outbox(CLIENT_A))
    trial(inst, data, name="cxl.xml")
    (answer,) = out.new()
    info = " ".join(answer.texts("OrgnlGrpInfAndSts/StsRsnInf/AddtlInf"))
    assert "a camt.055.001.09 cannot be tried" in info and "the same bytes" not in info, info
