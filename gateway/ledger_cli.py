"""The ledger commands: `ledger fund`, `ledger balance` and `ledger accounts`.

    ekase-gateway ledger fund -c CONFIG --iban IBAN --amount A [--key K]
    ekase-gateway ledger balance -c CONFIG --iban IBAN
    ekase-gateway ledger accounts -c CONFIG

`accounts` lists every account of the ledger — the clients' and the treasury's own
(funding, clearing and currency position accounts, whose IBANs no configuration names) —
with its kind, currency, owner, status and booked balance: what an operator checks the
treasury's positions with. `balance` and `accounts` read only: they never wait for a
writer. Registered in `cli.main`; heavy modules load inside the handlers.
"""

from __future__ import annotations

import argparse
import uuid

from gateway.cli_common import actions, config_arg, environment, settings_of
from gateway.errors import UsageError


def cmd_ledger_fund(args: argparse.Namespace) -> int:
    from gateway.funding import describe, fund
    from ledger.currency import format_minor

    if args.key is not None and not args.key.strip():
        # An unset variable in a script (`--key "$KEY"`): funding anew on every retry.
        raise UsageError("--key is empty: give the funding's own key, or leave --key out")
    env = environment(args)
    try:
        done = fund(env, args.iban, args.amount, key=args.key or uuid.uuid4().hex)
    finally:
        env.close()
    if done.earlier is not None:
        print(f"nothing booked: key {args.key} was used already for {describe(done.earlier)}")
    print(f"{format_minor(done.balance_minor, done.currency)} {done.currency}")
    return 0


def cmd_ledger_balance(args: argparse.Namespace) -> int:
    from gateway.environment import open_reader
    from gateway.funding import iban_argument
    from ledger.currency import format_minor

    settings = settings_of(args)
    iban = iban_argument(args.iban)
    env = open_reader(settings)  # reads only, never waits for a writer
    try:
        account = env.ledger.account(iban)
    finally:
        env.close()
    if account is None:
        configured = any(a.iban == iban for c in settings.clients for a in c.accounts)
        raise UsageError(
            f"--iban {args.iban}: configured, not in the ledger yet: any writing command "
            f"creates it (`ekase-gateway db upgrade -c {args.config}`)" if configured
            else f"--iban {args.iban}: no such account in the ledger or the configuration"
        )
    print(f"{format_minor(account.balance_minor, account.currency)} {account.currency}")
    return 0


def cmd_ledger_accounts(args: argparse.Namespace) -> int:
    from gateway.environment import open_reader
    from ledger.core import AccountKind
    from ledger.currency import format_minor

    env = open_reader(settings_of(args))
    try:
        accounts = env.ledger.all_accounts()
    finally:
        env.close()
    order = list(AccountKind)  # the clients' first, then the treasury's own
    for a in sorted(accounts, key=lambda a: (order.index(a.kind), a.owner, a.currency, a.iban)):
        shown = f"{format_minor(a.balance_minor, a.currency)} {a.currency}"
        print(f"{a.iban}  {a.kind.value:<8}  {a.owner:<16}  {a.status:<7}  {shown:>24}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger_sub = actions(sub, "ledger", "ledger operations: fund, balance, accounts")
    q = ledger_sub.add_parser("fund", help="credit an account from the treasury's funding account")
    config_arg(q)
    q.add_argument("--iban", required=True)
    q.add_argument("--amount", required=True, help="decimal amount, e.g. 1000.50")
    q.add_argument("--key", help="idempotency key: the same key never funds twice")
    q.set_defaults(handler=cmd_ledger_fund)
    q = ledger_sub.add_parser("balance", help="print an account's booked balance")
    config_arg(q)
    q.add_argument("--iban", required=True)
    q.set_defaults(handler=cmd_ledger_balance)
    q = ledger_sub.add_parser(
        "accounts", help="list every ledger account (the treasury's own too) with its balance"
    )
    config_arg(q)
    q.set_defaults(handler=cmd_ledger_accounts)
