"""Whatever a client uploads, it gets exactly one answer and the gateway carries on (SPEC §6).

Each hostile file (empty, binary, truncated, DTD, entity bombs, external entities,
another message, another encoding, absurd nesting, 2 GiB, too many transactions)
must produce exactly one pain.002 with group status RJCT and reason FF01, valid
against the official schema; the original must lie untouched in `rejected/` with a
findings file beside it; the ledger must not move; and a good file uploaded right
after it must still be processed in the same pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import samples
from tests.pipeline_fixtures import (
    A_MAIN,
    A_USD,
    CLIENT_A,
    PAIN002,
    TODAY,
    Answer,
    Batch,
    Installation,
    peak_rss_growth,
)

NS = b"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
DECL = b'<?xml version="1.0" encoding="UTF-8"?>'


def valid_file(msg_id: str = "VALID-1") -> bytes:
    return Batch(msg_id=msg_id).tx("V-1", "10.00").tx("V-2", "20.00").build()


def _body_without_declaration(msg_id: str) -> bytes:
    data = valid_file(msg_id)
    assert data.startswith(b"<?xml")
    return data[data.index(b"?>") + 2 :]


def with_doctype(doctype: bytes, msg_id: str, name_text: bytes | None = None) -> bytes:
    body = _body_without_declaration(msg_id)
    if name_text is not None:
        body = body.replace(b"<Nm>ERP</Nm>", b"<Nm>" + name_text + b"</Nm>", 1)
    return DECL + doctype + body


BILLION_LAUGHS = (
    b'<!DOCTYPE Document [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b"]>"
)
XXE = b'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def _camt053() -> bytes:
    return (
        DECL + b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        b"<BkToCstmrStmt><GrpHdr><MsgId>STMT-1</MsgId>"
        b"<CreDtTm>2026-11-25T09:00:00</CreDtTm></GrpHdr></BkToCstmrStmt></Document>"
    )


def _utf16(data: bytes) -> bytes:
    return data.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def _deeply_nested(depth: int = 20_000) -> bytes:
    return (
        DECL
        + b'<Document xmlns="'
        + NS
        + b'">'
        + b"<a>" * depth
        + b"</a>" * depth
        + (b"</Document>")
    )


def _misplaced_payment_information(where: bytes) -> bytes:
    """A valid file with a second, complete PmtInf copied in right after `where`, where
    the schema does not allow one (the reader must not take apart what the parser is
    still inside of)."""
    data = valid_file("MISPLACED")
    start, end = data.index(b"<PmtInf>"), data.index(b"</PmtInf>") + len(b"</PmtInf>")
    at = data.index(where) + len(where)
    return data[:at] + data[start:end] + data[at:]


def _endless_transaction(lines: int = 400_000) -> bytes:
    """A schema-valid file whose first transaction carries 400,000 `RmtInf/Ustrd` lines
    (the schema sets no maximum): ~7 MB that would be one element in memory."""
    data = valid_file("ENDLESS")
    at = data.index(b"</Ustrd>") + len(b"</Ustrd>")
    return data[:at] + b"<Ustrd>Papildu teksts</Ustrd>" * lines + data[at:]


HOSTILE: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "binary junk": lambda: random.Random(7).randbytes(8192),
    "truncated XML": lambda: valid_file("TRUNC")[: len(valid_file("TRUNC")) // 2],
    "a DTD": lambda: with_doctype(b"<!DOCTYPE Document [<!ELEMENT Document ANY>]>", "DTD-1"),
    "billion laughs": lambda: with_doctype(BILLION_LAUGHS, "LOL-1", b"&lol9;"),
    "external entity": lambda: with_doctype(XXE, "XXE-1", b"&xxe;"),
    "pain.001.001.09": lambda: valid_file("V09").replace(NS, NS.replace(b".03", b".09")),
    "camt.053": _camt053,
    "invalid UTF-8 in a name": lambda: valid_file("BADUTF").replace(
        "Saņēmējs".encode(), b"Sa\xff\xfe\xc3m\xe7js", 1
    ),
    "latin-1 declaration": lambda: (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        + _body_without_declaration("LATIN1")
        .decode("utf-8")
        .replace("Saņēmējs", "Säñemejs")
        .replace("Budžeta iestāde", "Budzeta iestade")
        .replace("Rēķins", "Rekins")
        .encode("latin-1")
    ),
    "UTF-16": lambda: (
        valid_file("U16")
        .decode("utf-8")
        .replace('encoding="UTF-8"', 'encoding="UTF-16"')
        .replace("encoding='UTF-8'", "encoding='UTF-16'")
        .encode("utf-16")
    ),
    # A DTD that hides from a look at the raw bytes (a tester): its entities never reach
    # the answer, which names the upload and its SHA-256 instead.
    "billion laughs in UTF-16": lambda: _utf16(with_doctype(BILLION_LAUGHS, "&lol9;")),
    "deeply nested elements": _deeply_nested,
    "PmtInf inside a transaction": lambda: _misplaced_payment_information(b"<CdtTrfTxInf>"),
    "PmtInf inside the group header": lambda: _misplaced_payment_information(b"<GrpHdr>"),
    "PmtInf right under Document": lambda: _misplaced_payment_information(b'.03">'),
    "PmtInf inside a payment information": lambda: _misplaced_payment_information(b"<PmtInf>"),
    "a transaction that never ends": _endless_transaction,
}


def rejected_then_good(
    inst: Installation,
    place_hostile: Callable[[Path], None],
    assert_valid: Callable[[object, str], None],
    *,
    hostile_bytes: bytes | None = None,
) -> Answer:
    """Put the hostile file and then a good one into in/, run ONE pass, check both."""
    before = inst.balances()
    hostile = inst.inbox() / "01-hostile.xml"
    place_hostile(hostile)
    stamp = inst.clock.now().timestamp()
    os.utime(hostile, (stamp, stamp))
    size = hostile.stat().st_size
    inst.drop(valid_file("GOOD-AFTER"), "02-good.xml")

    result = inst.run()
    assert [o.shelf for o in result.outcomes] == ["rejected", "archive"]
    answers = inst.new_answers()
    assert len(answers) == 2, [a.path.name for a in answers]
    by_name = {a.path.name: a for a in answers}
    bad, good = (by_name[o.answer] for o in result.outcomes)

    for answer in answers:
        assert_valid(answer.path, PAIN002)
    assert bad.group_status == "RJCT"
    assert bad.group_reasons == ["FF01"]
    assert bad.group_info, "the rejection says why in AddtlInf"
    assert "could not be processed" not in " ".join(bad.group_info), "a fault of ours"
    assert bad.transactions() == []
    assert good.group_status == "ACSC"
    assert good.original_msg_id == "GOOD-AFTER"

    shelf = inst.shelved(result.outcomes[0].file_id)
    assert shelf.parts[-4] == "rejected" and shelf.name.endswith("__01-hostile.xml")
    assert shelf.stat().st_size == size
    if hostile_bytes is not None:
        assert shelf.read_bytes() == hostile_bytes
    findings = shelf.with_name(shelf.name + ".findings.txt").read_text(encoding="utf-8")
    assert "RJCT FF01" in findings

    after = inst.balances()
    assert after[A_MAIN] == before[A_MAIN] - 3000, "only the good file moved money"
    assert inst.left_in(CLIENT_A) == []
    inst.env.ledger.check_invariants()
    bad.outcome = result.outcomes[0]
    return bad


@pytest.mark.parametrize("kind", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_file_gets_one_ff01_and_the_next_file_is_processed(
    kind: str, inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """A hostile upload is answered RJCT FF01 once, kept as it came in rejected/, and does
    not stop the good file behind it."""
    data = HOSTILE[kind]()
    bad = rejected_then_good(inst, lambda p: p.write_bytes(data), assert_valid, hostile_bytes=data)
    if kind == "a transaction that never ends":
        assert "no transaction ends within" in " ".join(bad.group_info), bad.group_info
    if kind in ("latin-1 declaration", "UTF-16"):  # refused for its encoding, read all the same
        assert bad.original_msg_id == {"UTF-16": "U16"}.get(kind, "LATIN1"), bad.original_msg_id
    if kind == "billion laughs in UTF-16":
        assert bad.original_msg_id == "UNKNOWN", bad.original_msg_id
        assert "SHA-256" in " ".join(bad.group_info), bad.group_info
    text = bad.path.read_text(encoding="utf-8")
    assert "root:" not in text, "the content of /etc/passwd must never be read or echoed"
    assert "lollollol" not in text


def test_a_msg_id_cut_to_35_characters_in_its_answer_names_the_upload_too(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """A MsgId longer than the schema's 35 characters is FF01 and echoed cut to 35: then
    it no longer matches the file, so AddtlInf names the upload and its SHA-256 too, as
    where nothing could be read (SPEC §6; a tester)."""
    long_id = "M" * 32 + "-036"
    data = valid_file(long_id)
    bad = rejected_then_good(inst, lambda p: p.write_bytes(data), assert_valid, hostile_bytes=data)
    assert bad.original_msg_id == long_id[:35], bad.original_msg_id
    said = " ".join(bad.group_info)
    assert "01-hostile.xml" in said and hashlib.sha256(data).hexdigest() in said, said


def test_two_gib_sparse_file_is_refused_by_its_size_without_parsing_it(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """A 2 GiB upload is refused on its size alone, without memory growth: it is never
    parsed, only hashed a block at a time, so that its answer names its SHA-256."""

    def place(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(2 * 1024**3)

    answers: list[Answer] = []
    started = time.monotonic()
    growth = peak_rss_growth(lambda: answers.append(rejected_then_good(inst, place, assert_valid)))
    elapsed = time.monotonic() - started
    assert growth < 50 * 1024**2, f"memory grew by {growth / 1024**2:.0f} MiB"
    # Hashing reads 2 GiB (about 2 s on this project's machine); parsing would take minutes.
    assert elapsed < 30.0, f"refusing a 2 GiB file by its size took {elapsed:.1f} s"
    findings = next(inst.spool.glob("rejected/*/*/*__01-hostile.xml.findings.txt")).read_text()
    assert "2147483648" in findings
    digest = re.search(r"SHA-256:\s+([0-9a-f]{64})\n", findings)
    assert digest is not None, findings
    assert f"SHA-256 {digest[1]}" in " ".join(answers[0].group_info), answers[0].group_info


def test_a_file_over_the_size_limit_is_answered_with_its_sha256(
    tmp_path: Path, assert_valid: Callable[[object, str], None]
) -> None:
    """SPEC §6: where nothing could be read, AddtlInf names the uploaded file and its
    SHA-256 (OrgnlMsgId UNKNOWN), so the client can match the answer to its upload; so do
    the findings. The same bytes again are answered with that answer once more, and a
    signature container over its limit names its SHA-256 too."""
    inst = Installation.create(tmp_path / "gw", max_file_bytes=3000)
    try:
        data = random.Random(3).randbytes(5000)
        digest = hashlib.sha256(data).hexdigest()
        answer = inst.submit(data, name="l03_bigbin.xml")
        assert_valid(answer.path, PAIN002)
        assert (answer.group_status, answer.group_reasons) == ("RJCT", ["FF01"])
        assert answer.original_msg_id == "UNKNOWN"
        assert " ".join(answer.group_info) == (  # AddtlInf in pieces of at most 105
            "the file has 5000 bytes, more than the limit 3000; "
            f"file l03_bigbin.xml, SHA-256 {digest}"
        )
        assert answer.shelf is not None and answer.shelf.parts[-4] == "rejected"
        findings = answer.shelf.with_name(answer.shelf.name + ".findings.txt").read_text()
        assert f"SHA-256:     {digest}\n" in findings, findings

        again = inst.submit(data, name="l03_bigbin-again.xml")
        assert again.shelf is not None and again.shelf.parts[-4] == "duplicates"
        assert again.group_info == answer.group_info

        # A pain.001 over the limit is not read, but echoes what its head shows (it was
        # UNKNOWN however plain its group header).
        big = Batch(msg_id="TOO-BIG").tx("E2E-1", "1.00")
        for n in range(40):
            big.tx(f"E2E-{n + 2}", "1.00")
        refused = inst.submit(big.build(), name="big.xml")
        assert_valid(refused.path, PAIN002)
        assert (refused.group_status, refused.group_reasons) == ("RJCT", ["FF01"])
        assert refused.original_msg_id == "TOO-BIG"
        assert refused._text("//p:OrgnlGrpInfAndSts/p:OrgnlMsgNmId") == "pain.001.001.03"

        container = inst.submit(random.Random(4).randbytes(2_000_000), name="pay.asice")
        assert container.group_reasons == ["DS0B"]
        assert "file pay.asice, SHA-256 " in " ".join(container.group_info)
        assert "not read" not in " ".join(container.group_info)
    finally:
        inst.close()


@pytest.mark.slow
def test_too_many_transactions(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """250,000 transactions against the 200,000 limit: FF01 naming the limit, nothing
    booked, memory bounded (the reader streams and stops at the limit)."""
    assert inst.settings.max_transactions == 200_000

    def place(path: Path) -> None:
        tmp = path.with_name(".big.part")
        with open(tmp, "wb") as handle:
            samples.write(samples.payroll(A_MAIN, 250_000, msg_id="TOO-MANY"), handle)
        tmp.rename(path)

    answers: list[Answer] = []
    growth = peak_rss_growth(lambda: answers.append(rejected_then_good(inst, place, assert_valid)))
    assert "200000" in " ".join(answers[0].group_info)
    assert growth < 300 * 1024**2, f"memory grew by {growth / 1024**2:.0f} MiB"


def test_random_mutations_never_crash_and_always_get_one_answer(
    template: Path, tmp_path: Path, assert_valid: Callable[[object, str], None]
) -> None:
    """Random byte changes to a valid upload (flips, cuts, insertions) never crash the
    pipeline: every mutant gets exactly one XSD-valid answer and the ledger stays sound."""
    inst = Installation.copy_of(template, tmp_path / "gw")
    original = valid_file("MUTANT")
    counter = iter(range(10**6))

    edit = st.tuples(
        st.sampled_from(["replace", "delete", "insert"]),
        st.integers(min_value=0, max_value=len(original) - 1),
        st.binary(min_size=1, max_size=4),
    )

    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.lists(edit, min_size=1, max_size=6))
    def mutate(edits: list[tuple[str, int, bytes]]) -> None:
        data = bytearray(original)
        for op, position, payload in edits:
            at = min(position, len(data))
            if op == "replace":
                data[at : at + len(payload)] = payload
            elif op == "delete":
                del data[at : at + len(payload)]
            else:
                data[at:at] = payload
        # One upload per second, as over SFTP (two identical uploads within the same
        # second are a separate case: test_duplicates_and_pending).
        inst.clock.advance(dt.timedelta(seconds=1))
        inst.drop(bytes(data), f"m{next(counter):05d}.xml")
        result = inst.run()
        assert len(result.outcomes) == 1
        answers = inst.new_answers()
        assert len(answers) == 1
        assert_valid(answers[0].path, PAIN002)
        assert answers[0].group_status in ("RJCT", "ACSC", "PART", "ACCP")
        assert "could not be processed" not in " ".join(answers[0].group_info), "a fault of ours"
        assert inst.left_in(CLIENT_A) == []

    try:
        mutate()
        inst.env.ledger.check_invariants()
    finally:
        inst.close()


def test_a_long_remittance_within_the_limit_is_still_accepted(inst: Installation) -> None:
    """The limit on how long one transaction may run (`stall_bytes_max`) leaves room for
    real ones: 20,000 remittance lines (~0.6 MB) in one payment are read and booked."""
    from gateway.inbound import pain001_v03

    data = _endless_transaction(20_000)
    assert 500_000 < len(data) < pain001_v03.stall_bytes_max
    inst.drop(data, "long.xml")
    inst.run()
    [answer] = inst.new_answers()
    assert answer.original_msg_id == "ENDLESS"
    assert answer.group_status == "ACSC", answer.group_info


HUGE = "9999999999999999.99"  # the largest InstdAmt with cents pain.001 allows (18 digits)


def _without_ctrl_sums(data: bytes) -> bytes:
    return re.sub(rb"<CtrlSum>[^<]*</CtrlSum>", b"", data)


def test_amounts_adding_up_past_18_digits_are_ff01_and_the_next_file_goes_on(
    inst: Installation, assert_valid: Callable[[object, str], None]
) -> None:
    """Ten payments of 9,999,999,999,999,999.99 EUR due later, without CtrlSum: valid
    against the schema, but their total in cents has 20 digits, more than one amount's 18
    and more than a 64-bit sum holds. RJCT AM10 for the whole file, nothing recorded; the
    next file is processed. (Every run of it failed with an integer overflow, and it went
    to quarantine unanswered.)"""
    later = (TODAY + dt.timedelta(days=7)).isoformat()
    batch = Batch(msg_id="HUGE", execution_date=later)
    for n in range(10):
        batch.tx(f"H-{n}", HUGE)
    answer = inst.submit(_without_ctrl_sums(batch.build()), name="huge.xml")
    assert_valid(answer.path, PAIN002)
    assert answer.group_status == "RJCT" and answer.group_reasons == ["FF01"]
    assert "18 digits" in " ".join(answer.group_info), answer.group_info
    assert inst.submit(valid_file("AFTER-HUGE")).group_status == "ACSC"
    assert inst.env.spool.quarantined(CLIENT_A) == []


def test_status_sums_pending_amounts_past_64_bits(inst: Installation) -> None:
    """Ten files, each one payment of 9,999,999,999,999,999.99 USD due later: each file is
    fine, their pending sum on the account is past 64 bits. `status` still reads the
    database and shows them (SQLite's SUM failed with 'integer overflow', and `status`
    said the database was unreachable, for every client)."""
    from gateway.clock import FixedClock
    from gateway.status import collect

    later = (TODAY + dt.timedelta(days=7)).isoformat()
    for n in range(10):
        data = Batch(debtor=A_USD, msg_id=f"BIG-{n}", execution_date=later).tx(
            f"B-{n}", HUGE, currency="USD"
        ).build()
        assert set(inst.submit(data, name=f"big-{n}.xml").statuses().values()) == {"PDNG"}
    shown = collect(inst.env, FixedClock(inst.clock.now()))
    assert shown.database_error is None, shown.database_error
    [usd] = [p for p in shown.pending if p.iban == A_USD]
    assert usd.count == 10, usd


def test_a_name_cannot_forge_lines_of_its_findings(inst: Installation) -> None:
    """A name a client chose (here, as an OpenSSH upload could leave it in in/) holding
    a NEL and a bidi override: the findings file shows them as escapes, so every line
    still says what its label says and no line of it claims a result the file did not get."""
    name = "inj.xml\x85Result:      ACSC (all booked)\u202e"
    answer = inst.submit(b"not xml", name=name)
    assert answer.group_status == "RJCT" and answer.shelf is not None
    findings = answer.shelf.with_name(answer.shelf.name + ".findings.txt").read_text()
    lines = findings.splitlines()  # Python splits at NEL, LS and PS too
    assert lines[0] == "File:        inj.xml\\u0085Result:      ACSC (all booked)\\u202e"
    assert [line for line in lines if line.startswith("Result:")] == [
        "Result:      RJCT FF01 (Invalid file format)"
    ]
