"""Text from outside shown to a person: one line that reads as it is.

A name or value a client chose (a file name, an EndToEndId) may hold characters that change
how a line reads rather than what it says: controls (C0 and C1: a line feed, NEL U+0085, an
escape sequence), format characters (bidi overrides such as U+202E, zero-width ones), the
line and paragraph separators (U+2028, U+2029), and the lone surrogates that stand for bytes
of a name that is not UTF-8. The SFTP server refuses them in a new file's name; where such
text is written for a person (the findings file, `status`), they are shown as escapes.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def displayable(text: str) -> bool:
    """Whether `text` holds none of the characters above."""
    return text.isprintable() or not any(unicodedata.category(c) in _HIDDEN for c in text)


def shown(text: str) -> str:
    """`text` with each of those characters as an escape (`\\u0085`)."""
    if displayable(text):
        return text
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in _HIDDEN else c for c in text
    )


def ascii_digits(text: str) -> bool:
    """Whether `text` is digits 0–9 only: `str.isdigit` takes "²", which `int` refuses, and
    "٣", which it reads as 3."""
    return text.isascii() and text.isdigit()


def time_of_day(moment: dt.time | dt.datetime, seconds: bool | None = None) -> str:
    """`15:30`, or `15:30:30` where seconds matter (a configured time may carry them:
    `seconds` None shows them when it has any; a time compared with one shows them when
    that one has)."""
    with_seconds = moment.second != 0 if seconds is None else seconds
    return moment.strftime("%H:%M:%S" if with_seconds else "%H:%M")


def stored_name(name: str) -> str:
    """A file's name as text every part of the gateway can store and show: one that is
    not UTF-8 (OpenSSH takes any bytes as a name; the built-in server refuses them) with
    its other bytes written `\\xff`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def person_key(name: str) -> str:
    """A signatory's name as it tells people apart: spaces and case do not (SPEC §11:
    the configuration names each person once, `settings`; a signature counts once per
    person, `signatories`)."""
    return " ".join(name.split()).casefold()
