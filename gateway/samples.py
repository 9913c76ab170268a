"""Writing pain.001.001.03 batches the way a client's ERP would: for the demo, bench and tests.

This is not part of processing; it is the gateway's own sample generator. It
streams (lxml's incremental writer), so a million-transaction file costs no
memory. Values are written as given, so tests can break any field on purpose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from lxml import etree

from gateway.inbound.identifiers import iban_lv as iban_lv  # (where the demo, tests and bench look)

NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"


@dataclass(frozen=True, slots=True)
class SampleStrd:
    """One structured remittance block: a creditor reference (RF… with its type and
    issuer) and the invoices paid (number, date, amount)."""

    creditor_reference: str | None = None
    reference_type: str = "SCOR"
    issuer: str | None = "ISO"
    invoices: tuple[tuple[str, str, str], ...] = ()  # (number, YYYY-MM-DD, amount)


@dataclass(frozen=True, slots=True)
class SampleTx:
    end_to_end_id: str
    amount: str
    creditor_iban: str
    creditor_name: str = "Saņēmējs SIA"
    currency: str = "EUR"
    creditor_bic: str | None = None
    instr_id: str | None = None
    remittance: str | None = "Rēķins 1"  # Ustrd lines, separated by "\n"
    structured: tuple[SampleStrd, ...] = ()
    # SPEC §12: budget code lines (Tp EKK/IKK, Cd, Amt), in `code_blocks` RgltryRptg
    codes: tuple[tuple[str, str, str], ...] = ()
    code_blocks: int = 1


@dataclass(frozen=True, slots=True)
class SamplePmtInf:
    pmt_inf_id: str
    debtor_iban: str
    transactions: Iterable[SampleTx]
    execution_date: str = "2026-11-25"
    debtor_name: str = "Budžeta iestāde"
    batch_booking: bool | None = None
    nb_of_txs: str | None = None  # written only when given (it is optional in the schema)
    ctrl_sum: str | None = None
    debtor_bic: str = "TRELLV22"


@dataclass(frozen=True, slots=True)
class SampleBatch:
    msg_id: str
    payment_infos: Iterable[SamplePmtInf]
    nb_of_txs: str
    ctrl_sum: str | None = None
    created_at: str = "2026-11-25T09:00:00"
    initiating_party: str = "ERP"
    extra: dict[str, str] = field(default_factory=dict)


def _leaf(xf: etree._IncrementalFileWriter, tag: str, text: str, **attrib: str) -> None:
    with xf.element(tag, attrib):
        xf.write(text)


def _tx(xf: etree._IncrementalFileWriter, tx: SampleTx) -> None:
    with xf.element("CdtTrfTxInf"):
        with xf.element("PmtId"):
            if tx.instr_id is not None:
                _leaf(xf, "InstrId", tx.instr_id)
            _leaf(xf, "EndToEndId", tx.end_to_end_id)
        with xf.element("Amt"):
            _leaf(xf, "InstdAmt", tx.amount, Ccy=tx.currency)
        if tx.creditor_bic is not None:
            with xf.element("CdtrAgt"), xf.element("FinInstnId"):
                _leaf(xf, "BIC", tx.creditor_bic)
        with xf.element("Cdtr"):
            _leaf(xf, "Nm", tx.creditor_name)
        with xf.element("CdtrAcct"), xf.element("Id"):
            _leaf(xf, "IBAN", tx.creditor_iban)
        _codes(xf, tx)
        if tx.remittance is not None or tx.structured:
            with xf.element("RmtInf"):
                for line in (tx.remittance or "").split("\n") if tx.remittance else []:
                    _leaf(xf, "Ustrd", line)
                for block in tx.structured:
                    _strd(xf, block, tx.currency)


def _codes(xf: etree._IncrementalFileWriter, tx: SampleTx) -> None:
    """RgltryRptg blocks with the code lines dealt out among them in turn."""
    for block in range(tx.code_blocks if tx.codes else 0):
        with xf.element("RgltryRptg"):
            for tp, code, amount in tx.codes[block :: tx.code_blocks]:
                with xf.element("Dtls"):
                    _leaf(xf, "Tp", tp)
                    _leaf(xf, "Cd", code)
                    _leaf(xf, "Amt", amount, Ccy=tx.currency)


def _strd(xf: etree._IncrementalFileWriter, block: SampleStrd, currency: str) -> None:
    with xf.element("Strd"):
        for number, day, _amount in block.invoices:
            with xf.element("RfrdDocInf"):
                with xf.element("Tp"), xf.element("CdOrPrtry"):
                    _leaf(xf, "Cd", "CINV")
                _leaf(xf, "Nb", number)
                _leaf(xf, "RltdDt", day)
        if block.invoices:
            total = sum(Decimal(amount) for _, _, amount in block.invoices)
            with xf.element("RfrdDocAmt"):
                _leaf(xf, "RmtdAmt", f"{total:.2f}", Ccy=currency)
        if block.creditor_reference is not None:
            with xf.element("CdtrRefInf"):
                with xf.element("Tp"):
                    with xf.element("CdOrPrtry"):
                        _leaf(xf, "Cd", block.reference_type)
                    if block.issuer is not None:
                        _leaf(xf, "Issr", block.issuer)
                _leaf(xf, "Ref", block.creditor_reference)


def _pmt_inf(xf: etree._IncrementalFileWriter, pmt: SamplePmtInf) -> None:
    with xf.element("PmtInf"):
        _leaf(xf, "PmtInfId", pmt.pmt_inf_id)
        _leaf(xf, "PmtMtd", "TRF")
        if pmt.batch_booking is not None:
            _leaf(xf, "BtchBookg", "true" if pmt.batch_booking else "false")
        if pmt.nb_of_txs is not None:
            _leaf(xf, "NbOfTxs", pmt.nb_of_txs)
        if pmt.ctrl_sum is not None:
            _leaf(xf, "CtrlSum", pmt.ctrl_sum)
        _leaf(xf, "ReqdExctnDt", pmt.execution_date)
        with xf.element("Dbtr"):
            _leaf(xf, "Nm", pmt.debtor_name)
        with xf.element("DbtrAcct"), xf.element("Id"):
            _leaf(xf, "IBAN", pmt.debtor_iban)
        with xf.element("DbtrAgt"), xf.element("FinInstnId"):
            _leaf(xf, "BIC", pmt.debtor_bic)
        for tx in pmt.transactions:
            _tx(xf, tx)


def write(batch: SampleBatch, out: BinaryIO) -> None:
    """Write `batch` as a pain.001.001.03 document to `out`."""
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element("Document", nsmap={None: NS}), xf.element("CstmrCdtTrfInitn"):
            with xf.element("GrpHdr"):
                _leaf(xf, "MsgId", batch.msg_id)
                _leaf(xf, "CreDtTm", batch.created_at)
                _leaf(xf, "NbOfTxs", batch.nb_of_txs)
                if batch.ctrl_sum is not None:
                    _leaf(xf, "CtrlSum", batch.ctrl_sum)
                with xf.element("InitgPty"):
                    _leaf(xf, "Nm", batch.initiating_party)
            for pmt in batch.payment_infos:
                _pmt_inf(xf, pmt)


def to_bytes(batch: SampleBatch) -> bytes:
    import io

    buffer = io.BytesIO()
    write(batch, buffer)
    return buffer.getvalue()


def payroll(
    debtor_iban: str,
    count: int,
    *,
    msg_id: str = "PAYROLL-1",
    execution_date: dt.date = dt.date(2026, 11, 25),
    per_pmt_inf: int = 10_000,
    amount_minor: int = 12345,
    creditor_bank: str = "HABA",
) -> SampleBatch:
    """`count` external salary payments from one account, in payment informations of
    `per_pmt_inf`, with totals that add up: the shape of a nightly ERP upload."""
    amount = f"{amount_minor // 100}.{amount_minor % 100:02d}"

    def txs(start: int, stop: int) -> Iterator[SampleTx]:
        for n in range(start, stop):
            yield SampleTx(
                end_to_end_id=f"E2E-{n:09d}",
                amount=amount,
                creditor_iban=iban_lv(creditor_bank, n),
                creditor_name=f"Darbinieks {n}",
                creditor_bic=f"{creditor_bank}LV22",
                remittance=f"Alga 11/2026 {n}",
            )

    def pmts() -> Iterator[SamplePmtInf]:
        for block, start in enumerate(range(0, count, per_pmt_inf)):
            stop = min(count, start + per_pmt_inf)
            yield SamplePmtInf(
                pmt_inf_id=f"{msg_id}-P{block}",
                debtor_iban=debtor_iban,
                transactions=txs(start, stop),
                execution_date=execution_date.isoformat(),
                batch_booking=True,
                nb_of_txs=str(stop - start),
                ctrl_sum=_sum_text(amount_minor * (stop - start)),
            )

    return SampleBatch(
        msg_id=msg_id,
        payment_infos=pmts(),
        nb_of_txs=str(count),
        ctrl_sum=_sum_text(amount_minor * count),
    )


def _sum_text(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _two_codes(amount_minor: int) -> tuple[tuple[str, str, str], ...]:
    """Heating (2221) and administrative costs (2231), three quarters and one."""
    quarter = amount_minor // 4
    return (("EKK", "2221", _sum_text(amount_minor - quarter)), ("EKK", "2231", _sum_text(quarter)))


def erp_run(
    debtor_iban: str,
    count: int,
    treasury_creditors: list[str],
    *,
    msg_id: str = "ERP-RUN-1",
    execution_date: dt.date = dt.date(2026, 11, 25),
    per_pmt_inf: int = 1_000,
    first: int = 0,
    coded: bool = False,
) -> SampleBatch:
    """An ERP's payment run: `BtchBookg` false, every other creditor a treasury account
    (taken in turn from `treasury_creditors`), lean records (no BIC, short names and
    remittance), amounts that vary. Payments are numbered from `first`, so runs of one
    debtor numbered apart are not repeats of each other (AM05). `coded`: each payment
    split over two EKK codes (SPEC §12), as a budget institution's run is."""

    def amount_minor(n: int) -> int:
        return 100 + n % 9_900

    def txs(start: int, stop: int) -> Iterator[SampleTx]:
        for n in range(start, stop):
            internal = n % 2 == 0
            creditor = (
                treasury_creditors[(n // 2) % len(treasury_creditors)]
                if internal
                else iban_lv("HABA", n)
            )
            yield SampleTx(
                end_to_end_id=f"R{n}",
                amount=_sum_text(amount_minor(n)),
                creditor_iban=creditor,
                creditor_name=f"K{n % 997}",
                remittance=f"Rek {n}",
                codes=_two_codes(amount_minor(n)) if coded else (),
            )

    def pmts() -> Iterator[SamplePmtInf]:
        for block, start in enumerate(range(first, first + count, per_pmt_inf)):
            stop = min(first + count, start + per_pmt_inf)
            yield SamplePmtInf(
                pmt_inf_id=f"{msg_id}-P{block + 1}",
                debtor_iban=debtor_iban,
                transactions=txs(start, stop),
                execution_date=execution_date.isoformat(),
                batch_booking=False,
                nb_of_txs=str(stop - start),
                ctrl_sum=_sum_text(sum(amount_minor(n) for n in range(start, stop))),
            )

    total = sum(amount_minor(n) for n in range(first, first + count))
    return SampleBatch(
        msg_id=msg_id, payment_infos=pmts(), nb_of_txs=str(count), ctrl_sum=_sum_text(total)
    )


def transfers(
    debtor_iban: str,
    creditor_iban: str,
    count: int,
    *,
    msg_id: str = "TRANSFERS-1",
    execution_date: dt.date = dt.date(2026, 11, 25),
    amount_minor: int = 123,
) -> SampleBatch:
    """`count` payments of one amount between two accounts, in one payment information,
    with no BIC: a file a bank that knows nothing of the treasury reads as well as we do."""
    amount = _sum_text(amount_minor)
    total = _sum_text(amount_minor * count)
    txs = (
        SampleTx(
            end_to_end_id=f"T{n}",
            amount=amount,
            creditor_iban=creditor_iban,
            creditor_name="Saņēmējs",
            remittance=f"Rek {n}",
        )
        for n in range(count)
    )
    pmt = SamplePmtInf(
        pmt_inf_id=f"{msg_id}-P1",
        debtor_iban=debtor_iban,
        transactions=txs,
        execution_date=execution_date.isoformat(),
        nb_of_txs=str(count),
        ctrl_sum=total,
    )
    return SampleBatch(msg_id=msg_id, payment_infos=[pmt], nb_of_txs=str(count), ctrl_sum=total)
