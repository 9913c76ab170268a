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

from gateway.errors import ConfigError
from gateway.settings import Settings, load


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
        },
        "sftp": {"listen": "0.0.0.0:2022", "host_key": "ssh_host_ed25519_key"},
        "signing": {"key": "signing/gateway.key", "certificate": "signing/gateway.crt"},
        "client": [
            {
                "id": "iestade-a",
                "name": "Budžeta iestāde A",
                "registration_number": "90000000001",
                "notifications": True,
                "account": [
                    {
                        "iban": "LV31TREL9100000000001",
                        "currency": "EUR",
                        "overdraft": "1000.50",
                        "max_payment": 2500,
                        "daily_limit": 12.5,
                    },
                    {
                        "iban": IBAN_A2,
                        "currency": "EUR",
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


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration folder with key files; the working directory is somewhere else."""
    folder = tmp_path / "etc" / "ekase"
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
    assert first.daily_limit_minor == 1250  # 12.5 EUR
    assert (second.iban, second.overdraft_minor, second.max_payment_minor) == (IBAN_A2, 0, None)
    (b_account,) = b.accounts
    assert (b_account.currency, b_account.status, b_account.daily_limit_minor) == (
        "JPY",
        "blocked",
        100000,  # JPY has no minor unit
    )
    assert b.notifications is False
    assert b.registration_number == ""

    erp, anna = a.users
    assert erp.authorized_keys == config_dir / "keys" / "iestade-a-erp.pub"
    assert (erp.kind, erp.mode, anna.kind, anna.mode) == ("system", "manage", "person", "view")
    found = settings.user("iestade-b-erp")
    assert found is not None
    assert found[0].id == "iestade-b"
    assert settings.user("nobody") is None
    assert settings.client("iestade-a") is a


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


ACCOUNT = ("client", 0, "account", 0)
USER = ("client", 0, "user", 0)
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
    "duplicate client id": (
        setting("client", 1, "id", value="iestade-a"), "client[1].id",
        ("duplicate client id", "iestade-a"),
    ),
    "duplicate account written differently": (
        setting("client", 1, "account", 0, "iban", value="lv31 trel 9100 0000 0000 1"),
        "client[1].account[0].iban", ("duplicate account", "LV31TREL9100000000001"),
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
        ("not a time", "'25:00'"),
    ),
    "time in words": (
        setting("gateway", "eod_time", value="6pm"), "gateway.eod_time", ("not a time", "'6pm'"),
    ),
    "time as a number": (
        setting("gateway", "cutoff_external", value=1530), "gateway.cutoff_external",
        ("expected str", "1530"),
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
        ("positive", "-5"),
    ),
    "amount not a number": (
        setting(*ACCOUNT, "max_payment", value="lots"), "client[0].account[0].max_payment",
        ("not a number", "lots"),
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
    "unsupported database": (
        setting("gateway", "database_url", value="mysql://db/ekase"), "gateway.database_url",
        ("mysql://db/ekase",),
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
