"""The ledger's entry point (`Ledger`): its units of work (`Ledger.begin`, a
`tx.LedgerTx`: how balances move and stay within their overdrafts is told there), the
accounts the configuration names, one-off transfers, and the queries statements need.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select, update

from ledger import audit, core
from ledger.core import Account, AccountKind, Transfer
from ledger.engine import WRITE_OPTION, checkpoint, wal_autocheckpoint_pages
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers
from ledger.tx import LedgerTx, row_to_account

if TYPE_CHECKING:
    from ledger.migrations import Migrated


def upgrade(engine: Engine) -> Migrated | None:
    """Create or upgrade the ledger's tables (Alembic, version table `ledger_alembic_version`)."""
    from ledger.migrations import run_upgrade

    return run_upgrade(engine)


class AccountConflict(ValueError):
    """An account the ledger holds is named for another client or currency than it has.

    The ledger keeps an account's owner and currency for ever (its postings are in that
    currency, its statements that client's); what names it otherwise is wrong, and the
    caller says so in its own terms (the gateway: the configuration key at fault)."""

    def __init__(self, iban: str, held: tuple[str, str], asked: tuple[str, str]) -> None:
        super().__init__(
            f"account {iban} exists for {held[0]} in {held[1]}; "
            f"configuration says {asked[0]} in {asked[1]}"
        )
        self.iban = iban
        self.owner, self.currency = held
        self.asked_owner, self.asked_currency = asked


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
class Booked:
    """A transfer as it was booked under its idempotency key: what a repeated request is
    compared with. `credits` are (IBAN, minor units) of the accounts it credited."""

    reference: str
    booking_date: dt.date
    currency: str
    credits: tuple[tuple[str, int], ...]


class Ledger:
    """The ledger's entry point: accounts, posting, and the queries statements need."""

    def __init__(
        self, engine: Engine, before_booking: Callable[[Connection, dt.date], None] | None = None
    ) -> None:
        """`before_booking`: asked in a transaction before its first post on a booking day
        (`LedgerTx`); it may refuse the day by raising `BalanceConflict` (done again)."""
        self.engine = engine
        self._before_booking = before_booking
        self._checkpoints: list[threading.Thread] = []
        self._system_ibans: dict[tuple[AccountKind, str], str | None] = {}

    @contextmanager
    def begin(self, *, checkpoint_after: bool = False) -> Iterator[LedgerTx]:
        """A write transaction (on SQLite: BEGIN IMMEDIATE, one writer at a time); the
        balances its posts moved are written at its end (`LedgerTx.flush`).

        `checkpoint_after` is for a transaction of tens of MB (a big file). SQLite would
        copy its WAL into the database file inside the commit; instead a thread does
        that after the commit, while the caller goes on to deliver what it committed
        (`settle` waits for it). The commit itself is as durable as any: the WAL is
        synced before COMMIT returns."""
        deferred = checkpoint_after and self.engine.dialect.name == "sqlite"
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            raw = conn.connection.driver_connection
            assert raw is not None
            if deferred:
                raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with conn.begin():
                    tx = LedgerTx(conn, self._system_ibans, self._before_booking)
                    yield tx
                    tx.flush()
            finally:
                if deferred:  # the connection goes back to the pool as it came
                    raw.execute(f"PRAGMA wal_autocheckpoint={wal_autocheckpoint_pages}")
        if deferred:
            thread = threading.Thread(
                target=checkpoint, args=(self.engine.raw_connection(),), name="wal-checkpoint"
            )
            thread.start()
            self._checkpoints = [t for t in self._checkpoints if t.is_alive()] + [thread]

    def settle(self) -> None:
        """Wait for the checkpoints `begin(checkpoint_after=True)` started."""
        while self._checkpoints:
            self._checkpoints.pop().join()

    # -- accounts ---------------------------------------------------------------------------

    def ensure_accounts(self, specs: Iterable[AccountSpec]) -> None:
        """Create missing accounts; refresh status and limits of existing ones from the specs
        (only those the configuration changed: every process start runs this). An account
        named for another owner or currency than it has raises `AccountConflict`, and
        nothing of the specs is applied."""
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
                conflict = _conflict(current, spec)
                if conflict is not None:
                    raise conflict
                if any(getattr(current, name) != value for name, value in values.items()):
                    tx.conn.execute(
                        update(t_accounts).where(t_accounts.c.id == current.id).values(**values)
                    )

    def account_conflict(self, specs: Iterable[AccountSpec]) -> AccountConflict | None:
        """What `ensure_accounts` would refuse of `specs`, read only (the first, if any)."""
        specs = list(specs)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t_accounts).where(t_accounts.c.iban.in_([s.iban for s in specs]))
            ).all()
        held = {row.iban: row_to_account(row) for row in rows}
        found = (_conflict(held[s.iban], s) for s in specs if s.iban in held)
        return next((c for c in found if c is not None), None)

    def account(self, iban: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t_accounts).where(t_accounts.c.iban == iban)).first()
        return row_to_account(row) if row else None

    def all_accounts(self) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t_accounts).order_by(t_accounts.c.id)).all()
        return [row_to_account(r) for r in rows]

    # -- posting ----------------------------------------------------------------------------

    def transfer(
        self, transfer: Transfer, booked_at: dt.datetime
    ) -> tuple[int | None, core.Refusal | None]:
        """Post one transfer idempotently: a repeated key returns the original and posts
        nothing."""
        with self.begin() as tx:
            # Short: it locks its accounts (`lock`), so a concurrent retry of the same key
            # waits here and, once the first commits, sees its transfer below.
            accounts = tx.accounts((leg.iban for leg in transfer.postings), lock=True)
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

    def booked(self, idempotency_key: str) -> Booked | None:
        """The transfer booked under `idempotency_key`, or None."""
        query = (
            select(
                t_transfers.c.reference, t_transfers.c.booking_date, t_accounts.c.iban,
                t_postings.c.amount_minor, t_postings.c.currency,
            )
            .join(t_postings, t_postings.c.transfer_id == t_transfers.c.id)
            .join(t_accounts, t_accounts.c.id == t_postings.c.account_id)
            .where(t_transfers.c.idempotency_key == idempotency_key, t_postings.c.amount_minor > 0)
            .order_by(t_postings.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return None
        return Booked(
            reference=rows[0].reference,
            booking_date=rows[0].booking_date,
            currency=rows[0].currency,
            credits=tuple((r.iban, int(r.amount_minor)) for r in rows),
        )

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


def _conflict(current: Account, spec: AccountSpec) -> AccountConflict | None:
    """An account held for another owner or currency than `spec` names it for."""
    if current.currency == spec.currency and current.owner == spec.owner:
        return None
    return AccountConflict(
        spec.iban, (current.owner, current.currency), (spec.owner, spec.currency)
    )
