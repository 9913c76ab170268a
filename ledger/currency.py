"""Currencies the treasury keeps, and the conversion between decimal text and minor units.

Money inside the system is always an `int` of minor units. `Decimal` appears only
here, at the edge where text (XML, TOML, the command line) becomes money.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies the treasury supports.
EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "DKK": 2,
    "NOK": 2,
    "GBP": 2,
    "SEK": 2,
    "HUF": 2,
    "JPY": 0,
    "RUB": 2,
    "BYN": 2,
    "PLN": 2,
    "CZK": 2,
}

amount_digits_max = 18  # pain.001 allows 18 digits in total
# Amounts in minor units stay below this: what ISO 20022 can carry, in any message.
minor_limit: int = 10**amount_digits_max


class AmountError(ValueError):
    """Text that is not an acceptable amount in the given currency."""


def is_supported(currency: str) -> bool:
    return currency in EXPONENTS


def to_minor(text: str | Decimal, currency: str, *, allow_zero: bool = False) -> int:
    """Parse a decimal amount into minor units, refusing extra decimals or signs.

    Raises AmountError naming the problem; callers at the edge turn that into a
    finding or a usage error.
    """
    exponent = EXPONENTS.get(currency)
    if exponent is None:
        raise AmountError(f"unsupported currency {currency!r}")
    if isinstance(text, str):
        # The common case `123.45`, without Decimal; anything else the slow way.
        whole, dot, fraction = text.partition(".")
        if whole.isdigit() and whole.isascii() and (
            not dot or (len(fraction) <= exponent and fraction.isdigit() and fraction.isascii())
        ):
            fast = int(whole + fraction.ljust(exponent, "0")) if exponent else int(whole)
            if (fast > 0 or allow_zero) and fast < minor_limit:
                return fast
    try:
        value = text if isinstance(text, Decimal) else Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise AmountError(f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise AmountError(f"not a number: {text!r}")
    if value.adjusted() >= amount_digits_max:
        # Refused before scaling: `1e1000000` would overflow the context, and an int of
        # 10,000 digits cannot even be turned into text.
        raise AmountError(f"amount too large: {text}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{text} has more than {exponent} decimals for {currency}")
    minor = int(scaled)
    if minor < 0 and allow_zero:
        raise AmountError(f"amount must not be negative: {text}")
    if minor < 0 or (minor == 0 and not allow_zero):
        raise AmountError(f"amount must be positive: {text}")
    if minor >= minor_limit:
        raise AmountError(f"amount too large: {text}")
    return minor



def stateable(minor: int) -> bool:
    """Whether ISO 20022 can state `minor` (either sign): its amounts have 18 digits."""
    return abs(minor) < minor_limit

# An amount as a person writes it and as pain.001 carries it: digits, and a decimal point
# with digits after it if there are decimals.
PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def plain_to_minor(text: str, currency: str, *, allow_zero: bool = False) -> int:
    """`to_minor` for an amount a person typed (the command line, the configuration): only
    the plain form, not what else `Decimal` reads (`1e3`, `+5`, `1_000`, ` 5`)."""
    minor = to_minor(text, currency, allow_zero=allow_zero)  # its reasons first: `-5`, `abc`
    if not PLAIN_DECIMAL.fullmatch(text):
        raise AmountError(f"not a plain decimal amount (digits, a point, e.g. 1000.50): {text}")
    return minor


def format_minor(minor: int, currency: str) -> str:
    """`123456, 'EUR'` → `'1234.56'`: the form ISO 20022 amounts take."""
    exponent = EXPONENTS[currency]
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor))
    if exponent == 0:
        return sign + digits
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"
