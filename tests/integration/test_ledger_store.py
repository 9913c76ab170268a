"""The ledger in a real database (a SQLite file and PostgreSQL): balanced, idempotent, never
below overdraft, and its statements reconcile.

The properties run any sequence of transfers against a fresh set of accounts per
Hypothesis example (fresh IBANs and idempotency keys in one database per test),
and compare the database with a deliberately simple Python model of the rules.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event
from sqlalchemy import text

from ledger import migrations
from ledger.core import AccountKind, Posting, Refusal, Transfer, TransferKind
from ledger.engine import make_engine
from ledger.store import AccountConflict, AccountSpec, Ledger, upgrade

BASE_DAY = dt.date(2026, 11, 23)  # a Monday
BOOKED_AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
CURRENCIES = ("EUR", "USD")
ONE_DAY = dt.timedelta(days=1)

_examples = itertools.count()


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield Ledger(engine)
    engine.dispose()


# -- the model ------------------------------------------------------------------------------


@dataclass
class ModelAccount:
    iban: str
    currency: str
    kind: AccountKind
    status: str
    overdraft: int
    balance: int = 0


@dataclass
class Model:
    """What the ledger should do, written out plainly."""

    accounts: dict[str, ModelAccount]
    posted: dict[str, int] = field(default_factory=dict)  # key -> transfer id
    # (iban, day) -> [(signed amount, counter iban, key)] in posting order
    entries: dict[tuple[str, dt.date], list[tuple[int, str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def refusal(self, r: Transfer) -> Refusal | None:
        (debit_iban, amount, currency), (credit_iban, _, _) = _legs(r)
        debit, credit = self.accounts[debit_iban], self.accounts[credit_iban]
        if amount <= 0:
            return Refusal.NOT_POSITIVE
        if currency != debit.currency or currency != credit.currency:
            return Refusal.CURRENCY_MISMATCH
        for side, account in (("DEBIT", debit), ("CREDIT", credit)):
            if account.status == "closed":
                return Refusal[f"{side}_CLOSED"]
            if account.status == "blocked":
                return Refusal[f"{side}_BLOCKED"]
        if debit.kind is AccountKind.CLIENT and amount > debit.balance + debit.overdraft:
            return Refusal.INSUFFICIENT_FUNDS
        return None

    def book(self, r: Transfer, transfer_id: int) -> None:
        (debit, amount, _), (credit, _, _) = _legs(r)
        self.posted[r.idempotency_key] = transfer_id
        self.accounts[debit].balance -= amount
        self.accounts[credit].balance += amount
        day = r.booking_date
        self.entries[(debit, day)].append((-amount, credit, r.idempotency_key))
        self.entries[(credit, day)].append((amount, debit, r.idempotency_key))


def _legs(r: Transfer) -> tuple[tuple[str, int, str], tuple[str, int, str]]:
    """(iban, amount, currency) of a two-legged transfer's debit and credit."""
    debit, credit = r.postings
    return (debit.iban, -debit.amount_minor, debit.currency), (
        credit.iban,
        credit.amount_minor,
        credit.currency,
    )


# -- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientDraw:
    currency: str
    status: str
    overdraft: int
    funding: int


@dataclass(frozen=True)
class TransferOp:
    debit: int  # index into Scenario.ibans
    credit: int
    amount: int
    currency: str | None  # None: the debtor account's currency
    key: int  # small range, so keys repeat
    day: int  # booking date offset from BASE_DAY


@dataclass(frozen=True)
class StatusOp:
    account: int
    status: str


@dataclass(frozen=True)
class Scenario:
    clients: list[ClientDraw]
    ops: list[TransferOp | StatusOp]


statuses = st.sampled_from(["open", "open", "open", "open", "blocked", "closed"])
CLIENTS = 4
ACCOUNTS = len(CURRENCIES) + CLIENTS  # funding accounts first, then clients


@st.composite
def scenarios(draw: st.DrawFn, min_ops: int = 15, max_ops: int = 40) -> Scenario:
    clients = [
        ClientDraw(
            currency=draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"])),
            status=draw(statuses),
            overdraft=draw(st.sampled_from([0, 0, 100, 500])),
            funding=draw(st.integers(0, 2_000)),
        )
        for _ in range(CLIENTS)
    ]
    transfer = st.builds(
        TransferOp,
        debit=st.integers(0, ACCOUNTS - 1),
        credit=st.integers(0, ACCOUNTS - 1),
        amount=st.one_of(st.integers(1, 1_500), st.sampled_from([0, -1, 1, 2_000])),
        currency=st.sampled_from([None, None, None, None, "EUR", "USD"]),
        key=st.integers(0, 10),
        day=st.integers(0, 3),
    )
    status = st.builds(
        StatusOp, account=st.integers(len(CURRENCIES), ACCOUNTS - 1), status=statuses
    )
    ops = draw(
        st.lists(
            st.one_of(transfer, transfer, transfer, transfer, status),
            min_size=min_ops,
            max_size=max_ops,
        )
    )
    return Scenario(clients, ops)


@dataclass
class Run:
    prefix: str
    ibans: list[str]
    model: Model
    refusals: int = 0
    replays: int = 0


def _request(
    run: Run,
    key: str,
    debit: str,
    credit: str,
    amount: int,
    code: str,
    day: dt.date,
    kind: TransferKind = TransferKind.INTERNAL,
) -> Transfer:
    return Transfer.between(
        idempotency_key=f"{run.prefix}:{key}",
        reference=f"{run.prefix}-{key}",
        kind=kind,
        debit_iban=debit,
        credit_iban=credit,
        currency=code,
        amount_minor=amount,
        booking_date=day,
        value_date=day,
    )


def play(ledger: Ledger, scenario: Scenario) -> Run:
    """Set up fresh accounts, fund them, run every operation, and check each answer as it comes."""
    prefix = f"x{next(_examples)}"
    fund_ibans = [f"{prefix}FUND{code}" for code in CURRENCIES]
    client_ibans = [f"{prefix}C{i}" for i in range(CLIENTS)]
    model = Model(
        {
            iban: ModelAccount(iban, code, AccountKind.FUNDING, "open", 0)
            for iban, code in zip(fund_ibans, CURRENCIES, strict=True)
        }
        | {
            iban: ModelAccount(iban, c.currency, AccountKind.CLIENT, c.status, c.overdraft)
            for iban, c in zip(client_ibans, scenario.clients, strict=True)
        }
    )
    run = Run(prefix, fund_ibans + client_ibans, model)

    def specs() -> list[AccountSpec]:
        return [
            AccountSpec(
                iban=a.iban,
                currency=a.currency,
                owner="treasury" if a.kind is AccountKind.FUNDING else f"client-{a.iban}",
                kind=a.kind,
                status=a.status,
                overdraft_minor=a.overdraft,
            )
            for a in model.accounts.values()
        ]

    # Fund while every account is open, then give each its drawn status.
    wanted_status = {iban: a.status for iban, a in model.accounts.items()}
    for a in model.accounts.values():
        a.status = "open"
    ledger.ensure_accounts(specs())
    for iban, draw in zip(client_ibans, scenario.clients, strict=True):
        if draw.funding:
            fund = fund_ibans[CURRENCIES.index(draw.currency)]
            request = _request(
                run,
                f"fund-{iban}",
                fund,
                iban,
                draw.funding,
                draw.currency,
                BASE_DAY - dt.timedelta(days=1),
                TransferKind.FUNDING,
            )
            transfer_id, refusal = ledger.transfer(request, BOOKED_AT)
            assert refusal is None and transfer_id is not None
            model.book(request, transfer_id)
    for iban, status in wanted_status.items():
        model.accounts[iban].status = status
    ledger.ensure_accounts(specs())

    for op in scenario.ops:
        if isinstance(op, StatusOp):
            model.accounts[run.ibans[op.account]].status = op.status
            ledger.ensure_accounts(specs())
            continue
        debit, credit = run.ibans[op.debit], run.ibans[op.credit]
        code = op.currency or model.accounts[debit].currency
        day = BASE_DAY + dt.timedelta(days=op.day)
        request = _request(run, f"k{op.key}", debit, credit, op.amount, code, day)
        transfer_id, refusal = ledger.transfer(request, BOOKED_AT)
        original = model.posted.get(request.idempotency_key)
        if original is not None:
            run.replays += 1
            assert (transfer_id, refusal) == (original, None), "a replay returns the original"
            continue
        expected = model.refusal(request)
        assert refusal == expected, (request, refusal, expected)
        if expected is None:
            assert transfer_id is not None
            assert transfer_id not in model.posted.values()
            model.book(request, transfer_id)
        else:
            assert transfer_id is None
            run.refusals += 1
    return run


def sql_rows(ledger: Ledger, query: str, **params: object) -> list[tuple[object, ...]]:
    with ledger.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(query), params)]


property_settings = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- properties -----------------------------------------------------------------------------


@property_settings
@given(scenario=scenarios())
def test_balances_follow_the_model(ledger: Ledger, scenario: Scenario) -> None:
    """Whatever payments arrive, in whatever order and however often repeated, each is booked
    or refused exactly as the rules say, a replayed key returns the original transfer and moves
    no money, and every balance ends where a plain Python model of the rules puts it."""
    run = play(ledger, scenario)
    event("a key was replayed" if run.replays else "no key replayed")
    event("some transfers refused" if run.refusals else "none refused")
    for iban, expected in run.model.accounts.items():
        assert ledger.balance(iban) == (expected.balance, expected.currency)


@property_settings
@given(scenario=scenarios())
def test_books_balance_after_any_sequence(ledger: Ledger, scenario: Scenario) -> None:
    """After any sequence the books balance: postings sum to zero per currency and per transfer,
    every balance is the sum of its postings, no client is below minus its overdraft, and no
    idempotency key was posted twice."""
    run = play(ledger, scenario)
    ledger.check_invariants()
    like = f"{run.prefix}%"
    per_currency = sql_rows(
        ledger,
        "SELECT p.currency, SUM(p.amount_minor) FROM ledger_postings p "
        "JOIN ledger_accounts a ON a.id = p.account_id WHERE a.iban LIKE :like "
        "GROUP BY p.currency",
        like=like,
    )
    assert all(int(total) == 0 for _, total in per_currency), per_currency
    per_transfer = sql_rows(
        ledger,
        "SELECT t.idempotency_key, COUNT(p.id), SUM(p.amount_minor), "
        "MIN(p.amount_minor), MAX(p.amount_minor) FROM ledger_transfers t "
        "JOIN ledger_postings p ON p.transfer_id = t.id WHERE t.idempotency_key LIKE :like "
        "GROUP BY t.id, t.idempotency_key",
        like=like,
    )
    assert sorted(str(row[0]) for row in per_transfer) == sorted(run.model.posted)
    for key, count, total, smallest, largest in per_transfer:
        assert (count, total, smallest) == (2, 0, -largest), key
    balances = sql_rows(
        ledger,
        "SELECT a.iban, a.kind, a.overdraft_minor, a.balance_minor, "
        "(SELECT COALESCE(SUM(p.amount_minor), 0) FROM ledger_postings p "
        " WHERE p.account_id = a.id) FROM ledger_accounts a WHERE a.iban LIKE :like",
        like=like,
    )
    assert len(balances) == ACCOUNTS
    for iban, kind, overdraft, balance, posted in balances:
        assert balance == posted, iban
        if kind == AccountKind.CLIENT.value:
            assert balance >= -overdraft, iban
    ((postings,),) = sql_rows(
        ledger,
        "SELECT COUNT(*) FROM ledger_postings p JOIN ledger_transfers t ON t.id = p.transfer_id "
        "WHERE t.idempotency_key LIKE :like",
        like=like,
    )
    assert postings == 2 * len(run.model.posted)


@settings(property_settings, max_examples=12)
@given(scenario=scenarios())
def test_statement_days_reconcile(ledger: Ledger, scenario: Scenario) -> None:
    """Each day's statement reconciles: opening balance plus that day's entries is the next
    day's opening, the last closing is the account balance, and the entries are exactly the
    postings booked that day with the right sign and counterparty, in posting order."""
    run = play(ledger, scenario)
    days = [BASE_DAY + dt.timedelta(days=offset) for offset in range(-1, 4)]  # every booked day
    for iban in run.ibans:
        openings = [ledger.balance_before(iban, day) for day in [*days, days[-1] + ONE_DAY]]
        assert openings[0] == 0  # nothing before the funding day
        assert openings[-1] == ledger.balance(iban)[0]
        for index, day in enumerate(days):
            entries = ledger.entries(iban, day)
            expected = run.model.entries.get((iban, day), [])
            assert [
                (e.amount_minor, e.counter_iban, e.idempotency_key) for e in entries
            ] == expected
            for entry in entries:
                assert entry.booking_date == day
                assert entry.transfer_id == run.model.posted[entry.idempotency_key]
                assert entry.currency == run.model.accounts[iban].currency
            closing = openings[index] + sum(e.amount_minor for e in entries)
            assert closing == openings[index + 1], (iban, day)


# -- examples -------------------------------------------------------------------------------


def _specs(prefix: str, **changes: object) -> list[AccountSpec]:
    base = [
        AccountSpec(
            iban=f"{prefix}FUND", currency="EUR", owner="treasury", kind=AccountKind.FUNDING
        ),
        AccountSpec(iban=f"{prefix}A", currency="EUR", owner="iestade-a", overdraft_minor=100),
        AccountSpec(iban=f"{prefix}B", currency="EUR", owner="iestade-b", max_payment_minor=500),
    ]
    return [replace(s, **changes) if s.iban == f"{prefix}A" else s for s in base]


def _fund(ledger: Ledger, prefix: str, iban: str, amount: int, key: str) -> int:
    request = Transfer.between(
        idempotency_key=f"{prefix}:{key}",
        reference=f"{prefix}-{key}",
        kind=TransferKind.FUNDING,
        debit_iban=f"{prefix}FUND",
        credit_iban=iban,
        currency="EUR",
        amount_minor=amount,
        booking_date=BASE_DAY,
        value_date=BASE_DAY,
    )
    transfer_id, refusal = ledger.transfer(request, BOOKED_AT)
    assert refusal is None and transfer_id is not None
    return transfer_id


def test_ensure_accounts_is_idempotent(ledger: Ledger) -> None:
    """Opening the database again with the same configuration creates nothing new and keeps
    every balance; changed limits and status are taken from the configuration."""
    ledger.ensure_accounts(_specs("e"))
    _fund(ledger, "e", "eA", 1_000, "f1")
    first = {a.iban: a for a in ledger.all_accounts()}
    updates: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE LEDGER_ACCOUNTS"):
            updates.append(statement)

    sa_event.listen(ledger.engine, "before_cursor_execute", seen)
    try:
        ledger.ensure_accounts(_specs("e"))  # every process start does this
        assert updates == []  # an unchanged configuration writes nothing
        again = {a.iban: a for a in ledger.all_accounts()}
        assert again == first
    finally:
        sa_event.remove(ledger.engine, "before_cursor_execute", seen)
    assert again["eA"].balance_minor == 1_000
    ledger.ensure_accounts(_specs("e", overdraft_minor=300, status="blocked"))
    changed = ledger.account("eA")
    assert changed is not None
    assert (changed.overdraft_minor, changed.status, changed.balance_minor) == (
        300,
        "blocked",
        1_000,
    )
    assert changed.id == first["eA"].id
    assert len(ledger.all_accounts()) == 3
    ledger.check_invariants()


def test_ensure_accounts_accepts_any_iterable(ledger: Ledger) -> None:
    """Accounts handed over as a generator (an Iterable, as the signature allows) are created
    too, not silently dropped."""
    ledger.ensure_accounts(spec for spec in _specs("g"))
    assert {a.iban for a in ledger.all_accounts()} == {"gFUND", "gA", "gB"}


@pytest.mark.parametrize("change", [{"currency": "USD"}, {"owner": "iestade-z"}])
def test_ensure_accounts_refuses_currency_or_owner_change(
    ledger: Ledger, change: dict[str, str]
) -> None:
    """A configuration that moves an existing account to another currency or client is refused
    naming the account, and nothing in that configuration is applied. The refusal is the
    ledger's own `AccountConflict`, which the gateway turns into a configuration error."""
    ledger.ensure_accounts(_specs("c"))
    _fund(ledger, "c", "cA", 700, "f1")
    extra = AccountSpec(iban="cNEW", currency="EUR", owner="iestade-c")
    with pytest.raises(AccountConflict, match="cA"):
        ledger.ensure_accounts([extra, *_specs("c", overdraft_minor=999, **change)])
    account = ledger.account("cA")
    assert account is not None
    assert (account.currency, account.owner, account.overdraft_minor) == ("EUR", "iestade-a", 100)
    assert account.balance_minor == 700
    assert ledger.account("cNEW") is None


def test_replay_with_different_content_returns_original(ledger: Ledger) -> None:
    """A retried transfer (same idempotency key) is never booked twice, even if the retry
    carries another amount or counterparty: the original reference comes back."""
    ledger.ensure_accounts(_specs("r"))
    _fund(ledger, "r", "rA", 1_000, "f1")
    request = Transfer.between(
        idempotency_key="r:pay",
        reference="r-pay",
        kind=TransferKind.INTERNAL,
        debit_iban="rA",
        credit_iban="rB",
        currency="EUR",
        amount_minor=400,
        booking_date=BASE_DAY,
        value_date=BASE_DAY,
    )
    first, refusal = ledger.transfer(request, BOOKED_AT)
    assert refusal is None and first is not None
    other = Transfer.between(
        idempotency_key="r:pay",
        reference="r-pay",
        kind=TransferKind.INTERNAL,
        debit_iban="rA",
        credit_iban="rFUND",
        currency="EUR",
        amount_minor=5,
        booking_date=BASE_DAY,
        value_date=BASE_DAY,
    )
    for retry in (request, other):
        assert ledger.transfer(retry, BOOKED_AT) == (first, None)
    assert ledger.balance("rA") == (600, "EUR")
    assert ledger.balance("rB") == (400, "EUR")
    assert [e.transfer_id for e in ledger.entries("rB", BASE_DAY)] == [first]


def test_refused_transfer_leaves_no_trace(ledger: Ledger) -> None:
    """A payment refused for lack of funds books nothing; once money arrives the same payment
    can be executed (the refusal did not consume its key)."""
    ledger.ensure_accounts(_specs("n"))
    request = Transfer.between(
        idempotency_key="n:pay",
        reference="n-pay",
        kind=TransferKind.INTERNAL,
        debit_iban="nA",
        credit_iban="nB",
        currency="EUR",
        amount_minor=150,
        booking_date=BASE_DAY,
        value_date=BASE_DAY,
    )
    assert ledger.transfer(request, BOOKED_AT) == (None, Refusal.INSUFFICIENT_FUNDS)
    assert ledger.entries("nA", BASE_DAY) == []
    assert _keys(ledger, "n:p%") == []
    _fund(ledger, "n", "nA", 60, "f1")
    transfer_id, refusal = ledger.transfer(request, BOOKED_AT)
    assert refusal is None and transfer_id is not None
    assert ledger.balance("nA") == (-90, "EUR")  # within the overdraft of 100
    assert _keys(ledger, "n:p%") == ["n:pay"]


def _keys(ledger: Ledger, like: str) -> list[str]:
    rows = sql_rows(
        ledger, "SELECT idempotency_key FROM ledger_transfers WHERE idempotency_key LIKE :like",
        like=like,
    )
    return sorted(str(r[0]) for r in rows)


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    """Running `db upgrade` (or starting the daemon) again on a live database keeps every
    account and posting and leaves one version row."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        (head,) = ScriptDirectory(str(Path(migrations.__file__).parent)).get_heads()
        ledger = Ledger(engine)
        ledger.ensure_accounts(_specs("u"))
        _fund(ledger, "u", "uA", 250, "f1")
        upgrade(engine)
        upgrade(engine)
        assert ledger.balance("uA") == (250, "EUR")
        assert len(ledger.entries("uA", BASE_DAY)) == 1
        assert sql_rows(ledger, "SELECT version_num FROM ledger_alembic_version") == [(head,)]
        ledger.check_invariants()
    finally:
        engine.dispose()


def test_daily_debits(ledger: Ledger) -> None:
    """Daily limits see only that account's debits booked that day."""
    ledger.ensure_accounts(_specs("d"))
    _fund(ledger, "d", "dA", 5_000, "f1")
    payments = [
        ("p1", "dA", 100, BASE_DAY),
        ("p2", "dA", 250, BASE_DAY),
        ("p3", "dA", 40, BASE_DAY + ONE_DAY),
        ("p4", "dB", 30, BASE_DAY),
    ]
    for key, debit, amount, day in payments:
        credit = "dB" if debit == "dA" else "dA"
        request = Transfer.between(
            idempotency_key=f"d:{key}",
            reference=f"d-{key}",
            kind=TransferKind.INTERNAL,
            debit_iban=debit,
            credit_iban=credit,
            currency="EUR",
            amount_minor=amount,
            booking_date=day,
            value_date=day,
        )
        assert ledger.transfer(request, BOOKED_AT)[1] is None
    a, b = ledger.account("dA"), ledger.account("dB")
    assert a is not None and b is not None
    with ledger.begin() as tx:
        assert tx.debits_on([a.id, b.id], BASE_DAY) == {a.id: 350, b.id: 30}
        assert tx.debits_on([a.id, b.id], BASE_DAY + ONE_DAY) == {a.id: 40}
        assert tx.debits_on([a.id], BASE_DAY - ONE_DAY) == {}


def test_a_transfer_with_one_debit_and_several_credits(ledger: Ledger) -> None:
    """A batch-booked payment information is one transfer: its total debited once, each
    creditor account credited; the postings sum to zero, balances move by exactly those
    amounts, the debtor's statement day has one entry and each creditor's one."""
    ledger.ensure_accounts(_specs("m"))
    _fund(ledger, "m", "mA", 1_000, "f1")
    batch = Transfer(
        "m:batch",
        "m-batch",
        TransferKind.INTERNAL,
        (Posting("mA", -700, "EUR"), Posting("mB", 500, "EUR"), Posting("mFUND", 200, "EUR")),
        BASE_DAY,
        BASE_DAY,
    )
    transfer_id, refusal = ledger.transfer(batch, BOOKED_AT)
    assert refusal is None and transfer_id is not None
    assert ledger.balance("mA") == (300, "EUR") and ledger.balance("mB") == (500, "EUR")
    assert [(e.amount_minor, e.counter_iban) for e in ledger.entries("mA", BASE_DAY)][-1] == (
        -700,
        None,  # several counterparts
    )
    assert [e.amount_minor for e in ledger.entries("mB", BASE_DAY)] == [500]
    ledger.check_invariants()
    too_much = batch._replace(
        idempotency_key="m:again",
        reference="m-again",
        postings=(Posting("mA", -1_000, "EUR"), Posting("mB", 1_000, "EUR")),
    )
    assert ledger.transfer(too_much, BOOKED_AT) == (None, Refusal.INSUFFICIENT_FUNDS)


@pytest.mark.parametrize("package", ["ledger.migrations", "gateway.migrations"])
def test_declared_head_is_alembics_head(package: str) -> None:
    """Start-up skips loading Alembic when the database is at the declared HEAD, so
    HEAD must be the newest revision in the package (or a new one would never run)."""
    import importlib

    module = importlib.import_module(package)
    assert module.__file__ is not None
    heads = ScriptDirectory(str(Path(module.__file__).parent)).get_heads()
    assert heads == [module.HEAD]


def test_a_database_behind_head_is_upgraded(tmp_path: Path) -> None:
    """A database whose version row is older than HEAD is handed to Alembic (here: a
    version table emptied by hand makes Alembic run the migrations again from scratch,
    which fails on the existing tables — proof that it ran)."""
    from ledger.migrations import VERSION_TABLE, at_revision, run_upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    try:
        assert not at_revision(engine, VERSION_TABLE, migrations.HEAD)
        run_upgrade(engine)
        assert at_revision(engine, VERSION_TABLE, migrations.HEAD)
        run_upgrade(engine)  # at head: nothing to do
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {VERSION_TABLE}")
        assert not at_revision(engine, VERSION_TABLE, migrations.HEAD)
        with pytest.raises(Exception, match="already exists"):
            run_upgrade(engine)
    finally:
        engine.dispose()


def test_a_big_write_is_copied_into_the_database_after_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`begin(checkpoint_after=True)` on SQLite: when the commit returns, its pages are
    in the WAL only (the writer's close did not copy them); a thread copies them into the
    database file, and `settle` waits for it. What was written is there, also after the
    database is opened anew."""
    import threading

    import ledger.store as store

    path = tmp_path / "big.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    big = Ledger(engine)
    with big.begin() as tx:
        tx.conn.exec_driver_sql("CREATE TABLE scratch (n INTEGER, blob BLOB)")
    before = path.stat().st_size
    seen: dict[str, int] = {}
    release = threading.Event()
    real = store.checkpoint

    def checkpoint(keeper: object) -> None:
        release.wait(10)
        seen["database"] = path.stat().st_size
        seen["wal"] = Path(f"{path}-wal").stat().st_size
        real(keeper)

    monkeypatch.setattr(store, "checkpoint", checkpoint)
    with big.begin(checkpoint_after=True) as tx:
        tx.conn.exec_driver_sql(
            "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 25000)"
            " INSERT INTO scratch SELECT v, randomblob(1000) FROM n"
        )
    release.set()
    big.settle()
    assert seen["database"] == before, "the writer's close copied the WAL itself"
    assert seen["wal"] > 25_000_000  # past the 1,000 pages at which a commit copies it
    assert path.stat().st_size > before + 25_000_000, "settled: the pages are in the database"
    assert [t for t in threading.enumerate() if t.name == "wal-checkpoint"] == []
    engine.dispose()
    again = make_engine(f"sqlite:///{path}")
    with again.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar_one() == 25_000
    again.dispose()
