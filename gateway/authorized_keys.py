"""Reading OpenSSH `authorized_keys` lines, and the rules a key line must pass.

The same rules judge a line twice: when the configuration is read at start (a line
that breaks one refuses the configuration, naming the file and the line) and at every
login, when the SFTP server reads the file again (a line that breaks one no longer lets
its key in). `refusal` is that one decision, and `expired` the one that depends on the
time, asked only at login; the login side (`gateway/sftp/login_keys.py`)
hands asyncssh each line as `KeyLine.openssh_text()` renders it, so the options the
rules read are the options asyncssh enforces.

What sshd cannot read is refused here too, so that a file works the same under OpenSSH
(`sshd-config`) and the built-in server: a key whose data cannot be a key of its type
(`_key_data_problem`), an option value without its double quotes, and a
`from=` that is not a pattern-list (a bad mask, an address that is not one).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway import from_patterns

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-",
    "ssh-dss",
)

Option = tuple[str, str | None]  # (name in lower case, value; None for a flag)

# OpenSSH's key options (sshd(8), AUTHORIZED_KEYS FILE FORMAT), by what happens to each here.
# Enforced at login: by asyncssh (from=, principals=/cert-authority for certificates,
# no-touch-required; command= is forced, and as this server runs no command the key then
# gets no SFTP), or by the gateway (expiry-time=, which asyncssh ignores).
ENFORCED = frozenset(
    {"from", "expiry-time", "command", "cert-authority", "principals", "no-touch-required"}
)
# True whatever they say: they restrict, or grant, what this server never offers (a pty,
# forwarding of ports, agents, X11 or tunnels, a user rc, a command's environment).
MOOT = frozenset(
    {
        "restrict", "no-agent-forwarding", "no-port-forwarding", "no-pty", "no-user-rc",
        "no-x11-forwarding", "permitopen", "permitlisten", "agent-forwarding",
        "port-forwarding", "pty", "user-rc", "x11-forwarding", "tunnel", "environment",
    }
)
# Options a client could rely on that asyncssh would ignore without a word: refused.
NOT_ENFORCED = {
    "verify-required": "asyncssh does not check that a FIDO key verified its user (PIN)",
}
KNOWN = ENFORCED | MOOT | frozenset(NOT_ENFORCED)
VALUED = frozenset(
    {"from", "expiry-time", "command", "principals", "permitopen", "permitlisten", "tunnel",
     "environment"}
)
EXPIRY_TIME = re.compile(r"(\d{8}|\d{12}|\d{14})(z|utc)?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KeyLine:
    line_number: int
    options: tuple[Option, ...]  # in the order written
    key_type: str
    key_data: str
    key_text: str  # key type, data and comment as written

    def values(self, name: str) -> list[str]:
        """The values of every `name="…"` option on the line, in order."""
        return [value for option, value in self.options if option == name and value is not None]

    def openssh_text(self, *, leave_out: str | None = None) -> str:
        """The line as asyncssh is to read it: option names in lower case, as OpenSSH
        compares them (asyncssh would silently ignore `FROM=`), values quoted; without the
        `leave_out` option if one is named."""
        options = [option for option in self.options if option[0] != leave_out]
        if not options:
            return self.key_text
        return f"{','.join(_render(option) for option in options)} {self.key_text}"


def _render(option: Option) -> str:
    name, value = option
    if value is None:
        return name
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def _split_options(text: str) -> tuple[list[str], str]:
    """Split `opts keytype data comment` at the first blank outside quotes; the options
    are split at commas outside quotes. Inside quotes `\\"` is a quote (OpenSSH)."""
    options: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted and text.startswith('\\"', index):
            current.append('\\"')
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in " \t":
            break
        elif not quoted and char == ",":
            options.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    if quoted:
        raise ValueError("unbalanced quote in the options")
    options.append("".join(current))
    return options, text[index:].strip()


def _option(text: str) -> Option:
    name, equals, value = text.partition("=")
    if not name.strip():
        raise ValueError(f"an option without a name: {text!r}")
    if not equals:
        return name.strip().lower(), None
    if not value.startswith('"'):
        # sshd refuses the line ("missing start quote"); asyncssh would take the value.
        raise ValueError(
            f'option "{name.strip().lower()}": the value must be in double quotes '
            f'({name.strip()}="{value}")'
        )
    if len(value) < 2 or not value.endswith('"'):
        raise ValueError(f"option {name}: unbalanced quote")
    return name.strip().lower(), value[1:-1].replace('\\"', '"')


# The fields of a public key's data in SSH's wire format (RFC 4253 §6.6, RFC 5656,
# PROTOCOL.u2f), after its type: a key with fewer is cut short. A certificate's fields
# vary: its framing alone is checked.
KEY_FIELDS = {
    "ssh-ed25519": 1, "ssh-rsa": 2, "ssh-dss": 4, "sk-ssh-ed25519@openssh.com": 2,
    "ecdsa-sha2-nistp256": 2, "ecdsa-sha2-nistp384": 2, "ecdsa-sha2-nistp521": 2,
    "sk-ecdsa-sha2-nistp256@openssh.com": 3,
}  # fmt: skip


def _key_data_problem(key_type: str, data: str) -> str | None:
    """Why a line's key data cannot be a `key_type` key, by its framing: not base64, not
    a whole sequence of length-prefixed fields, a first field naming another type, too
    few fields. asyncssh reads the key itself at login (and logs a line it cannot read);
    the framing is checked here, without loading a cryptography library, because every
    command reads the configuration before anything else."""
    try:
        blob = base64.b64decode(data, validate=True)
    except binascii.Error:
        return "the data is not base64"
    fields: list[bytes] = []
    at = 0
    while at < len(blob):
        size = int.from_bytes(blob[at : at + 4], "big")
        if at + 4 + size > len(blob):
            return "the data is cut short"
        fields.append(blob[at + 4 : at + 4 + size])
        at += 4 + size
    if not fields or fields[0] != key_type.encode():
        return f"the data is not a {key_type} key"
    if len(fields) - 1 < KEY_FIELDS.get(key_type, 0):
        return "the data is cut short"
    if key_type == "ssh-ed25519" and len(fields[1]) != 32:
        return "an ed25519 key is 32 bytes"
    return None


def parse_line(number: int, raw: str) -> KeyLine | None:
    """One line of the file: None for a blank line or a comment; ValueError naming the
    line when it is not a key."""
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    options: tuple[Option, ...] = ()
    if not line.startswith(KEY_TYPES):
        try:
            texts, line = _split_options(line)
            options = tuple(_option(text) for text in texts)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    fields = line.split()
    if len(fields) < 2 or not fields[0].startswith(KEY_TYPES):
        raise ValueError(f"line {number} is not an OpenSSH public key")
    broken = _key_data_problem(fields[0], fields[1])
    if broken is not None:
        raise ValueError(f"line {number}: the {fields[0]} key cannot be decoded ({broken})")
    return KeyLine(number, options, fields[0], fields[1], line)


def parse(text: str) -> list[KeyLine]:
    """Parse the key lines; raise ValueError naming the first line that is not one."""
    lines = [parse_line(number, raw) for number, raw in enumerate(text.splitlines(), start=1)]
    return [line for line in lines if line is not None]


def expiry_time(value: str, zone: dt.tzinfo) -> dt.datetime:
    """OpenSSH's `expiry-time="YYYYMMDD[HHMM[SS]][Z]"`: in `zone` (the gateway's time zone,
    which sshd takes from the machine) unless it ends in Z or UTC. ValueError if not a time."""
    match = EXPIRY_TIME.fullmatch(value)
    if match is None:
        raise ValueError(f'expiry-time="{value}" is not YYYYMMDD[HHMM[SS]][Z]')
    try:
        moment = dt.datetime.strptime(match[1].ljust(14, "0"), "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise ValueError(f'expiry-time="{value}" is not a date and time') from exc
    return moment.replace(tzinfo=dt.UTC if match[2] else zone)


def expired(line: KeyLine, now: dt.datetime, zone: dt.tzinfo) -> str | None:
    """Why the key no longer lets anyone in at `now`, or None. Of several expiry-time=
    options the earliest counts (OpenSSH). The line passed `refusal`, so each parses."""
    times = [expiry_time(value, zone) for value in line.values("expiry-time")]
    if times and now > min(times):
        return f"the key expired at {min(times).isoformat()} (expiry-time)"
    return None


# The rules, in the order they are reported. Each returns why the line is refused, or None.


def _unknown_option(line: KeyLine, kind: str) -> str | None:
    """OpenSSH refuses a line with an option it does not know; asyncssh would keep the key
    and drop the option, so a misspelt `form=` would leave it usable from anywhere."""
    for name, _ in line.options:
        if name not in KNOWN:
            near = difflib.get_close_matches(name, sorted(KNOWN), n=1)
            guess = f' (did you mean "{near[0]}"?)' if near else ""
            return f'unknown option "{name}"{guess}'
    return None


def _option_not_enforced(line: KeyLine, kind: str) -> str | None:
    for name, _ in line.options:
        if name in NOT_ENFORCED:
            return (
                f'option "{name}" is not enforced by the built-in SFTP server '
                f"({NOT_ENFORCED[name]}): remove it, or serve this user with OpenSSH"
            )
    return None


def _option_shape(line: KeyLine, kind: str) -> str | None:
    for name, value in line.options:
        if name in VALUED and value is None:
            return f'option "{name}" needs a value: {name}="…"'
        if name not in VALUED and value is not None:
            return f'option "{name}" takes no value'
    return None


def _bad_expiry_time(line: KeyLine, kind: str) -> str | None:
    for value in line.values("expiry-time"):
        try:
            expiry_time(value, dt.UTC)
        except ValueError as exc:
            return str(exc)
    return None


# Options sshd takes once a line ("multiple … clauses"); asyncssh would require every one.
ONCE = {
    "from": "list every pattern in one",
    "command": "a key runs one command",
    "principals": "list every principal in one",
}


def _repeated(line: KeyLine, kind: str) -> str | None:
    """sshd refuses a line that gives one of these options twice."""
    for name, instead in ONCE.items():
        if len(line.values(name)) > 1:
            return f'more than one {name}="…" (sshd refuses the line): {instead}'
    return None


def _bad_from(line: KeyLine, kind: str) -> str | None:
    """sshd refuses a key whose from= it cannot read ("invalid from criteria": an empty
    pattern, a mask too long or with host bits set); asyncssh reads a bad mask as a host
    name that matches no one. Either way the key would be locked out without a word, so
    the line is refused at start, naming the pattern."""
    for value in line.values("from"):
        for pattern in value.split(","):
            why = from_patterns.problem(pattern)
            if why is not None:
                return f'from="{value}": {why}'
    return None


def _system_key_without_from(line: KeyLine, kind: str) -> str | None:
    """SPEC §4: the Treasury makes an allowed address mandatory for information systems —
    one that names addresses: `*` or `0.0.0.0/0` allows every one, as no from= would."""
    if kind != "system":
        return None
    values = line.values("from")
    if not any(value.strip() for value in values):
        return (
            'a system user\'s key must carry from="…" '
            "(allowed addresses are mandatory for information systems)"
        )
    for value in values:
        everyone = from_patterns.every_address_in(value.split(","))
        if everyone is not None:
            return (
                f'from="{value}": {everyone} every address; a system user\'s key '
                "must name the addresses its system connects from"
            )
    return None


RULES: tuple[Callable[[KeyLine, str], str | None], ...] = (
    _unknown_option,
    _option_not_enforced,
    _option_shape,
    _bad_expiry_time,
    _system_key_without_from,
    _repeated,
    _bad_from,
)


def refusal(line: KeyLine, kind: str) -> str | None:
    """Why a key line of a `kind` user ("system" | "person") may not be used, or None.

    The one decision, at start (the configuration is refused) and at login (the key is)."""
    for rule in RULES:
        why = rule(line, kind)
        if why is not None:
            return why
    return None
