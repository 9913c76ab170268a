"""The composition root: builds the real adapters (database, ledger, spool, clock, sealer).

Every command that writes goes through `open_environment`, so the schema is upgraded
and the configured accounts exist before anything else runs. Commands that only read
(`status`, `ledger balance`, the metrics endpoint) go through `open_reader`, which
writes nothing at all: no migration, no accounts, no spool folders, no database file.
It opens SQLite read-only (`mode=ro`) and reads a WAL snapshot under a deferred
`BEGIN`, so a reader never waits for a writer holding `BEGIN IMMEDIATE` through a
200,000-payment file; PostgreSQL sessions are set `READ ONLY`. A database that is
missing or not at the current schema is refused with "run db upgrade" (exit 2).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select
from sqlalchemy.pool import NullPool

from gateway import (
    booking_days,
    counters,
    db,
    holiday_cache,
    installation,
    pricing,
    progress,
    unconfigured,
)
from gateway.clock import Clock, SystemClock
from gateway.db_schema import check_schema, upgrade_database
from gateway.errors import ConfigError, SealError, UsageError
from gateway.inbound.identifiers import iban_lv
from gateway.settings import Settings
from gateway.spool import Spool
from gateway.text import time_of_day
from ledger import currency
from ledger.core import TREASURY_OWNER, AccountKind
from ledger.engine import make_engine, writing
from ledger.store import AccountConflict, AccountSpec, Ledger

if TYPE_CHECKING:
    # The seal (cryptography's Rust extension) and lxml are loaded by the commands that
    # write, not by `status` and `ledger balance`, which must start fast on a busy host.
    from gateway.outbound.seal import Sealer

# A reader that finds a lock in its way waits this long at most, then says the database
# could not be read: a SQLite WAL reader only in rare moments (recovery after a crash), a
# PostgreSQL one behind a table locked whole (`LOCK TABLE`, `VACUUM FULL`). It must not
# wait as long as a writer may for the write lock.
reader_busy_timeout_ms = 5_000

# System accounts: one funding and one clearing account per currency, with fixed
# treasury IBANs (bank code TREL, account numbers 99.../98... by currency).
FUNDING_BASE = 9_990_000_000_000
CLEARING_BASE = 9_980_000_000_000


def system_accounts() -> list[AccountSpec]:
    specs: list[AccountSpec] = []
    for index, code in enumerate(sorted(currency.EXPONENTS)):
        specs.append(
            AccountSpec(
                iban_lv("TREL", FUNDING_BASE + index), code, TREASURY_OWNER, AccountKind.FUNDING
            )
        )
        specs.append(
            AccountSpec(
                iban_lv("TREL", CLEARING_BASE + index), code, TREASURY_OWNER, AccountKind.CLEARING
            )
        )
        specs.append(  # SPEC §13: conversions book through it
            AccountSpec(pricing.position_ibans()[code], code, TREASURY_OWNER, AccountKind.POSITION)
        )
    return specs


def client_accounts(settings: Settings) -> list[AccountSpec]:
    return [
        AccountSpec(
            iban=a.iban,
            currency=a.currency,
            owner=c.id,
            status=a.status,
            overdraft_minor=a.overdraft_minor,
            max_payment_minor=a.max_payment_minor,
            daily_limit_minor=a.daily_limit_minor,
        )
        for c in settings.clients
        for a in c.accounts
    ]


def account_conflict(settings: Settings, exc: AccountConflict) -> ConfigError:
    """The ledger's refusal of an account moved to another client or currency, as the
    configuration mistake it is: the key path of that account's `currency` (or, when the
    client differs, its `iban`) and what the ledger holds."""
    path = ""
    for ci, client in enumerate(settings.clients):
        for ai, account in enumerate(client.accounts):
            if account.iban == exc.iban:
                name = "currency" if exc.asked_currency != exc.currency else "iban"
                path = f"client[{ci}].account[{ai}].{name}"
    return ConfigError(
        path,
        f"account {exc.iban} exists in the ledger for {exc.owner} in {exc.currency}; "
        f"the configuration gives it to {exc.asked_owner} in {exc.asked_currency} "
        "(an account's client and currency never change: configure a new account)",
    )


@dataclass
class Environment:
    settings: Settings
    engine: Engine
    ledger: Ledger
    spool: Spool
    clock: Clock
    sealer: Sealer | None

    def local_now(self) -> dt.datetime:
        return self.clock.now().astimezone(self.settings.timezone)

    def close(self) -> None:
        self.ledger.settle()
        self.engine.dispose()
        holiday_cache.save(self.settings.spool_dir)


def load_sealer(settings: Settings, now: Callable[[], dt.datetime]) -> Sealer:
    """The seal key and certificate the configuration names, checked: every command that
    seals, and `keys init` once it made what was missing, say the same of a mistake."""
    from gateway.outbound.seal import Sealer

    key, certificate = settings.signing.key, settings.signing.certificate
    try:
        return Sealer.load(
            key, certificate, clock=now, names=("signing.key:", "signing.certificate:")
        )
    except SealError as exc:
        if os.path.exists(key) and os.path.exists(certificate):  # (never raises, unlike Path's)
            raise
        made_by = f"ekase-gateway keys init -c {settings.config_path}"
        raise SealError(f"{exc}; `{made_by}` makes them") from exc


def open_environment(
    settings: Settings, *, clock: Clock | None = None, need_sealer: bool = True
) -> Environment:
    """Refuse root in the service's spool (`installation.check_user`); check that the
    database and the spool are each other's (`installation`) and that the clock is not
    behind the statements issued; load the seal key; then migrate the database, make the
    spool's folders and the configured accounts: a database that is not the spool's, a
    clock set back or a key that cannot seal is refused before anything is written."""
    clock = clock or SystemClock()
    installation.check_user(settings.spool_dir)
    spool = Spool(settings.spool_dir)
    path = sqlite_path(settings.database_url)
    # (Connecting would make a SQLite file, and its folder: not before the checks.)
    engine = make_engine(settings.database_url) if path is None or path.exists() else None
    try:
        if installation.check(engine, spool.root) is not None:  # each other's, and used:
            # (a database without an identity yet is new — perhaps being made by another
            # process at this moment, not to be read meanwhile — or from before identities,
            # which its first start records: the check holds from the next)
            assert engine is not None
            _refuse_a_clock_behind(engine, settings, clock)
        sealer = None
        if need_sealer:
            sealer = load_sealer(settings, clock.now)
            _check_next_certificate(settings)
        holiday_cache.load(settings.spool_dir)
        engine = engine or make_engine(settings.database_url)
        with _one_start_at_a_time(engine):
            ledger = _first_writes(settings, engine, spool, clock)
    except BaseException:
        if engine is not None:
            engine.dispose()
        raise
    return Environment(settings, engine, ledger, spool, clock, sealer)


_START_LOCK = 0x656B617374  # PostgreSQL advisory lock key of a start's first writes


@contextlib.contextmanager
def _one_start_at_a_time(engine: Engine) -> Iterator[None]:
    """Processes starting at once on one database (a daemon and a command, two nodes) make
    its schema, accounts and counters one after the other: on PostgreSQL both inserted
    the same accounts and one failed (SQLite's writers take its lock up front anyway)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_START_LOCK})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_START_LOCK})")


def _refuse_a_clock_behind(engine: Engine, settings: Settings, clock: Clock) -> None:
    """A clock before the end of a day statements were issued for (a system clock set
    back, a bad NTP step) is refused before anything is written or checked against it:
    what a writer did now would be booked, and cut-offs judged, on a day whose statements
    are already sent (and the next end of day would find them not adding up)."""
    with engine.connect() as conn:  # (one with an identity was migrated: it has the table)
        latest = conn.execute(select(func.max(db.statements.c.business_date))).scalar()
    now = clock.now().astimezone(settings.timezone)
    if latest is None or (now.date(), now.time()) >= (latest, settings.eod_time):
        return
    raise UsageError(
        f"the clock says {now:%Y-%m-%d %H:%M}, but statements were issued for {latest} "
        f"(after its {time_of_day(settings.eod_time)} end of day): the system clock is "
        "behind; set it right and start again (nothing was done)"
    )


def _daemon_running(spool_dir: Path, now: dt.datetime) -> str | None:
    """A daemon whose process is there, on this spool (its heartbeat; this process has
    none yet): `a daemon (pid N on HOST)`, or None."""
    for beat in progress.read_heartbeats(spool_dir):
        if beat.alive(now) and (beat.host or progress.this_host(), beat.pid) != (
            progress.this_host(), os.getpid()
        ):
            where = f"heartbeat in {spool_dir / progress.RUN}"
            return f"a daemon (pid {beat.pid} on {beat.host or 'this host'}; {where})"
    return None


def _first_writes(settings: Settings, engine: Engine, spool: Spool, clock: Clock) -> Ledger:
    """The schema migrated, the spool's folders, the identity recorded, the configured
    accounts and the counters every start needs."""
    upgrade_database(engine, lambda: _daemon_running(spool.root, clock.now()))
    log = structlog.get_logger("gateway.environment")
    spool.prepare([c.id for c in settings.clients], log)
    for folder in unconfigured.folders(spool, (c.id for c in settings.clients)):
        log.warning(
            "spool.client_not_configured", client=folder.client_id, files_waiting=folder.files,
            folder=str(spool.root / "clients" / folder.client_id),
            why="no such client in the configuration: its files wait unanswered",
        )  # fmt: skip
    with engine.connect() as conn, writing(conn):
        installation.record(conn, spool.root)
    ledger = Ledger(engine, before_booking=booking_days.hold)
    try:
        ledger.ensure_accounts(system_accounts() + client_accounts(settings))
    except AccountConflict as exc:
        raise account_conflict(settings, exc) from exc
    # A writer's transaction (SQLite: BEGIN IMMEDIATE): read first and then written, a
    # deferred one failed at once ("database is locked") when another process's first
    # start had written between its read and its write.
    with engine.connect() as conn, writing(conn):
        known = {r[0] for r in conn.execute(select(db.counters.c.name))}
        for name in ("msg_id",):
            if name not in known:
                conn.execute(insert(db.counters).values(name=name, value=0))
        # The day each client account appeared: its statements start then (SPEC §8).
        today = clock.now().astimezone(settings.timezone).date()
        counters.record_first_days(conn, known, [a.iban for a in client_accounts(settings)], today)
    return ledger


# -- reading only ------------------------------------------------------------------------------


@dataclass
class ReadOnlyEnvironment:
    """What a command that only reads needs; it has no sealer and writes nothing."""

    settings: Settings
    engine: Engine
    ledger: Ledger
    spool: Spool
    clock: Clock

    def local_now(self) -> dt.datetime:
        return self.clock.now().astimezone(self.settings.timezone)

    def close(self) -> None:
        self.engine.dispose()


def _upgrade_hint(settings: Settings) -> str:
    return f"run `ekase-gateway db upgrade -c {settings.config_path}`"


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///…` URL; None for anything else (or an in-memory one)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def make_reader_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite opened `mode=ro` (WAL snapshots, deferred
    BEGIN, never a write lock), PostgreSQL sessions set READ ONLY."""
    path = sqlite_path(url)
    if path is not None:
        uri = f"file:{quote(str(path))}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(
                uri, uri=True, timeout=reader_busy_timeout_ms / 1000, check_same_thread=False
            )

        engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.execute(f"PRAGMA busy_timeout={reader_busy_timeout_ms}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")  # deferred: a snapshot, no lock on the writers

        return engine
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.execute(f"SET lock_timeout = {reader_busy_timeout_ms}")
        cursor.close()
        dbapi_conn.commit()

    return engine


def open_reader(settings: Settings, *, clock: Clock | None = None) -> ReadOnlyEnvironment:
    """Open the database for reading only (see the module docstring)."""
    path = sqlite_path(settings.database_url)
    spool_there = settings.spool_dir.is_dir()  # (an auditor's copy of the database has none)
    if path is not None and not path.is_file():
        if spool_there:  # a used spool: its database is elsewhere, not to be made
            installation.check(None, settings.spool_dir)
        raise UsageError(f"no database at {path}: {_upgrade_hint(settings)}")
    engine = make_reader_engine(settings.database_url)
    try:
        if spool_there:
            # Another installation's database is the news, not its schema ("db upgrade"
            # would be refused for the same reason).
            installation.check(engine, settings.spool_dir)
        check_schema(engine, _upgrade_hint(settings))
        ledger = Ledger(engine)
        # What a start would refuse of the accounts, said as it says it: `status` is how an
        # edited configuration is checked before a restart (README).
        conflict = ledger.account_conflict(client_accounts(settings))
        if conflict is not None:
            raise account_conflict(settings, conflict)
    except BaseException:
        engine.dispose()
        raise
    return ReadOnlyEnvironment(
        settings, engine, ledger, Spool(settings.spool_dir), clock or SystemClock()
    )


__all__ = [
    "Environment",
    "ReadOnlyEnvironment",
    "SealError",
    "open_environment",
    "open_reader",
    "system_accounts",
]


def _check_next_certificate(settings: Settings) -> None:
    """The rollover certificate handed to clients ahead of a switch must be readable."""
    path = settings.signing.next_certificate
    if path is None:
        return
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SealError(f"signing.next_certificate: cannot use {path}: {exc}") from exc
