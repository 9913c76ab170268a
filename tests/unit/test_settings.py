"""The configuration file: what a correct one gives the daemon, and how each mistake is named.

An operator who gets the file wrong sees one line naming the key path and the
problem (SPEC §3), e.g. `client[1].user[0].authorized_keys: file not found: …`.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import ssh_algorithms, testpki
from gateway.errors import ConfigError
from gateway.keys import init_signing_key
from gateway.settings import Settings, SignatorySettings, load


def public_key(seed: int, comment: str) -> str:
    """A well-formed OpenSSH ed25519 public key line (key type, wire-format blob, comment)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed]) * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


ERP_KEYS = (
    f'from="10.20.0.0/16,192.168.1.7" {public_key(1, "erp-1")}\n'
    "# a second key for the standby server\n"
    f'restrict,FROM="10.30.0.5",no-pty {public_key(2, "erp-2")}\n'
)
PERSON_KEYS = f"{public_key(3, 'anna@laptop')}\n"


IBAN_A1 = "LV31TREL9100000000001"
IBAN_A2 = "LV04TREL9100000000002"
IBAN_B = "LV74TREL9100000000003"


def full_config() -> dict[str, Any]:
    """Every documented key, relative paths throughout, two clients."""
    return {
        "gateway": {
            "spool_dir": "spool",
            "database_url": "sqlite:///spool/ledger.sqlite3",
            "timezone": "Europe/Riga",
            "bic": "TRELLV22",
            "cutoff_internal": "18:00",
            "cutoff_external": "15:30",
            "max_future_days": 90,
            "max_file_bytes": 104857600,
            "max_transactions": 200000,
            "eod_time": "18:30",
            "log_file": "spool/log/gateway.jsonl",
            "eod_empty_statements": False,
            "rescan_seconds": 7,
            "settle_seconds": 3,
            "authorisation_days": 4,
            "classification": "classification.csv",
            "fx_wait_days": 3,
            "large_day_threshold": "500000.50",
            "large_day_announce_by": "11:45",
            "reports_per_day": 400,
        },
        "sftp": {
            "listen": "0.0.0.0:2022",
            "host_key": "ssh_host_ed25519_key",
            "sessions_per_user_max": 8,
            "idle_timeout_seconds": 300,
            "login_timeout_seconds": 20,
            "auth_failures_before_penalty": 5,
            "auth_penalty_seconds_max": 600,
            "client_waiting_bytes_max": 1_000_000,
            "kex_algorithms": ["curve25519-sha256", "diffie-hellman-group16-sha512"],
            "ciphers": ["aes256-gcm@openssh.com", "aes256-ctr"],
            "macs": ["hmac-sha2-512-etm@openssh.com"],
        },
        "signing": {
            "key": "signing/gateway.key",
            "certificate": "signing/gateway.crt",
            "next_certificate": "signing/next.crt",
            "signatory_ca": ["ca/eparaksts.pem"],
            "signatory_crl": ["ca/eparaksts.crl"],
        },
        "metrics": {"listen": "127.0.0.1:9464"},
        "client": [
            {
                "id": "iestade-a",
                "name": "Budžeta iestāde A",
                "registration_number": "90000000001",
                "notifications": True,
                "waiting_bytes_max": 500_000,
                "reports_per_day": 50,
                "account": [
                    {
                        "iban": IBAN_A1,
                        "currency": "EUR",
                        "overdraft": "1000.50",
                        "max_payment": 2500,
                        "daily_limit": "12.5",
                        "authorisation": 2,
                        "budget": True,
                    },
                    {
                        "iban": IBAN_A2,
                        "currency": "EUR",
                        "authorisation": 1,
                    },
                ],
                "signatory": [
                    {
                        "name": "Jānis Bērziņš",
                        "certificate": "certs/janis.pem",
                        "right": "first",
                    },
                    {
                        "name": "Līga Ozola",
                        "certificate": "certs/liga.pem",
                        "right": "second",
                        "valid_from": dt.date(2026, 1, 1),
                        "valid_until": "2027-12-31",
                        "accounts": [IBAN_A1.lower()],
                    },
                ],
                "user": [
                    {
                        "name": "iestade-a-erp",
                        "kind": "system",
                        "mode": "manage",
                        "authorized_keys": "keys/iestade-a-erp.pub",
                    },
                    {
                        "name": "anna",
                        "kind": "person",
                        "mode": "view",
                        "authorized_keys": "keys/anna.pub",
                    },
                ],
            },
            {
                "id": "iestade-b",
                "name": "Budžeta iestāde B",
                "registration_number": "90000000002",
                "account": [
                    {"iban": IBAN_B, "currency": "JPY", "status": "blocked", "daily_limit": 100000}
                ],
                "user": [
                    {
                        "name": "iestade-b-erp",
                        "kind": "system",
                        "mode": "manage",
                        "authorized_keys": "keys/iestade-b-erp.pub",
                    }
                ],
            },
        ],
    }


def _literal(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()  # a TOML local date
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(value)


def to_toml(table: dict[str, Any], prefix: str = "") -> str:
    """Just enough of a TOML writer for configuration files: scalars, tables, arrays of tables."""
    lines: list[str] = []
    nested: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict):
            nested += ["", f"[{prefix}{key}]", to_toml(value, f"{prefix}{key}.")]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                nested += ["", f"[[{prefix}{key}]]", to_toml(item, f"{prefix}{key}.")]
        else:
            lines.append(f"{key} = {_literal(value)}")
    return "\n".join(lines + nested)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """PEM certificates for signatories and their CA, and a CRL (made once per module)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    folder = tmp_path_factory.mktemp("certs")
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    made = {}
    for name in ("janis", "liga", "peteris", "ca"):
        init_signing_key(folder / f"{name}.key", folder / f"{name}.pem", subject_cn=name, now=now)
        made[name] = (folder / f"{name}.pem").read_bytes()
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(made["ca"])
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    made["crl"] = crl.public_bytes(serialization.Encoding.PEM)
    # Two cards of one person (the same personal code), as a qualified CA issues them.
    qualified = testpki.new_ca("Qualified CA", now=now)
    for name in ("anna", "anna-card2"):
        card = testpki.new_signatory(qualified, "Anna Vadītāja", now=now,
                                     person_code="PNOLV-50746681115")  # fmt: skip
        made[name] = card.cert.public_bytes(serialization.Encoding.PEM)
    return made


@pytest.fixture
def config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certificates: dict[str, bytes]
) -> Path:
    """A configuration folder with key files, certificates and a classifier; the working
    directory is somewhere else."""
    folder = tmp_path / "etc" / "ekase"
    for sub in ("certs", "ca"):
        (folder / sub).mkdir(parents=True)
    for name in ("janis", "liga", "peteris", "anna", "anna-card2"):
        (folder / "certs" / f"{name}.pem").write_bytes(certificates[name])
    (folder / "ca" / "eparaksts.pem").write_bytes(certificates["ca"])
    (folder / "ca" / "eparaksts.crl").write_bytes(certificates["crl"])
    (folder / "classification.csv").write_text(
        "code;name;kind;valid_from;valid_until\n2221;Heating;expense;2020-01-01;\n",
        encoding="utf-8",
    )
    (folder / "keys").mkdir(parents=True)
    (folder / "keys" / "iestade-a-erp.pub").write_text(ERP_KEYS, encoding="utf-8")
    (folder / "keys" / "anna.pub").write_text(PERSON_KEYS, encoding="utf-8")
    (folder / "keys" / "iestade-b-erp.pub").write_text(
        f'from="10.40.0.1" {public_key(4, "b-erp")}\n', encoding="utf-8"
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return folder


def write(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "gateway.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path


def test_full_config_loads_with_paths_and_amounts_resolved(config_dir: Path) -> None:
    """A correct file starts the daemon: relative paths are taken from the config's own folder
    (not the working directory) and amounts become integer minor units of the account currency."""
    settings = load(write(config_dir, full_config()))
    assert isinstance(settings, Settings)
    assert settings.config_path == config_dir / "gateway.toml"
    assert settings.spool_dir == config_dir / "spool"
    assert settings.database_url == f"sqlite:///{config_dir}/spool/ledger.sqlite3"
    assert settings.log_file == config_dir / "spool" / "log" / "gateway.jsonl"
    assert settings.sftp.host_key == config_dir / "ssh_host_ed25519_key"
    assert (settings.sftp.host, settings.sftp.port) == ("0.0.0.0", 2022)
    assert settings.signing.key == config_dir / "signing" / "gateway.key"
    assert settings.signing.certificate == config_dir / "signing" / "gateway.crt"
    assert settings.timezone == ZoneInfo("Europe/Riga")
    assert settings.bic == "TRELLV22"
    assert settings.cutoff_internal == dt.time(18, 0)
    assert settings.cutoff_external == dt.time(15, 30)
    assert settings.eod_time == dt.time(18, 30)
    assert (settings.max_future_days, settings.max_file_bytes, settings.max_transactions) == (
        90,
        104857600,
        200000,
    )

    a, b = settings.clients
    assert (a.id, a.name, a.registration_number, a.notifications) == (
        "iestade-a",
        "Budžeta iestāde A",
        "90000000001",
        True,
    )
    first, second = a.accounts
    assert first.iban == "LV31TREL9100000000001"
    assert (first.currency, first.status) == ("EUR", "open")
    assert first.overdraft_minor == 100050  # "1000.50" EUR
    assert first.max_payment_minor == 250000  # 2500 EUR
    assert first.daily_limit_minor == 1250  # "12.5" EUR
    assert (second.iban, second.overdraft_minor, second.max_payment_minor) == (IBAN_A2, 0, None)
    (b_account,) = b.accounts
    assert (b_account.currency, b_account.status, b_account.daily_limit_minor) == (
        "JPY",
        "blocked",
        100000,  # JPY has no minor unit
    )
    assert b.notifications is False
    assert b.registration_number == "90000000002"

    erp, anna = a.users
    assert erp.authorized_keys == config_dir / "keys" / "iestade-a-erp.pub"
    assert (erp.kind, erp.mode, anna.kind, anna.mode) == ("system", "manage", "person", "view")
    found = settings.user("iestade-b-erp")
    assert found is not None
    assert found[0].id == "iestade-b"
    assert settings.user("nobody") is None
    assert settings.client("iestade-a") is a


def test_every_documented_key_is_read_into_typed_settings(config_dir: Path) -> None:
    """Every key SPEC §3 lists — those of later sections too — loads into a typed setting, so
    that an administrator's file for them starts (and a typo in them is caught)."""
    settings = load(write(config_dir, full_config()))
    assert settings.eod_empty_statements is False
    assert (settings.rescan_seconds, settings.settle_seconds) == (7.0, 3.0)
    assert settings.authorisation_days == 4
    assert settings.classification == config_dir / "classification.csv"
    assert settings.fx_wait_days == 3
    assert settings.large_day_threshold_minor == 50_000_050  # "500000.50" EUR in cents
    assert settings.large_day_announce_by == dt.time(11, 45)
    assert settings.metrics_listen == ("127.0.0.1", 9464)
    sftp = settings.sftp
    assert (sftp.sessions_per_user_max, sftp.idle_timeout_seconds) == (8, 300)
    assert (sftp.login_timeout_seconds, sftp.auth_failures_before_penalty) == (20, 5)
    assert sftp.auth_penalty_seconds_max == 600
    assert sftp.client_waiting_bytes_max == 1_000_000
    assert sftp.kex_algorithms == ("curve25519-sha256", "diffie-hellman-group16-sha512")
    assert sftp.ciphers == ("aes256-gcm@openssh.com", "aes256-ctr")
    assert sftp.macs == ("hmac-sha2-512-etm@openssh.com",)
    signing = settings.signing
    assert signing.next_certificate == config_dir / "signing" / "next.crt"
    assert signing.signatory_ca == (config_dir / "ca" / "eparaksts.pem",)
    assert signing.signatory_crl == (config_dir / "ca" / "eparaksts.crl",)

    a, b = settings.clients
    assert (a.waiting_bytes_max, b.waiting_bytes_max) == (500_000, None)
    assert settings.waiting_bytes_max(a) == (500_000, "client[0].waiting_bytes_max")
    assert settings.waiting_bytes_max(b) == (1_000_000, "sftp.client_waiting_bytes_max")
    assert settings.reports_per_day_of(a.id) == (50, "client[0].reports_per_day")
    assert settings.reports_per_day_of(b.id) == (400, "gateway.reports_per_day")
    first, second = a.accounts
    assert (first.authorisation, first.budget, second.authorisation, second.budget) == (
        2, True, 1, False,
    )
    assert a.signatories == (
        SignatorySettings(
            name="Jānis Bērziņš", certificate=config_dir / "certs" / "janis.pem", right="first",
            accounts=(IBAN_A1, IBAN_A2),  # default: every account of the client
        ),
        SignatorySettings(
            name="Līga Ozola", certificate=config_dir / "certs" / "liga.pem", right="second",
            accounts=(IBAN_A1,),  # written in lower case, kept in the IBAN's own form
            valid_from=dt.date(2026, 1, 1), valid_until=dt.date(2027, 12, 31),
        ),
    )
    assert b.signatories == ()


def test_minimal_config_gets_documented_defaults(config_dir: Path) -> None:
    """A file with only a [gateway] table and no clients starts with the documented defaults."""
    settings = load(write(config_dir, {"gateway": {"spool_dir": "/srv/ekase/spool"}}))
    assert settings.spool_dir == Path("/srv/ekase/spool")  # absolute paths are kept
    assert settings.database_url == f"sqlite:///{config_dir}/spool/ledger.sqlite3"
    assert (settings.sftp.host, settings.sftp.port) == ("127.0.0.1", 2222)
    assert settings.cutoff_internal == dt.time(18, 0)
    assert settings.cutoff_external == dt.time(15, 30)
    assert settings.eod_time == dt.time(18, 30)
    assert settings.max_future_days == 90
    assert settings.log_file is None
    assert settings.clients == ()
    # Keys of SPEC §9 and §11–§14, absent: their documented defaults.
    assert settings.authorisation_days == 5
    assert settings.classification is None
    assert settings.fx_wait_days == 2
    assert settings.large_day_threshold_minor == 70_000_000  # 700,000.00 EUR
    assert settings.large_day_announce_by == dt.time(12, 30)
    assert settings.metrics_listen is None
    assert settings.reports_per_day == 1000  # SPEC §15's reports, a client's in a day
    # Two pipeline processes on SQLite too: its writers take turns at the writer gate.
    assert settings.workers == 2
    assert settings.sftp.sessions_per_user_max == 16
    assert settings.sftp.client_waiting_bytes_max == 2 * 1024**3
    assert settings.sftp.kex_algorithms == ssh_algorithms.KEX_DEFAULT
    assert settings.sftp.ciphers == ssh_algorithms.CIPHERS_DEFAULT
    assert settings.sftp.macs == ssh_algorithms.MACS_DEFAULT
    assert settings.signing.next_certificate is None
    assert (settings.signing.signatory_ca, settings.signing.signatory_crl) == ((), ())


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://ekase@db.internal:5432/ekase", "sqlite:////var/lib/ekase/l.sqlite3"],
)
def test_absolute_database_urls_are_kept(config_dir: Path, url: str) -> None:
    """PostgreSQL URLs and absolute SQLite paths reach the database exactly as written."""
    settings = load(write(config_dir, {"gateway": {"database_url": url}}))
    assert settings.database_url == url


def test_ipv6_listen_address(config_dir: Path) -> None:
    """`[::1]:2222` listens on the IPv6 loopback."""
    config = full_config()
    config["sftp"]["listen"] = "[::1]:2222"
    settings = load(write(config_dir, config))
    assert (settings.sftp.host, settings.sftp.port) == ("::1", 2222)


Mutation = Callable[[dict[str, Any], Path], None]


def setting(*keys: str | int, value: Any) -> Mutation:
    def mutate(config: dict[str, Any], _folder: Path) -> None:
        target: Any = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


def delete(*keys: str | int) -> Mutation:
    def mutate(config: dict[str, Any], _folder: Path) -> None:
        target: Any = config
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return mutate


def keys_file(content: str, *, client: int = 0, user: int = 0) -> Mutation:
    def mutate(config: dict[str, Any], folder: Path) -> None:
        (folder / "keys" / "custom.pub").write_text(content, encoding="utf-8")
        config["client"][client]["user"][user]["authorized_keys"] = "keys/custom.pub"

    return mutate


def keys_folder(config: dict[str, Any], folder: Path) -> None:
    (folder / "keys" / "a-folder").mkdir()
    config["client"][0]["user"][0]["authorized_keys"] = "keys/a-folder"


def both(*mutations: Mutation) -> Mutation:
    def mutate(config: dict[str, Any], folder: Path) -> None:
        for mutation in mutations:
            mutation(config, folder)

    return mutate


ACCOUNT = ("client", 0, "account", 0)
ACCOUNT_2 = ("client", 0, "account", 1)
USER = ("client", 0, "user", 0)
JANIS = ("client", 0, "signatory", 0)  # right "first", every account
LIGA = ("client", 0, "signatory", 1)  # right "second", the first account only
NO_FROM = f"{public_key(9, 'erp-without-from')}\n"


# (mutation, key path, words the problem must contain)
MISTAKES: dict[str, tuple[Mutation, str, tuple[str, ...]]] = {
    "missing gateway table": (delete("gateway"), "gateway", ("missing",)),
    "missing client name": (delete("client", 0, "name"), "client[0].name", ("missing",)),
    "missing client id": (delete("client", 1, "id"), "client[1].id", ("missing",)),
    "missing account currency": (
        delete(*ACCOUNT, "currency"), "client[0].account[0].currency", ("missing",),
    ),
    "missing iban": (delete("client", 1, "account", 0, "iban"), "client[1].account[0].iban",
                     ("missing",)),
    "missing user kind": (delete(*USER, "kind"), "client[0].user[0].kind", ("missing",)),
    "missing authorized_keys": (
        delete("client", 1, "user", 0, "authorized_keys"),
        "client[1].user[0].authorized_keys", ("missing",),
    ),
    "integer given as text": (
        setting("gateway", "max_future_days", value="90"), "gateway.max_future_days",
        ("expected int", "'90'"),
    ),
    "boolean given as integer": (
        setting("gateway", "max_transactions", value=True), "gateway.max_transactions",
        ("expected an integer", "True"),
    ),
    "flag given as text": (
        setting("client", 0, "notifications", value="yes"), "client[0].notifications",
        ("expected bool", "'yes'"),
    ),
    "name given as number": (
        setting("client", 0, "name", value=42), "client[0].name", ("expected str", "42"),
    ),
    "accounts not an array of tables": (
        setting("client", 0, "account", value="LV31TREL9100000000001"),
        "client[0].account", ("expected an array of tables",),
    ),
    "clients as a single table": (
        setting("client", value={"id": "x", "name": "X"}), "client",
        ("expected an array of tables",),
    ),
    "sftp not a table": (setting("sftp", value="0.0.0.0:22"), "sftp", ("expected a table",)),
    "limit below minimum": (
        setting("gateway", "max_file_bytes", value=0), "gateway.max_file_bytes",
        ("at least 1", "0"),
    ),
    "bad IBAN checksum": (
        setting(*ACCOUNT, "iban", value="LV00TREL9100000000001"), "client[0].account[0].iban",
        ("invalid IBAN", "LV00TREL9100000000001"),
    ),
    "another bank's IBAN": (
        setting(*ACCOUNT, "iban", value="LV80BANK0000435195001"), "client[0].account[0].iban",
        ("not a treasury account", "bank code BANK", "LV…TREL"),
    ),
    "a foreign IBAN": (
        setting(*ACCOUNT, "iban", value="DE89370400440532013000"), "client[0].account[0].iban",
        ("not a treasury account",),
    ),
    "IBAN of no country": (
        setting(*ACCOUNT, "iban", value="XX31TREL9100000000001"), "client[0].account[0].iban",
        ("invalid IBAN", "XX31TREL9100000000001"),
    ),
    "duplicate user name": (
        setting("client", 1, "user", 0, "name", value="anna"), "client[1].user[0].name",
        ("duplicate user", "anna"),
    ),
    "duplicate user name in one client": (
        setting("client", 0, "user", 1, "name", value="iestade-a-erp"),
        "client[0].user[1].name", ("duplicate user", "iestade-a-erp"),
    ),
    "missing registration number": (
        delete("client", 0, "registration_number"), "client[0].registration_number",
        ("missing",),
    ),
    "blank registration number": (
        setting("client", 0, "registration_number", value="  "),
        "client[0].registration_number", ("must not be empty",),
    ),
    "metrics port without a number": (
        setting("metrics", "listen", value="9464"), "metrics.listen", ("expected HOST:PORT",),
    ),
    # "²" is a digit to `str.isdigit` but not to `int`: it crashed the start (a reviewer).
    "sftp port a superscript digit": (
        setting("sftp", "listen", value="127.0.0.1:\u00b2"), "sftp.listen",
        ("expected HOST:PORT",),
    ),
    "metrics on the SFTP server's address": (
        setting("metrics", "listen", value="127.0.0.1:2022"), "metrics.listen",
        ("sftp.listen", "2022"),
    ),
    "metrics on the SFTP server's address by another name": (
        both(
            setting("sftp", "listen", value="127.0.0.1:2022"),
            setting("metrics", "listen", value="localhost:2022"),
        ),
        "metrics.listen", ("sftp.listen", "2022"),
    ),
    "duplicate client id": (
        setting("client", 1, "id", value="iestade-a"), "client[1].id",
        ("duplicate client id", "iestade-a"),
    ),
    "duplicate account written differently": (
        setting("client", 1, "account", 0, "iban", value="lv31 trel 9100 0000 0000 1"),
        "client[1].account[0].iban",
        ("duplicate account", "LV31TREL9100000000001", "(first at client[0].account[0])"),
    ),
    "client id with capitals": (
        setting("client", 0, "id", value="Iestade-A"), "client[0].id", ("'Iestade-A'",),
    ),
    "bad login name": (
        setting(*USER, "name", value="erp user"), "client[0].user[0].name",
        ("login name", "'erp user'"),
    ),
    "unknown user kind": (
        setting(*USER, "kind", value="robot"), "client[0].user[0].kind", ("'robot'",),
    ),
    "unknown user mode": (
        setting(*USER, "mode", value="admin"), "client[0].user[0].mode", ("'admin'",),
    ),
    "unknown currency": (
        setting(*ACCOUNT, "currency", value="XYZ"), "client[0].account[0].currency",
        ("unsupported currency", "XYZ"),
    ),
    "currency in small letters": (
        setting(*ACCOUNT, "currency", value="usd"), "client[0].account[0].currency",
        ("unsupported currency 'usd' (ISO 4217 codes are in capitals)",),
    ),
    "currency not kept by the treasury": (
        setting(*ACCOUNT, "currency", value="BRL"), "client[0].account[0].currency",
        ("unsupported currency", "BRL"),
    ),
    "bad account status": (
        setting(*ACCOUNT, "status", value="frozen"), "client[0].account[0].status",
        ("must be one of", "'frozen'"),
    ),
    "system key without from=": (
        keys_file(NO_FROM), "client[0].user[0].authorized_keys",
        ("custom.pub line 1", 'from="'),
    ),
    "second system key without from=": (
        keys_file(f'from="10.0.0.1" {public_key(1, "ok")}\n{NO_FROM}'),
        "client[0].user[0].authorized_keys", ("custom.pub line 2", 'from="'),
    ),
    "system key with empty from=": (
        keys_file(f'from="" {public_key(1, "empty")}\n'),
        "client[0].user[0].authorized_keys", ("line 1", 'from="'),
    ),
    "system key in another client without from=": (
        keys_file(NO_FROM, client=1), "client[1].user[0].authorized_keys", ("line 1", 'from="'),
    ),
    "misspelt key option": (
        keys_file(f'form="10.0.0.1" {public_key(1, "typo")}\n'),
        "client[0].user[0].authorized_keys",
        ("custom.pub line 1", 'unknown option "form"', 'did you mean "from"'),
    ),
    "key option the built-in server would not enforce": (
        keys_file(f'verify-required,from="10.0.0.1" {public_key(1, "fido")}\n'),
        "client[0].user[0].authorized_keys", ("custom.pub line 1", '"verify-required"'),
    ),
    "expiry-time that is not a time": (
        keys_file(f'from="10.0.0.1",expiry-time="20201301" {public_key(1, "erp")}\n'),
        "client[0].user[0].authorized_keys",
        ("custom.pub line 1", 'expiry-time="20201301"', "not a date and time"),
    ),
    "key whose data cannot be decoded": (
        keys_file(f'{public_key(1, "ok")}\nfrom="127.0.0.1" ssh-ed25519 AAAAnotbase64!!\n', user=1),
        "client[0].user[1].authorized_keys", ("custom.pub line 2: ", "cannot be decoded"),
    ),
    "from= with a mask out of range": (
        keys_file(f'from="127.0.0.1/33" {public_key(1, "erp")}\n'),
        "client[0].user[0].authorized_keys", ("custom.pub line 1", "127.0.0.1/33"),
    ),
    "from= with an address out of range": (
        keys_file(f'from="300.1.1.1" {public_key(1, "erp")}\n'),
        "client[0].user[0].authorized_keys", ("custom.pub line 1", "300.1.1.1"),
    ),
    "from= without quotes": (
        keys_file(f"from=127.0.0.1 {public_key(1, 'erp')}\n"),
        "client[0].user[0].authorized_keys", ("custom.pub line 1: ", "double quotes"),
    ),
    "authorized_keys not a key": (
        keys_file("this is not a key\n"), "client[0].user[0].authorized_keys",
        ("line 1", "not an OpenSSH public key"),
    ),
    "authorized_keys without keys": (
        keys_file("# nobody yet\n\n"), "client[0].user[0].authorized_keys", ("no keys",),
    ),
    "authorized_keys is a folder": (
        keys_folder, "client[0].user[0].authorized_keys", ("cannot read", "a-folder"),
    ),
    "time out of range": (
        setting("gateway", "cutoff_internal", value="25:00"), "gateway.cutoff_internal",
        ("not a local time HH:MM", "'25:00'"),
    ),
    "client without a name": (
        setting("client", 0, "name", value=" "), "client[0].name", ("must not be empty",),
    ),
    "time in words": (
        setting("gateway", "eod_time", value="6pm"), "gateway.eod_time",
        ("not a local time HH:MM", "'6pm'"),
    ),
    "time as a number": (
        setting("gateway", "cutoff_external", value=1530), "gateway.cutoff_external",
        ("not a local time HH:MM", "1530"),
    ),
    # A zone passed the reading and failed every comparison with local times (a TypeError,
    # then every file in quarantine); odd forms were taken as some time.
    "time with a zone": (
        setting("gateway", "eod_time", value="18:30Z"), "gateway.eod_time",
        ("not a local time HH:MM", "'18:30Z'"),
    ),
    "time with an offset": (
        setting("gateway", "cutoff_external", value="15:30+02:00"), "gateway.cutoff_external",
        ("not a local time HH:MM", "'15:30+02:00'"),
    ),
    "time without minutes": (
        setting("gateway", "cutoff_internal", value="18"), "gateway.cutoff_internal",
        ("not a local time HH:MM", "'18'"),
    ),
    "time without a colon": (
        setting("gateway", "cutoff_internal", value="1800"), "gateway.cutoff_internal",
        ("not a local time HH:MM", "'1800'"),
    ),
    "listen without port": (
        setting("sftp", "listen", value="localhost"), "sftp.listen",
        ("HOST:PORT", "'localhost'"),
    ),
    "listen port out of range": (
        setting("sftp", "listen", value="127.0.0.1:70000"), "sftp.listen",
        ("HOST:PORT", "70000"),
    ),
    "listen port by name": (
        setting("sftp", "listen", value="127.0.0.1:ssh"), "sftp.listen", ("HOST:PORT", "ssh"),
    ),
    "amount with three decimals": (
        setting(*ACCOUNT, "overdraft", value="10.001"), "client[0].account[0].overdraft",
        ("more than 2 decimals", "10.001"),
    ),
    "yen amount with decimals": (
        setting("client", 1, "account", 0, "daily_limit", value="100.5"),
        "client[1].account[0].daily_limit", ("more than 0 decimals", "JPY"),
    ),
    "negative amount": (
        setting(*ACCOUNT, "max_payment", value="-5"), "client[0].account[0].max_payment",
        ("must not be negative", "-5"),
    ),
    # 0 is no limit in many systems; here it would refuse every payment (AM02, AM14).
    "max_payment of zero": (
        setting(*ACCOUNT, "max_payment", value="0"), "client[0].account[0].max_payment",
        ("must be above 0", "leave max_payment out", 'status = "blocked"'),
    ),
    "daily_limit of zero": (
        setting(*ACCOUNT, "daily_limit", value=0), "client[0].account[0].daily_limit",
        ("must be above 0", "leave daily_limit out", 'status = "blocked"'),
    ),
    "amount not a number": (
        setting(*ACCOUNT, "max_payment", value="lots"), "client[0].account[0].max_payment",
        ("not a number", "lots"),
    ),
    "amount as a TOML float": (
        setting(*ACCOUNT, "overdraft", value=1000.5), "client[0].account[0].overdraft",
        ("1000.5 is a TOML float", "as a string", '"1000.5"', "or an integer"),
    ),
    "limit as a TOML float": (
        setting(*ACCOUNT, "max_payment", value=1e3), "client[0].account[0].max_payment",
        ("TOML float",),
    ),
    "threshold as a TOML float": (
        setting("gateway", "large_day_threshold", value=700000.0), "gateway.large_day_threshold",
        ("TOML float",),
    ),
    "amount in exponent form": (
        setting(*ACCOUNT, "daily_limit", value="1e3"), "client[0].account[0].daily_limit",
        ("not a plain decimal", "1e3"),
    ),
    "max_future_days beyond ten years": (
        setting("gateway", "max_future_days", value=99999999999999999999),
        "gateway.max_future_days", ("at most 3650", "99999999999999999999"),
    ),
    "authorisation_days beyond a quarter": (
        setting("gateway", "authorisation_days", value=365), "gateway.authorisation_days",
        ("at most 60", "365"),
    ),
    "fx_wait_days beyond a quarter": (
        setting("gateway", "fx_wait_days", value=1000), "gateway.fx_wait_days",
        ("at most 60", "1000"),
    ),
    "eod_time before the external cut-off": (
        setting("gateway", "eod_time", value="12:00"), "gateway.eod_time",
        ("12:00 is before a cut-off", "cutoff_external 15:30"),
    ),
    "eod_time before the internal cut-off": (
        both(setting("gateway", "eod_time", value="17:00"),
             setting("gateway", "cutoff_internal", value="17:30")),
        "gateway.eod_time", ("17:00 is before a cut-off", "cutoff_internal 17:30"),
    ),
    "amount as a boolean": (
        setting(*ACCOUNT, "overdraft", value=True), "client[0].account[0].overdraft",
        ("expected an amount", "True"),
    ),
    "unknown time zone": (
        setting("gateway", "timezone", value="Europe/Atlantis"), "gateway.timezone",
        ("unknown time zone", "Europe/Atlantis"),
    ),
    "bad BIC": (setting("gateway", "bic", value="TREL"), "gateway.bic", ("invalid BIC", "TREL")),
    "the BIC in small letters": (
        setting("gateway", "bic", value="trellv22"), "gateway.bic", ("capital letters",),
    ),
    "another bank's BIC": (
        setting("gateway", "bic", value="HABALV22"), "gateway.bic",
        ("not the treasury's", "TREL", "LV", "HABALV22"),
    ),
    "unsupported database": (
        setting("gateway", "database_url", value="mysql://db/ekase"), "gateway.database_url",
        ("mysql://db/ekase",),
    ),
    # Keys nobody reads: typos, and tables the product does not have.
    "unknown table": (
        setting("gatway", value={"spool_dir": "x"}), "gatway",
        ("unknown table (did you mean gateway?)",),
    ),
    "unknown array of tables": (
        setting("client", 0, "signatorys", value=[{"name": "x"}]), "client[0].signatorys",
        ("unknown table (did you mean signatory?)",),
    ),
    "typo in a signatory": (
        setting(*JANIS, "valid_untill", value="2027-01-01"), "client[0].signatory[0].valid_untill",
        ("unknown key (did you mean valid_until?)",),
    ),
    "typo in sftp": (
        setting("sftp", "sessions_per_user", value=3), "sftp.sessions_per_user",
        ("unknown key (did you mean sessions_per_user_max?)",),
    ),
    "typo in metrics": (
        setting("metrics", "listne", value="127.0.0.1:1"), "metrics.listne",
        ("unknown key (did you mean listen?)",),
    ),
    "typo in signing": (
        setting("signing", "signatory_cas", value=[]), "signing.signatory_cas",
        ("unknown key (did you mean signatory_ca?)",),
    ),
    "typo in a user": (
        setting(*USER, "authorised_keys", value="keys/x.pub"), "client[0].user[0].authorised_keys",
        ("unknown key (did you mean authorized_keys?)",),
    ),
    # A known key in the wrong table (a tester): where it belongs, not "did you mean".
    "an account's limit under its client": (
        setting("client", 0, "max_payment", value="100"), "client[0].max_payment",
        ("unknown key here (max_payment belongs under [[client.account]])",),
    ),
    "a gateway key under sftp": (
        setting("sftp", "cutoff_internal", value="18:00"), "sftp.cutoff_internal",
        ("unknown key here (cutoff_internal belongs under [gateway])",),
    ),
    "typo of a required key names the typo, not 'missing'": (
        both(delete(*ACCOUNT, "currency"), setting(*ACCOUNT, "curency", value="EUR")),
        "client[0].account[0].curency", ("unknown key (did you mean currency?)",),
    ),
    "typo of a required table": (
        both(delete("gateway"), setting("gateways", value={"spool_dir": "x"})), "gateways",
        ("unknown table (did you mean gateway?)",),
    ),
    # The keys of later sections (SPEC §9, §11–§14).
    "authorisation above 3": (
        setting(*ACCOUNT, "authorisation", value=4), "client[0].account[0].authorisation",
        ("0, 1, 2 or 3", "got 4"),
    ),
    "authorisation below 0": (
        setting(*ACCOUNT, "authorisation", value=-1), "client[0].account[0].authorisation",
        ("at least 0", "-1"),
    ),
    "authorisation as text": (
        setting(*ACCOUNT, "authorisation", value="2"), "client[0].account[0].authorisation",
        ("expected int", "'2'"),
    ),
    "budget as text": (
        setting(*ACCOUNT_2, "budget", value="yes"), "client[0].account[1].budget",
        ("expected bool", "'yes'"),
    ),
    "unknown signatory right": (
        setting(*LIGA, "right", value="third"), "client[0].signatory[1].right",
        ("'first' or 'second'", "'third'"),
    ),
    "two signatories of one name (spaces and case aside)": (
        setting(*LIGA, "name", value="  jānis  BĒRZIŅŠ"), "client[0].signatory[1].name",
        ("the same name as client[0].signatory[0]", "named once"),
    ),
    "a signatory's name longer than kept": (
        setting(*LIGA, "name", value="L" * 256), "client[0].signatory[1].name",
        ("1 to 255 characters",),
    ),
    "level 2 with two first rights": (
        setting(*LIGA, "right", value="first"), "client[0].account[0].authorisation",
        ("level 2 can never be met", "one 'first' and one 'second'", "first: 2, second: 0"),
    ),
    "level 3 with two signatories": (
        setting(*ACCOUNT, "authorisation", value=3), "client[0].account[0].authorisation",
        ("level 3 can never be met", "3 signatories allowed on LV31TREL9100000000001"),
    ),
    "level 2 where only one signatory may sign": (
        setting(*ACCOUNT_2, "authorisation", value=2), "client[0].account[1].authorisation",
        ("level 2 can never be met", IBAN_A2, "first: 1, second: 0"),
    ),
    "level 1 on an account no signatory may sign": (
        setting(*JANIS, "accounts", value=[IBAN_A1]), "client[0].account[1].authorisation",
        ("level 1 can never be met", "1 signatory allowed on " + IBAN_A2),
    ),
    "levels without any signatory": (
        delete("client", 0, "signatory"), "client[0].account[0].authorisation",
        ("level 2 can never be met", "first: 0, second: 0"),
    ),
    "signatory for another client's account": (
        setting(*LIGA, "accounts", value=[IBAN_A1, IBAN_B]), "client[0].signatory[1].accounts[1]",
        (IBAN_B, "not an account of this client"),
    ),
    "signatory account not an IBAN": (
        setting(*LIGA, "accounts", value=["LV00TREL9100000000001"]),
        "client[0].signatory[1].accounts[0]", ("invalid IBAN",),
    ),
    "signatory without a name": (
        delete(*JANIS, "name"), "client[0].signatory[0].name", ("missing",),
    ),
    "signatory without a right": (
        delete(*JANIS, "right"), "client[0].signatory[0].right", ("missing",),
    ),
    "signatory certificate not found": (
        setting(*JANIS, "certificate", value="certs/gone.pem"),
        "client[0].signatory[0].certificate",
        ("file not found", "gone.pem"),
    ),
    "signatory certificate not a certificate": (
        setting(*JANIS, "certificate", value="classification.csv"),
        "client[0].signatory[0].certificate", ("not a PEM X.509 certificate", "classification.csv"),
    ),
    "signatory certificate a folder": (
        setting(*JANIS, "certificate", value="certs"), "client[0].signatory[0].certificate",
        ("cannot read",),
    ),
    "two signatories, one certificate": (
        setting(*LIGA, "certificate", value="certs/janis.pem"),
        "client[0].signatory[1].certificate",
        ("same certificate as client[0].signatory[0]",),
    ),
    "two signatories, two cards of one person": (  # an outside tester's four-eyes bypass
        both(setting(*JANIS, "certificate", value="certs/anna.pem"),
             setting(*LIGA, "certificate", value="certs/anna-card2.pem")),
        "client[0].signatory[1].certificate",
        ("the same person (PNOLV-50746681115) as client[0].signatory[0]", "configured once"),
    ),
    "card date unreadable": (
        setting(*LIGA, "valid_until", value="2027-13-01"), "client[0].signatory[1].valid_until",
        ("not a date", "2027-13-01"),
    ),
    "card date with a time": (
        setting(*LIGA, "valid_from", value=dt.datetime(2026, 1, 1, 8, 0)),
        "client[0].signatory[1].valid_from", ("not a date",),
    ),
    "card valid until before valid from": (
        setting(*LIGA, "valid_until", value="2025-12-31"), "client[0].signatory[1].valid_until",
        ("before valid_from", "2026-01-01"),
    ),
    "signatory CA not found": (
        setting("signing", "signatory_ca", value=["ca/gone.pem"]), "signing.signatory_ca[0]",
        ("file not found", "gone.pem"),
    ),
    "signatory CA not a certificate": (
        setting("signing", "signatory_ca", value=["ca/eparaksts.pem", "classification.csv"]),
        "signing.signatory_ca[1]", ("not a PEM X.509 certificate",),
    ),
    "signatory CA as a single string": (
        setting("signing", "signatory_ca", value="ca/eparaksts.pem"), "signing.signatory_ca",
        ("expected an array of strings",),
    ),
    "signatures asked for without a signatory CA": (
        delete("signing", "signatory_ca"), "signing.signatory_ca",
        ("missing", "client[0].account[0].authorisation"),
    ),
    "CRL not found": (
        setting("signing", "signatory_crl", value=["ca/gone.crl"]), "signing.signatory_crl[0]",
        ("file not found",),
    ),
    "CRL not a CRL": (
        setting("signing", "signatory_crl", value=["ca/eparaksts.pem"]), "signing.signatory_crl[0]",
        ("not an X.509 CRL",),
    ),
    "budget account without a classifier": (
        delete("gateway", "classification"), "gateway.classification",
        ("missing", "client[0].account[0].budget"),
    ),
    "classifier not found": (
        setting("gateway", "classification", value="gone.csv"), "gateway.classification",
        ("file not found", "gone.csv"),
    ),
    "authorisation days zero": (
        setting("gateway", "authorisation_days", value=0), "gateway.authorisation_days",
        ("at least 1",),
    ),
    "fx wait days negative": (
        setting("gateway", "fx_wait_days", value=-1), "gateway.fx_wait_days", ("at least 0",),
    ),
    "large-day threshold with three decimals": (
        setting("gateway", "large_day_threshold", value="700000.001"),
        "gateway.large_day_threshold", ("more than 2 decimals",),
    ),
    "large-day threshold of zero": (
        setting("gateway", "large_day_threshold", value="0"), "gateway.large_day_threshold",
        ("must be above 0", "every same-day EUR payment"),
    ),
    "rescan beyond an hour": (
        setting("gateway", "rescan_seconds", value=10_000_000_000), "gateway.rescan_seconds",
        ("at most 3600",),
    ),
    "settle beyond an hour": (
        setting("gateway", "settle_seconds", value=99999999999999999999),
        "gateway.settle_seconds", ("at most 3600",),
    ),
    "idle timeout beyond a day": (
        setting("sftp", "idle_timeout_seconds", value=10**10), "sftp.idle_timeout_seconds",
        ("at most 86400",),
    ),
    "login timeout beyond ten minutes": (
        setting("sftp", "login_timeout_seconds", value=10**10), "sftp.login_timeout_seconds",
        ("at most 600",),
    ),
    "penalty beyond a day": (
        setting("sftp", "auth_penalty_seconds_max", value=10**10),
        "sftp.auth_penalty_seconds_max", ("at most 86400",),
    ),
    "large-day announcement time in words": (
        setting("gateway", "large_day_announce_by", value="noon"),
        "gateway.large_day_announce_by", ("not a local time HH:MM", "'noon'"),
    ),
    "metrics listen without port": (
        setting("metrics", "listen", value="9464"), "metrics.listen", ("HOST:PORT",),
    ),
    "waiting bytes zero": (
        setting("sftp", "client_waiting_bytes_max", value=0), "sftp.client_waiting_bytes_max",
        ("at least 1",),
    ),
    "client waiting bytes as text": (
        setting("client", 0, "waiting_bytes_max", value="1G"), "client[0].waiting_bytes_max",
        ("expected int", "'1G'"),
    ),
    "SHA-1 key exchange": (
        setting("sftp", "kex_algorithms",
                value=["curve25519-sha256", "diffie-hellman-group14-sha1"]),
        "sftp.kex_algorithms[1]", ("unknown or weak algorithm", "'diffie-hellman-group14-sha1'"),
    ),
    "secp256k1 key exchange": (
        setting("sftp", "kex_algorithms", value=["ecdh-sha2-1.3.132.0.10"]),
        "sftp.kex_algorithms[0]", ("unknown or weak algorithm",),
    ),
    "SHA-1 MAC": (
        setting("sftp", "macs", value=["hmac-sha1"]), "sftp.macs[0]",
        ("unknown or weak algorithm", "'hmac-sha1'"),
    ),
    "64-bit MAC": (
        setting("sftp", "macs", value=["umac-64-etm@openssh.com"]), "sftp.macs[0]",
        ("unknown or weak algorithm",),
    ),
    "ssh.com MAC": (
        setting("sftp", "macs", value=["hmac-sha256@ssh.com"]), "sftp.macs[0]",
        ("unknown or weak algorithm",),
    ),
    "CBC cipher": (
        setting("sftp", "ciphers", value=["aes256-cbc"]), "sftp.ciphers[0]",
        ("unknown or weak algorithm", "'aes256-cbc'"),
    ),
    "mistyped cipher gets a suggestion": (
        setting("sftp", "ciphers", value=["chacha20-poly1305"]), "sftp.ciphers[0]",
        ("did you mean chacha20-poly1305@openssh.com?",),
    ),
    "no ciphers at all": (
        setting("sftp", "ciphers", value=[]), "sftp.ciphers", ("at least one",),
    ),
    "algorithms as one string": (
        setting("sftp", "macs", value="hmac-sha2-256-etm@openssh.com"), "sftp.macs",
        ("expected an array of strings",),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("mutate", "key_path", "words"), MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_names_key_path_and_problem(
    config_dir: Path, mutate: Mutation, key_path: str, words: tuple[str, ...]
) -> None:
    """A wrong configuration is refused with one line `key.path: problem` that names the
    offending value, so the operator can fix it without reading a traceback."""
    config = copy.deepcopy(full_config())
    mutate(config, config_dir)
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    error = caught.value
    assert error.path == key_path
    for word in words:
        assert word in error.problem
    assert str(error) == f"{key_path}: {error.problem}"
    assert "\n" not in str(error)


def test_mistyped_key_is_refused_with_the_key_meant(config_dir: Path) -> None:
    """The issue's example: `max_paymnet = "5.00"` no longer loads as an account without a
    limit; the operator reads the key path and the key that was probably meant."""
    config = full_config()
    config["client"][0]["account"][1]["max_paymnet"] = "5.00"
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert str(caught.value) == (
        "client[0].account[1].max_paymnet: unknown key (did you mean max_payment?)"
    )


# (what the operator changed in the file text, the one line they must see)
TYPOS_FIRST = {
    # Without [signing], the accounts with authorisation look as if the CA were missing.
    "mistyped [signing]": (
        ("[signing]", "[signin]"), "signin: unknown table (did you mean signing?)",
    ),
    # [[client.account]] still makes `client`, but a table rather than an array of tables.
    "mistyped [[client]]": (
        ("[[client]]", "[[clients]]"), "clients: unknown table (did you mean client?)",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("edit", "line"), TYPOS_FIRST.values(), ids=TYPOS_FIRST.keys())
def test_a_typo_is_named_before_what_follows_from_it(
    config_dir: Path, edit: tuple[str, str], line: str
) -> None:
    """SPEC §3: an unknown key or table is refused first, since it explains every other
    mistake that follows from it: the operator is told about `[signin]`, not about a
    certificate authority that is in the file under the mistyped name."""
    path = write(config_dir, full_config())
    text = path.read_text(encoding="utf-8")
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1]), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value) == line


def test_a_typo_is_named_before_a_mistake_in_another_table(config_dir: Path) -> None:
    """A wrong value in one table does not hide an unknown key in a later one."""
    config = full_config()
    del config["client"][0]["name"]
    config["metrics"]["listne"] = "127.0.0.1:9100"
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert str(caught.value) == "metrics.listne: unknown key (did you mean listen?)"


def test_a_mistyped_required_key_is_named_before_a_mistake_in_an_earlier_table(
    config_dir: Path,
) -> None:
    """A required key mistyped (`ibn` for `iban`) is an unknown key too: it is named
    before a wrong value read earlier (`bic`), which used to win."""
    config = full_config()
    config["gateway"]["bic"] = "X"
    account = config["client"][0]["account"][0]
    account["ibn"] = account.pop("iban")
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert str(caught.value) == "client[0].account[0].ibn: unknown key (did you mean iban?)"


def test_unknown_key_far_from_any_known_one_gets_no_guess(config_dir: Path) -> None:
    """A key like nothing the product knows is refused without a misleading suggestion."""
    config = full_config()
    config["sftp"]["banana"] = 1
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert str(caught.value) == "sftp.banana: unknown key"


@pytest.mark.parametrize(
    ("place", "where", "key", "meant"),
    [
        (("client", 0, "account", 0), "client[0].account[0]", "IBAN", "iban"),
        (("client", 0), "client[0]", "ID", "id"),
        (("gateway",), "gateway", "BIC", "bic"),
    ],
    ids=["account IBAN", "client ID", "gateway BIC"],
)
def test_a_key_in_capitals_is_named_with_the_key_meant(
    config_dir: Path, place: tuple[object, ...], where: str, key: str, meant: str
) -> None:
    """Keys are lower case: `IBAN = "LV…"` meant for `iban` is named as the unknown key it
    is, with the key meant — not reported as `iban: missing`, nor without a guess."""
    config = full_config()
    table: Any = config
    for step in place:
        table = table[step]
    table[key] = table.pop(meant, "TRELLV22")
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert str(caught.value) == f"{where}.{key}: unknown key (did you mean {meant}?)"


def test_a_configuration_saved_with_a_byte_order_mark_loads(config_dir: Path) -> None:
    """Windows editors may save UTF-8 with a BOM; TOML is UTF-8 all the same."""
    path = write(config_dir, full_config())
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load(path).clients


def test_missing_authorized_keys_file_is_named_as_in_the_spec(config_dir: Path) -> None:
    """The example from the specification: the key path, 'file not found' and the resolved path."""
    config = full_config()
    config["client"][1]["user"][0]["authorized_keys"] = "keys/gone.pub"
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert str(caught.value) == (
        f"client[1].user[0].authorized_keys: file not found: {config_dir / 'keys' / 'gone.pub'}"
    )


def test_keys_are_found_relative_to_the_config_not_the_working_directory(
    config_dir: Path,
) -> None:
    """A key file lying next to the working directory, but not the config, is not picked up."""
    config = full_config()
    config["client"][0]["user"][1]["authorized_keys"] = "stray.pub"
    Path("stray.pub").write_text(PERSON_KEYS, encoding="utf-8")  # in the working directory
    with pytest.raises(ConfigError) as caught:
        load(write(config_dir, config))
    assert caught.value.path == "client[0].user[1].authorized_keys"
    assert str(config_dir / "stray.pub") in caught.value.problem


def test_person_key_needs_no_from(config_dir: Path) -> None:
    """Only information systems must name their addresses; a person's key without from= is fine."""
    config = full_config()
    (config_dir / "keys" / "anna.pub").write_text(NO_FROM, encoding="utf-8")
    settings = load(write(config_dir, config))
    assert settings.clients[0].users[1].kind == "person"


def test_system_keys_with_from_pass(config_dir: Path) -> None:
    """A system user whose every key carries from= (alone or among other options) is accepted."""
    config = full_config()
    (config_dir / "keys" / "iestade-a-erp.pub").write_text(
        f'no-port-forwarding,from="10.0.0.1,10.0.0.2",command="internal-sftp -l INFO" '
        f"{public_key(5, 'one')}\n"
        f'from="192.0.2.0/24" {public_key(6, "two")}\n',
        encoding="utf-8",
    )
    settings = load(write(config_dir, config))
    assert settings.clients[0].users[0].kind == "system"


def test_missing_config_file(tmp_path: Path) -> None:
    """Pointing the daemon at a file that is not there says so and names the path."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "nope.toml")
    assert "not found" in str(caught.value)
    assert str(tmp_path / "nope.toml") in str(caught.value)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.mkdir(), id="a-folder"),
        pytest.param(lambda p: p.write_bytes(b'[gateway]\nbic = "\xff\xfe"\n'), id="not-utf8"),
    ],
)
def test_unreadable_config_file(tmp_path: Path, make: Callable[[Path], object]) -> None:
    """A configuration that cannot be read is refused with one line naming the file."""
    path = tmp_path / "gateway.toml"
    make(path)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "cannot read" in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_configuration_not_in_utf_8_names_the_line(tmp_path: Path) -> None:
    """A file saved in Latin-1 (an editor's default) is refused naming the line of the
    first byte UTF-8 cannot read, not only its offset (a tester)."""
    path = tmp_path / "gateway.toml"
    path.write_bytes(b'[gateway]\ntimezone = "Europe/Riga"\n# Kase \xa7 7\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "not UTF-8" in str(caught.value) and "line 3" in str(caught.value), caught.value


@pytest.mark.parametrize(
    "text",
    [
        '[gateway]\nspool_dir = "spool"\nspool_dir = "again"\n',
        "[gateway\n",
        '[gateway]\ncutoff_internal = 18:00"\n',
    ],
    ids=["duplicate-key", "unclosed-table", "unquoted-time"],
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    """A file that is not TOML is refused with the parser's reason and position on one line."""
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "not valid TOML" in str(caught.value)
    assert "line" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_example_configuration_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    """`config/gateway.example.toml` is a file the gateway accepts, and the values it shows for
    the gateway-wide keys are the defaults a file without them gets."""
    import dataclasses
    import shutil

    example = Path(__file__).parents[2] / "config" / "gateway.example.toml"
    shutil.copy(example, tmp_path / "gateway.toml")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "iestade-a-erp.pub").write_text(ERP_KEYS, encoding="utf-8")
    (tmp_path / "keys" / "iestade-a-accountant.pub").write_text(PERSON_KEYS, encoding="utf-8")
    shown = load(tmp_path / "gateway.toml")
    (tmp_path / "minimal.toml").write_text("[gateway]\n", encoding="utf-8")
    defaults = load(tmp_path / "minimal.toml")
    for item in dataclasses.fields(Settings):
        if item.name in ("config_path", "clients", "_by_user", "log_file"):
            continue
        assert getattr(shown, item.name) == getattr(defaults, item.name), item.name
    (client,) = shown.clients
    assert client.waiting_bytes_max is None
    assert [(a.authorisation, a.budget) for a in client.accounts] == [(0, False)]


def test_a_toml_local_time_is_a_time_too(config_dir: Path) -> None:
    """`eod_time = 18:30:00` (TOML's local time, no quotes) is the same as `"18:30"`."""
    text = write(config_dir, full_config()).read_text(encoding="utf-8")
    assert 'eod_time = "18:30"' in text
    path = config_dir / "gateway.toml"
    path.write_text(text.replace('eod_time = "18:30"', "eod_time = 18:30:00"), encoding="utf-8")
    assert load(path).eod_time == dt.time(18, 30)
