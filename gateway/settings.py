"""The configuration file (TOML) turned into frozen, typed settings.

Every mistake becomes one `ConfigError` naming the key path, the value and the
problem, e.g. `client[1].user[0].authorized_keys: file not found: keys/a.pub`.
Relative paths are resolved against the folder of the configuration file.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from gateway import authorized_keys
from gateway.errors import ConfigError
from ledger import currency

CLIENT_ID = re.compile(r"^[a-z0-9-]{1,32}$")
USER_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
ACCOUNT_STATUSES = ("open", "blocked", "closed")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AccountSettings:
    iban: str
    currency: str
    status: str = "open"
    overdraft_minor: int = 0
    max_payment_minor: int | None = None
    daily_limit_minor: int | None = None


@dataclass(frozen=True, slots=True)
class UserSettings:
    name: str
    kind: str  # "system" | "person"
    mode: str  # "manage" | "view"
    authorized_keys: Path


@dataclass(frozen=True, slots=True)
class ClientSettings:
    id: str
    name: str
    registration_number: str
    notifications: bool
    accounts: tuple[AccountSettings, ...]
    users: tuple[UserSettings, ...]


@dataclass(frozen=True, slots=True)
class SftpSettings:
    host: str = "127.0.0.1"
    port: int = 2222
    host_key: Path = Path("ssh_host_ed25519_key")
    sessions_per_user_max: int = 4
    idle_timeout_seconds: int = 600
    login_timeout_seconds: int = 30
    auth_failures_before_penalty: int = 3
    auth_penalty_seconds_max: int = 300


@dataclass(frozen=True, slots=True)
class SigningSettings:
    key: Path
    certificate: Path
    next_certificate: Path | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path
    spool_dir: Path
    database_url: str
    timezone: ZoneInfo
    bic: str
    cutoff_internal: dt.time
    cutoff_external: dt.time
    max_future_days: int
    max_file_bytes: int
    max_transactions: int
    eod_time: dt.time
    log_file: Path | None
    sftp: SftpSettings
    signing: SigningSettings
    clients: tuple[ClientSettings, ...]
    eod_empty_statements: bool = True
    rescan_seconds: float = 5.0
    settle_seconds: float = 2.0
    _by_user: dict[str, tuple[ClientSettings, UserSettings]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def client(self, client_id: str) -> ClientSettings:
        for client in self.clients:
            if client.id == client_id:
                return client
        raise KeyError(client_id)

    def user(self, name: str) -> tuple[ClientSettings, UserSettings] | None:
        return self._by_user.get(name)


class _Reader:
    """Reads typed values from a TOML table, naming the key path in every error."""

    def __init__(self, table: Mapping[str, Any], path: str, base: Path) -> None:
        self.table = table
        self.path = path
        self.base = base

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str, kind: type[T], default: T | None, required: bool) -> T | None:
        if name not in self.table:
            if required:
                raise ConfigError(self.key(name), "missing")
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

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self._get(name, int, default, False)
        assert value is not None
        if value < minimum:
            raise ConfigError(self.key(name), f"must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, bool, default, False)
        assert value is not None
        return value

    def path_value(self, name: str, default: str | None = None) -> Path:
        return self.base / self.text(name, default)

    def time(self, name: str, default: str) -> dt.time:
        text = self.text(name, default)
        try:
            return dt.time.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(self.key(name), f"not a time HH:MM: {text!r}") from exc

    def amount(self, name: str, currency_code: str) -> int | None:
        if name not in self.table:
            return None
        value = self.table[name]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(self.key(name), f"expected an amount, got {value!r}")
        try:
            return currency.to_minor(str(value), currency_code, allow_zero=True)
        except currency.AmountError as exc:
            raise ConfigError(self.key(name), str(exc)) from exc

    def tables(self, name: str) -> list[_Reader]:
        value = self.table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(self.key(name), "expected an array of tables")
        return [_Reader(v, f"{self.key(name)}[{i}]", self.base) for i, v in enumerate(value)]

    def table_of(self, name: str, required: bool = True) -> _Reader:
        value = self.table.get(name)
        if value is None:
            if required:
                raise ConfigError(self.key(name), "missing")
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), "expected a table")
        return _Reader(value, self.key(name), self.base)

    def check(self, name: str, ok: Callable[[Any], bool], problem: str) -> None:
        if name in self.table and not ok(self.table[name]):
            raise ConfigError(self.key(name), f"{problem}: {self.table[name]!r}")


def _iban(reader: _Reader) -> str:
    text = reader.text("iban").replace(" ", "").upper()
    try:
        return str(IBAN(text))
    except SchwiftyException as exc:
        raise ConfigError(reader.key("iban"), f"invalid IBAN {text!r}: {exc}") from exc


def _account(reader: _Reader) -> AccountSettings:
    iban = _iban(reader)
    code = reader.text("currency")
    if not currency.is_supported(code):
        raise ConfigError(reader.key("currency"), f"unsupported currency {code!r}")
    status = reader.text("status", "open")
    if status not in ACCOUNT_STATUSES:
        raise ConfigError(reader.key("status"), f"must be one of {ACCOUNT_STATUSES}: {status!r}")
    return AccountSettings(
        iban=iban,
        currency=code,
        status=status,
        overdraft_minor=reader.amount("overdraft", code) or 0,
        max_payment_minor=reader.amount("max_payment", code),
        daily_limit_minor=reader.amount("daily_limit", code),
    )


def _user(reader: _Reader) -> UserSettings:
    name = reader.text("name")
    if not USER_NAME.match(name):
        raise ConfigError(reader.key("name"), f"not a valid login name: {name!r}")
    kind = reader.text("kind")
    if kind not in ("system", "person"):
        raise ConfigError(reader.key("kind"), f"must be 'system' or 'person': {kind!r}")
    mode = reader.text("mode")
    if mode not in ("manage", "view"):
        raise ConfigError(reader.key("mode"), f"must be 'manage' or 'view': {mode!r}")
    keys_path = reader.path_value("authorized_keys")
    key = reader.key("authorized_keys")
    try:
        text = keys_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(key, f"file not found: {keys_path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {keys_path}: {exc}") from exc
    try:
        lines = authorized_keys.parse(text)
    except ValueError as exc:
        raise ConfigError(key, f"{keys_path}: {exc}") from exc
    if not lines:
        raise ConfigError(key, f"no keys in {keys_path}")
    if kind == "system":
        for line in lines:
            if not line.options.get("from"):
                raise ConfigError(
                    key,
                    f"{keys_path} line {line.line_number}: a system user's key must carry "
                    'from="…" (allowed addresses are mandatory for information systems)',
                )
    return UserSettings(name=name, kind=kind, mode=mode, authorized_keys=keys_path)


def _client(reader: _Reader) -> ClientSettings:
    client_id = reader.text("id")
    if not CLIENT_ID.match(client_id):
        raise ConfigError(reader.key("id"), f"must match [a-z0-9-]{{1,32}}: {client_id!r}")
    return ClientSettings(
        id=client_id,
        name=reader.text("name"),
        registration_number=reader.text("registration_number", ""),
        notifications=reader.flag("notifications", False),
        accounts=tuple(_account(r) for r in reader.tables("account")),
        users=tuple(_user(r) for r in reader.tables("user")),
    )


def _listen(reader: _Reader) -> tuple[str, int]:
    text = reader.text("listen", "127.0.0.1:2222")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(reader.key("listen"), f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _check_unique(clients: tuple[ClientSettings, ...]) -> None:
    seen_clients: set[str] = set()
    seen_users: set[str] = set()
    seen_ibans: set[str] = set()
    for ci, client in enumerate(clients):
        if client.id in seen_clients:
            raise ConfigError(f"client[{ci}].id", f"duplicate client id {client.id!r}")
        seen_clients.add(client.id)
        for ui, user in enumerate(client.users):
            if user.name in seen_users:
                raise ConfigError(f"client[{ci}].user[{ui}].name", f"duplicate user {user.name!r}")
            seen_users.add(user.name)
        for ai, account in enumerate(client.accounts):
            if account.iban in seen_ibans:
                raise ConfigError(
                    f"client[{ci}].account[{ai}].iban", f"duplicate account {account.iban!r}"
                )
            seen_ibans.add(account.iban)


def load(path: Path | str) -> Settings:
    """Read and check the configuration file; raise ConfigError on the first mistake."""
    config_path = Path(path).resolve()
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("", f"configuration file not found: {config_path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read configuration {config_path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{config_path}: not valid TOML: {exc}") from exc
    base = config_path.parent
    root = _Reader(raw, "", base)
    gw = root.table_of("gateway")
    try:
        timezone = ZoneInfo(gw.text("timezone", "Europe/Riga"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        zone = gw.table["timezone"]
        raise ConfigError(gw.key("timezone"), f"unknown time zone {zone!r}") from exc
    bic = gw.text("bic", "TRELLV22")
    try:
        BIC(bic)
    except SchwiftyException as exc:
        raise ConfigError(gw.key("bic"), f"invalid BIC {bic!r}") from exc
    database_url = gw.text("database_url", "sqlite:///spool/ledger.sqlite3")
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        # Relative SQLite paths are relative to the configuration file, like every path.
        database_url = "sqlite:///" + str(base / database_url[len("sqlite:///") :])
    elif not database_url.startswith(("sqlite:", "postgresql")):
        raise ConfigError(
            gw.key("database_url"),
            f"expected sqlite:/// or postgresql+psycopg://: {database_url!r}",
        )
    log_file = gw.optional_str("log_file")
    sftp = root.table_of("sftp", required=False)
    host, port = _listen(sftp)
    signing = root.table_of("signing", required=False)
    next_cert = signing.optional_str("next_certificate")
    clients = tuple(_client(r) for r in root.tables("client"))
    _check_unique(clients)
    by_user = {u.name: (c, u) for c in clients for u in c.users}
    return Settings(
        config_path=config_path,
        spool_dir=gw.path_value("spool_dir", "spool"),
        database_url=database_url,
        timezone=timezone,
        bic=bic,
        cutoff_internal=gw.time("cutoff_internal", "18:00"),
        cutoff_external=gw.time("cutoff_external", "15:30"),
        max_future_days=gw.integer("max_future_days", 90, minimum=0),
        max_file_bytes=gw.integer("max_file_bytes", 104857600, minimum=1),
        max_transactions=gw.integer("max_transactions", 200000, minimum=1),
        eod_time=gw.time("eod_time", "18:30"),
        log_file=base / log_file if log_file else None,
        eod_empty_statements=gw.flag("eod_empty_statements", True),
        rescan_seconds=float(gw.integer("rescan_seconds", 5, minimum=1)),
        settle_seconds=float(gw.integer("settle_seconds", 2, minimum=0)),
        sftp=SftpSettings(
            host=host,
            port=port,
            host_key=sftp.path_value("host_key", "ssh_host_ed25519_key"),
            sessions_per_user_max=sftp.integer("sessions_per_user_max", 4, minimum=1),
            idle_timeout_seconds=sftp.integer("idle_timeout_seconds", 600, minimum=1),
            login_timeout_seconds=sftp.integer("login_timeout_seconds", 30, minimum=1),
            auth_failures_before_penalty=sftp.integer("auth_failures_before_penalty", 3, minimum=1),
            auth_penalty_seconds_max=sftp.integer("auth_penalty_seconds_max", 300, minimum=1),
        ),
        signing=SigningSettings(
            key=signing.path_value("key", "signing/gateway.key"),
            certificate=signing.path_value("certificate", "signing/gateway.crt"),
            next_certificate=base / next_cert if next_cert else None,
        ),
        clients=clients,
        _by_user=by_user,
    )
