"""A user's authorized_keys as read at login: asyncssh matches, the gateway's rules decide.

The file is read again at every login (like sshd), so a line added while the server
runs must pass the rules the configuration passed at start (`authorized_keys.refusal`).
Each line gets its own asyncssh list, so that the line a key matched is known: asyncssh
matches the key and enforces `from=` (and `principals=` for certificates); a line the
rules refuse, whose `from=` does not allow the client's address, or whose `expiry-time=`
has passed on the environment's clock, does not let its key in, and says why.

asyncssh answers "no" alike for a key that is not on the line and for one that is but
comes from an address `from=` does not allow; so each line with `from=` gets a second list
without it, which tells the two apart (sshd logs the second as "correct key but not from
a permitted host").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh

from gateway import authorized_keys
from gateway.authorized_keys import KeyLine

# (the line, the key that matched it, why it is refused)
OnRefused = Callable[[KeyLine, asyncssh.SSHKey, str], None]
# (the line number, why it cannot be read)
OnUnreadable = Callable[[int, str], None]


@dataclass(frozen=True, slots=True)
class _Entry:
    line: KeyLine
    matcher: asyncssh.SSHAuthorizedKeys
    anywhere: asyncssh.SSHAuthorizedKeys  # the same line without from=: is it this key?
    refusal: str | None


def _entries(text: str, kind: str, on_unreadable: OnUnreadable) -> list[_Entry]:
    entries: list[_Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            line = authorized_keys.parse_line(number, raw)
            if line is None:
                continue
            matcher = asyncssh.SSHAuthorizedKeys(line.openssh_text())
            anywhere = (
                asyncssh.SSHAuthorizedKeys(line.openssh_text(leave_out="from"))
                if line.values("from") else matcher
            )
        except (ValueError, asyncssh.KeyImportError) as exc:
            on_unreadable(number, str(exc))
            continue
        entries.append(_Entry(line, matcher, anywhere, authorized_keys.refusal(line, kind)))
    return entries


def _not_from(line: KeyLine, client_addr: str) -> str:
    patterns = ", ".join(f'from="{value}"' for value in line.values("from"))
    return f"the address {client_addr} is not allowed by {patterns}"


class LoginKeys(asyncssh.SSHAuthorizedKeys):
    """The keys a `kind` user may log in with now, noting which key matched.

    The receipt needs the matched key's fingerprint, which asyncssh does not tell the
    server: `on_match` is told (None when no line let the key in).
    """

    def __init__(
        self,
        text: str,
        kind: str,
        *,
        now: Callable[[], dt.datetime],
        zone: dt.tzinfo,
        on_match: Callable[[asyncssh.SSHKey | None], None],
        on_refused: OnRefused,
        on_unreadable: OnUnreadable,
    ) -> None:
        super().__init__()
        self._entries = _entries(text, kind, on_unreadable)
        self._now = now
        self._zone = zone
        self._on_match = on_match
        self._on_refused = on_refused
        # asyncssh may ask twice for one key (OpenSSH clients probe before signing).
        self._told: set[tuple[int, str]] = set()

    def validate(
        self,
        key: asyncssh.SSHKey,
        client_host: str,
        client_addr: str,
        cert_principals: Sequence[str] | None = None,
        ca: bool = False,
    ) -> Any:
        for entry in self._entries:
            if entry.anywhere.validate(key, client_host, client_addr, cert_principals, ca) is None:
                continue  # not this line's key (or a certificate's principals do not match)
            options = entry.matcher.validate(key, client_host, client_addr, cert_principals, ca)
            why = (
                entry.refusal
                or (_not_from(entry.line, client_addr) if options is None else None)
                or authorized_keys.expired(entry.line, self._now(), self._zone)
            )
            if why is not None:
                self._refuse(entry.line, key, why)
                continue  # like sshd: a later line may still let the key in
            self._on_match(key)
            return options
        self._on_match(None)
        return None

    def _refuse(self, line: KeyLine, key: asyncssh.SSHKey, why: str) -> None:
        told = (line.line_number, key.get_fingerprint("sha256"))
        if told not in self._told:
            self._told.add(told)
            self._on_refused(line, key, why)
