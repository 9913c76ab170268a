"""The ledger in a database: SQLite (WAL) by default, PostgreSQL with the same code.

A unit of work (`Ledger.begin`, a `LedgerTx`) reads the accounts it needs, decides in
memory, and posts transfers: their rows are written at once, but the balances they move
are written together at its end (`LedgerTx.flush`): ONE statement for every account,
in id order, just before COMMIT (then what each account was debited per day, which
daily limits read). So no account row is held locked while a unit of work
decides (another can credit it meanwhile), two units never lock the same rows in
opposite orders (no deadlocks), and a group of files costs one balance update.

What keeps every account within its overdraft is that flush: the database returns each
new balance and it is checked. On SQLite (`BEGIN IMMEDIATE`: one writer at a time) a
balance is exactly what the unit of work read plus what it moved, always. On PostgreSQL
another unit may have committed meanwhile: more money (a credit) changes nothing the
decisions relied on; less money in an account this unit debits means they may not
hold, and `BalanceConflict` rolls the unit back to be done again. A short unit of work
(one transfer) locks its accounts as it reads them instead (`accounts(lock=True)`): the
locks are taken in id order, like the flush's, so neither kind can deadlock the other.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, case, literal, select, update

from ledger import core, currency, sequences
from ledger.bulk import insert_rows, inserting
from ledger.core import Account, AccountKind, Transfer
from ledger.schema import account_days as t_account_days
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

# The statements every unit of work runs, built once per process (SQLAlchemy then keeps
# their compiled form; a statement built per call costs more than SQLite running it).
_ACCOUNTS = (
    select(t_accounts)
    .where(t_accounts.c.iban.in_(bindparam("ibans", expanding=True)))
    .order_by(t_accounts.c.id)
)
_ACCOUNTS_LOCKED = _ACCOUNTS.with_for_update()
_d = t_account_days.c
_DEBITED = select(_d.account_id, _d.debited_minor).where(
    _d.account_id.in_(bindparam("ids", expanding=True)), _d.booking_date == bindparam("day")
)
_ADD_DEBITS: dict[str, Any] = {}
# What an account was debited in a day is kept up to this: the daily limits it is compared
# with are amounts (under 18 digits), and past it "at least this much" decides each of them
# alike, where the exact sum of a busy day could pass the column's 64 bits.
day_debits_kept_max = currency.minor_limit


def _add_debits(dialect: str) -> Any:
    """INSERT into `account_days`, adding to the row of that account and day if there is
    one (the same ON CONFLICT clause on SQLite and PostgreSQL; only the dialect's own
    module builds it, imported when first used)."""
    if dialect not in _ADD_DEBITS:
        module = "postgresql" if dialect == "postgresql" else "sqlite"
        insert = importlib.import_module(f"sqlalchemy.dialects.{module}").insert
        stmt = insert(t_account_days)
        _ADD_DEBITS[dialect] = stmt.on_conflict_do_update(
            index_elements=[_d.account_id, _d.booking_date],
            set_={"debited_minor": _kept(_d.debited_minor + stmt.excluded.debited_minor)},
        )
    return _ADD_DEBITS[dialect]


def _kept(debited: Any) -> Any:
    """`debited` (SQL: two kept sums, so within 64 bits) as `account_days` keeps it."""
    return case((debited > day_debits_kept_max, day_debits_kept_max), else_=debited)


def row_to_account(row: Any) -> Account:
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


_SYSTEM_IBANS = select(t_accounts.c.currency, t_accounts.c.iban).where(
    t_accounts.c.kind == bindparam("kind")
).order_by(t_accounts.c.id)


class BalanceConflict(Exception):
    """Another unit of work took money from an account this one debits after this one
    read it: its decisions may not hold. Roll back and do the work again."""


id_block = 1024  # ledger ids a process reserves at once (PostgreSQL): a group's worth


class LedgerTx:
    """One database transaction on the ledger; the gateway adds its own rows via `conn`."""

    def __init__(
        self,
        conn: Connection,
        system_ibans: dict[tuple[AccountKind, str], str | None] | None = None,
        before_booking: Callable[[Connection, dt.date], None] | None = None,
    ) -> None:
        self.conn = conn
        # Asked once per booking day before the first post on it (`Ledger`'s owner: the
        # gateway lets a day's bookings and its statements take turns).
        self._before_booking = before_booking
        self._booking_days: set[dt.date] = set()
        self._system_ibans = system_ibans if system_ibans is not None else {}
        self._sqlite = conn.dialect.name == "sqlite"
        self._read: dict[int, int] = {}  # each balance as the database last gave it
        self._moved: dict[int, int] = defaultdict(int)  # what posts moved, not yet written
        self._debited: set[int] = set()  # accounts posts took money from
        # what posts debited each account per booking day, not yet written (`account_days`)
        self._day_debits: dict[tuple[int, dt.date], int] = defaultdict(int)
        self._account: dict[int, Account] = {}  # every account posted to (for its overdraft)
        self._rows: dict[str, Account] = {}  # each account as first read (`accounts`)

    def accounts(self, ibans: Iterable[str], *, lock: bool = False) -> dict[str, Account]:
        """The named accounts as this unit of work sees them: as committed when first read,
        with what it has posted to them since its start. An account is read from the
        database once per unit of work (the files of a group pay the same treasury
        accounts again and again); what another unit commits meanwhile is for `flush` to
        find. `lock` (PostgreSQL: `FOR UPDATE`, in id order) is for a short unit of work:
        the accounts are read anew and no other can move them until it ends."""
        wanted = set(ibans)
        unknown = sorted(wanted if lock else wanted - self._rows.keys())
        query = _ACCOUNTS_LOCKED if lock and not self._sqlite else _ACCOUNTS
        if query is _ACCOUNTS_LOCKED and len(unknown) > params_per_statement_max:
            unknown = self._in_id_order(unknown)  # the chunks' locks in id order too
        for chunk in _chunks(unknown):
            for row in self.conn.execute(query, {"ibans": list(chunk)}):
                self._read[row.id] = row.balance_minor
                self._rows[row.iban] = row_to_account(row)
        found: dict[str, Account] = {}
        for iban in sorted(wanted & self._rows.keys()):
            account = self._rows[iban]
            balance = self._read[account.id] + self._moved.get(account.id, 0)
            found[iban] = account._replace(balance_minor=balance)
        return found

    def _in_id_order(self, ibans: Sequence[str]) -> list[str]:
        """`ibans` (those that name accounts) in the order of their accounts' ids."""
        a = t_accounts.c
        found: list[tuple[int, str]] = []
        for chunk in _chunks(ibans):
            rows = self.conn.execute(select(a.id, a.iban).where(a.iban.in_(chunk)))
            found += [(row.id, row.iban) for row in rows]
        return [iban for _, iban in sorted(found)]

    def system_account(self, kind: AccountKind, currency: str) -> Account | None:
        row = self.conn.execute(
            select(t_accounts).where(
                t_accounts.c.kind == kind.value, t_accounts.c.currency == currency
            )
        ).first()
        return row_to_account(row) if row else None

    def system_iban(self, kind: AccountKind, currency: str) -> str | None:
        """The IBAN of the treasury's account of `kind` in `currency` (they never change:
        asked once per process; the first question of a kind reads its accounts in every
        currency, which a run asks for next)."""
        key = (kind, currency)
        if key not in self._system_ibans:
            rows = self.conn.execute(_SYSTEM_IBANS, {"kind": kind.value}).all()
            for code, iban in reversed(rows):  # the first made of a currency wins
                self._system_ibans[kind, code] = iban
            self._system_ibans.setdefault(key, None)
        return self._system_ibans[key]

    def debits_on(self, account_ids: Iterable[int], day: dt.date) -> dict[int, int]:
        """Sum of each account's debits booked on `day` (for daily limits), positive: as
        kept for the day (a row per account), with what this unit of work posted since."""
        ids = sorted(set(account_ids))
        result: dict[int, int] = {}
        for chunk in _chunks(ids):
            rows = self.conn.execute(_DEBITED, {"ids": list(chunk), "day": day})
            result.update({r[0]: int(r[1]) for r in rows})
        for account_id in ids:
            unwritten = self._day_debits.get((account_id, day), 0)
            if unwritten:
                result[account_id] = result.get(account_id, 0) + unwritten
        return result

    def allocate_ids(self, transfers: int, postings: int) -> tuple[int, int]:
        """Reserve `transfers` consecutive transfer ids and `postings` posting ids; the
        first of each (`sequences.take`: unique, not held until this unit ends; on
        PostgreSQL mostly from this process's block, without a round trip)."""
        first = sequences.take(
            self.conn, t_sequences, {"transfers": transfers, "postings": postings},
            block=id_block,
        )  # fmt: skip
        return first["transfers"], first["postings"]

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
        with self.posting(transfers, accounts, booked_at) as ids:
            return ids

    @contextmanager
    def posting(
        self,
        transfers: Sequence[Transfer],
        accounts: Mapping[str, Account],
        booked_at: dt.datetime,
    ) -> Iterator[dict[str, int]]:
        """`post`, the block running while the database finishes the postings
        (`bulk.inserting`): the new transfer ids by idempotency key."""
        if not transfers:
            yield {}
            return
        core.assert_balanced(transfers)
        for day in sorted({t.booking_date for t in transfers} - self._booking_days):
            if self._before_booking is not None:
                self._before_booking(self.conn, day)
            self._booking_days.add(day)
        ids_by_iban = {a.iban: a.id for a in accounts.values()}
        legs = sum(len(t.postings) for t in transfers)
        first_transfer, pid = self.allocate_ids(len(transfers), legs)
        transfer_rows: list[list[Any]] = []
        posting_rows: list[list[Any]] = []  # lists: `insert_rows` converts them in place
        ids: dict[str, int] = {}
        movement: dict[int, int] = defaultdict(int)
        day_debits = self._day_debits
        for n, t in enumerate(transfers):
            tid = first_transfer + n
            ids[t.idempotency_key] = tid
            transfer_rows.append(
                [tid, t.idempotency_key, t.reference, t.kind.value, t.booking_date,
                 t.value_date, booked_at]
            )  # fmt: skip
            day = t.booking_date
            for leg in t.postings:
                account_id, amount = ids_by_iban[leg.iban], leg.amount_minor
                posting_rows.append(
                    [pid, tid, account_id, amount, leg.currency, day, leg.reference]
                )
                movement[account_id] += amount
                if amount < 0:
                    day_debits[account_id, day] -= amount
                pid += 1
        assert len(ids) == len(transfers), "idempotency keys are unique within a post"
        by_id = {a.id: a for a in accounts.values()}
        for account_id, delta in movement.items():
            self._moved[account_id] += delta
            self._account.setdefault(account_id, by_id[account_id])
            if delta < 0:
                self._debited.add(account_id)
        insert_rows(self.conn, t_transfers, TRANSFER_COLUMNS, transfer_rows, convert_in_place=True)
        with inserting(
            self.conn, t_postings, POSTING_COLUMNS, posting_rows, convert_in_place=True,
            leave_out_null_columns=True,
        ):  # fmt: skip
            yield ids

    def savepoint(self) -> Savepoint:
        """A part of this unit of work that can be undone alone (a file of a group)."""
        return Savepoint(self)

    def flush(self) -> None:
        """Write every balance the posts moved: one statement per chunk of accounts, in id
        order, each new balance returned and checked (see the module's docstring)."""
        # An account debited is written even when its credits made up for it: its row is
        # then locked before its debits' day row, as every unit of work locks them.
        debited = {account_id for account_id, _day in self._day_debits}
        moved = {i: d for i, d in self._moved.items() if d or i in debited}
        self._moved.clear()
        for chunk in _chunks(sorted(moved)):
            deltas = case({i: literal(moved[i]) for i in chunk}, value=t_accounts.c.id)
            rows = self.conn.execute(
                update(t_accounts)
                .where(t_accounts.c.id.in_(chunk))
                .values(balance_minor=t_accounts.c.balance_minor + deltas)
                .returning(t_accounts.c.id, t_accounts.c.balance_minor)
            ).all()
            assert len(rows) == len(chunk), (chunk, rows)
            for account_id, balance in rows:
                self._check(self._account[account_id], moved[account_id], balance)
                self._read[account_id] = balance
        self._debited.clear()
        self._write_day_debits()

    def _write_day_debits(self) -> None:
        """Add what the posts debited per account and day to `account_days`, in (account,
        day) order, after the balances (whose rows, locked first, keep two units of work
        from waiting on each other's day rows)."""
        rows = [
            {"account_id": account_id, "booking_date": day,
             "debited_minor": min(amount, day_debits_kept_max)}
            for (account_id, day), amount in sorted(self._day_debits.items())
            if amount
        ]
        self._day_debits.clear()
        if rows:
            self.conn.execute(_add_debits(self.conn.dialect.name), rows)

    def _check(self, account: Account, moved: int, balance: int) -> None:
        read = self._read.get(account.id)
        if read is not None and balance != read + moved:
            # Another unit of work committed a change since this one read the account:
            # impossible with SQLite's one writer; on PostgreSQL harmless unless it took
            # money from an account this one debits.
            assert not self._sqlite, (account.iban, read, moved, balance)
            debited = account.id in self._debited and account.kind is AccountKind.CLIENT
            if balance < read + moved and debited:
                raise BalanceConflict(f"{account.iban} was debited by another writer meanwhile")
        if account.kind is AccountKind.CLIENT and balance < -account.overdraft_minor:
            if read is not None and balance == read + moved:
                raise AssertionError(("decided beyond the overdraft", account.iban, balance))
            raise BalanceConflict(f"{account.iban} would go below its overdraft")

    def assert_balances(self, expected: Mapping[str, Account]) -> None:
        """Pair assertion: what was decided in memory (`expected`: each account's balance
        after the run) is what was read plus what was posted — the postings say exactly
        what the decisions did. (The database's own balances are checked by `flush`.)"""
        unseen = [a.iban for a in expected.values() if a.id not in self._read]
        if unseen:
            self.accounts(unseen)
        for iban, account in expected.items():
            actual = self._read[account.id] + self._moved.get(account.id, 0)
            assert actual == account.balance_minor, (iban, actual, account.balance_minor)


class Savepoint:
    """`LedgerTx.savepoint`: on rollback, the rows and the moves made since are undone."""

    def __init__(self, tx: LedgerTx) -> None:
        self._tx = tx
        self._nested = tx.conn.begin_nested()
        self._moved = dict(tx._moved)
        self._debited = set(tx._debited)
        self._day_debits = dict(tx._day_debits)

    def commit(self) -> None:
        self._nested.commit()

    def rollback(self) -> None:
        self._nested.rollback()
        self._tx._moved.clear()
        self._tx._moved.update(self._moved)
        self._tx._debited = self._debited
        self._tx._day_debits.clear()
        self._tx._day_debits.update(self._day_debits)


