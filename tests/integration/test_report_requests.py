"""Account reporting requests (camt.060, SPEC §15) through the file run.

A client asks for a past day's statement again and gets a copy (the same MsgId and
content, `CpyDplctInd` `DUPL`, a new file name and its own seal), or for today so
far (camt.052); an account not its own, a day not closed, ten years of statements or
a hostile file are answered with admi.002 naming the problem and never with data.
Every request is shelved and answered once.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from pyiso20022.admi.admi_002_001_01 import Document as Admi002

from gateway.outbound.seal import seal_path, verify_file
from tests.integration.pull_fixtures import Found, Out, close_day, riga
from tests.pipeline_fixtures import (
    A_MAIN,
    A_USD,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    TODAY,
    TREL_MISSING,
    Installation,
    batch,
)
from tests.unit import pull_samples as s

TOMORROW = TODAY + dt.timedelta(days=1)  # Thursday 26 November 2026


def request(*wanted: s.Wanted, version: str = "05", msg_id: str = "REQ-1") -> bytes:
    return s.to_bytes(s.camt060(version, wanted, msg_id=msg_id))


def statement_day(iban: str = A_MAIN, first: dt.date = TODAY, last: dt.date = TODAY) -> s.Wanted:
    return s.Wanted(iban=iban, from_date=first.isoformat(), to_date=last.isoformat())


def closed_yesterday(inst: Installation) -> Out:
    """Payments on TODAY, its statements at 18:30, the clock on the next morning; the
    client's out/ watched from there."""
    inst.submit(batch(("E-1", "12.34"), ("E-2", "5.00"), msg_id="PAY-1"))
    assert all(r.written for r in close_day(inst, TODAY) if r.iban in (A_MAIN, B_MAIN))
    inst.clock.set(riga(TOMORROW, "10:00"))
    return Out(inst.outbox(CLIENT_A))


def answered(inst: Installation, data: bytes, name: str = "req.xml", client: str = CLIENT_A):  # type: ignore[no-untyped-def]
    before = set(inst.shelf_files(client))
    inst.drop(data, name, client)
    result = inst.run()
    assert len(result.outcomes) == 1, result.outcomes
    assert inst.left_in(client) == []
    new = [p for p in inst.shelf_files(client) if p not in before]
    assert len(new) == 1, new
    return result.outcomes[0], new[0]


def original_statement(folder: Path, iban: str, day: dt.date) -> Found:
    out = Out(folder)
    out.seen = set()
    found = [
        f
        for f in out.new()
        if f.message == "camt.053.001.02"
        and f.text("Stmt/Acct/Id/IBAN") == iban
        and f.text(
            "Stmt/FrToDt/FrDtTm",
        ).startswith(day.isoformat())  # type: ignore[union-attr]
        and f.text("Stmt/CpyDplctInd") is None
    ]
    assert len(found) == 1, [f.path.name for f in found]
    return found[0]


@pytest.mark.parametrize("version", ["03", "05"])
def test_yesterdays_statement_again_is_a_sealed_copy(
    template: Path, tmp_path: Path, version: str, assert_valid
) -> None:  # type: ignore[no-untyped-def]
    inst = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    try:
        out = closed_yesterday(inst)
        first = original_statement(inst.outbox(CLIENT_A), A_MAIN, TODAY)
        if version == "05":
            assert_valid(request(statement_day()), "camt.060.001.05")
        outcome, shelf = answered(inst, request(statement_day(), version=version))
        assert shelf.parts[-4] == "archive" and outcome.group_status == "ACCP"
        (copy,) = out.new()
        assert copy.message == "camt.053.001.02" and copy.path.name != first.path.name
        assert copy.text("GrpHdr/MsgId") == first.text("GrpHdr/MsgId")
        assert copy.texts("Stmt/CpyDplctInd") == ["DUPL"]
        assert_valid(copy.path, "camt.053.001.02")
        # the same content byte for byte, but the one element
        marker = b"<CpyDplctInd>DUPL</CpyDplctInd>"
        assert copy.path.read_bytes().replace(marker, b"") == first.path.read_bytes()
        cert = inst.settings.signing.certificate
        assert verify_file(copy.path, trusted_certs=[cert], now=inst.clock.now()).ok
        assert seal_path(copy.path).read_bytes() != seal_path(first.path).read_bytes()
        # asking again: another copy, under yet another name
        _, _ = answered(inst, request(statement_day(), version=version, msg_id="REQ-2"))
        (again,) = out.new()
        assert again.path.name not in (copy.path.name, first.path.name)
        assert again.texts("Stmt/CpyDplctInd") == ["DUPL"]
    finally:
        inst.close()


def test_a_period_ending_on_a_weekend_ends_at_its_last_business_day(
    template: Path, tmp_path: Path
) -> None:
    """Asked on a Saturday for Wednesday to that Saturday: no statement is ever written for
    a weekend, so the period ends on Friday, which is closed; the copies issued in it are
    sent (it was refused: "2026-11-28 is not closed yet; its statement is written at the
    end of the day")."""
    inst = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    try:
        closed_yesterday(inst)
        saturday = TODAY + dt.timedelta(days=3)
        inst.clock.set(riga(saturday, "10:00"))
        out = Out(inst.outbox(CLIENT_A))
        outcome, _ = answered(inst, request(statement_day(first=TODAY, last=saturday)))
        assert outcome.group_status == "ACCP", outcome
        (copy,) = out.new()
        assert copy.message == "camt.053.001.02" and copy.texts("Stmt/CpyDplctInd") == ["DUPL"]
    finally:
        inst.close()


def test_a_period_of_a_weekend_alone_is_refused_for_holding_no_business_day(
    template: Path, tmp_path: Path
) -> None:
    """Saturday to Sunday holds no statement; the refusal named the period moved back to
    its last business day, ending before it began: "from 2026-11-28 to 2026-11-27" (a
    reviewer)."""
    inst = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    try:
        closed_yesterday(inst)
        saturday, sunday = TODAY + dt.timedelta(days=3), TODAY + dt.timedelta(days=4)
        inst.clock.set(riga(sunday + dt.timedelta(days=1), "10:00"))
        outcome, _ = answered(inst, request(statement_day(first=saturday, last=sunday)))
        assert outcome.group_status == "RJCT" and outcome.reason == "DT01", outcome
        assert outcome.info == (
            f"report 1: {saturday} to {sunday} holds no business day: a statement is written"
            " for each business day only"
        )
    finally:
        inst.close()


def test_a_request_sent_again_gets_every_copy_again(template: Path, tmp_path: Path) -> None:
    """SPEC §6: the same bytes again get the original's answer once more. A request
    answered with two statements (two accounts) sent again got only the first of them."""
    inst = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    try:
        out = closed_yesterday(inst)
        data = request(statement_day(), statement_day(A_USD), msg_id="REQ-TWICE")
        answered(inst, data)
        first = sorted(f.text("Stmt/Acct/Id/IBAN") for f in out.new())
        assert first == sorted([A_MAIN, A_USD]), first
        inst.drop(data, "req-again.xml")
        outcome = inst.run().outcomes[0]
        again = out.new()
        assert sorted(f.text("Stmt/Acct/Id/IBAN") for f in again) == first
        assert all(f.texts("Stmt/CpyDplctInd") == ["DUPL"] for f in again)
        assert outcome.answer == ", ".join(sorted(f.path.name for f in again))
        # Answered before migration 0016 noted its copies: numbered by it on upgrade.
        _upgraded_from_0015(inst)
        inst.drop(data, "req-third.xml")
        inst.run()
        assert sorted(f.text("Stmt/Acct/Id/IBAN") for f in out.new()) == first
    finally:
        inst.close()


def test_the_same_report_asked_for_again_in_one_request_is_issued_once(
    template: Path, tmp_path: Path
) -> None:
    """A request is answered with each report once, however often it names it: twenty
    identical camt.052 requests were twenty reports (a client's 8 KB request wrote 50 MB
    into its out/: tester 4), and overlapping camt.053 periods copied a statement once
    per period."""
    inst = Installation.copy_of(template, tmp_path / "gw", need_sealer=True)
    try:
        out = closed_yesterday(inst)
        today = s.Wanted(
            message="camt.052.001.02", iban=A_MAIN, from_date=TOMORROW.isoformat(),
            to_date=None, from_time=None,
        )  # fmt: skip
        answered(inst, request(*[today] * 20, msg_id="REQ-MANY"))
        assert [f.message for f in out.new()] == ["camt.052.001.02"]
        overlapping = [statement_day(), statement_day(first=TODAY - dt.timedelta(days=1))]
        answered(inst, request(*overlapping, statement_day(A_USD), msg_id="REQ-OVER"))
        copies = sorted(f.text("Stmt/Acct/Id/IBAN") for f in out.new())
        assert copies == sorted([A_MAIN, A_USD]), copies
    finally:
        inst.close()


def _upgraded_from_0015(inst: Installation) -> None:
    from alembic import command

    from gateway import migrations
    from ledger import migrations as ledger_migrations

    assert migrations.__file__ is not None
    config = ledger_migrations.alembic_config(
        inst.env.engine, Path(migrations.__file__).parent, migrations.VERSION_TABLE
    )
    command.downgrade(config, "0015")
    migrations.run_upgrade(inst.env.engine)


def test_today_so_far_is_a_camt052(inst: Installation, assert_valid) -> None:  # type: ignore[no-untyped-def]
    inst.submit(batch(("E-1", "12.34"), msg_id="PAY-1"))
    out = Out(inst.outbox(CLIENT_A))
    wanted = s.Wanted(
        message="camt.052.001.02", iban=A_MAIN, from_date=TODAY.isoformat(), to_date=None,
        from_time=None,
    )  # fmt: skip
    outcome, _ = answered(inst, request(wanted))
    (report,) = out.new()
    assert report.message == "camt.052.001.02"
    assert_valid(report.path, "camt.052.001.02")
    assert report.text("Rpt/Acct/Id/IBAN") == A_MAIN
    assert "12.34" in report.texts("Ntry/Amt")
    assert outcome.msg_id == "REQ-1"


def admi(found: list[Found]) -> Found:
    assert [f.message for f in found] == ["admi.002.001.01"], [f.path.name for f in found]
    s.parse_back(found[0].path.read_bytes(), Admi002)
    return found[0]


@pytest.mark.parametrize(
    ("wanted", "reason", "says"),
    [
        (statement_day(B_MAIN), "AC02", f"account {B_MAIN} is not one of yours"),
        (statement_day(TREL_MISSING), "AC02", f"account {TREL_MISSING} is not one of yours"),
        (statement_day(first=TOMORROW, last=TOMORROW), "DT01", "is not closed yet"),
        (statement_day(first=TODAY - dt.timedelta(days=3650)), "NARR", "more than 31 business"),
        # (a business day before the first statement: a week before, 18 November, is a
        # holiday, which "holds no business day")
        (statement_day(first=TODAY - dt.timedelta(days=6), last=TODAY - dt.timedelta(days=6)),
         "DT01", "no statement was issued"),
        (statement_day(first=TODAY - dt.timedelta(days=7), last=TODAY - dt.timedelta(days=7)),
         "DT01", "holds no business day"),
        (s.Wanted(message="camt.054.001.02"), "CH17", "is not offered"),
    ],
)  # fmt: skip
def test_refused_requests_get_admi002_and_no_data(
    inst: Installation, wanted: s.Wanted, reason: str, says: str
) -> None:
    out = closed_yesterday(inst)
    outcome, shelf = answered(inst, request(statement_day(), wanted, msg_id="REQ-BAD"))
    reject = admi(out.new())  # nothing else: not even the good report's copy
    assert reject.text("RltdRef/Ref") == "REQ-BAD"
    assert reject.text("Rsn/RjctgPtyRsn") == reason
    assert says in (reject.text("Rsn/RsnDesc") or "")
    assert "REQ-BAD" not in reject.path.name and "_admi.002.001.01_GW" in reject.path.name
    assert shelf.parts[-4] == "rejected" and outcome.group_status == "RJCT"


def test_unknown_and_foreign_accounts_look_the_same(inst: Installation) -> None:
    out = closed_yesterday(inst)
    texts = []
    for iban in (B_MAIN, TREL_MISSING):
        answered(inst, request(statement_day(iban), msg_id="REQ-X"), name=f"{iban}.xml")
        reject = admi(out.new())
        texts.append((reject.text("Rsn/RjctgPtyRsn"), reject.text("Rsn/RsnDesc").replace(iban, "")))  # type: ignore[union-attr]
    assert texts[0] == texts[1]


@pytest.mark.parametrize("case", list(s.hostile(request(statement_day()), "camt.060.001.05")))
def test_hostile_requests_are_answered_never_crash(inst: Installation, case: str) -> None:
    bad = s.hostile(request(statement_day()), "camt.060.001.05")[case]
    out = Out(inst.outbox(CLIENT_A))
    _, shelf = answered(inst, bad, name="hostile.xml")
    (answer,) = out.new()
    assert shelf.parts[-4] == "rejected"
    if case in ("declared Latin-1", "UTF-16"):  # told by its root, refused for its encoding
        assert answer.message == "admi.002.001.01"
        assert "UTF-8" in " ".join(answer.texts("Rsn/RsnDesc")), answer.texts("Rsn/RsnDesc")
    if answer.message == "admi.002.001.01":  # identified as a camt.060: refused as one
        admi([answer])
        assert answer.text("Rsn/RjctgPtyRsn") == "FF01"
    else:  # not identified at all: SPEC §6
        assert answer.message == "pain.002.001.03"
        assert answer.text("OrgnlGrpInfAndSts/GrpSts") == "RJCT"
        assert answer.texts("OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd") == ["FF01"]


def test_a_request_of_the_other_client_is_its_own(inst: Installation) -> None:
    out_b = Out(inst.outbox(CLIENT_B))
    out_a = Out(inst.outbox(CLIENT_A))
    answered(inst, request(statement_day(A_MAIN)), client=CLIENT_B)
    assert out_a.new() == []
    reject = admi(out_b.new())
    assert reject.text("Rsn/RjctgPtyRsn") == "AC02"


def test_a_version_we_do_not_read_is_refused_by_name(inst: Installation) -> None:
    out = Out(inst.outbox(CLIENT_A))
    data = request(statement_day(), version="04", msg_id="REQ-V4")
    outcome, shelf = answered(inst, data)
    reject = admi(out.new())
    assert reject.text("Rsn/RjctgPtyRsn") == "FF01"
    assert "camt.060.001.04 is not supported" in (reject.text("Rsn/RsnDesc") or "")
    assert shelf.parts[-4] == "rejected" and outcome.reason == "FF01"
    assert reject.text("RltdRef/Ref") == "REQ-V4"  # SPEC §15: its MsgId, where it can be read


def test_the_reports_a_client_asks_for_in_a_day_are_bounded(
    template: Path, tmp_path: Path
) -> None:
    """`reports_per_day` (SPEC §15: limits on everything): a client's report requests
    bring at most that many reports a day into its out/, those a repeated request gets
    again counted too. A request past it is answered with admi.002 `NARR` naming the
    limit and issues nothing; a repeat past it gets that admi.002 instead of its reports
    (stop 44: nothing bounded what a client could make us write into out/). Another
    client is not held by it, and the next day counts anew."""
    edited = tmp_path / "template"
    shutil.copytree(template, edited)
    config = edited / "gateway.toml"
    limited = config.read_text().replace("[gateway]\n", "[gateway]\nreports_per_day = 3\n", 1)
    config.write_text(limited)
    inst = Installation.copy_of(edited, tmp_path / "gw", need_sealer=True)
    try:
        out = closed_yesterday(inst)
        two = request(statement_day(), statement_day(A_USD), msg_id="REQ-TWO")
        answered(inst, two)
        assert len(out.new()) == 2
        outcome, shelf = answered(
            inst, request(statement_day(), statement_day(A_USD), msg_id="REQ-MORE")
        )
        reject = admi(out.new())
        assert reject.text("RltdRef/Ref") == "REQ-MORE"
        assert reject.text("Rsn/RjctgPtyRsn") == "NARR"
        assert "2 report(s) asked for, 2 of the 3 a day (gateway.reports_per_day) issued" in (
            reject.text("Rsn/RsnDesc") or ""
        )
        assert shelf.parts[-4] == "rejected" and outcome.group_status == "RJCT"
        answered(inst, request(statement_day(), msg_id="REQ-ONE"))  # the third: still in
        assert [f.message for f in out.new()] == ["camt.053.001.02"]
        inst.drop(two, "req-again.xml")  # its two reports again would be the fifth
        (outcome,) = inst.run().outcomes
        assert admi(out.new()).text("RltdRef/Ref") == "REQ-TWO"
        assert outcome.group_status == "RJCT" and "not delivered again" in (outcome.info or "")
        assert inst.shelved(outcome.file_id, kind="duplicates").name.endswith("req-again.xml")
        b_out = Out(inst.outbox(CLIENT_B))
        answered(inst, request(statement_day(B_MAIN), msg_id="REQ-B"), client=CLIENT_B)
        assert [f.message for f in b_out.new()] == ["camt.053.001.02"]
        inst.clock.set(riga(TOMORROW + dt.timedelta(days=1), "08:00"))
        answered(inst, request(statement_day(), msg_id="REQ-NEXT-DAY"))
        assert [f.message for f in out.new()] == ["camt.053.001.02"]
    finally:
        inst.close()
