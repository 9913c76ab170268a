"""`ledger fund`: money enters a client account from the treasury's funding account."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from gateway import counters
from gateway.environment import Environment
from gateway.errors import UsageError
from gateway.inbound.identifiers import iban_typed
from ledger import calendar, currency
from ledger.core import AccountKind, Transfer, TransferKind
from ledger.engine import writing
from ledger.store import Booked

log = structlog.get_logger("gateway.funding")


@dataclass(frozen=True, slots=True)
class Funded:
    """What `fund` did: the account's balance afterwards, and `earlier` when nothing was
    booked because the key had funded the same account with the same amount before."""

    balance_minor: int
    currency: str
    earlier: Booked | None = None


def describe(booked: Booked) -> str:
    """`10.00 EUR to LV… (FUND…, booked 2026-11-25)`: what a funding booked."""
    credits = ", ".join(
        f"{currency.format_minor(minor, booked.currency)} {booked.currency} to {iban}"
        for iban, minor in booked.credits
    )
    return f"{credits} ({booked.reference}, booked {booked.booking_date})"


def _repeated(booked: Booked, key: str, iban: str, amount: int) -> Booked:
    """A key used again: the same funding is told, another one refused (exit 2), since
    nothing is booked for it and the operator must know that."""
    if booked.credits != ((iban, amount),):
        raise UsageError(
            f"--key {key}: used already for {describe(booked)}; nothing booked now "
            "(a new funding needs a new key)"
        )
    return booked


def iban_argument(text: str) -> str:
    """The IBAN an `--iban` argument names; UsageError if it is not one."""
    iban, why = iban_typed(text)
    if why is not None:
        raise UsageError(f"--iban {text}: invalid IBAN ({why})")
    return iban


# The most funding takes an account, or the funding account below zero, to: what a
# statement can state (ISO 20022 amounts have 18 digits).
balance_limit_minor = currency.minor_limit - 1


def fund(env: Environment, iban_text: str, amount_text: str, *, key: str) -> Funded:
    """Credit `amount_text` to the account; the same `key` never funds twice: repeated with
    the same account and amount it books nothing and says what the key booked
    (`Funded.earlier`), with another account or amount it is refused (UsageError)."""
    iban = iban_argument(iban_text)
    account = env.ledger.account(iban)
    if account is None or account.kind is not AccountKind.CLIENT:
        raise UsageError(f"--iban {iban}: not a client account in the ledger")
    try:
        amount = currency.plain_to_minor(amount_text, account.currency)
    except currency.AmountError as exc:
        raise UsageError(f"--amount {amount_text}: {exc}") from exc
    idempotency_key = f"fund:{key}"
    earlier = env.ledger.booked(idempotency_key)
    if earlier is not None:  # nothing numbered, nothing booked
        _repeated(earlier, key, iban, amount)
        return Funded(*env.ledger.balance(iban), earlier=earlier)
    now = env.clock.now()
    # (After the day's end of day, its statements are closed: the next business day's.)
    today = calendar.booking_day(now.astimezone(env.settings.timezone), env.settings.eod_time)
    with env.engine.connect() as conn, writing(conn):
        number = counters.next_value(conn, "funding")
    with env.ledger.begin() as tx:
        source = tx.system_account(AccountKind.FUNDING, account.currency)
    assert source is not None, "system accounts exist for every supported currency"
    for held, holder in ((account.balance_minor, iban), (-source.balance_minor, source.iban)):
        if held + amount > balance_limit_minor:
            limit = currency.format_minor(balance_limit_minor, account.currency)
            below = " below zero" if holder == source.iban else ""
            raise UsageError(
                f"--amount {amount_text}: {holder} would hold more than {limit}{below}, "
                "the most a statement can state"
            )
    request = Transfer.between(
        idempotency_key=idempotency_key,
        reference=f"FUND{today:%Y%m%d}{number:08d}",
        kind=TransferKind.FUNDING,
        debit_iban=source.iban,
        credit_iban=iban,
        currency=account.currency,
        amount_minor=amount,
        booking_date=today,
        value_date=today,
    )
    _, refusal = env.ledger.transfer(request, now)
    if refusal is not None:
        raise UsageError(f"cannot fund {iban}: {refusal.text}")
    booked = env.ledger.booked(idempotency_key)
    assert booked is not None
    if booked.reference != request.reference:  # another process used the key meanwhile
        earlier = _repeated(booked, key, iban, amount)
    else:  # money entered the ledger: in the journal, as every booking
        log.info(
            "ledger.funded", iban=iban, amount=currency.format_minor(amount, account.currency),
            currency=account.currency, reference=request.reference,
            booking_date=today.isoformat(), key=key,
        )  # fmt: skip
    return Funded(*env.ledger.balance(iban), earlier=earlier)
