"""Reading OpenSSH `authorized_keys` lines, and the rules a key line must pass.

The same rules judge a line twice: when the configuration is read at start (a line
that breaks one refuses the configuration, naming the file and the line) and at every
login, when the SFTP server reads the file again (a line that breaks one no longer lets
its key in). `refusal` is that one decision; the login side (`gateway/sftp/login_keys.py`)
hands asyncssh each line as `KeyLine.openssh_text()` renders it, so the options the
rules read are the options asyncssh enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-",
    "ssh-dss",
)

Option = tuple[str, str | None]  # (name in lower case, value; None for a flag)


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

    def openssh_text(self) -> str:
        """The line as asyncssh is to read it: option names in lower case, as OpenSSH
        compares them (asyncssh would silently ignore `FROM=`), values quoted."""
        if not self.options:
            return self.key_text
        return f"{','.join(_render(option) for option in self.options)} {self.key_text}"


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
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise ValueError(f"option {name}: unbalanced quote")
        value = value[1:-1].replace('\\"', '"')
    return name.strip().lower(), value


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
    return KeyLine(number, options, fields[0], fields[1], line)


def parse(text: str) -> list[KeyLine]:
    """Parse the key lines; raise ValueError naming the first line that is not one."""
    lines = [parse_line(number, raw) for number, raw in enumerate(text.splitlines(), start=1)]
    return [line for line in lines if line is not None]


# The rules, in the order they are reported. Each returns why the line is refused, or None.


def _system_key_without_from(line: KeyLine, kind: str) -> str | None:
    """SPEC §4: the Treasury makes an allowed address mandatory for information systems."""
    if kind == "system" and not any(value.strip() for value in line.values("from")):
        return (
            'a system user\'s key must carry from="…" '
            "(allowed addresses are mandatory for information systems)"
        )
    return None


RULES: tuple[Callable[[KeyLine, str], str | None], ...] = (_system_key_without_from,)


def refusal(line: KeyLine, kind: str) -> str | None:
    """Why a key line of a `kind` user ("system" | "person") may not be used, or None.

    The one decision, at start (the configuration is refused) and at login (the key is)."""
    for rule in RULES:
        why = rule(line, kind)
        if why is not None:
            return why
    return None
