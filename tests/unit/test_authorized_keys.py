"""Reading authorized_keys lines and the rules a key line must pass (SPEC §4): the one
decision that refuses a configuration at start and a key at login."""

from __future__ import annotations

import base64

import pytest

from gateway import authorized_keys
from gateway.authorized_keys import KeyLine


def public_key(seed: int = 1, comment: str = "erp") -> str:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def line(text: str) -> KeyLine:
    parsed = authorized_keys.parse_line(1, text)
    assert parsed is not None
    return parsed


def test_options_are_read_in_order_with_names_in_lower_case() -> None:
    """OpenSSH compares option names without case; values keep theirs."""
    parsed = line(f'restrict,FROM="10.0.0.1,10.0.0.2",No-Pty {public_key()}')
    assert parsed.options == (("restrict", None), ("from", "10.0.0.1,10.0.0.2"), ("no-pty", None))
    assert parsed.values("from") == ["10.0.0.1,10.0.0.2"]
    assert parsed.key_text == public_key()


def test_a_quoted_value_may_hold_commas_blanks_and_escaped_quotes() -> None:
    """`\\"` inside quotes is a quote (OpenSSH): it neither ends the value nor lets the
    rest of the value be read as another option."""
    parsed = line(f'command="echo \\"a, from=x\\" b",from="10.0.0.1" {public_key()}')
    assert parsed.options == (("command", 'echo "a, from=x" b'), ("from", "10.0.0.1"))


def test_the_line_given_to_asyncssh_carries_the_same_options() -> None:
    """What asyncssh enforces is what the rules read: names in lower case, values quoted."""
    parsed = line(f'FROM="10.0.0.1",command="say \\"hi\\"" {public_key()}')
    assert parsed.openssh_text() == f'from="10.0.0.1",command="say \\"hi\\"" {public_key()}'
    assert line(public_key()).openssh_text() == public_key()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("this is not a key", "not an OpenSSH public key"),
        (f'from="10.0.0.1 {public_key()}', "unbalanced quote"),
        (f'=x {public_key()}', "without a name"),
    ],
)
def test_lines_that_are_not_keys_are_refused_naming_the_line(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        authorized_keys.parse_line(7, text)


def test_blank_lines_and_comments_are_not_keys() -> None:
    assert authorized_keys.parse_line(1, "   ") is None
    assert authorized_keys.parse_line(2, "# the standby server") is None


@pytest.mark.parametrize(
    ("text", "kind", "refused"),
    [
        (public_key(), "system", True),
        (f'from="" {public_key()}', "system", True),
        (f'from=" " {public_key()}', "system", True),
        (f'from="10.0.0.1" {public_key()}', "system", False),
        (f'restrict,FROM="10.0.0.1" {public_key()}', "system", False),
        (public_key(), "person", False),
    ],
)
def test_a_system_users_key_must_carry_from(text: str, kind: str, refused: bool) -> None:
    """SPEC §4: every key of a system user carries from=; a person's need not."""
    why = authorized_keys.refusal(line(text), kind)
    assert (why is not None) == refused
    if refused:
        assert why is not None and 'from="' in why
