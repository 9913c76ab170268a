"""camt.052 intraday reports and camt.054 notifications, and what every account report
needs to go out: a MsgId, the client's accounts, the day's bounds, the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

from sqlalchemy import Connection, select

from gateway import counters, faults
from gateway.environment import Environment
from gateway.errors import UsageError
from gateway.outbound import answers, camt052_v02, camt054_v02, outbox
from gateway.outbound.account_report import (
    AccountReport,
)
from gateway.outbound.entries import Entries, balance_before, entries
from gateway.settings import ClientSettings
from ledger.core import AccountKind
from ledger.engine import snapshot
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers


def client_accounts(env: Environment) -> list[tuple[ClientSettings, str]]:
    return [(c, a.iban) for c in env.settings.clients for a in c.accounts]


def day_bounds(env: Environment, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = env.settings.timezone
    start = dt.datetime.combine(day, dt.time(0, 0), zone)
    return start, dt.datetime.combine(day, dt.time(23, 59, 59), zone)


def new_msg_id(conn: Connection, local: dt.datetime) -> str:
    return answers.new_msg_id(conn, local)


def enqueue_intraday(
    env: Environment,
    conn: Connection,
    client_id: str,
    owner_name: str,
    iban: str,
    local: dt.datetime,
) -> tuple[int, str]:
    """The camt.052 of `iban` at `local` — opening balance, the day's entries so far, the
    interim balance — into the outbox (the `report` command and camt.060 requests). The
    day is read in a snapshot of its own (`day`): other work goes on booking it meanwhile;
    what `conn`, the caller's transaction, has not committed is not in it."""
    today = local.date()
    with snapshot(env.engine) as day:
        account = day.execute(select(t_accounts).where(t_accounts.c.iban == iban)).one()
        day_entries = Entries(day, account.id, day=today)  # read as written, a page at a time
        summary = day_entries.totals()  # the entries are checked against it as they are written
        opening = balance_before(day, account.id, today)
        start, _ = day_bounds(env, today)
        report = _made_now(
            env, conn, local, f"report:{iban}", iban=iban, currency=account.currency,
            owner_name=owner_name, from_datetime=start, to_datetime=local,
            opening_minor=opening, closing_minor=opening + summary.net_minor,
            entries=day_entries, totals=summary,
        )  # fmt: skip
        return enqueue(conn, client_id, camt052_v02, report)


def _made_now(
    env: Environment, conn: Connection, local: dt.datetime, sequence: str, **account: Any
) -> AccountReport:
    """An account report made at `local` (the rest of it in `account`): a MsgId of its
    own, which is its Id too, and the next number of its account's `sequence`."""
    msg_id = new_msg_id(conn, local)
    return AccountReport(
        msg_id=msg_id,
        report_id=msg_id,
        created_at=local,
        electronic_seq_nb=counters.next_value(conn, sequence),
        servicer_bic=env.settings.bic,
        **account,
    )


def deliver_now(env: Environment) -> list[str]:
    """Everything the outbox owes, delivered now (a statement or report made by a command or
    at the end of day); a client whose folder refuses keeps its messages in the outbox for
    the pipeline's next delivery, which holds that client (`faults.Held`)."""
    isolate = faults.Held(env.spool).isolate
    return outbox.deliver_pending(
        env.engine.connect, env.spool, env.sealer, env.clock.now(), isolate=isolate
    )


def intraday_report(env: Environment, iban: str) -> str:
    """camt.052 for an account now: opening balance, today's entries, interim balance."""
    owner = next((c for c, i in client_accounts(env) if i == iban), None)
    if owner is None:
        raise UsageError(f"--iban {iban}: not a configured client account")
    with env.ledger.begin() as tx:
        _, name = enqueue_intraday(env, tx.conn, owner.id, owner.name, iban, env.local_now())
    deliver_now(env)
    return name


def notify(env: Environment, conn: Connection, references: Sequence[str]) -> list[str]:
    """camt.054 for the accounts of clients with `notifications = true` that the given
    transfers touched: one notification per account per execution run."""
    if not references:
        return []
    wanted = {c.id: c for c in env.settings.clients if c.notifications}
    if not wanted:
        return []
    touched = conn.execute(
        select(t_accounts.c.id, t_accounts.c.iban, t_accounts.c.owner, t_accounts.c.currency)
        .distinct()
        .select_from(
            t_postings.join(t_transfers, t_postings.c.transfer_id == t_transfers.c.id).join(
                t_accounts, t_accounts.c.id == t_postings.c.account_id
            )
        )
        .where(
            t_transfers.c.reference.in_(list(references)),
            t_accounts.c.kind == AccountKind.CLIENT.value,
            t_accounts.c.owner.in_(list(wanted)),
        )
        .order_by(t_accounts.c.iban)  # their counters taken in one order by every writer
    ).all()
    names = []
    local = env.local_now()
    for account_id, iban, owner, currency in touched:
        account_entries = entries(conn, account_id, references=references)
        if not account_entries:
            continue
        report = _made_now(
            env, conn, local, f"notification:{iban}", iban=iban, currency=currency,
            owner_name=wanted[owner].name, from_datetime=local, to_datetime=local,
            entries=account_entries,
        )  # fmt: skip
        _, name = enqueue(conn, owner, camt054_v02, report)
        names.append(name)
    return names


class _Writer(Protocol):
    MESSAGE: str

    def write(self, report: AccountReport, out: BinaryIO) -> None: ...


def enqueue(
    conn: Connection, client_id: str, module: _Writer, report: AccountReport
) -> tuple[int, str]:
    """Render an account report with its message module and put it in the client's outbox."""
    body = outbox.render(lambda out: module.write(report, out))
    return outbox.enqueue(
        conn,
        client_id=client_id,
        message=module.MESSAGE,
        msg_id=report.msg_id,
        created_local=report.created_at,
        body=body,
    )
