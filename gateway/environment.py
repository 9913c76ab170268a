"""The composition root: builds the real adapters (database, ledger, spool, clock, sealer).

Every command that touches the database goes through `open_environment`, so the
schema is upgraded and the configured accounts exist before anything else runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from gateway import counters, db, holiday_cache
from gateway.clock import Clock, SystemClock
from gateway.errors import SealError
from gateway.migrations import run_upgrade as upgrade_gateway
from gateway.outbound.seal import Sealer
from gateway.samples import iban_lv
from gateway.settings import Settings
from gateway.spool import Spool
from ledger import currency
from ledger.core import TREASURY_OWNER, AccountKind
from ledger.store import AccountSpec, Ledger, make_engine
from ledger.store import upgrade as upgrade_ledger

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


def upgrade_database(engine: Engine) -> None:
    upgrade_ledger(engine)
    upgrade_gateway(engine)


def open_environment(
    settings: Settings, *, clock: Clock | None = None, need_sealer: bool = True
) -> Environment:
    """Open the database (migrating it), create the configured accounts, load the seal key."""
    holiday_cache.load(settings.spool_dir)
    engine = make_engine(settings.database_url)
    upgrade_database(engine)
    ledger = Ledger(engine)
    ledger.ensure_accounts(system_accounts() + client_accounts(settings))
    clock = clock or SystemClock()
    with engine.begin() as conn:
        known = {r[0] for r in conn.execute(select(db.counters.c.name))}
        for name in ("msg_id",):
            if name not in known:
                conn.execute(insert(db.counters).values(name=name, value=0))
        # The day each client account appeared: its statements start then (SPEC §8).
        today = clock.now().astimezone(settings.timezone).date()
        counters.record_first_days(conn, known, [a.iban for a in client_accounts(settings)], today)
    sealer = None
    if need_sealer:
        sealer = Sealer.load(settings.signing.key, settings.signing.certificate, clock=clock.now)
        _check_next_certificate(settings)
    spool = Spool(settings.spool_dir)
    spool.prepare([c.id for c in settings.clients])
    return Environment(settings, engine, ledger, spool, clock, sealer)


__all__ = ["Environment", "SealError", "open_environment", "system_accounts"]


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
