"""`identifiers.iban_problem` agrees with schwifty (shape, the country's length and format, ISO
7064 mod-97, and the national check digits of the countries that have them)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from gateway.inbound import identifiers

VALID = [
    "LV80BANK0000435195001",
    "LV11HABA0000000000123",
    "LV31TREL9100000000001",
    "DE89370400440532013000",
    "GB29NWBK60161331926819",
    "FR1420041010050500013M02606",
    "EE382200221020145685",
    "LT121000011101001000",
]
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def schwifty_accepts(text: str) -> bool:
    try:
        IBAN(text, validate_bban=True)
    except SchwiftyException:
        return False
    return True


def test_valid_ibans_pass() -> None:
    for iban in VALID:
        assert schwifty_accepts(iban), iban
        assert identifiers.iban_problem(iban) is None, iban


def test_every_changed_character_is_judged_as_schwifty_judges_it() -> None:
    """Each valid IBAN with each of its characters changed to each other letter or digit:
    exactly what schwifty accepts passes (every case, every run: no luck involved)."""
    for iban in VALID:
        for position in range(len(iban)):
            for char in ALPHABET:
                changed = iban[:position] + char + iban[position + 1 :]
                accepted = identifiers.iban_problem(changed) is None
                assert accepted == schwifty_accepts(changed), changed


def test_national_check_digits_are_checked() -> None:
    """A French IBAN whose ISO check digits match but whose RIB key does not is refused,
    as schwifty refuses it."""
    wrong = "FR1420041010050Q00013M02606"
    assert not schwifty_accepts(wrong)
    assert identifiers.iban_problem(wrong) == "the national check digits do not match"


def test_check_digits_are_checked() -> None:
    assert identifiers.iban_problem("LV81BANK0000435195001") == "check digits do not match"
    assert identifiers.iban_problem("LV80BANK000043519500") is not None  # one character short


AWKWARD = ALPHABET + "abz \n\t١²_-."


@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from(AWKWARD)), max_size=3),
    st.sampled_from(["", "\n", " ", "0", "A"]),
)
def test_lowercase_spaced_or_odd_characters_are_judged_as_schwifty_judges_them(
    iban: str, changes: list[tuple[int, str]], tail: str
) -> None:
    """Anything that is not exactly a valid IBAN in capitals and digits is refused, as
    schwifty would refuse it when given the text as it is."""
    text = iban
    for position, char in changes:
        at = position % (len(text) + 1)
        text = text[:at] + char + text[at + 1 :]
    text += tail
    strict = text.isascii() and text.isalnum() and text.upper() == text
    assert (identifiers.iban_problem(text) is None) == (strict and schwifty_accepts(text)), text
