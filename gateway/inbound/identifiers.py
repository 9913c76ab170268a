"""Whether an IBAN or a BIC is one: the checks schwifty makes, worked out per value.

A payroll names 100,000 different creditors, so the IBAN check runs without building a
schwifty object per payment where the country has no national check digits (the
reading child runs it, beside the parse: `reader.Chunk`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

from schwifty import BIC, IBAN
from schwifty import registry as schwifty_registry
from schwifty.checksum import algorithms as national_checksums
from schwifty.exceptions import SchwiftyException

_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")
_MOD97 = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})


@lru_cache(maxsize=256)
def iban_spec(country: str) -> Any:
    try:
        return schwifty_registry.get_iban_spec(country)
    except SchwiftyException:
        return None


class _Country(NamedTuple):
    """What schwifty's registry says of a country's IBANs, looked up once per country."""

    length: int
    bban: re.Pattern[str]
    national_checksum: bool


@lru_cache(maxsize=256)
def _country(code: str) -> _Country | None:
    spec = iban_spec(code)
    if spec is None:
        return None
    national = any(name.startswith(f"{code}:") for name in national_checksums)
    return _Country(spec.iban_length, spec.regex, national)


def iban_problem(text: str) -> str | None:
    """Why `text` is not a valid IBAN, or None.

    The checks schwifty makes — shape, the country's length and BBAN format from its
    registry, ISO 7064 mod-97, and the national check digits of the countries that have
    them — in that order, without building an IBAN object for a country that has no
    national check digits (a payroll names 100,000 different creditors, most in Latvia).
    """
    if not _IBAN_SHAPE.match(text):
        return "not an IBAN"
    country = _country(text[:2])
    if country is None:
        return f"unknown country code {text[:2]}"
    if len(text) != country.length:
        return f"an IBAN of {text[:2]} has {country.length} characters, not {len(text)}"
    if not country.bban.match(text[4:]):
        return "the account part does not match the country's format"
    if _mod97(text) != 1:
        return "check digits do not match"
    if country.national_checksum:
        try:
            IBAN(text, validate_bban=True)
        except SchwiftyException:
            return "the national check digits do not match"
    return None


def iban_typed(text: str) -> tuple[str, str | None]:
    """An IBAN as a person types it (configuration, `--iban`): written without spaces,
    in capitals, and why it is not valid (`iban_problem`), or None."""
    iban = text.replace(" ", "").upper()
    return iban, iban_problem(iban)


def iban_lv(bank: str, account: int) -> str:
    """A valid Latvian IBAN for a 4-letter bank code and an account number (13 digits)."""
    bban = f"{bank}{account:013d}"
    digits = "".join(str(int(c, 36)) for c in bban + "LV00")
    check = 98 - int(digits) % 97
    return f"LV{check:02d}{bban}"


def _mod97(iban: str) -> int:
    """ISO 7064 mod-97 of the IBAN rearranged (BBAN first, letters as two digits). The
    country, check digits and bank code repeat across a file: their digits are cached."""
    rest = iban[8:]
    if not rest.isdigit():
        rest = rest.translate(_MOD97)
    return int(_letters_as_digits(iban[4:8]) + rest + _letters_as_digits(iban[:4])) % 97


@lru_cache(maxsize=4096)
def _letters_as_digits(part: str) -> str:
    return part.translate(_MOD97)


@lru_cache(maxsize=4096)
def bic_problem(text: str) -> str | None:
    try:
        BIC(text)
    except SchwiftyException as exc:
        return str(exc)
    return None
