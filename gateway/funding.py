"""`ledger fund`: money enters a client account from the treasury's funding account."""

from __future__ import annotations

from gateway import counters
from gateway.environment import Environment
from gateway.errors import UsageError
from gateway.inbound.identifiers import iban_typed
from ledger import calendar, currency
from ledger.core import AccountKind, Transfer, TransferKind


def iban_argument(text: str) -> str:
    """The IBAN an `--iban` argument names; UsageError if it is not one."""
    iban, why = iban_typed(text)
    if why is not None:
        raise UsageError(f"--iban {text}: invalid IBAN ({why})")
    return iban


def fund(env: Environment, iban_text: str, amount_text: str, *, key: str) -> tuple[int, str]:
    """Credit `amount_text` to the account; the same `key` never funds twice.

    Returns the account's balance afterwards (minor units) and its currency.
    """
    iban = iban_argument(iban_text)
    account = env.ledger.account(iban)
    if account is None or account.kind is not AccountKind.CLIENT:
        raise UsageError(f"--iban {iban}: not a client account in the ledger")
    try:
        amount = currency.plain_to_minor(amount_text, account.currency)
    except currency.AmountError as exc:
        raise UsageError(f"--amount {amount_text}: {exc}") from exc
    now = env.clock.now()
    local = now.astimezone(env.settings.timezone)
    today = local.date()
    if not calendar.is_business_day(today) or local.time() >= env.settings.eod_time:
        today = calendar.next_business_day(today)  # the day's statements are closed
    with env.engine.begin() as conn:
        number = counters.next_value(conn, "funding")
    with env.ledger.begin() as tx:
        source = tx.system_account(AccountKind.FUNDING, account.currency)
    assert source is not None, "system accounts exist for every supported currency"
    request = Transfer.between(
        idempotency_key=f"fund:{key}",
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
        raise UsageError(f"cannot fund {iban}: {refusal.value}")
    balance, code = env.ledger.balance(iban)
    return balance, code
