"""Reading OpenSSH `authorized_keys` lines far enough to check their options.

The SFTP server hands the file to asyncssh, which enforces the options; this
module exists so that configuration checks (every `system` key carries `from=`)
can name the offending line before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-",
    "ssh-dss",
)


@dataclass(frozen=True, slots=True)
class KeyLine:
    line_number: int
    options: dict[str, str]
    key_type: str
    key_data: str


def _split_options(text: str) -> tuple[str, str]:
    """Split `opts keytype data comment` at the first space outside quotes."""
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return text[:index], text[index:].strip()
    return text, ""


def _parse_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    current = ""
    quoted = False
    parts: list[str] = []
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    for part in parts:
        name, _, value = part.partition("=")
        options[name.strip().lower()] = value.strip().strip('"')
    return options


def parse(text: str) -> list[KeyLine]:
    """Parse the key lines; raise ValueError naming the first line that is not one."""
    lines: list[KeyLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        options: dict[str, str] = {}
        if not line.startswith(KEY_TYPES):
            option_text, line = _split_options(line)
            options = _parse_options(option_text)
        fields = line.split()
        if len(fields) < 2 or not fields[0].startswith(KEY_TYPES):
            raise ValueError(f"line {number} is not an OpenSSH public key")
        lines.append(KeyLine(number, options, fields[0], fields[1]))
    return lines
