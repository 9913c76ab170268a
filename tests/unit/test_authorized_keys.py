"""Reading authorized_keys lines and the rules a key line must pass (SPEC §4): the one
decision that refuses a configuration at start and a key at login."""

from __future__ import annotations

import base64
import datetime as dt
from zoneinfo import ZoneInfo

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


def test_the_line_without_from_keeps_its_other_options() -> None:
    """At login the line is also matched without from=, to tell a key refused for its
    address from a key that is not on the line."""
    parsed = line(f'restrict,FROM="10.0.0.1" {public_key()}')
    assert parsed.openssh_text(leave_out="from") == f"restrict {public_key()}"
    assert line(f'from="10.0.0.1" {public_key()}').openssh_text(leave_out="from") == public_key()


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
        (f'from="*" {public_key()}', "system", True),
        (f'from="*.*.*.*" {public_key()}', "system", True),
        (f'from="0.0.0.0/0" {public_key()}', "system", True),
        (f'from="10.0.0.1,::/0" {public_key()}', "system", True),
        (f'from="!10.0.0.1,*" {public_key()}', "system", True),
        (f'from="10.*,!10.9.9.9" {public_key()}', "system", False),
        (f'from="*" {public_key()}', "person", False),
        # Networks that together are every address, as one /0 is.
        (f'from="0.0.0.0/1,128.0.0.0/1" {public_key()}', "system", True),
        (f'from="10.0.0.1,::/1,8000::/1" {public_key()}', "system", True),
        (f'from="0.0.0.0/1,128.0.0.0/2,192.0.0.0/2,!10.0.0.1" {public_key()}', "system", True),
        (f'from="0.0.0.0/1,128.0.0.0/2" {public_key()}', "system", False),
        (f'from="0.0.0.0/1,::/1" {public_key()}', "system", False),
        # Wildcards that match any address as well as `*` does.
        (f'from="?*" {public_key()}', "system", True),
        (f'from="*?" {public_key()}', "system", True),
        (f'from="*:*" {public_key()}', "system", True),
        (f'from="1*,2*,3*,4*,5*,6*,7*,8*,9*" {public_key()}', "system", True),
        (f'from="10.*,192.168.*,2001:db8::*" {public_key()}', "system", False),
        (f'from="erp.ministry.lv,10.1.2.3" {public_key()}', "system", False),
    ],
)
def test_a_system_users_key_must_carry_from(text: str, kind: str, refused: bool) -> None:
    """SPEC §4: every key of a system user carries from= naming addresses (`*` or a /0
    network allows every one, as none would); a person's need not."""
    why = authorized_keys.refusal(line(text), kind)
    assert (why is not None) == refused
    if refused:
        assert why is not None and 'from="' in why


RIGA = ZoneInfo("Europe/Riga")


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("20200101", dt.datetime(2020, 1, 1, tzinfo=RIGA)),
        ("199901010000", dt.datetime(1999, 1, 1, tzinfo=RIGA)),
        ("202607151230", dt.datetime(2026, 7, 15, 12, 30, tzinfo=RIGA)),
        ("20260715123045", dt.datetime(2026, 7, 15, 12, 30, 45, tzinfo=RIGA)),
        ("20200101Z", dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        ("202001011200z", dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)),
        ("20200101120000UTC", dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)),
    ],
)
def test_expiry_time_formats(value: str, moment: dt.datetime) -> None:
    """OpenSSH's YYYYMMDD[HHMM[SS]]: the gateway's local time, UTC with a Z (or UTC)."""
    assert authorized_keys.expiry_time(value, RIGA) == moment


@pytest.mark.parametrize(
    "value",
    ["", "2020", "2020010", "202001011", "2020-01-01", "20201301", "20200230", "202001012460",
     "20200101+0200", "Z", "00000101"],
)
def test_expiry_time_that_is_not_a_time_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="expiry-time"):
        authorized_keys.expiry_time(value, RIGA)
    why = authorized_keys.refusal(line(f'expiry-time="{value}" {public_key()}'), "person")
    assert why is not None and "expiry-time" in why


def test_a_key_is_refused_after_its_expiry_time_not_at_it() -> None:
    """The key works up to the time written and not after it; of two, the earlier counts."""
    key = line(f'expiry-time="202601011200",expiry-time="202701010000" {public_key()}')
    at = dt.datetime(2026, 1, 1, 12, tzinfo=RIGA)
    assert authorized_keys.expired(key, at, RIGA) is None
    why = authorized_keys.expired(key, at + dt.timedelta(seconds=1), RIGA)
    assert why is not None and "expired" in why and "2026-01-01T12:00:00+02:00" in why
    assert authorized_keys.expired(line(public_key()), at, RIGA) is None


def test_local_expiry_is_the_gateways_time_zone_and_z_is_utc() -> None:
    """At 21:30 UTC (23:30 in Riga), a key expiring at 23:00 local has expired, one expiring
    at 23:00 Z has not."""
    now = dt.datetime(2030, 1, 1, 21, 30, tzinfo=dt.UTC)
    assert authorized_keys.expired(line(f'expiry-time="203001012300" {public_key()}'), now, RIGA)
    assert not authorized_keys.expired(
        line(f'expiry-time="203001012300Z" {public_key()}'), now, RIGA
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ('form="10.0.0.1"', ('unknown option "form"', 'did you mean "from"')),
        ("no-shell", ('unknown option "no-shell"',)),
        ("verify-required", ('"verify-required" is not enforced', "OpenSSH")),
        ("from", ('"from" needs a value',)),
        ('no-pty="yes"', ('"no-pty" takes no value',)),
    ],
)
def test_options_a_client_could_rely_on_but_not_enforced_are_refused(
    options: str, words: tuple[str, ...]
) -> None:
    """A key whose option this server would drop without a word is refused, naming it."""
    why = authorized_keys.refusal(line(f"{options} {public_key()}"), "person")
    assert why is not None
    for word in words:
        assert word in why


def test_options_enforced_or_moot_here_are_accepted() -> None:
    """from=, expiry-time=, command=, certificates' options, and the restrictions on what an
    SFTP-only server never offers (restrict, no-pty, permitopen, …)."""
    options = (
        'from="10.0.0.1",expiry-time="20991231",command="internal-sftp",principals="erp",'
        "cert-authority,no-touch-required,restrict,no-agent-forwarding,no-port-forwarding,"
        'no-pty,no-user-rc,no-x11-forwarding,permitopen="host:22",permitlisten="8080",'
        'agent-forwarding,port-forwarding,pty,user-rc,x11-forwarding,tunnel="1",'
        'environment="A=b"'
    )
    assert authorized_keys.refusal(line(f"{options} {public_key()}"), "system") is None


# What OpenSSH cannot read is refused at start (the tester's report: these lines started the
# daemon and then let nobody in, without a word).


def _rsa_key_text() -> tuple[str, str]:
    """An ssh-rsa key type and its data (e = 65537 and a 2048-bit odd modulus)."""

    def string(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    modulus = b"\x00\xc3" + bytes(range(1, 255)) + b"\x01"  # mpint: a leading zero, odd
    blob = string(b"ssh-rsa") + string(b"\x01\x00\x01") + string(modulus)
    return "ssh-rsa", base64.b64encode(blob).decode()


def test_an_rsa_key_that_decodes_is_a_key() -> None:
    key_type, data = _rsa_key_text()
    assert line(f"{key_type} {data} erp").key_type == "ssh-rsa"


@pytest.mark.parametrize(
    "text",
    [
        'from="127.0.0.1" ssh-ed25519 AAAAnotbase64!! erp',
        "ssh-rsa " + _rsa_key_text()[1][:200] + " truncated",
        "ssh-rsa " + public_key().split()[1] + " an-ed25519-key-called-rsa",
        "ssh-ed25519 " + public_key().split()[1][:-8] + " cut-short",
    ],
    ids=["not-base64", "truncated-rsa", "type-mismatch", "truncated-ed25519"],
)
def test_a_key_that_cannot_be_decoded_is_refused_naming_the_line(text: str) -> None:
    """A line whose key data is damaged would start the daemon and then let no one in: its
    framing (base64, length-prefixed fields, the type it names, their number) is checked
    when the configuration is read — and what passes, asyncssh reads."""
    with pytest.raises(ValueError, match=r"^line 7: the ssh-(ed25519|rsa) key cannot be decoded"):
        authorized_keys.parse_line(7, text)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ('from="127.0.0.1/33"', ("127.0.0.1/33", "/0 to /32")),
        ('from="::1/129"', ("::1/129", "/0 to /128")),
        ('from="10.0.0.0/x"', ("10.0.0.0/x", "/0 to /32")),
        ('from="10.0.0.1/8"', ("10.0.0.1/8", "10.0.0.0/8")),
        ('from="erp.example.lv/24"', ("erp.example.lv/24", "follow an IP address")),
        ('from="300.1.1.1"', ("300.1.1.1", "not an IPv4 address")),
        ('from="10.0.0.1,!10.0.0.256"', ("10.0.0.256", "not an IPv4 address")),
        ('from="127.1"', ("127.1", "not an IPv4 address")),
        ('from="2001:db8::zz"', ("2001:db8::zz", "not an IPv6 address")),
        ('from="10.0.0.1,,10.0.0.2"', ("empty pattern",)),
        ('from="!"', ("empty pattern",)),
        ('from="10.0.0.1, 10.0.0.2"', ("blank",)),
        ('from="10.0.0.1",from="10.0.0.2"', ('more than one from="…"',)),
    ],
)
def test_a_malformed_from_is_refused(option: str, words: tuple[str, ...]) -> None:
    """OpenSSH refuses a key whose from= holds a bad mask ("invalid from criteria") and
    asyncssh reads it as a name that matches no one; an address that is not one matches no
    one either. Either way the key would be locked out without a word: refused, naming it."""
    why = authorized_keys.refusal(line(f"{option} {public_key()}"), "person")
    assert why is not None
    for word in words:
        assert word in why


@pytest.mark.parametrize("name", ["command", "principals"])
def test_an_option_sshd_takes_once_given_twice_is_refused(name: str) -> None:
    """sshd refuses a line with two command= or principals= ("multiple … clauses")."""
    text = f'{name}="a",{name}="b" {public_key()}'
    why = authorized_keys.refusal(line(text), "person")
    assert why is not None and f'more than one {name}="…"' in why
    once = authorized_keys.refusal(line(f'{name}="a" {public_key()}'), "person")
    assert once is None or "more than one" not in once


def test_from_patterns_sshd_accepts_pass() -> None:
    """Addresses, networks, negations, host names and * ? wildcards (sshd(8) PATTERNS)."""
    patterns = (
        "10.0.0.0/8,!10.1.2.3,192.168.1.*,10.2.?.1,*.example.lv,erp-1.vk.gov.lv,::1,"
        "2001:db8::/32,!fe80::1%eth0"
    )
    assert authorized_keys.refusal(line(f'from="{patterns}" {public_key()}'), "system") is None
    every = f'from="{patterns},0.0.0.0/0" {public_key()}'  # a person's key may allow all
    assert authorized_keys.refusal(line(every), "person") is None


@pytest.mark.parametrize(
    "option", ["from=127.0.0.1", "from=10.0.0.1,no-pty", "expiry-time=20991231"]
)
def test_an_unquoted_option_value_is_refused(option: str) -> None:
    """sshd refuses a line whose option value is not in double quotes ("missing start
    quote"): the same file must not work here and fail under OpenSSH (sshd-config)."""
    must = r'^line 7: option "\S+": the value must be in double quotes'
    with pytest.raises(ValueError, match=must):
        authorized_keys.parse_line(7, f"{option} {public_key()}")


def test_the_keys_that_pass_the_framing_are_keys_asyncssh_reads() -> None:
    """The check at start is no weaker than the import at login for the keys we make: each
    key type asyncssh generates passes both, and each one cut short fails both."""
    import asyncssh

    for algorithm in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp521"):
        text = asyncssh.generate_private_key(algorithm).export_public_key().decode().strip()
        key_type, data = text.split()[:2]
        assert authorized_keys.parse_line(1, text) is not None
        cut = base64.b64encode(base64.b64decode(data)[:-1]).decode()
        with pytest.raises(ValueError, match="cannot be decoded"):
            authorized_keys.parse_line(1, f"{key_type} {cut}")
        with pytest.raises(ValueError):
            asyncssh.import_public_key(f"{key_type} {cut}")
