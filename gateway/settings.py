"""The configuration file (TOML) turned into frozen, typed settings.

Every mistake becomes one `ConfigError` naming the key path, the value and the
problem, e.g. `client[1].user[0].authorized_keys: file not found: keys/a.pub`.
Relative paths are resolved against the folder of the configuration file.

A key the product does not know is refused as well, with the key that was
probably meant (`client[0].account[1].max_paymnet: unknown key (did you mean
max_payment?)`): see `gateway.config_reader`. Keys of features still to come
(SPEC §9, §11–§14) are read here already, with their defaults, so that a file
written for them loads and a typo in them is caught.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway import authorized_keys, ssh_algorithms
from gateway.config_reader import Reader
from gateway.errors import ConfigError
from gateway.inbound import classifier
from gateway.inbound.classifier import Classifier
from gateway.inbound.facts import TREASURY_BANK_CODE, is_treasury_iban
from gateway.inbound.identifiers import bic_problem, iban_typed
from gateway.signing_rights import LEVEL_MAX, Right, attainable
from gateway.text import ascii_digits
from ledger import currency

CLIENT_ID = re.compile(r"^[a-z0-9-]{1,32}$")
USER_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
ACCOUNT_STATUSES = ("open", "blocked", "closed")
SIGNATORY_RIGHTS = tuple(r.value for r in Right)
CLIENT_WAITING_BYTES_MAX_DEFAULT = 2 * 1024**3  # 2 GiB
# An ERP polling the day so far every 15 minutes for ten accounts asks for 960.
REPORTS_PER_DAY_DEFAULT = 1000
# `max_future_days` at most: ten years ahead is no payment order a treasury keeps waiting.
signatory_name_chars_max = 255  # as recorded with each signature (gw_signatures)
future_days_max = 3650
# Business days a batch may wait for signatures, or a payment for its rate, at most: past
# a quarter of a year the waiting is an error of the setting, not of the signatories.
waiting_days_max = 60
workers_default = 2  # the daemon's pipeline processes, on SQLite too (`Settings.workers`)
# Durations at most (a value past them is a slip, and too far out for the system's timers:
# `rescan_seconds = 10000000000` stopped the workers with an OverflowError).
pass_seconds_max = 3600  # rescan_seconds, settle_seconds: an hour
login_seconds_max = 600  # login_timeout_seconds: ten minutes (OpenSSH's default is two)
session_seconds_max = 86_400  # idle_timeout_seconds, auth_penalty_seconds_max: a day


@dataclass(frozen=True, slots=True)
class AccountSettings:
    iban: str
    currency: str
    status: str = "open"
    overdraft_minor: int = 0
    max_payment_minor: int | None = None
    daily_limit_minor: int | None = None
    # SPEC §11: how many signatures a batch debiting this account needs (0: none).
    authorisation: int = 0
    # SPEC §12: payments from it carry budget classification codes.
    budget: bool = False


@dataclass(frozen=True, slots=True)
class UserSettings:
    name: str
    kind: str  # "system" | "person"
    mode: str  # "manage" | "view"
    authorized_keys: Path


@dataclass(frozen=True, slots=True)
class SignatorySettings:
    """A person on the client's signature sample card (SPEC §11)."""

    name: str
    certificate: Path  # PEM X.509, checked readable at start
    right: str  # "first" | "second"
    accounts: tuple[str, ...]  # IBANs this person may sign for
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    id: str
    name: str
    registration_number: str
    notifications: bool
    accounts: tuple[AccountSettings, ...]
    users: tuple[UserSettings, ...]
    signatories: tuple[SignatorySettings, ...] = ()
    # Overrides `[sftp] client_waiting_bytes_max` for this client.
    waiting_bytes_max: int | None = None
    # Overrides `[gateway] reports_per_day` for this client.
    reports_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class SftpSettings:
    host: str = "127.0.0.1"
    port: int = 2222
    host_key: Path = Path("ssh_host_ed25519_key")
    sessions_per_user_max: int = 16
    idle_timeout_seconds: int = 600
    login_timeout_seconds: int = 30
    auth_failures_before_penalty: int = 3
    auth_penalty_seconds_max: int = 300
    unauthenticated_connections_max: int = 256  # sshd's MaxStartups
    unauthenticated_connections_per_address_max: int = 32  # sshd's PerSourceMaxStartups
    # SPEC §9: bytes a client may have waiting in in/, awaiting/ and test/ together.
    client_waiting_bytes_max: int = CLIENT_WAITING_BYTES_MAX_DEFAULT
    kex_algorithms: tuple[str, ...] = ssh_algorithms.KEX_DEFAULT
    ciphers: tuple[str, ...] = ssh_algorithms.CIPHERS_DEFAULT
    macs: tuple[str, ...] = ssh_algorithms.MACS_DEFAULT


@dataclass(frozen=True, slots=True)
class SigningSettings:
    key: Path
    certificate: Path
    next_certificate: Path | None = None
    # SPEC §11: CA certificates signatories' certificates must chain to, and CRLs.
    signatory_ca: tuple[Path, ...] = ()
    signatory_crl: tuple[Path, ...] = ()


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
    # The daemon's pipeline processes (`gateway.workers`): on PostgreSQL files commit side
    # by side; on SQLite the writers take turns (`ledger.engine.WriterGate`) while the
    # other worker reads, answers, seals and shelves.
    workers: int = workers_default
    # SPEC §11: business days a batch may wait for its signatures.
    authorisation_days: int = 5
    # SPEC §12: the budget classifier (CSV); required once an account has budget = true.
    classification: Path | None = None
    classifier: Classifier | None = None  # the file above, read and checked at start
    # SPEC §13: business days a payment may wait for an exchange rate.
    fx_wait_days: int = 2
    # SPEC §14: EUR a client may execute on one day without announcing it, and by when
    # (on the previous business day) a larger day must be announced.
    large_day_threshold_minor: int = 70_000_000
    large_day_announce_by: dt.time = dt.time(12, 30)
    # SPEC §9: (host, port) of the Prometheus endpoint; None serves no metrics.
    metrics_listen: tuple[str, int] | None = None
    # SPEC §15: the reports (camt.052, statement copies) a client's report requests may
    # bring into its out/ in one day, those of a repeated request's included.
    reports_per_day: int = REPORTS_PER_DAY_DEFAULT
    _by_user: dict[str, tuple[ClientSettings, UserSettings]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def served(self, client_id: str | None = None) -> frozenset[str]:
        """The accounts in the configuration (of `client_id`, or of every client): only
        they take payments — one taken out of it keeps its money in the ledger but has
        no statements any more (README)."""
        return frozenset(
            a.iban
            for c in self.clients
            if client_id is None or c.id == client_id
            for a in c.accounts
        )

    def client(self, client_id: str) -> ClientSettings:
        for client in self.clients:
            if client.id == client_id:
                return client
        raise KeyError(client_id)

    def user(self, name: str) -> tuple[ClientSettings, UserSettings] | None:
        return self._by_user.get(name)

    def waiting_bytes_max(self, client: ClientSettings) -> tuple[int, str]:
        """The client's bound on waiting bytes, and the configuration key it comes from."""
        if client.waiting_bytes_max is not None:
            index = self.clients.index(client)
            return client.waiting_bytes_max, f"client[{index}].waiting_bytes_max"
        return self.sftp.client_waiting_bytes_max, "sftp.client_waiting_bytes_max"

    def reports_per_day_of(self, client_id: str) -> tuple[int, str]:
        """The client's bound on reports a day, and the configuration key it comes from."""
        client = self.client(client_id)
        if client.reports_per_day is not None:
            index = self.clients.index(client)
            return client.reports_per_day, f"client[{index}].reports_per_day"
        return self.reports_per_day, "gateway.reports_per_day"


# Values


def _iban_text(text: str, key: str) -> str:
    iban, why = iban_typed(text)
    if why is not None:
        raise ConfigError(key, f"invalid IBAN {iban!r}: {why}")
    return iban


def _listen(reader: Reader, name: str, default: str | None) -> tuple[str, int] | None:
    text = reader.text(name, default) if default is not None else reader.optional_str(name)
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not ascii_digits(port) or not 0 <= int(port) <= 65535:
        raise ConfigError(reader.key(name), f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _folder(reader: Reader, name: str, default: str) -> Path:
    """A folder the gateway makes if missing: refused when a file stands where it, or a
    folder above it, should be (every command would fail on it, `status` included)."""
    path = reader.path_value(name, default)
    for above in (path, *path.parents):
        if above.exists():
            if not above.is_dir():
                raise ConfigError(reader.key(name), f"{above} is a file, not a folder")
            return path
    return path


def _read_file(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(key, f"file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc}") from exc


def _certificates(path: Path, key: str) -> list[bytes]:
    """The DER form of every PEM certificate in the file; refuse a file without one."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    data = _read_file(path, key)
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(key, f"{path}: not a PEM X.509 certificate") from exc
    return [c.public_bytes(Encoding.DER) for c in found]


def _crl(path: Path, key: str) -> None:
    from cryptography import x509

    data = _read_file(path, key)
    try:
        if b"-----BEGIN" in data:
            x509.load_pem_x509_crl(data)
        else:
            x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise ConfigError(key, f"{path}: not an X.509 CRL (PEM or DER)") from exc


def _algorithms(reader: Reader, name: str, default: tuple[str, ...],
                allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = reader.texts(name, default)
    if not names:
        raise ConfigError(reader.key(name), "name at least one algorithm")
    for index, alg in enumerate(names):
        if alg not in allowed:
            close = difflib.get_close_matches(alg, allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"{reader.key(name)}[{index}]",
                f"unknown or weak algorithm {alg!r}{hint}; allowed: {', '.join(allowed)}",
            )
    return names


# Tables


def _account(reader: Reader) -> AccountSettings:
    iban = _iban_text(reader.text("iban"), reader.key("iban"))
    if not is_treasury_iban(iban):  # a typo here would put another bank's account in the ledger
        raise ConfigError(
            reader.key("iban"),
            f"{iban} is not a treasury account (bank code {iban[4:8] or iban[:2]}, "
            f"the treasury's is LV…{TREASURY_BANK_CODE})",
        )
    code = reader.text("currency")
    if not currency.is_supported(code):
        written = " (ISO 4217 codes are in capitals)" if currency.is_supported(code.upper()) else ""
        raise ConfigError(reader.key("currency"), f"unsupported currency {code!r}{written}")
    status = reader.text("status", "open")
    if status not in ACCOUNT_STATUSES:
        raise ConfigError(reader.key("status"), f"must be one of {ACCOUNT_STATUSES}: {status!r}")
    level = reader.integer("authorisation", 0, minimum=0)
    if level > LEVEL_MAX:
        raise ConfigError(
            reader.key("authorisation"), f"must be 0, 1, 2 or 3 (signatures needed), got {level}"
        )
    return AccountSettings(
        iban=iban,
        currency=code,
        status=status,
        overdraft_minor=reader.amount("overdraft", code) or 0,
        max_payment_minor=_limit(reader, "max_payment", code),
        daily_limit_minor=_limit(reader, "daily_limit", code),
        authorisation=level,
        budget=reader.flag("budget", False),
    )


def _large_day_threshold(gw: Reader) -> int:
    """SPEC §14's threshold in EUR minor units. Zero is refused, as an account's limits
    are: written for "off", it would hold every same-day EUR payment a business day."""
    threshold = _above_zero(
        gw, "large_day_threshold", "EUR", "700000.00",
        "0 would hold every same-day EUR payment until the next business day (a treasury "
        "without large-payment days sets one no day reaches)",
    )  # fmt: skip
    assert threshold is not None
    return threshold


def _limit(reader: Reader, name: str, code: str) -> int | None:
    """An account's `max_payment` or `daily_limit`: left out, no limit. Zero is refused:
    written for "no limit" (as many systems read it) it would refuse every payment."""
    return _above_zero(
        reader, name, code, None,
        f'leave {name} out for no limit (status = "blocked" stops an account\'s payments)',
    )  # fmt: skip


def _above_zero(
    reader: Reader, name: str, code: str, default: str | None, why_not_zero: str
) -> int | None:
    """An amount of `code` that is left out (`default`) or above 0: many systems read 0 as
    "none" or "off", which it is not here (`why_not_zero` says what to write instead)."""
    amount = reader.amount(name, code, default)
    if amount == 0:
        raise ConfigError(reader.key(name), f"must be above 0: {why_not_zero}")
    return amount


def _user(reader: Reader) -> UserSettings:
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
        raise ConfigError(key, f"{keys_path} {exc}") from exc  # "… line 3: …", as below
    if not lines:
        raise ConfigError(key, f"no keys in {keys_path}")
    for line in lines:
        # The same decision refuses the key at every login (gateway/sftp/login_keys.py).
        why = authorized_keys.refusal(line, kind)
        if why is not None:
            raise ConfigError(key, f"{keys_path} line {line.line_number}: {why}")
    return UserSettings(name=name, kind=kind, mode=mode, authorized_keys=keys_path)


def _signatory(reader: Reader, client_ibans: tuple[str, ...]) -> tuple[SignatorySettings, bytes]:
    """One signatory and the DER of its certificate (to tell signatories apart)."""
    name = reader.text("name")
    if not name.strip() or len(name) > signatory_name_chars_max:
        raise ConfigError(
            reader.key("name"), f"must be 1 to {signatory_name_chars_max} characters"
        )
    right = reader.text("right")
    if right not in SIGNATORY_RIGHTS:
        raise ConfigError(reader.key("right"), f"must be 'first' or 'second': {right!r}")
    certificate = reader.path_value("certificate")
    ders = _certificates(certificate, reader.key("certificate"))
    if len(ders) != 1:
        raise ConfigError(
            reader.key("certificate"), f"{certificate}: holds {len(ders)} certificates, not one"
        )
    valid_from = reader.optional_date("valid_from")
    valid_until = reader.optional_date("valid_until")
    if valid_from and valid_until and valid_until < valid_from:
        raise ConfigError(
            reader.key("valid_until"), f"{valid_until} is before valid_from {valid_from}"
        )
    accounts = client_ibans  # absent: every account of the client
    if reader.has("accounts"):
        texts = reader.texts("accounts", ())
        accounts = tuple(
            _iban_text(text, f"{reader.key('accounts')}[{i}]") for i, text in enumerate(texts)
        )
    signatory = SignatorySettings(
        name=name, certificate=certificate, right=right, accounts=accounts,
        valid_from=valid_from, valid_until=valid_until,
    )
    return signatory, ders[0]


def _level_problem(level: int, iban: str, signatories: tuple[SignatorySettings, ...]) -> str | None:
    """Why the client's signatories can never give `level` signatures on `iban`, or None.

    Only rights and accounts count here: card validity dates change with time.
    """
    allowed = [s for s in signatories if iban in s.accounts]
    if attainable(level, (Right(s.right) for s in allowed)):
        return None
    needs = f"{level} signator{'y' if level == 1 else 'ies'} allowed on {iban}"
    if level >= 2:
        needs += " with at least one 'first' and one 'second' right"
    counts = ", ".join(f"{r}: {sum(s.right == r for s in allowed)}" for r in SIGNATORY_RIGHTS)
    return f"level {level} can never be met: it needs {needs}; configured: {counts}"


def _client(reader: Reader) -> tuple[ClientSettings, tuple[bytes, ...]]:
    """The client, and the DER of each signatory's certificate for `_check_signatories`."""
    client_id = reader.text("id")
    if not CLIENT_ID.match(client_id):
        raise ConfigError(reader.key("id"), f"must match [a-z0-9-]{{1,32}}: {client_id!r}")
    accounts = tuple(reader.tables("account", _account))
    ibans = tuple(a.iban for a in accounts)
    signatories = reader.tables("signatory", lambda sub: _signatory(sub, ibans))
    name = reader.text("name").strip()
    if not name:  # the statements' account owner (Ownr/Nm)
        raise ConfigError(reader.key("name"), "must not be empty")
    client = ClientSettings(
        id=client_id,
        name=name,
        registration_number=_registration_number(reader),
        notifications=reader.flag("notifications", False),
        accounts=accounts,
        users=tuple(reader.tables("user", _user)),
        signatories=tuple(signatory for signatory, _ in signatories),
        waiting_bytes_max=reader.optional_integer("waiting_bytes_max", minimum=1),
        reports_per_day=reader.optional_integer("reports_per_day", minimum=1),
    )
    return client, tuple(der for _, der in signatories)


# Values against each other: only once every key of the file is known to be one we read.


def _check_signatories(index: int, client: ClientSettings, ders: tuple[bytes, ...]) -> None:
    """Each signatory signs for this client's accounts, with a card of their own, and every
    account's authorisation level can be met (SPEC §11)."""
    ibans = tuple(a.iban for a in client.accounts)
    seen: dict[tuple[Any, str | bytes], str] = {}  # each identity of a signatory: whose
    for si, (signatory, der) in enumerate(zip(client.signatories, ders, strict=True)):
        path = f"client[{index}].signatory[{si}]"
        found = _identities(signatory.name, der)
        for kind, value in found:
            if (kind, value) in seen:
                key, words = _SAME_PERSON[kind.value]
                raise ConfigError(f"{path}.{key}", words.format(seen[kind, value], value))
        seen.update(dict.fromkeys(found, path))
        for ai, iban in enumerate(signatory.accounts):
            if iban not in ibans:
                raise ConfigError(
                    f"{path}.accounts[{ai}]", f"{iban} is not an account of this client"
                )
    for ai, account in enumerate(client.accounts):
        if account.authorisation:
            problem = _level_problem(account.authorisation, account.iban, client.signatories)
            if problem:
                raise ConfigError(f"client[{index}].account[{ai}].authorisation", problem)


# What a second signatory with an identity of one before is told (`signatories.identities`:
# one person, whose signatures count once, SPEC §11): the key and the words.
_SAME_PERSON = {
    "name": ("name", "the same name as {0}: each signatory is one person, named once (their "
             "signatures count once: SPEC §11)"),
    "card": ("certificate", "the same certificate as {0}: one person, one card"),
    "person code": ("certificate", "a card of the same person ({1}) as {0}'s: each signatory "
                    "is one person, configured once (their signatures count once: SPEC §11)"),
}  # fmt: skip


def _identities(name: str, der: bytes) -> list[tuple[Any, str | bytes]]:
    """`signatories.identities` of a signatory, in the order they are judged (imported
    here: a configuration without signatories loads no cryptography before `scan` forks
    its reader)."""
    from cryptography import x509

    from gateway.signatories import identities

    return list(identities(name, x509.load_der_x509_certificate(der)).items())


def _registration_number(reader: Reader) -> str:
    """SPEC §3's minimum key: the institution's number in its register (`90000000001`),
    required and not blank; its form is the register's, not checked here."""
    number = reader.text("registration_number").strip()
    if not number:
        raise ConfigError(reader.key("registration_number"), "must not be empty")
    return number


def _check_unique(clients: tuple[ClientSettings, ...]) -> None:
    seen_clients: set[str] = set()
    seen_users: set[str] = set()
    seen_ibans: dict[str, str] = {}  # IBAN: where it was first configured
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
                    f"client[{ci}].account[{ai}].iban",
                    f"duplicate account {account.iban!r} (first at {seen_ibans[account.iban]})",
                )
            seen_ibans[account.iban] = f"client[{ci}].account[{ai}]"


def _check_listen(sftp: SftpSettings, metrics: tuple[str, int] | None) -> None:
    """The metrics endpoint and the SFTP server cannot share a port (a fixed one: 0 is a
    free port each) on one address, or on every address and one of them."""
    if metrics is None or metrics[1] == 0 or metrics[1] != sftp.port:
        return
    anywhere = ("0.0.0.0", "::", "")
    if metrics[0] in anywhere or sftp.host in anywhere or (
        _addresses(metrics[0]) & _addresses(sftp.host)  # `localhost`, `127.0.0.01`, …
    ):
        raise ConfigError(
            "metrics.listen",
            f"{metrics[0]}:{metrics[1]} is taken by sftp.listen ({sftp.host}:{sftp.port})",
        )


def _addresses(host: str) -> set[str]:
    """The addresses `host` binds to, as the system reads it (none when it cannot say:
    the bind then says what is wrong)."""
    import socket

    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {str(info[4][0]) for info in found}


def _check_eod_time(gateway: dict[str, Any]) -> None:
    """The books close no earlier than the later cut-off: a payment received before its
    cut-off is booked on that day (SPEC §6), and that day's statement must show it."""
    eod, internal, external = (
        gateway[name] for name in ("eod_time", "cutoff_internal", "cutoff_external")
    )
    if eod < max(internal, external):
        shown = [
            t.isoformat("seconds" if t.second else "minutes") for t in (eod, internal, external)
        ]
        raise ConfigError(
            "gateway.eod_time",
            f"{shown[0]} is before a cut-off (cutoff_internal {shown[1]}, cutoff_external "
            f"{shown[2]}): payments received before it would be booked after the day's "
            "statements",
        )


def _first_account(clients: tuple[ClientSettings, ...], wanted: str) -> str | None:
    """The key path of the first account with `authorisation` or `budget` set, if any."""
    for ci, client in enumerate(clients):
        for ai, account in enumerate(client.accounts):
            if (account.authorisation if wanted == "authorisation" else account.budget):
                return f"client[{ci}].account[{ai}]"
    return None


def _sftp(reader: Reader) -> SftpSettings:
    listen = _listen(reader, "listen", "127.0.0.1:2222")
    assert listen is not None
    return SftpSettings(
        host=listen[0],
        port=listen[1],
        host_key=reader.path_value("host_key", "ssh_host_ed25519_key"),
        sessions_per_user_max=reader.integer("sessions_per_user_max", 16, minimum=1),
        idle_timeout_seconds=reader.integer(
            "idle_timeout_seconds", 600, minimum=1, maximum=session_seconds_max
        ),
        login_timeout_seconds=reader.integer(
            "login_timeout_seconds", 30, minimum=1, maximum=login_seconds_max
        ),
        auth_failures_before_penalty=reader.integer("auth_failures_before_penalty", 3, minimum=1),
        auth_penalty_seconds_max=reader.integer(
            "auth_penalty_seconds_max", 300, minimum=1, maximum=session_seconds_max
        ),
        unauthenticated_connections_max=reader.integer(
            "unauthenticated_connections_max", 256, minimum=1
        ),
        unauthenticated_connections_per_address_max=reader.integer(
            "unauthenticated_connections_per_address_max", 32, minimum=1
        ),
        client_waiting_bytes_max=reader.integer(
            "client_waiting_bytes_max", CLIENT_WAITING_BYTES_MAX_DEFAULT, minimum=1
        ),
        kex_algorithms=_algorithms(
            reader, "kex_algorithms", ssh_algorithms.KEX_DEFAULT, ssh_algorithms.KEX_ALLOWED
        ),
        ciphers=_algorithms(
            reader, "ciphers", ssh_algorithms.CIPHERS_DEFAULT, ssh_algorithms.CIPHERS_ALLOWED
        ),
        macs=_algorithms(reader, "macs", ssh_algorithms.MACS_DEFAULT, ssh_algorithms.MACS_ALLOWED),
    )


def _signing(reader: Reader) -> SigningSettings:
    ca = reader.paths("signatory_ca")
    for index, path in enumerate(ca):
        _certificates(path, f"{reader.key('signatory_ca')}[{index}]")
    crl = reader.paths("signatory_crl")
    for index, path in enumerate(crl):
        _crl(path, f"{reader.key('signatory_crl')}[{index}]")
    return SigningSettings(
        key=reader.path_value("key", "signing/gateway.key"),
        certificate=reader.path_value("certificate", "signing/gateway.crt"),
        next_certificate=reader.optional_path("next_certificate"),
        signatory_ca=ca,
        signatory_crl=crl,
    )


def _check_signing(signing: SigningSettings, clients: tuple[ClientSettings, ...]) -> None:
    needing = _first_account(clients, "authorisation")
    if needing and not signing.signatory_ca:
        raise ConfigError(
            "signing.signatory_ca",
            f"missing: {needing}.authorisation asks for signatures, and signatories' "
            "certificates must chain to a configured CA",
        )


def _metrics(reader: Reader) -> tuple[str, int] | None:
    return _listen(reader, "listen", None)


workers_max = 16


def _workers(gw: Reader) -> int:
    """`[gateway] workers`: the daemon's pipeline processes."""
    workers = gw.integer("workers", workers_default, minimum=1)
    if workers > workers_max:
        raise ConfigError(gw.key("workers"), f"at most {workers_max}, got {workers}")
    return workers


def _database_url(gw: Reader, base: Path) -> str:
    database_url = gw.text("database_url", "sqlite:///spool/ledger.sqlite3")
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        # Relative SQLite paths are relative to the configuration file, like every path.
        return "sqlite:///" + str(base / database_url[len("sqlite:///") :])
    if not database_url.startswith(("sqlite:", "postgresql")):
        raise ConfigError(
            gw.key("database_url"),
            f"expected sqlite:/// or postgresql+psycopg://: {database_url!r}",
        )
    return database_url


def _classifier(path: Path | None, clients: tuple[ClientSettings, ...]) -> Classifier | None:
    """The classifier file read and checked, required once an account has budget = true:
    a bad row stops the start, naming it."""
    key = "gateway.classification"
    if path is None:
        needing = _first_account(clients, "budget")
        if needing:
            raise ConfigError(
                key, f"missing: {needing}.budget = true needs the budget classifier (CSV)"
            )
        return None
    if not path.is_file():
        raise ConfigError(key, f"file not found: {path}")
    try:
        return classifier.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path}: {exc}") from exc
    except classifier.ClassifierError as exc:
        raise ConfigError(key, f"{path}: {exc}") from exc


def _gateway(gw: Reader) -> dict[str, Any]:
    """The `[gateway]` table's values, by the name of their `Settings` field."""
    try:
        timezone = ZoneInfo(gw.text("timezone", "Europe/Riga"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        zone = gw.table["timezone"]
        raise ConfigError(gw.key("timezone"), f"unknown time zone {zone!r}") from exc
    bic = gw.text("bic", "TRELLV22")
    if bic_problem(bic) is not None:
        raise ConfigError(gw.key("bic"), f"invalid BIC {bic!r}")
    if bic != bic.upper():  # answers must carry it as ISO writes a BIC
        raise ConfigError(gw.key("bic"), f"{bic!r}: write the BIC in capital letters")
    if bic[:6] != TREASURY_BANK_CODE + "LV":
        # Answers name it as the servicer of accounts that are all TREL's (SPEC §6).
        raise ConfigError(
            gw.key("bic"),
            f"{bic!r} is not the treasury's: its accounts are Latvian IBANs of bank code "
            f"{TREASURY_BANK_CODE}, so its BIC starts {TREASURY_BANK_CODE}LV (e.g. TRELLV22)",
        )
    database_url = _database_url(gw, gw.base)
    return {
        "spool_dir": _folder(gw, "spool_dir", "spool"),
        "database_url": database_url,
        "timezone": timezone,
        "bic": bic,
        "cutoff_internal": gw.time("cutoff_internal", "18:00"),
        "cutoff_external": gw.time("cutoff_external", "15:30"),
        "max_future_days": gw.integer("max_future_days", 90, minimum=0, maximum=future_days_max),
        "max_file_bytes": gw.integer("max_file_bytes", 104857600, minimum=1),
        "max_transactions": gw.integer("max_transactions", 200000, minimum=1),
        "eod_time": gw.time("eod_time", "18:30"),
        "log_file": gw.optional_path("log_file"),
        "eod_empty_statements": gw.flag("eod_empty_statements", True),
        "rescan_seconds": float(
            gw.integer("rescan_seconds", 5, minimum=1, maximum=pass_seconds_max)
        ),
        "settle_seconds": float(
            gw.integer("settle_seconds", 2, minimum=0, maximum=pass_seconds_max)
        ),
        "workers": _workers(gw),
        "authorisation_days": gw.integer(
            "authorisation_days", 5, minimum=1, maximum=waiting_days_max
        ),
        "classification": gw.optional_path("classification"),
        "fx_wait_days": gw.integer("fx_wait_days", 2, minimum=0, maximum=waiting_days_max),
        "large_day_threshold_minor": _large_day_threshold(gw),
        "large_day_announce_by": gw.time("large_day_announce_by", "12:30"),
        "reports_per_day": gw.integer("reports_per_day", REPORTS_PER_DAY_DEFAULT, minimum=1),
    }


def _parse(config_path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(config_path.read_text(encoding="utf-8-sig"))  # a BOM is allowed
    except FileNotFoundError as exc:
        raise ConfigError("", f"configuration file not found: {config_path}") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            "", f"cannot read configuration {config_path}: not UTF-8 at line {line} (byte "
            f"{exc.object[exc.start]:#04x}): save it as UTF-8",
        ) from exc  # fmt: skip
    except OSError as exc:
        raise ConfigError("", f"cannot read configuration {config_path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{config_path}: not valid TOML: {exc}") from exc


def load(path: Path | str) -> Settings:
    """Read and check the configuration file; raise ConfigError on the first mistake.

    An unknown key or table comes first (SPEC §3): every table is read before `finish`
    refuses one, and values are checked against each other only after it.
    """
    config_path = Path(path).resolve()
    root = Reader(_parse(config_path), "", config_path.parent)
    gateway = root.section(lambda: root.table_of("gateway", _gateway))
    sftp = root.section(lambda: root.table_of("sftp", _sftp, required=False))
    read_clients = root.section(lambda: root.tables("client", _client))
    signing = root.section(lambda: root.table_of("signing", _signing, required=False))
    metrics_listen = root.section(lambda: root.table_of("metrics", _metrics, required=False))
    root.finish()
    assert gateway is not None and sftp is not None and signing is not None
    assert read_clients is not None
    clients = tuple(client for client, _ in read_clients)
    _check_eod_time(gateway)
    _check_unique(clients)
    _check_listen(sftp, metrics_listen)
    for index, (client, ders) in enumerate(read_clients):
        _check_signatories(index, client, ders)
    _check_signing(signing, clients)
    return Settings(
        config_path=config_path,
        **gateway,
        classifier=_classifier(gateway["classification"], clients),
        metrics_listen=metrics_listen,
        sftp=sftp,
        signing=signing,
        clients=clients,
        _by_user={u.name: (c, u) for c in clients for u in c.users},
    )
