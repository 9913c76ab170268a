"""The ledger in a database: SQLite (WAL) by default, PostgreSQL with the same code.

Writers are serialised per account: on PostgreSQL by `SELECT … FOR UPDATE` on
the accounts a unit of work touches (in id order within each `accounts` call),
on SQLite by `BEGIN IMMEDIATE` (one writer at a time). A unit of work that locks
more accounts in a later call (the gateway does, as a file's creditors come into
view) can meet another one in a deadlock; PostgreSQL then aborts one of them,
which its caller retries as a database fault. Inside that
lock `core.apply` decides every transfer against the current balances, so no
account ever goes below minus its overdraft, whatever runs concurrently.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select, update
from sqlalchemy.pool import NullPool

from ledger import core
from ledger.bulk import insert_rows
from ledger.core import Account, AccountKind, Transfer, TransferKind
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import sequences as t_sequences
from ledger.schema import transfers as t_transfers

TRANSFER_COLUMNS = (
    "id",
    "idempotency_key",
    "reference",
    "kind",
    "booking_date",
    "value_date",
    "booked_at",
)
POSTING_COLUMNS = (
    "id", "transfer_id", "account_id", "amount_minor", "currency", "booking_date", "reference",
)  # fmt: skip

params_per_statement_max = 500  # IN-lists are chunked to stay under driver limits
sqlite_busy_timeout_ms = 30_000
WRITE_OPTION = "ledger_write"
sqlite_cache_kib = 65_536  # page cache per connection: a 100k-payment file's indexes fit
# Bigger pages than SQLite's 4 KiB: a 100k-payment commit writes ~45 MB to the WAL and
# again to the database, one write per page and a header each.
sqlite_page_bytes = 16_384


def make_engine(url: str) -> Engine:
    """An engine with the pragmas and locking the ledger relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": sqlite_busy_timeout_ms / 1000},
            poolclass=NullPool,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            # Only a new, empty database takes it (an existing one keeps its page size).
            cursor.execute(f"PRAGMA page_size={sqlite_page_bytes}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # FULL: a commit is on disk before it returns. The outbox delivers an answer
            # right after its commit; with NORMAL a power cut could take back a commit
            # whose pain.002 the client already has. (A big file's commit is followed by
            # a checkpoint that syncs the WAL anyway: ~no cost there.)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA cache_size=-{sqlite_cache_kib}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute(f"PRAGMA busy_timeout={sqlite_busy_timeout_ms}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Ledger writers take the write lock up front (no deadlock upgrading a read
            # lock); everything else reads a WAL snapshot without waiting for writers.
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


def _checkpoint(keeper: Any) -> None:
    """Copy the WAL into the database (PASSIVE: never waits for readers or writers),
    then close `keeper`, the connection that kept the writer's close from doing it."""
    try:
        cursor = keeper.cursor()
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        cursor.close()
    except sqlite3.Error:  # busy (another checkpoint runs): a later commit's does it
        pass
    finally:
        keeper.close()


def upgrade(engine: Engine) -> None:
    """Create or upgrade the ledger's tables (Alembic, version table `ledger_alembic_version`)."""
    from ledger.migrations import run_upgrade

    run_upgrade(engine)


@dataclass(frozen=True, slots=True)
class AccountSpec:
    iban: str
    currency: str
    owner: str
    kind: AccountKind = AccountKind.CLIENT
    status: str = "open"
    overdraft_minor: int = 0
    max_payment_minor: int | None = None
    daily_limit_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting on one account, with the transfer it belongs to."""

    transfer_id: int
    reference: str
    idempotency_key: str
    kind: TransferKind
    amount_minor: int  # signed: credit positive
    currency: str
    booking_date: dt.date
    value_date: dt.date
    counter_iban: str | None  # the other account of a two-legged transfer


def _row_to_account(row: Any) -> Account:
    return Account(
        id=row.id,
        iban=row.iban,
        currency=row.currency,
        owner=row.owner,
        kind=AccountKind(row.kind),
        status=row.status,
        overdraft_minor=row.overdraft_minor,
        max_payment_minor=row.max_payment_minor,
        daily_limit_minor=row.daily_limit_minor,
        balance_minor=row.balance_minor,
    )


def _chunks(items: Sequence[Any], size: int = params_per_statement_max) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LedgerTx:
    """One database transaction on the ledger; the gateway adds its own rows via `conn`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    def accounts(self, ibans: Iterable[str], *, lock: bool = True) -> dict[str, Account]:
        """The current state of the named accounts, locked for this transaction."""
        wanted = sorted(set(ibans))
        found: dict[str, Account] = {}
        for chunk in _chunks(wanted):
            query = select(t_accounts).where(t_accounts.c.iban.in_(chunk)).order_by(t_accounts.c.id)
            if lock and self._postgres:
                query = query.with_for_update()
            for row in self.conn.execute(query):
                found[row.iban] = _row_to_account(row)
        return found

    def system_account(self, kind: AccountKind, currency: str) -> Account | None:
        row = self.conn.execute(
            select(t_accounts).where(
                t_accounts.c.kind == kind.value, t_accounts.c.currency == currency
            )
        ).first()
        return _row_to_account(row) if row else None

    def debits_on(self, account_ids: Iterable[int], day: dt.date) -> dict[int, int]:
        """Sum of each account's debits booked on `day` (for daily limits), positive."""
        result: dict[int, int] = {}
        p = t_postings.c
        for chunk in _chunks(sorted(set(account_ids))):
            rows = self.conn.execute(
                select(p.account_id, func.sum(p.amount_minor))
                .where(p.account_id.in_(chunk), p.booking_date == day, p.amount_minor < 0)
                .group_by(p.account_id)
            )
            result.update({r[0]: -int(r[1]) for r in rows})
        return result

    def allocate_ids(self, name: str, count: int) -> int:
        """Reserve `count` consecutive ids of sequence `name`; returns the first.

        The UPDATE row-locks the sequence until this transaction ends, so blocks
        never overlap, on PostgreSQL as on SQLite.
        """
        last = self.conn.execute(
            update(t_sequences)
            .where(t_sequences.c.name == name)
            .values(value=t_sequences.c.value + count)
            .returning(t_sequences.c.value)
        ).scalar()
        if last is None:
            self.conn.execute(t_sequences.insert().values(name=name, value=count))
            last = count
        return int(last) - count + 1

    def post(
        self,
        transfers: Sequence[Transfer],
        accounts: Mapping[str, Account],
        booked_at: dt.datetime,
    ) -> dict[str, int]:
        """Write transfers already decided against `accounts` (by `core.apply`, or by the
        gateway's own execution of each payment).

        `accounts` names every account involved (for ids and overdrafts). The
        database's balances move by the posted sums and must stay within each
        client's overdraft. A caller that decided many transfers in memory and
        posts them in several calls checks the end state with `assert_balances`
        (the pair assertion). Returns the new transfer ids by idempotency key.
        """
        if not transfers:
            return {}
        core.assert_balanced(transfers)
        ids_by_iban = {a.iban: a.id for a in accounts.values()}
        legs = sum(len(t.postings) for t in transfers)
        first_transfer = self.allocate_ids("transfers", len(transfers))
        pid = self.allocate_ids("postings", legs)
        transfer_rows: list[tuple[Any, ...]] = []
        posting_rows: list[tuple[Any, ...]] = []
        ids: dict[str, int] = {}
        movement: dict[int, int] = defaultdict(int)
        for n, t in enumerate(transfers):
            tid = first_transfer + n
            ids[t.idempotency_key] = tid
            transfer_rows.append(
                (tid, t.idempotency_key, t.reference, t.kind.value, t.booking_date,
                 t.value_date, booked_at)
            )  # fmt: skip
            for leg in t.postings:
                account_id = ids_by_iban[leg.iban]
                posting_rows.append(
                    (pid, tid, account_id, leg.amount_minor, leg.currency, t.booking_date,
                     leg.reference)
                )  # fmt: skip
                movement[account_id] += leg.amount_minor
                pid += 1
        assert len(ids) == len(transfers), "idempotency keys are unique within a post"
        insert_rows(self.conn, t_transfers, TRANSFER_COLUMNS, transfer_rows)
        insert_rows(
            self.conn, t_postings, POSTING_COLUMNS, posting_rows, leave_out_null_columns=True
        )
        self._move_balances(movement, accounts)
        return ids

    def _move_balances(self, movement: dict[int, int], accounts: Mapping[str, Account]) -> None:
        by_id = {a.id: a for a in accounts.values()}
        for account_id, delta in sorted(movement.items()):
            if delta == 0:
                continue
            new_balance = self.conn.execute(
                update(t_accounts)
                .where(t_accounts.c.id == account_id)
                .values(balance_minor=t_accounts.c.balance_minor + delta)
                .returning(t_accounts.c.balance_minor)
            ).scalar_one()
            account = by_id[account_id]
            if account.kind is AccountKind.CLIENT:
                assert new_balance >= -account.overdraft_minor, (account.iban, new_balance)

    def assert_balances(self, expected: Mapping[str, Account]) -> None:
        """Pair assertion: the database holds exactly the balances decided in memory."""
        actual = self.accounts(expected, lock=False)
        for iban, account in expected.items():
            assert actual[iban].balance_minor == account.balance_minor, (
                iban,
                actual[iban].balance_minor,
                account.balance_minor,
            )


class Ledger:
    """The ledger's entry point: accounts, posting, and the queries statements need."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._checkpoints: list[threading.Thread] = []

    @contextmanager
    def begin(self, *, checkpoint_after: bool = False) -> Iterator[LedgerTx]:
        """A write transaction (on SQLite: BEGIN IMMEDIATE, one writer at a time).

        `checkpoint_after` is for a transaction of tens of MB (a big file). SQLite would
        copy its WAL into the database file inside the commit (~0.05 s per 100,000
        payments); instead a thread does that after the commit, while the caller goes on
        to deliver what it committed (`settle` waits for it). The commit itself is as
        durable as any: the WAL is synced before COMMIT returns."""
        keeper = None
        if checkpoint_after and self.engine.dialect.name == "sqlite":
            # Open while the writer closes: the last connection to close checkpoints.
            keeper = self.engine.raw_connection()
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if keeper is not None:
                        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                    yield LedgerTx(conn)
        except BaseException:
            if keeper is not None:
                keeper.close()
            raise
        if keeper is not None:
            thread = threading.Thread(target=_checkpoint, args=(keeper,), name="wal-checkpoint")
            thread.start()
            self._checkpoints = [t for t in self._checkpoints if t.is_alive()] + [thread]

    def settle(self) -> None:
        """Wait for the checkpoints `begin(checkpoint_after=True)` started."""
        while self._checkpoints:
            self._checkpoints.pop().join()

    # -- accounts ---------------------------------------------------------------------------

    def ensure_accounts(self, specs: Iterable[AccountSpec]) -> None:
        """Create missing accounts; refresh status and limits of existing ones from the specs."""
        specs = list(specs)  # iterated twice below: a generator would be consumed by the first
        with self.begin() as tx:
            existing = tx.accounts([s.iban for s in specs])
            for spec in specs:
                values = {
                    "status": spec.status,
                    "overdraft_minor": spec.overdraft_minor,
                    "max_payment_minor": spec.max_payment_minor,
                    "daily_limit_minor": spec.daily_limit_minor,
                }
                current = existing.get(spec.iban)
                if current is None:
                    tx.conn.execute(
                        t_accounts.insert().values(
                            iban=spec.iban,
                            currency=spec.currency,
                            owner=spec.owner,
                            kind=spec.kind.value,
                            balance_minor=0,
                            **values,
                        )
                    )
                    continue
                if current.currency != spec.currency or current.owner != spec.owner:
                    raise ValueError(
                        f"account {spec.iban} exists for {current.owner} in {current.currency}; "
                        f"configuration says {spec.owner} in {spec.currency}"
                    )
                tx.conn.execute(
                    update(t_accounts).where(t_accounts.c.id == current.id).values(**values)
                )

    def account(self, iban: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t_accounts).where(t_accounts.c.iban == iban)).first()
        return _row_to_account(row) if row else None

    def all_accounts(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t_accounts).order_by(t_accounts.c.id)).all()
        return [_row_to_account(r) for r in rows]

    # -- posting ----------------------------------------------------------------------------

    def transfer(
        self, transfer: Transfer, booked_at: dt.datetime
    ) -> tuple[int | None, core.Refusal | None]:
        """Post one transfer idempotently: a repeated key returns the original and posts nothing."""
        with self.begin() as tx:
            # Lock first: a concurrent retry of the same key then waits here and, once the
            # first commits, sees its transfer below (READ COMMITTED reads afresh).
            accounts = tx.accounts(leg.iban for leg in transfer.postings)
            existing = tx.conn.execute(
                select(t_transfers.c.id).where(
                    t_transfers.c.idempotency_key == transfer.idempotency_key
                )
            ).first()
            if existing is not None:
                return int(existing[0]), None
            refusal = core.apply(transfer, accounts)
            if refusal is not None:
                return None, refusal
            ids = tx.post([transfer], accounts, booked_at)
            tx.assert_balances(accounts)
            return ids[transfer.idempotency_key], None

    # -- queries ----------------------------------------------------------------------------

    def balance(self, iban: str) -> tuple[int, str]:
        account = self.account(iban)
        if account is None:
            raise KeyError(iban)
        return account.balance_minor, account.currency

    def balance_before(self, iban: str, day: dt.date) -> int:
        """Booked balance at the start of `day` (the sum of every earlier posting)."""
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(t_postings.c.amount_minor), 0))
                .select_from(t_postings.join(t_accounts))
                .where(t_accounts.c.iban == iban, t_postings.c.booking_date < day)
            ).scalar_one()
        return int(total)

    def entries(self, iban: str, day: dt.date) -> list[Entry]:
        """The account's postings booked on `day`, in posting order."""
        account = self.account(iban)
        if account is None:
            raise KeyError(iban)
        p, t = t_postings.c, t_transfers.c
        query = (
            select(p.id, p.transfer_id, p.amount_minor, p.currency,
                   func.coalesce(p.reference, t.reference).label("reference"),
                   t.idempotency_key, t.kind, t.booking_date, t.value_date)
            .select_from(t_postings.join(t_transfers, p.transfer_id == t.id))
            .where(p.account_id == account.id, p.booking_date == day)
            .order_by(p.id)
        )  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            legs = self._legs(conn, {r.transfer_id for r in rows})
        return [
            Entry(
                transfer_id=r.transfer_id,
                reference=r.reference,
                idempotency_key=r.idempotency_key,
                kind=TransferKind(r.kind),
                amount_minor=r.amount_minor,
                currency=r.currency,
                booking_date=r.booking_date,
                value_date=r.value_date,
                counter_iban=_counterpart(legs[r.transfer_id], r.id),
            )
            for r in rows
        ]

    @staticmethod
    def _legs(conn: Connection, transfer_ids: set[int]) -> dict[int, list[tuple[int, str, Any]]]:
        """Every posting (id, account, reference) of the given transfers."""
        found: dict[int, list[tuple[int, str, Any]]] = defaultdict(list)
        p = t_postings.c
        for chunk in _chunks(sorted(transfer_ids)):
            rows = conn.execute(
                select(p.transfer_id, p.id, t_accounts.c.iban, p.reference)
                .select_from(t_postings.join(t_accounts, p.account_id == t_accounts.c.id))
                .where(p.transfer_id.in_(chunk))
            )
            for transfer_id, posting_id, iban, reference in rows:
                found[transfer_id].append((posting_id, iban, reference))
        return found

    def check_invariants(self) -> None:
        """Postings sum to zero per currency, overall and per transfer; balances equal
        their postings."""
        with self.engine.connect() as conn:
            per_currency = conn.execute(
                select(t_postings.c.currency, func.sum(t_postings.c.amount_minor)).group_by(
                    t_postings.c.currency
                )
            ).all()
            assert all(int(total) == 0 for _, total in per_currency), per_currency
            unbalanced = conn.execute(
                select(t_postings.c.transfer_id)
                .group_by(t_postings.c.transfer_id, t_postings.c.currency)
                .having(func.sum(t_postings.c.amount_minor) != 0)
                .limit(1)
            ).first()
            assert unbalanced is None, f"transfer {unbalanced} does not balance"
            sums = dict(
                conn.execute(
                    select(t_postings.c.account_id, func.sum(t_postings.c.amount_minor)).group_by(
                        t_postings.c.account_id
                    )
                ).all()
            )
            for row in conn.execute(select(t_accounts)):
                assert row.balance_minor == int(sums.get(row.id, 0)), (row.iban, row.balance_minor)
                if row.kind == AccountKind.CLIENT.value:
                    assert row.balance_minor >= -row.overdraft_minor, row.iban


def _counterpart(legs: list[tuple[int, str, Any]], posting_id: int) -> str | None:
    """The other account of a posting's pair (its transfer's other leg of the same
    reference); None when there are several."""
    reference = next(r for pid, _, r in legs if pid == posting_id)
    others = [iban for pid, iban, r in legs if pid != posting_id and r == reference]
    return others[0] if len(others) == 1 else None
