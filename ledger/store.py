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
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from ledger import audit, core
from ledger.bulk import insert_rows
from ledger.core import Account, AccountKind, Transfer
from ledger.engine import WRITE_OPTION, checkpoint
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
            thread = threading.Thread(target=checkpoint, args=(keeper,), name="wal-checkpoint")
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
        return audit.balance_before(self.engine, iban, day)

    def entries(self, iban: str, day: dt.date) -> list[audit.Entry]:
        return audit.entries(self.engine, iban, day)

    def check_invariants(self) -> None:
        audit.check_invariants(self.engine)
