"""What the pain.001 reader says of a file it cannot use: in words a client can act on
(SPEC §6: `AddtlInf` naming the element and value at fault)."""

from __future__ import annotations

from gateway import samples
from gateway.inbound import pain001_v03

DEBTOR = samples.iban_lv("TREL", 9_100_000_000_001)
CREDITOR = samples.iban_lv("TREL", 9_100_000_000_002)


def _failure(data: bytes) -> str:
    *_, summary = pain001_v03.stream([data], transactions_max=10)
    assert summary.failure is not None  # type: ignore[union-attr]
    return summary.failure.info  # type: ignore[union-attr,no-any-return]


def test_a_broken_file_is_described_in_words_not_in_python_bytes() -> None:
    """lxml quotes some of libxml2's messages as Python bytes; the AddtlInf said
    `line 2: b'Invalid bytes in character encoding'` (a tester)."""
    tx = samples.SampleTx("E2E-1", "1.00", CREDITOR)
    pmt = samples.SamplePmtInf("P-1", DEBTOR, [tx] * 3)
    batch = samples.SampleBatch("MSG-1", [pmt], nb_of_txs="3", ctrl_sum="3.00")
    data = samples.to_bytes(batch)
    mismatched = _failure(data.replace(b"</EndToEndId>", b"</EndToEnd>", 1))
    assert "EndToEnd" in mismatched and "b'" not in mismatched and 'b"' not in mismatched
    latin = _failure(data.replace(b"<Nm>", b"<Nm>\xf2", 1))
    assert latin.startswith("not UTF-8 (") and "Invalid bytes in character encoding" in latin
    assert "b'" not in latin


def test_a_blank_msg_id_is_ff01() -> None:
    """`<MsgId>   </MsgId>` is valid (Max35Text) but names nothing: the file was booked and
    answered `OrgnlMsgId UNKNOWN`, and the next such file refused DU01 "MsgId  was already
    used" (a tester)."""
    tx = samples.SampleTx("E2E-1", "1.00", CREDITOR)
    pmt = samples.SamplePmtInf("P-1", DEBTOR, [tx])
    data = samples.to_bytes(samples.SampleBatch("MSG-1", [pmt], nb_of_txs="1", ctrl_sum="1.00"))
    assert _failure(data.replace(b"<MsgId>MSG-1</MsgId>", b"<MsgId>   </MsgId>")) == (
        "GrpHdr/MsgId is blank: a file's MsgId names it"
    )


def test_a_cheque_order_is_ff01() -> None:
    """`PmtMtd` CHK asks for a cheque: it was executed as a credit transfer without a word
    (a tester). The treasury makes credit transfers only."""
    tx = samples.SampleTx("E2E-1", "1.00", CREDITOR)
    pmt = samples.SamplePmtInf("P-1", DEBTOR, [tx])
    data = samples.to_bytes(samples.SampleBatch("MSG-1", [pmt], nb_of_txs="1", ctrl_sum="1.00"))
    assert b"<PmtMtd>TRF</PmtMtd>" in data
    assert _failure(data.replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>CHK</PmtMtd>")) == (
        "PmtInf P-1: PmtMtd CHK, a cheque: the treasury makes credit transfers only (TRF, TRA)"
    )
    *_, fine = pain001_v03.stream(
        [data.replace(b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>TRA</PmtMtd>")], transactions_max=10
    )
    assert fine.failure is None  # type: ignore[union-attr]


def test_a_pmt_inf_id_used_twice_is_ff01() -> None:
    """ISO: PmtInfId identifies a payment information within its message. Two of one id
    were both booked, and their OrgnlPmtInfAndSts in the answer, like their statement
    entries, could not be told apart (a tester)."""
    one = samples.SamplePmtInf("P-1", DEBTOR, [samples.SampleTx("E2E-1", "1.00", CREDITOR)])
    two = samples.SamplePmtInf("P-1", DEBTOR, [samples.SampleTx("E2E-2", "2.00", CREDITOR)])
    data = samples.to_bytes(samples.SampleBatch("MSG-1", [one, two], nb_of_txs="2"))
    assert _failure(data) == "PmtInfId P-1 names two payment informations"


def test_a_file_cut_inside_a_tag_name_is_said_to_be_cut_short() -> None:
    """A file ending in `…</Amt><CdtrAg` was described as the schema saw it ("Element
    'CdtrAg': This element is not expected…"): a client looked for a schema mistake in a
    file that was only cut short (a tester)."""
    tx = samples.SampleTx("E2E-1", "1.00", CREDITOR, creditor_bic="HABALV22")
    pmt = samples.SamplePmtInf("P-1", DEBTOR, [tx] * 3)
    data = samples.to_bytes(samples.SampleBatch("MSG-1", [pmt], nb_of_txs="3", ctrl_sum="3.00"))
    second = data.index(b"<CdtrAgt>", data.index(b"<CdtrAgt>") + 1)
    first_id = data.index(b"<PmtId>")
    for cut in (second + 7, second + 4, data.index(b"<PmtId>", first_id + 1) + 6):
        assert _failure(data[:cut]) == "not well-formed: the document ends before </Document>"


def test_a_root_start_tag_too_long_is_said_to_be() -> None:
    """A root start tag of megabytes of attributes (or namespace declarations) was answered
    "no root element in the first 1048576 bytes", though it began at byte 40 (a tester)."""
    tx = samples.SampleTx("E2E-1", "1.00", CREDITOR)
    pmt = samples.SamplePmtInf("P-1", DEBTOR, [tx])
    data = samples.to_bytes(samples.SampleBatch("MSG-1", [pmt], nb_of_txs="1", ctrl_sum="1.00"))
    wide = data.replace(b"<Document ", b'<Document foo="' + b"A" * (2 << 20) + b'" ', 1)
    blocks = [wide[at : at + (1 << 16)] for at in range(0, len(wide), 1 << 16)]  # as read
    *_, summary = pain001_v03.stream(blocks, transactions_max=10)
    assert summary.failure is not None  # type: ignore[union-attr]
    said = summary.failure.info  # type: ignore[union-attr]
    assert said.startswith("the root element's start tag does not end within the first "), said
    assert f"{pain001_v03.prolog_bytes_max} bytes" in said
