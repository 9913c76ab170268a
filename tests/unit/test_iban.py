"""`rules.iban_problem` agrees with schwifty, whose checks it repeats without building an
IBAN object per payment (shape, the country's length and format, ISO 7064 mod-97)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from gateway.inbound import rules

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
        assert rules.iban_problem(iban) is None, iban


@given(
    st.sampled_from(VALID),
    st.integers(min_value=0, max_value=33),
    st.sampled_from(ALPHABET),
)
def test_a_changed_character_is_judged_as_schwifty_judges_it(
    iban: str, position: int, char: str
) -> None:
    changed = iban[: position % len(iban)] + char + iban[position % len(iban) + 1 :]
    assert (rules.iban_problem(changed) is None) == schwifty_accepts(changed), changed


def test_check_digits_are_checked() -> None:
    assert rules.iban_problem("LV81BANK0000435195001") == "check digits do not match"
    assert rules.iban_problem("LV80BANK000043519500") is not None  # one character short


AWKWARD = ALPHABET + "abz \n\t١²_-."


@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from(AWKWARD)), max_size=3),
    st.sampled_from(["", "\n", " ", "0", "A"]),
)
def test_the_one_match_path_agrees_with_the_checks_one_by_one(
    iban: str, changes: list[tuple[int, str]], tail: str
) -> None:
    """A valid IBAN passes in one match of its country's pattern; the answer (None, or
    the problem's wording) must be what the checks one at a time give, for valid
    IBANs and for ones with changed, lowercase, spaced or non-ASCII characters."""
    text = iban
    for position, char in changes:
        at = position % (len(text) + 1)
        text = text[:at] + char + text[at + 1 :]
    text += tail
    assert rules.iban_problem(text) == rules._iban_problem_stepwise(text), text
