"""Property: whatever happens over a run of days, every statement reconciles (SPEC §8).

Hypothesis draws a few days of activity: internal payments between the two clients,
external ones, payments that are rejected, future-dated ones executed on a later
day, funding, files after the cut-off or after end of day, quiet days, and the
weekend and the 18 November holiday in between. The real pipeline runs it on a
FixedClock; each evening the statements are written either as an operator would
(`write_statements` for every day not yet closed) or as the daemon does
(`run_due_eod`), or not at all (the next evening catches up). Then, for every
client account and business day, the camt.053 the client received must add up, open
at the previous close, match the ledger's postings and carry every executed payment.
"""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.funding import fund
from gateway.outbound import statements
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, to_bytes
from ledger import calendar
from tests.integration.test_statements import (
    ledger_balance_through,
    ledger_movement,
    riga,
    statements_of,
)
from tests.pipeline_fixtures import (
    A_MAIN,
    A_SMALL,
    B_MAIN,
    CLIENT_A,
    CLIENT_B,
    EXTERNAL,
    EXTERNAL_BIC,
    TREL_MISSING,
    Installation,
)

Validate = Callable[[Path, str], None]
START = dt.date(2026, 11, 16)  # a Monday; Wednesday 18 November is a public holiday
DEBTORS = {CLIENT_A: (A_MAIN, A_SMALL), CLIENT_B: (B_MAIN,)}
CREDITORS = {
    "external": EXTERNAL,
    "to-a": A_MAIN,
    "to-a-small": A_SMALL,
    "to-b": B_MAIN,
    "missing": TREL_MISSING,  # a treasury account that does not exist: rejected
}
_runs = itertools.count()


@dataclass(frozen=True)
class Tx:
    creditor: str
    cents: int


@dataclass(frozen=True)
class Pmt:
    debtor_index: int
    batch_booking: bool | None
    days_ahead: int
    txs: tuple[Tx, ...]


@dataclass(frozen=True)
class File:
    client: str
    when: str  # "10:00" normal, "16:00" after the external cut-off, "19:00" after end of day
    pmts: tuple[Pmt, ...]


@dataclass(frozen=True)
class Day:
    gap: int  # calendar days since the previous simulated day
    files: tuple[File, ...]
    funding: tuple[tuple[str, int, str], ...]  # (IBAN, cents, time)
    close: str  # "operator", "daemon" or "skip"


txs = st.builds(
    Tx,
    creditor=st.sampled_from(["external"] * 4 + sorted(set(CREDITORS) - {"external"})),
    cents=st.one_of(st.integers(1, 5_000), st.integers(5_000, 30_000)),
)
pmts = st.builds(
    Pmt,
    debtor_index=st.integers(0, 1),
    batch_booking=st.sampled_from([None, True, False]),
    days_ahead=st.sampled_from([0, 0, 0, 1, 2, 4]),
    txs=st.lists(txs, min_size=1, max_size=3).map(tuple),
)
files = st.builds(
    File,
    client=st.sampled_from([CLIENT_A, CLIENT_B]),
    when=st.sampled_from(["10:00", "10:00", "16:00", "19:00"]),
    pmts=st.lists(pmts, min_size=1, max_size=2).map(tuple),
)
days = st.builds(
    Day,
    gap=st.sampled_from([1, 1, 2, 3]),
    files=st.lists(files, max_size=2).map(tuple),
    funding=st.lists(
        st.tuples(
            st.sampled_from([A_SMALL, B_MAIN]),
            st.integers(1, 20_000),
            st.sampled_from(["11:00", "19:00"]),
        ),
        max_size=1,
    ).map(tuple),
    close=st.sampled_from(["operator", "daemon", "daemon", "skip"]),
)


@dataclass(frozen=True)
class Sent:
    debtor: str
    creditor: str

    @property
    def internal(self) -> bool:
        return self.creditor[4:8] == "TREL"


def build_file(file: File, day: dt.date, name: str, sent: dict[str, Sent]) -> bytes:
    infos = []
    every: list[SampleTx] = []
    for p_no, pmt in enumerate(file.pmts):
        debtors = DEBTORS[file.client]
        debtor = debtors[pmt.debtor_index % len(debtors)]
        transactions = []
        for t_no, tx in enumerate(pmt.txs):
            creditor = CREDITORS[tx.creditor]
            if creditor == debtor:
                creditor = EXTERNAL
            e2e = f"{name}-{p_no}-{t_no}"
            sent[e2e] = Sent(debtor, creditor)
            transactions.append(
                SampleTx(
                    e2e,
                    f"{tx.cents // 100}.{tx.cents % 100:02d}",
                    creditor,
                    creditor_bic=None if creditor[4:8] == "TREL" else EXTERNAL_BIC,
                    remittance=f"Rēķins {e2e}",
                )
            )
        every += transactions
        infos.append(
            SamplePmtInf(
                pmt_inf_id=f"{name}-P{p_no}",
                debtor_iban=debtor,
                transactions=transactions,
                execution_date=(day + dt.timedelta(days=pmt.days_ahead)).isoformat(),
                batch_booking=pmt.batch_booking,
                nb_of_txs=str(len(transactions)),
                ctrl_sum=_total(transactions),
            )
        )
    return to_bytes(
        SampleBatch(
            msg_id=name, payment_infos=infos, nb_of_txs=str(len(every)), ctrl_sum=_total(every)
        )
    )


def _total(transactions: list[SampleTx]) -> str:
    cents = sum(int(t.amount.replace(".", "")) for t in transactions)
    return f"{cents // 100}.{cents % 100:02d}"


class Simulation:
    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self.sent: dict[str, Sent] = {}
        self.final: dict[str, tuple[str, str | None]] = {}  # e2e -> (status, AcctSvcrRef)
        self.closed: list[dt.date] = []

    def collect(self) -> None:
        for client in (CLIENT_A, CLIENT_B):
            for answer in self.inst.new_answers(client):
                for t in answer.transactions():
                    self.final[t.end_to_end_id] = (t.status, t.acct_svcr_ref)

    def at(self, day: dt.date, clock: str) -> None:
        self.inst.clock.set(riga(day, clock))

    def run(self) -> None:
        self.inst.run()
        self.collect()

    def close(self, day: dt.date, how: str) -> None:
        if how == "daemon":
            statements.run_due_eod(self.inst.env)
        elif how == "operator":  # `eod --date D` for each day not yet closed, in order
            d = self.closed[-1] + dt.timedelta(days=1) if self.closed else START
            while d <= day:
                if calendar.is_business_day(d):
                    statements.write_statements(self.inst.env, d)
                d += dt.timedelta(days=1)
        if how != "skip" and calendar.is_business_day(day):
            self.closed.append(day)

    def play(self, plan: list[Day]) -> dt.date:
        day = START - dt.timedelta(days=1)
        for step, today in enumerate(plan):
            day += dt.timedelta(days=today.gap if step else 1)
            self.at(day, "09:00")
            self.run()  # pending payments due today execute at the start of the day
            events = sorted(
                [(f.when, "file", n, f) for n, f in enumerate(today.files)]
                + [(t, "fund", n, (i, c)) for n, (i, c, t) in enumerate(today.funding)],
                key=lambda e: (e[0], e[1], e[2]),
            )
            evening_done = False
            for when, kind, n, what in events:
                if when >= "18:30" and not evening_done:
                    self.at(day, "18:30")
                    self.close(day, today.close)
                    evening_done = True
                self.at(day, when)
                if kind == "file":
                    assert isinstance(what, File)
                    name = f"D{day:%m%d}F{n}"
                    data = build_file(what, day, name, self.sent)
                    self.inst.drop(data, f"{name}.xml", what.client)
                    self.run()
                else:
                    iban, cents = what  # type: ignore[misc]
                    fund(self.inst.env, iban, f"{cents // 100}.{cents % 100:02d}", key=f"{day}{n}")
            if not evening_done:
                self.at(day, "18:30")
                self.close(day, today.close)
        self.at(day, "23:00")
        statements.run_due_eod(self.inst.env)  # whatever was skipped is caught up
        return day


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("property-template")
    Installation.create(base, now=riga(START, "08:00")).close()
    return base


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(days, min_size=2, max_size=5))
def test_every_statement_reconciles_with_the_ledger_and_the_answers(
    plan: list[Day],
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    assert_valid: Validate,
) -> None:
    """Over any run of days a client's statements add up (OPBD + credits − debits =
    CLBD), each opens at the previous close, each equals the ledger's movement of the
    day, ElctrncSeqNb counts 1, 2, 3… per account, one statement per business day, and
    every payment the pain.002s reported as ACSC appears exactly once as a TxDtls (by
    AcctSvcrRef) on the payer's statements, and an internal one also once on the payee's,
    as a credit naming the payer; nothing else appears."""
    base = tmp_path_factory.getbasetemp() / f"property-{next(_runs)}"
    inst = Installation.copy_of(template, base, now=riga(START, "08:00"))
    try:
        sim = Simulation(inst)
        last = sim.play(plan)
        check(inst, sim, last, assert_valid)
    finally:
        inst.close()
        shutil.rmtree(base, ignore_errors=True)


def check(inst: Installation, sim: Simulation, last: dt.date, validate: Validate) -> None:
    found = statements_of(inst, CLIENT_A, validate) | statements_of(inst, CLIENT_B, validate)
    ibans = [a.iban for c in inst.settings.clients for a in c.accounts]
    business = [
        START + dt.timedelta(days=n)
        for n in range((last - START).days + 1)
        if calendar.is_business_day(START + dt.timedelta(days=n))
    ]
    assert set(found) == {(i, d) for i in ibans for d in business}

    credited: Counter[tuple[str, str]] = Counter()  # (IBAN, AcctSvcrRef) of TxDtls
    debited: Counter[tuple[str, str]] = Counter()
    counterparty: dict[tuple[str, str], str | None] = {}
    for iban in ibans:
        chain = [found[(iban, d)] for d in business]
        assert [s.seq for s in chain] == list(range(1, len(chain) + 1)), iban
        assert chain[0].opening == ledger_balance_through(inst, iban, START - dt.timedelta(1))
        for previous, current in itertools.pairwise(chain):
            assert current.opening == previous.closing, (iban, current.day)
        for s in chain:
            where = (iban, s.day, s.path.name)
            assert s.opening + s.net == s.closing, where
            assert s.net == ledger_movement(inst, iban, s.day), where
            assert s.closing == ledger_balance_through(inst, iban, s.day), where
            assert s.summary_count == len(s.entries), where
            for e in s.entries:
                assert e.booking_date == s.day, where
                assert e.details, (where, e.acct_svcr_ref)
                assert sum(d.amount_minor for d in e.details) == e.amount_minor, where
                if e.batch is not None:
                    assert (e.batch[2], e.batch[3]) == (len(e.details), e.amount_minor), where
                else:
                    assert len(e.details) == 1, where
                for d in e.details:
                    assert d.acct_svcr_ref, where
                    key = (iban, d.acct_svcr_ref)
                    (credited if e.credit else debited)[key] += 1
                    counterparty[key] = d.counterparty_iban

    expected_debits: Counter[tuple[str, str]] = Counter()
    expected_credits: Counter[tuple[str, str]] = Counter()
    for e2e, (status, ref) in sim.final.items():
        if status != "ACSC":
            continue
        assert ref, e2e
        sent = sim.sent[e2e]
        expected_debits[(sent.debtor, ref)] += 1
        if sent.internal:
            expected_credits[(sent.creditor, ref)] += 1
            assert counterparty[(sent.creditor, ref)] == sent.debtor, e2e
    for status, _ in sim.final.values():
        event(f"payment {status}")
    assert debited == expected_debits
    funded = {k: n for k, n in credited.items() if k[1].startswith("FUND")}
    assert {k: n for k, n in credited.items() if k not in funded} == expected_credits
    assert all(n == 1 for n in funded.values())
