"""What the pain.001 reader keeps of a payment's RgltryRptg (SPEC §12): the EKK and IKK
lines as sent, in file order, each `Tp␟Cd␟Amt␟Ccy` with its texts stripped, a missing
field empty; other regulatory reporting is left out; at most `code_lines_kept_max`."""

from __future__ import annotations

from gateway import samples
from gateway.inbound import budget, pain001_v03
from gateway.inbound.parsed import ParsedTx

DEBTOR = samples.iban_lv("TREL", 9_100_000_000_001)
CREDITOR = samples.iban_lv("HABA", 1)


def _codes_read(rgltry: str) -> str | None:
    """The codes the reader keeps of one payment whose RgltryRptg blocks are `rgltry`."""
    tx = samples.SampleTx("E2E-1", "100.00", CREDITOR, codes=(("EKK", "2221", "100.00"),))
    batch = samples.SampleBatch(
        "MSG-1", [samples.SamplePmtInf("P-1", DEBTOR, [tx])], nb_of_txs="1", ctrl_sum="100.00"
    )
    data = samples.to_bytes(batch)
    start, end = data.index(b"<RgltryRptg>"), data.index(b"</RgltryRptg>") + len(b"</RgltryRptg>")
    data = data[:start] + rgltry.encode() + data[end:]
    events = list(pain001_v03.stream([data], transactions_max=10))
    assert events[-1].failure is None, events[-1].failure  # type: ignore[union-attr]
    (row,) = next(e for e in events if isinstance(e, list))
    return ParsedTx._make(row).codes


def test_lines_are_kept_as_sent_stripped_in_file_order_across_blocks() -> None:
    kept = _codes_read(
        "<RgltryRptg><DbtCdtRptgInd>DEBT</DbtCdtRptgInd>"
        "<Dtls><Tp> EKK </Tp><Dt>2026-11-25</Dt><Ctry>LV</Ctry><Cd>\n2221 </Cd>"
        '<Amt Ccy="EUR"> 75.00 </Amt><Inf>heating</Inf></Dtls>'
        "<Dtls><Tp>CBR</Tp><Cd>101</Cd></Dtls></RgltryRptg>"
        '<RgltryRptg><Dtls><Tp>IKK</Tp><Amt Ccy="USD">25.00</Amt></Dtls>'
        "<Dtls><Tp>EKK</Tp><Cd>2231</Cd></Dtls><Dtls><Cd>2222</Cd></Dtls></RgltryRptg>"
    )
    assert budget.split(kept) == [
        ["EKK", "2221", "75.00", "EUR"],
        ["IKK", "", "25.00", "USD"],
        ["EKK", "2231", "", ""],
    ]


def test_no_ekk_or_ikk_line_keeps_nothing() -> None:
    assert _codes_read("<RgltryRptg><Dtls><Tp>CBR</Tp><Cd>101</Cd></Dtls></RgltryRptg>") is None


def test_lines_past_the_kept_maximum_are_left_out_and_counted() -> None:
    """50 EKK lines where a payment needs none: 21 kept, the other 29 counted, and the
    statement says so (it said "+3 more" of the 21 kept, as if 21 had been sent)."""
    line = '<Dtls><Tp>EKK</Tp><Cd>2221</Cd><Amt Ccy="EUR">1.00</Amt></Dtls>'
    kept = _codes_read("".join(f"<RgltryRptg>{line * 5}</RgltryRptg>" for _ in range(10)))
    assert len(budget.split(kept)) == pain001_v03.code_lines_kept_max
    assert budget.not_kept(kept, "EKK") == 50 - pain001_v03.code_lines_kept_max
    assert budget.not_kept(kept, "IKK") == 0
    text = budget.addtl_tx_inf(kept, "EKK")
    assert text == "; ".join(["EKK 2221 1.00"] * 21 + ["+29 more"]), text


def test_the_lines_of_one_type_never_crowd_out_the_other() -> None:
    """25 EKK lines (not judged: the debtor is no budget account) before 20 IKK lines to a
    budget account: the IKK lines were cut to 16 of the 41 kept in all, and the payment
    refused RR05 for a sum the client never sent (a tester). Each type keeps its own."""
    ekk = '<Dtls><Tp>EKK</Tp><Cd>2221</Cd><Amt Ccy="EUR">1.00</Amt></Dtls>'
    ikk = '<Dtls><Tp>IKK</Tp><Cd>12.3.9.9</Cd><Amt Ccy="EUR">1.00</Amt></Dtls>'
    blocks = "".join(f"<RgltryRptg>{x * 5}</RgltryRptg>" for x in [ekk] * 5 + [ikk] * 4)
    kept = budget.split(_codes_read(blocks))
    assert [line[0] for line in kept].count("IKK") == 20
    assert [line[0] for line in kept].count("EKK") == pain001_v03.code_lines_kept_max
