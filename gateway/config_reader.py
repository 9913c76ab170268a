"""Reading typed values out of a parsed TOML file, naming the key path in every error.

A `Reader` wraps one table. Each accessor notes the name it was asked for,
whether the key was there or not, and each nested table gets a reader of its
own, built by the function given to `tables` or `table_of`. After the whole
file has been read, `refuse_unread` walks the readers and refuses the first key
that nobody asked for, suggesting the asked-for name closest to it
(`client[0].account[1].max_paymnet: unknown key (did you mean max_payment?)`).
A key is known by being read: a setting added later needs no second list of
names.

An unknown key is reported before any other mistake (SPEC §3), because a typo
explains what follows from it: `[signin]` makes `signing.signatory_ca` look
missing, `[[clients]]` makes `client` look like the wrong kind of table. So a
file is read in three steps, and `load` in `gateway.settings` shows them:
every top-level table is read as a `section`, whose first mistake is kept
rather than raised; `finish` refuses an unknown key, then raises that kept
mistake; only then are values checked against each other. A table whose
reading stopped at a mistake has not asked for the keys after it, so its own
keys are not judged (a close unknown key beside a missing one is still named
by `_missing`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import ConfigError
from ledger import currency

T = TypeVar("T")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")

# How alike two key names must be (difflib's ratio) for one to be offered as the other.
SUGGESTION_CUTOFF = 0.6


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate `name` was most probably meant as: the same name in other letters'
    case (`IBAN` for `iban`), else the nearest by difflib's ratio, compared in lower case."""
    lower = {c.lower(): c for c in sorted(candidates)}
    close = difflib.get_close_matches(name.lower(), sorted(lower), n=1, cutoff=SUGGESTION_CUTOFF)
    return lower[close[0]] if close else None


def _suggestion(name: str, known: set[str]) -> str:
    close = _closest(name, known)
    return f" (did you mean {close}?)" if close else ""


def _unknown(exc: ConfigError) -> bool:
    return exc.problem.startswith(("unknown key", "unknown table"))


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


class Reader:
    """Typed values from one TOML table; remembers which names were asked for."""

    def __init__(self, table: Mapping[str, Any], path: str, base: Path) -> None:
        self.table = table
        self.path = path
        self.base = base
        self.asked: set[str] = set()
        self.children: list[Reader] = []
        self.stopped = False  # its reading stopped at a mistake: later keys were never asked
        self.kept: ConfigError | None = None  # a section's first mistake, raised by `finish`

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        self.asked.add(name)
        return name in self.table

    def raw(self, name: str) -> Any:
        self.asked.add(name)
        return self.table.get(name)

    def _missing(self, name: str) -> ConfigError:
        """`missing`, unless an unknown key beside it is probably the same key mistyped."""
        close = _closest(name, set(self.table) - self.asked - {name})
        if close is not None:
            what = "unknown table" if _is_table(self.table[close]) else "unknown key"
            return ConfigError(self.key(close), f"{what} (did you mean {name}?)")
        return ConfigError(self.key(name), "missing")

    def _get(self, name: str, kind: type[T], default: T | None, required: bool) -> T | None:
        if not self.has(name):
            if required:
                raise self._missing(name)
            return default
        value = self.table[name]
        if kind is int and isinstance(value, bool):
            raise ConfigError(self.key(name), f"expected an integer, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(self.key(name), f"expected {kind.__name__}, got {value!r}")
        return value

    def text(self, name: str, default: str | None = None) -> str:
        value = self._get(name, str, default, default is None)
        assert value is not None
        return value

    def optional_str(self, name: str) -> str | None:
        return self._get(name, str, None, False)

    def integer(self, name: str, default: int, minimum: int = 0,
                maximum: int | None = None) -> int:
        value = self._get(name, int, default, False)
        assert value is not None
        if value < minimum:
            raise ConfigError(self.key(name), f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(self.key(name), f"must be at most {maximum}, got {value}")
        return value

    def optional_integer(self, name: str, minimum: int = 0) -> int | None:
        if not self.has(name):
            return None
        return self.integer(name, 0, minimum)

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, bool, default, False)
        assert value is not None
        return value

    def path_value(self, name: str, default: str | None = None) -> Path:
        return self.base / self.text(name, default)

    def optional_path(self, name: str) -> Path | None:
        text = self.optional_str(name)
        return self.base / text if text else None

    def texts(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """An array of strings; absent gives `default`."""
        if not self.has(name):
            return default
        value = self.table[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.key(name), f"expected an array of strings, got {value!r}")
        return tuple(value)

    def paths(self, name: str) -> tuple[Path, ...]:
        return tuple(self.base / text for text in self.texts(name, ()))

    def time(self, name: str, default: str) -> dt.time:
        """A time of day in the treasury's zone: `"HH:MM"` (seconds allowed) or a TOML
        local time (`18:00:00`), never a zone of its own (`"18:30Z"` passed the reading
        and failed every comparison with the day's local times)."""
        value: Any = self.table[name] if self.has(name) else default
        if isinstance(value, dt.time) and value.tzinfo is None and not value.microsecond:
            return value
        if isinstance(value, str) and _HH_MM.fullmatch(value):
            return dt.time.fromisoformat(value)
        shown = value.isoformat() if isinstance(value, dt.time | dt.date) else repr(value)
        raise ConfigError(self.key(name), f"not a local time HH:MM[:SS]: {shown}")

    def optional_date(self, name: str) -> dt.date | None:
        """A TOML local date (`2027-01-31`) or the same as a string."""
        if not self.has(name):
            return None
        value = self.table[name]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(self.key(name), f"not a date YYYY-MM-DD: {value!r}")

    def amount(self, name: str, currency_code: str, default: str | None = None) -> int | None:
        """A plain decimal amount, as a string (`"1000.50"`) or an integer, in minor units
        of `currency_code`. Never a TOML float: `1000.1` is a binary fraction, not the
        amount written, and money is never float (SPEC §7)."""
        if not self.has(name):
            if default is None:
                return None
            return currency.to_minor(default, currency_code, allow_zero=True)
        value = self.table[name]
        if isinstance(value, float):
            raise ConfigError(
                self.key(name),
                f"{value!r} is a TOML float: write an amount as a string, e.g. \"{value}\", "
                "or an integer",
            )
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(self.key(name), f"expected an amount, got {value!r}")
        try:
            return currency.plain_to_minor(str(value), currency_code, allow_zero=True)
        except currency.AmountError as exc:
            raise ConfigError(self.key(name), str(exc)) from exc

    def _read(self, table: Mapping[str, Any], path: str, build: Callable[[Reader], T]) -> T:
        reader = Reader(table, path, self.base)
        self.children.append(reader)
        try:
            return build(reader)
        except ConfigError:
            reader.stopped = True
            raise

    def tables(self, name: str, build: Callable[[Reader], T]) -> list[T]:
        """Each table of the array `name` read by `build`; absent is none."""
        value = self.raw(name)
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(self.key(name), "expected an array of tables")
        return [self._read(v, f"{self.key(name)}[{i}]", build) for i, v in enumerate(value)]

    def table_of(self, name: str, build: Callable[[Reader], T], required: bool = True) -> T:
        """The table `name` read by `build`; absent (if allowed) is read as an empty table."""
        value = self.raw(name)
        if value is None:
            if required:
                raise self._missing(name)
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), "expected a table")
        return self._read(value, self.key(name), build)

    def section(self, read: Callable[[], T]) -> T | None:
        """`read()`, or None with its mistake kept for `finish`, so the next section is read."""
        try:
            return read()
        except ConfigError as exc:
            # An unknown key (a required one mistyped) is named before any other mistake.
            if self.kept is None or (_unknown(exc) and not _unknown(self.kept)):
                self.kept = exc
            return None

    def finish(self) -> None:
        """Refuse the first unknown key, else raise the first mistake a section kept."""
        self.refuse_unread()
        if self.kept is not None:
            raise self.kept

    def refuse_unread(self, known: Mapping[str, list[str]] | None = None) -> None:
        """Refuse the first key of this table or any table below it that nobody read: a
        name read in other tables (`known`: by name, their headers) is said to belong
        there, any other is offered the nearest name read in this table."""
        known = _where_read(self) if known is None else known
        if not self.stopped:
            for name, value in self.table.items():
                if name in self.asked:
                    continue
                what = "unknown table" if _is_table(value) else "unknown key"
                elsewhere = [t for t in known.get(name, []) if t != _header(self.path)]
                if elsewhere:
                    where = f"{name} belongs under {' or '.join(sorted(elsewhere))}"
                    raise ConfigError(self.key(name), f"{what} here ({where})")
                raise ConfigError(self.key(name), what + _suggestion(name, self.asked))
        for child in self.children:
            child.refuse_unread(known)


def _where_read(root: Reader) -> dict[str, list[str]]:
    """Each name read below `root`, with the headers of the tables that read it
    (`[gateway]`, `[[client.account]]`; the top level of the file as "the top level")."""
    found: dict[str, list[str]] = {}
    readers = [root]
    while readers:
        reader = readers.pop()
        header = _header(reader.path)
        for name in reader.asked:
            if header not in found.setdefault(name, []):
                found[name].append(header)
        readers += reader.children
    return found


def _header(path: str) -> str:
    """How the file names the table at `path`: `[gateway]`, `[[client.account]]` for
    `client[0].account[1]`, and "the top level" for the file itself."""
    table = re.sub(r"\[\d+\]", "", path)
    if not table:
        return "the top level"
    return f"[[{table}]]" if path.endswith("]") else f"[{table}]"
