"""The first execution run of a new file, a chunk at a time as the reader hands it on.

For each chunk: look up what the rules need (record), decide (pure: `decide.decide`),
record the payments and the transfers, and add each payment's status to the first
pain.002 (answer). The file's later runs, as its pending payments fall due, are
`pending.py`'s.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from gateway import announcements, large_days, record
from gateway.environment import Environment
from gateway.inbound import decide, rules
from gateway.inbound.intake import Intake
from gateway.inbound.parsed import ParsedHeader, ParsedPmtInf, declared_count
from gateway.inbound.reader import Chunk, Echo, forget_before
from gateway.outbound import answers, first_report, pain002_v03
from gateway.outbound.first_report import FirstReport
from gateway.references import FileRefs
from gateway.shelving import rejections_listed_max
from gateway.statuses import TxStatus
from ledger.tx import LedgerTx


class FirstRun:
    """The first execution run of a new file, a chunk at a time: look up what the rules
    need, decide (pure), record, and add each payment's status to the report."""

    def __init__(
        self,
        env: Environment,
        tx: LedgerTx,
        intake: Intake,
        header: ParsedHeader,
        file_id: int,
        report: FirstReport,
    ) -> None:
        settings = env.settings
        client = settings.client(intake.client_id)
        self.tx, self.intake, self.header, self.file_id, self.report = (
            tx, intake, header, file_id, report,
        )  # fmt: skip
        self.clock = decide.Clock(
            intake.received_local, intake.now_local, settings.cutoff_internal,
            settings.cutoff_external, settings.eod_time,
        )  # fmt: skip
        today = self.clock.today
        own = {a.iban: a.currency for a in client.accounts}
        self.book = record.client_book(tx, client.id, own, today)
        refs = FileRefs(client.id, intake.sha256, file_id, 1)
        self.bookings = decide.Bookings(
            refs, today, record.clearing_by_currency(self.book), fx_wait_days=settings.fx_wait_days
        )
        mine = {i: a for i, a in self.book.accounts.items() if a.owner == client.id}
        self.debtors = sorted(mine)
        self.treasury: dict[str, Any] = {}  # the treasury creditors found so far
        self.looked_up: set[str] = set()
        self.settings, self.gate_looked_up = settings, False
        self.recent: set[int] = set()
        declared = declared_count(header.nb_of_txs)
        self.lookup_per_chunk = declared is not None and declared <= record.fingerprint_lookups_max
        if not self.lookup_per_chunk:  # a big file reads its accounts' whole AM05 window
            self.recent |= record.recent_fingerprints(
                tx.conn, self.debtors, rules.window_start(today), None, file_id
            )
        accounts = [a for c in settings.clients for a in c.accounts]
        self.served = settings.served()  # AC01 for any other treasury account
        self.ctx = rules.Context(
            mine, self.treasury, today, settings.max_future_days, self.recent,
            budget_accounts=frozenset(a.iban for a in accounts if a.budget),
            classifier=settings.classifier,
            execution_day=lambda day, internal: self.clock.due(day, internal).day,
        )  # fmt: skip
        self.pmts: dict[int, rules.PaymentInfo] = {}
        self.counts: Counter[str] = Counter()
        self.rejected: list[tuple[int, str, str, str]] = []
        self.days: dict[dt.date, list[int]] = {}  # what the file puts into each day (SPEC §14)
        self.ctrl_sums: dict[int, str] = {}  # PmtInf/CtrlSum as echoed, until recorded

    def payment_info(self, parsed: ParsedPmtInf) -> None:
        self.pmts[parsed.seq] = rules.PaymentInfo.of(parsed, self.ctx)
        # Its CtrlSum as sent, echoed in every report about the file: kept once per payment
        # information (`record.payment_infos`), never per payment.
        ctrl_sum = answers.echoed_ctrl_sum(parsed.ctrl_sum)
        self.report.payment_info(parsed.seq, ctrl_sum)
        if (echoed := pain002_v03.decimal_number(ctrl_sum)) is not None:
            self.ctrl_sums[parsed.seq] = echoed

    def chunk(self, chunk: Chunk) -> None:
        pmts, candidate = self.pmts, rules.Candidate
        forget_before(chunk.transactions[0].pmt_seq, pmts)
        candidates = [
            candidate(i, t, f, pmts[t.pmt_seq])
            for i, (t, f) in enumerate(zip(chunk.transactions, chunk.facts, strict=True))
        ]
        self._look_up(candidates)
        decisions = decide.decide(candidates, self.ctx, self.clock, self.book, self.bookings)
        # Each write's rows are made while the database finishes the one before
        # (`record.posting`: PostgreSQL works through a COPY behind the rows sent).
        msg_id, file_id = self.header.msg_id, self.file_id
        with record.posting(self.tx, self.bookings.take_singles(), self.book, self.intake.now):
            rows = [
                record.payment_row(file_id, msg_id, c.tx, c.pmt, c.facts, d)
                for c, d in zip(candidates, decisions, strict=True)
            ]
            large_days.add_file_days(self.days, map(record.day_values, rows))
        echoes = first_report.echoes(chunk, (c.pmt.requested_date for c in candidates))
        with record.inserting_payments(self.tx.conn, rows):
            self._answer(candidates, decisions, echoes)
        # The CtrlSums of the payment informations read so far, kept with the file now:
        # not held to its end (a file may have one payment information per payment).
        record.payment_infos(self.tx.conn, file_id, self.ctrl_sums)
        self.ctrl_sums.clear()

    def _look_up(self, candidates: list[rules.Candidate]) -> None:
        """What this chunk's rules need beyond what is known: the treasury accounts its
        creditors name and, for a small file, earlier
        payments with the same fingerprint."""
        named = {c.tx.creditor_iban for c in candidates if c.facts.internal}
        new = {iban for iban in named if iban is not None} - self.looked_up
        if new:
            self.looked_up |= new
            found = record.treasury_accounts(self.tx, new & self.served)
            self.book.add(found.values())
            self.treasury.update(found)
        if not self.gate_looked_up and any(map(self._may_be_large, candidates)):
            self.gate_looked_up = True  # once a file: SPEC §14
            self.bookings.gate = record.large_day_gate(
                self.tx.conn, self.settings, self.intake.client_id, self.clock.today
            )
        if self.bookings.rates is None and any(map(self._needs_exchange, candidates)):
            self.bookings.rates = record.day_rates(self.tx.conn, self.clock.today)
        if self.lookup_per_chunk:
            prints = sorted({p for c in candidates if (p := c.facts.fingerprint) is not None})
            self.recent |= record.recent_fingerprints(
                self.tx.conn,
                self.debtors,
                rules.window_start(self.clock.today),
                prints,
                self.file_id,
            )

    def _may_be_large(self, c: rules.Candidate) -> bool:
        """Whether a payment may execute now in EUR (the large-payment-day rule)."""
        requested = c.pmt.requested_date
        return c.tx.currency == "EUR" and requested is not None and requested <= self.clock.today

    def _needs_exchange(self, c: rules.Candidate) -> bool:
        """Whether a payment may need an exchange rate: its currency is not its debtor
        account's, or not its treasury creditor's."""
        debtor = c.pmt.debtor
        if debtor is not None and c.tx.currency != debtor.currency:
            return True
        creditor = self.treasury.get(c.tx.creditor_iban or "") if c.facts.internal else None
        return creditor is not None and c.tx.currency != creditor.currency

    def _answer(
        self,
        candidates: list[rules.Candidate],
        decisions: list[decide.Decision],
        echoes: list[Echo],
    ) -> None:
        """Each payment's TxInfAndSts into the report: what it echoes of the payment as
        read (`first_report.echoes`) around its outcome."""
        outcome = pain002_v03.outcome
        texts = []
        for c, d, (ids, reference) in zip(candidates, decisions, echoes, strict=True):
            texts.append(ids + outcome(d.status, d.reason, d.info, d.acct_svcr_ref) + reference)
            if d.status is TxStatus.RJCT and len(self.rejected) < rejections_listed_max:
                assert d.reason is not None
                t = c.tx
                self.rejected.append((t.seq, t.end_to_end_id, d.reason.value, d.info or ""))
        statuses = [d.status._value_ for d in decisions]  # not `.value`: a descriptor call each
        self.counts.update(statuses)
        self.report.add_chunk(
            [c.tx.pmt_seq for c in candidates],
            [c.pmt.parsed.pmt_inf_id for c in candidates],
            statuses,
            texts,
        )

    def finish(self) -> None:
        """Write the batch transfers and check the ledger holds what was decided."""
        record.finish(self.tx, self.bookings.batches(), self.book, self.intake.now)
        record.rates_used(self.tx.conn, self.bookings.quotes)
        announcements.record_days(self.tx.conn, self.file_id, self.intake.client_id, self.days)
        assert not self.ctrl_sums, "every payment information comes before its transactions"
