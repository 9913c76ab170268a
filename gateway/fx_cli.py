"""Sub-commands for exchange rates and large-payment days (SPEC §13, §14):

    ekase-gateway rates import -c CONFIG FILE
    ekase-gateway rates set -c CONFIG --date D --currency RUB --rate R
    ekase-gateway rates show -c CONFIG --date D
    ekase-gateway announce -c CONFIG --client ID --date D --amount A

A refused file or value is one line on standard error and exit 2, nothing stored.
Registered in `cli.main`; heavy modules load inside the handlers.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from gateway.cli_common import actions, config_arg, day_of, environment, settings_of
from gateway.errors import UsageError


def cmd_rates_import(args: argparse.Namespace) -> int:
    from gateway.rates import store

    path: Path = args.file
    if path.is_dir():
        raise UsageError(f"{path}: a folder, not a file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    env = environment(args)
    try:
        outcome = store.import_file(
            env.engine, path, now=env.clock.now(), today=env.local_now().date()
        )
    finally:
        env.close()
    if isinstance(outcome, store.Refused):
        raise UsageError(f"{path.name}: refused: {outcome.problem}")
    print(outcome.line(path.name))
    return 0


def cmd_rates_set(args: argparse.Namespace) -> int:
    from gateway.rates import store

    day = day_of("--date", args.date)
    code = args.currency.strip().upper()
    env = environment(args)
    try:
        outcome = store.set_rate(
            env.engine, day, code, args.rate, now=env.clock.now(), today=env.local_now().date()
        )
    finally:
        env.close()
    if isinstance(outcome, store.Refused):
        raise UsageError(outcome.problem)
    state = "unchanged" if outcome.unchanged else "corrected" if outcome.corrected else "set"
    print(f"EUR/{code} {args.rate.strip()} of {day}: {state}")
    return 0


def cmd_rates_show(args: argparse.Namespace) -> int:
    from gateway import fx
    from gateway.environment import open_reader
    from gateway.rates import store, target
    from ledger import currency

    day = day_of("--date", args.date)
    env = open_reader(settings_of(args))  # reads only (README): nothing migrated or made
    try:
        rate_date = target.rate_date_for(day)
        with env.engine.connect() as conn:
            found = store.stored_on(conn, rate_date)
    finally:
        env.close()
    print(f"rates valid for execution on {day}: dated {rate_date}")
    for code in sorted(set(currency.EXPONENTS) - {fx.EUR}):
        rate = found.get(code)
        if rate is None:
            how = "import the ECB file" if code in fx.ECB_QUOTED else "rates set"
            print(f"EUR/{code} missing ({how})")
        else:
            used = " used" if rate.used else ""
            print(f"EUR/{code} {fx.rate_text(rate.rate)} {rate.source}{used}")
    return 0


def cmd_announce(args: argparse.Namespace) -> int:
    from gateway import announcements, large_days
    from gateway.text import time_of_day
    from ledger import calendar, currency

    day = day_of("--date", args.date)
    env = environment(args)
    try:
        if args.client not in {c.id for c in env.settings.clients}:
            raise UsageError(f"--client {args.client}: no such client in the configuration")
        today = env.local_now().date()
        if day < today:
            raise UsageError(f"--date {day} is in the past (today is {today})")
        if not calendar.is_business_day(day):
            raise UsageError(f"--date {day} is not a business day")
        settings = env.settings
        # The last day a payment can execute: one requested `max_future_days` ahead (CH03
        # beyond), rolled to a business day as its execution is.
        latest = calendar.business_day_on_or_after(
            today + dt.timedelta(days=settings.max_future_days)
        )
        if day > latest:
            raise UsageError(
                f"--date {day} is after {latest}, the last day a payment may execute "
                f"(max_future_days: {settings.max_future_days})"
            )
        due = large_days.deadline(day, settings.large_day_announce_by, settings.timezone)
        if env.clock.now() > due:  # SPEC §14: what comes later does not count
            raise UsageError(
                f"--date {day}: too late, announcements for it were due by "
                f"{time_of_day(settings.large_day_announce_by)} on {due.date()}"
            )
        try:
            amount = currency.plain_to_minor(args.amount, large_days.CURRENCY, allow_zero=True)
        except currency.AmountError as exc:
            raise UsageError(f"--amount {args.amount}: {exc}") from exc
        before = announcements.record(env.engine, args.client, day, amount, env.clock.now())
    finally:
        env.close()
    eur = large_days.CURRENCY
    replaced = (
        "" if before is None else f" (replaces {currency.format_minor(before, eur)} {eur})"
    )
    print(f"{args.client} {day}: {currency.format_minor(amount, eur)} {eur} announced{replaced}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rates_sub = actions(sub, "rates", "ECB reference rates: import, set, show")

    q = rates_sub.add_parser(
        "import", help="import an ECB eurofxref file (daily or history; XML, CSV or zip)"
    )
    config_arg(q)
    q.add_argument("file", type=Path)
    q.set_defaults(handler=cmd_rates_import)

    q = rates_sub.add_parser("set", help="set a rate the ECB does not publish (RUB, BYN)")
    config_arg(q)
    q.add_argument("--date", required=True, help="the rate's date YYYY-MM-DD (an ECB day)")
    q.add_argument("--currency", required=True)
    q.add_argument("--rate", required=True, help="units of the currency per 1 EUR")
    q.set_defaults(handler=cmd_rates_set)

    q = rates_sub.add_parser("show", help="print the rates valid for execution on a day")
    config_arg(q)
    q.add_argument("--date", required=True, help="execution day YYYY-MM-DD")
    q.set_defaults(handler=cmd_rates_show)

    p = sub.add_parser("announce", help="record a client's large-payment-day announcement")
    config_arg(p)
    p.add_argument("--client", required=True, help="client id")
    p.add_argument("--date", required=True, help="business day YYYY-MM-DD of the payments")
    p.add_argument(
        "--amount", required=True,
        help="EUR announced beyond the known payments (0 withdraws an announcement)",
    )
    p.set_defaults(handler=cmd_announce)
