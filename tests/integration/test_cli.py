"""The `ekase-gateway` command as an operator types it (real subprocesses, a real config)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from gateway import cli, stdout_gone
from gateway.samples import iban_lv
from tests.pipeline_fixtures import A_BLOCKED, A_CLOSED, A_MAIN, B_MAIN, write_config

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
SUBCOMMANDS = [
    ["run"], ["scan"], ["demo"], ["status"], ["ledger"], ["ledger", "fund"],
    ["ledger", "balance"], ["ledger", "accounts"], ["eod"], ["report"], ["verify"], ["keys"],
    ["keys", "init"], ["sshd-config"], ["db"], ["db", "upgrade"],
]


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def test_accounts_lists_the_treasurys_own_accounts_with_their_balances(config: Path) -> None:
    """`ledger accounts` lists every ledger account, the treasury's own too (funding, and a
    clearing and a position account per currency, whose IBANs no configuration names),
    with kind, owner, status and balance: funded money is on the client's account and
    off the funding account, and every currency's accounts add up to zero."""
    funded = gateway("ledger", "fund", "-c", str(config), "--iban", B_MAIN, "--amount", "1000.50")
    assert funded.returncode == 0, funded.stderr
    listed = gateway("ledger", "accounts", "-c", str(config))
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    by_iban = {row[0]: row for row in rows}
    assert by_iban[B_MAIN][1:] == ["client", "iestade-b", "open", "1000.50", "EUR"]
    kinds = Counter(row[1] for row in rows)
    assert kinds["clearing"] == kinds["position"] == 15 and kinds["funding"] >= 1, kinds
    [funding] = [row for row in rows if row[1] == "funding" and row[-1] == "EUR"]
    assert funding[-2] == "-1000.50"
    sums: Counter[str] = Counter()
    for row in rows:
        sums[row[-1]] += Decimal(row[-2])
    assert set(sums.values()) == {0}, sums


def test_fund_then_balance_prints_the_amount(config: Path) -> None:
    """`ledger fund --amount 1000.50` then `ledger balance` prints `1000.50 EUR` (SPEC §7)."""
    funded = gateway("ledger", "fund", "-c", str(config), "--iban", B_MAIN, "--amount", "1000.50")
    assert funded.returncode == 0, funded.stderr
    shown = gateway("ledger", "balance", "-c", str(config), "--iban", B_MAIN)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "1000.50 EUR"


def test_balance_of_an_account_configured_since_the_last_start_says_how_to_create_it(
    config: Path,
) -> None:
    """An account added to the configuration is in the ledger once a writing command ran:
    `ledger balance` before that says so and names one, rather than "no such account"."""
    assert gateway("db", "upgrade", "-c", str(config)).returncode == 0
    added = iban_lv("TREL", 9_100_000_000_999)
    config.write_text(config.read_text() + f'[[client.account]]\niban = "{added}"\n'
                      'currency = "EUR"\n')  # fmt: skip
    for iban, words in ((added, "db upgrade"), (iban_lv("TREL", 9_100_000_000_998), "or the")):
        shown = gateway("ledger", "balance", "-c", str(config), "--iban", iban)
        assert shown.returncode == 2 and words in shown.stderr, shown.stderr
    assert gateway("db", "upgrade", "-c", str(config)).returncode == 0
    shown = gateway("ledger", "balance", "-c", str(config), "--iban", added)
    assert shown.stdout.strip() == "0.00 EUR", shown.stderr


def test_fund_with_the_same_key_funds_once(config: Path) -> None:
    """An operator repeating `ledger fund` with the same --key does not fund twice, and is
    told so: the repeat names what the key booked the first time, exit 0 (the funding
    asked for is there), rather than printing the balance as if it had booked."""
    words = ("ledger", "fund", "-c", str(config), "--iban", A_MAIN, "--amount", "10.00",
             "--key", "op-42")
    first = gateway(*words)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "10.00 EUR\n"
    # Money entering the ledger is in the journal (an auditor found no line of it, stop 45).
    [funded] = [json.loads(line) for line in first.stderr.splitlines() if "ledger.funded" in line]
    assert (funded["iban"], funded["amount"], funded["currency"], funded["key"]) == (
        A_MAIN, "10.00", "EUR", "op-42"
    ) and funded["reference"].startswith("FUND"), funded
    again = gateway(*words)
    assert again.returncode == 0, again.stderr
    assert "ledger.funded" not in again.stderr  # nothing booked
    told, balance = again.stdout.splitlines()
    assert told.startswith(
        f"nothing booked: key op-42 was used already for 10.00 EUR to {A_MAIN} (FUND"
    ), again.stdout
    assert balance == "10.00 EUR"
    shown = gateway("ledger", "balance", "-c", str(config), "--iban", A_MAIN)
    assert shown.stdout.strip() == "10.00 EUR"


@pytest.mark.parametrize("key", ["", "  "])
def test_fund_with_an_empty_key_is_refused(config: Path, key: str) -> None:
    """`--key "$KEY"` with KEY unset would fund anew on every retry of the script: an
    empty key is a usage error (exit 2, one line), and nothing is booked."""
    assert gateway("db", "upgrade", "-c", str(config)).returncode == 0
    done = gateway("ledger", "fund", "-c", str(config), "--iban", A_MAIN,
                   "--amount", "10.00", "--key", key)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "ekase-gateway: --key is empty: give the funding's own key, or leave --key out"
    ]
    shown = gateway("ledger", "balance", "-c", str(config), "--iban", A_MAIN)
    assert shown.stdout.strip() == "0.00 EUR"


@pytest.mark.parametrize(
    ("iban", "amount"), [(A_MAIN, "20.00"), (B_MAIN, "10.00")], ids=["amount", "account"]
)
def test_fund_with_a_used_key_and_another_funding_is_refused(
    config: Path, iban: str, amount: str
) -> None:
    """`ledger fund --key f1` again with another amount or account books nothing — the key
    did its funding already — so it exits 2 with one line saying what the key booked,
    instead of exit 0 and a balance that hides that the new amount never arrived."""
    first = gateway("ledger", "fund", "-c", str(config), "--iban", A_MAIN,
                    "--amount", "10.00", "--key", "f1")
    assert first.returncode == 0, first.stderr
    done = gateway("ledger", "fund", "-c", str(config), "--iban", iban,
                   "--amount", amount, "--key", "f1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"ekase-gateway: --key f1: used already for 10.00 EUR to {A_MAIN} (FUND"
    ), done.stderr
    assert "nothing booked now" in lines[0]
    for account, balance in ((A_MAIN, "10.00 EUR"), (B_MAIN, "0.00 EUR")):
        shown = gateway("ledger", "balance", "-c", str(config), "--iban", account)
        assert shown.stdout.strip() == balance


@pytest.mark.parametrize(
    ("iban", "amount", "words"),
    [
        ("LV00TREL0000000000000", "1.00", "invalid IBAN"),
        (A_MAIN, "1.005", "more than 2 decimals"),
        (A_MAIN, "-5", "positive"),
        (A_MAIN, "abc", "not a number"),
        (A_MAIN, "1e3", "not a plain decimal"),
        (A_MAIN, "1_000", "not a plain decimal"),
        (A_MAIN, "+5", "not a plain decimal"),
    ],
)
def test_bad_fund_exits_2_with_one_line(config: Path, iban: str, amount: str, words: str) -> None:
    """A bad IBAN or an amount with three decimals is refused: exit 2, one clear line. An
    amount is written as pain.001 writes one: `1e3` is not taken for 1000.00."""
    done = gateway("ledger", "fund", "-c", str(config), "--iban", iban, "--amount", amount)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("iban", "words"), [(A_BLOCKED, "the account to credit is blocked"),
     (A_CLOSED, "the account to credit is closed")]
)
def test_funding_an_account_that_takes_no_credit_says_why_in_words(
    config: Path, iban: str, words: str
) -> None:
    """A blocked or closed account cannot be funded: exit 2 and an English line, not the
    ledger's code for it (`credit_blocked`, a tester)."""
    done = gateway("ledger", "fund", "-c", str(config), "--iban", iban, "--amount", "5")
    assert done.returncode == 2
    assert done.stderr.strip() == f"ekase-gateway: cannot fund {iban}: {words}", done.stderr


def test_funding_beyond_what_a_statement_can_state_exits_2_naming_the_account(
    config: Path,
) -> None:
    """A balance a statement cannot state (ISO 20022 amounts have 18 digits) is refused with
    one line, exit 2, naming the account that would hold it: the client's, or the treasury's
    funding account, whose balance below zero is all the money funded (it was the client's
    account named, and the bound the database's 64 bits, past what statements can say)."""
    most = "9999999999999999.99"

    def fund(iban: str, amount: str, key: str) -> subprocess.CompletedProcess[str]:
        return gateway("ledger", "fund", "-c", str(config), "--iban", iban, "--amount", amount,
                       "--key", key)  # fmt: skip

    assert fund(A_MAIN, "9999999999999999.98", "most").returncode == 0
    for iban, holder in ((A_MAIN, A_MAIN), (B_MAIN, "LV")):
        done = fund(iban, "0.02", f"more-{iban}")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert f"{holder}" in lines[0] and f"more than {most}" in lines[0], done.stderr
    assert iban not in lines[0] and "below zero" in lines[0], lines
    assert fund(B_MAIN, "0.01", "last-cent").returncode == 0
    shown = gateway("ledger", "balance", "-c", str(config), "--iban", A_MAIN)
    assert shown.stdout.split()[0] == "9999999999999999.98", shown.stdout


def test_configuration_error_is_one_line_exit_2(tmp_path: Path) -> None:
    """A broken configuration names the key path and the problem, exit 2, no traceback."""
    config = write_config(tmp_path)
    text = config.read_text().replace('currency = "EUR"', 'currency = "EURO"', 1)
    config.write_text(text)
    done = gateway("db", "upgrade", "-c", str(config))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "currency" in done.stderr and "EURO" in done.stderr


def test_mistyped_configuration_key_is_refused_at_start(tmp_path: Path) -> None:
    """`max_paymnet` for `max_payment` is not silently ignored: exit 2, one line on stderr
    naming the key path and the key probably meant, no traceback, nothing created."""
    config = write_config(tmp_path)
    text = config.read_text().replace("max_payment =", "max_paymnet =", 1)
    config.write_text(text)
    done = gateway("db", "upgrade", "-c", str(config))
    assert done.returncode == 2
    assert done.stderr == (
        "ekase-gateway: client[0].account[1].max_paymnet: unknown key "
        "(did you mean max_payment?)\n"
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "spool").exists()


@pytest.mark.parametrize(
    "words",
    [
        ["rates", "show", "--date", "2026-10-30"],
        ["status"],
        ["ledger", "balance", "--iban", B_MAIN],
    ],
    ids=lambda w: " ".join(w[:2]),
)
def test_a_reader_that_went_away_ends_the_command_quietly(config: Path, words: list[str]) -> None:
    """`ekase-gateway rates show … | head -3` (SPEC §9): when the reader of standard output
    has gone, the command ends as `cat` or `ls` would — nothing on stderr, no traceback, the
    status of a program SIGPIPE ended — whatever the command."""
    assert gateway("db", "upgrade", "-c", str(config)).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = subprocess.run(
            [EXE, *words, "-c", str(config)], stdout=write_end, stderr=subprocess.PIPE,
            text=True, timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == stdout_gone.EXIT_READER_GONE == 141


def test_missing_configuration_file(tmp_path: Path) -> None:
    """Pointing at a file that is not there is a usage error, not a crash."""
    done = gateway("status", "-c", str(tmp_path / "nope.toml"))
    assert done.returncode == 2 and "not found" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w))
def test_every_command_has_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` works for every command of SPEC §9 and says what it is for (in-process:
    the same parser the console script runs)."""
    with pytest.raises(SystemExit) as stop:
        cli.main([*words, "--help"])
    assert stop.value.code == 0
    assert "usage: ekase-gateway" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("words", "line"),
    [
        ([], "ekase-gateway: the following arguments are required: COMMAND"),
        (["scan"], "ekase-gateway: scan: the following arguments are required: -c/--config"),
        (["ledger", "fund"],
         "ekase-gateway: ledger fund: the following arguments are required: -c/--config, --iban, "
         "--amount"),
        # balance reads only: an amount there is a mistake, not something it ignores
        (["ledger", "balance", "-c", "x.toml", "--iban", "LV1", "--amount", "5"],
         "ekase-gateway: unrecognized arguments: --amount 5"),
    ],
    ids=["no-command", "scan", "ledger-fund", "balance-amount"],
)
def test_usage_error_names_the_program_once(words: list[str], line: str) -> None:
    """A missing argument reads `ekase-gateway: <command>: …`, not
    `ekase-gateway: ekase-gateway …`: exit 2, one line."""
    done = gateway(*words)
    assert done.returncode == 2
    assert done.stderr == line + "\n"


def test_version_prints_the_installed_version() -> None:
    """`ekase-gateway --version` prints the program and the installed package's version."""
    from importlib.metadata import version

    done = gateway("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ekase-gateway {version('ekase-gateway')}\n"


def test_unknown_command_is_usage_error() -> None:
    """A typo gets exit 2 and one line, never a traceback."""
    done = gateway("fnud")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_db_upgrade_twice(config: Path) -> None:
    """`db upgrade` creates the schema and running it again is harmless."""
    for _ in range(2):
        done = gateway("db", "upgrade", "-c", str(config))
        assert done.returncode == 0, done.stderr
        assert "database ready" in done.stdout


def test_verify_of_a_path_that_names_nothing_is_a_usage_error(tmp_path: Path) -> None:
    """A mistyped path is exit 2 with one line (an auditor's script tells it from an
    altered file, exit 1)."""
    from datetime import UTC, datetime

    from gateway.keys import init_signing_key

    init_signing_key(tmp_path / "s.key", tmp_path / "s.crt", now=datetime.now(UTC))
    gone = tmp_path / "nonexist.xml"
    done = gateway("verify", str(gone), "--cert", str(tmp_path / "s.crt"))
    assert (done.returncode, done.stdout) == (2, ""), done
    assert done.stderr == f"ekase-gateway: {gone}: no such file (nor its seal)\n"


def test_verify_accepts_current_or_next_certificate(tmp_path: Path) -> None:
    """During a key rollover a client trusts both certificates: `verify --cert NEXT --cert
    CURRENT` accepts a file sealed with the current key; the next certificate alone does not."""
    import datetime as dt

    from gateway.files import write_atomically
    from gateway.keys import init_signing_key
    from gateway.outbound.seal import Sealer

    now = dt.datetime.now(dt.UTC)
    for name in ("current", "next"):
        init_signing_key(tmp_path / f"{name}.key", tmp_path / f"{name}.crt", now=now)
    sealer = Sealer.load(tmp_path / "current.key", tmp_path / "current.crt", clock=lambda: now)
    document = tmp_path / "answer.xml"
    document.write_bytes(b"<Document/>\n")
    write_atomically(tmp_path / "answer.xml.sig", sealer.sign_file(document))
    both = gateway("verify", str(document), "--cert", str(tmp_path / "next.crt"),
                   "--cert", str(tmp_path / "current.crt"))
    assert both.returncode == 0, both.stdout + both.stderr
    only_next = gateway("verify", str(document), "--cert", str(tmp_path / "next.crt"))
    assert only_next.returncode == 1 and "untrusted" in only_next.stdout


def test_a_key_and_certificate_that_do_not_go_together_are_refused_before_anything_is_written(
    config: Path, tmp_path: Path
) -> None:
    """The certificate of another key in place of the gateway's: `keys init` says so (it
    said "already present" for both), and `scan` refuses to start before it makes a
    database or a spool (it migrated both, then refused) — exit 2, one line each."""
    import datetime as dt

    from gateway.keys import init_signing_key

    key, cert = config.parent / "signing/gateway.key", config.parent / "signing/gateway.crt"
    init_signing_key(key, cert, now=dt.datetime.now(dt.UTC))
    init_signing_key(tmp_path / "other.key", tmp_path / "other.crt", now=dt.datetime.now(dt.UTC))
    cert.write_bytes((tmp_path / "other.crt").read_bytes())
    said = f"ekase-gateway: signing.key: {key} does not match signing.certificate: {cert}"
    for words in (["keys", "init"], ["scan", "--once"]):  # (scan logs it too, as JSON)
        done = gateway(*words, "-c", str(config))
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.splitlines()[-1] == said, words
    assert not (config.parent / "spool").exists()


def test_keys_init_says_what_it_did(config: Path) -> None:
    """`keys init` reports what happened to the signing key: created the first time,
    present the second, and with only the certificate removed, kept (clients pinned it)
    with a new certificate issued — not "created", which would send an operator to hand
    out a key that never changed."""
    from gateway.settings import load

    key, cert = config.parent / "signing/gateway.key", config.parent / "signing/gateway.crt"
    host = load(config).sftp.host_key
    host_there = host.exists()
    first = gateway("keys", "init", "-c", str(config))
    assert first.returncode == 0, first.stderr
    assert f"signing key {key}: created; certificate {cert}: created\n" in first.stdout
    host_said = "already present" if host_there else "created"
    assert f"SFTP host key {host}: {host_said}, SHA256:" in first.stdout, first.stdout
    again = gateway("keys", "init", "-c", str(config))
    assert f"signing key {key}: already present; certificate {cert}: already present" in (
        again.stdout
    )
    assert f"SFTP host key {host}: already present, SHA256:" in again.stdout, again.stdout
    # the line a client pins the server's key with (a newcomer had no way to it: a tester)
    sftp = load(config).sftp
    shown = again.stdout.splitlines()[-1]
    assert shown.startswith("for the clients' known_hosts (the built-in server's key): "), shown
    pinned = shown.split(": ", 1)[1]
    assert pinned.startswith(f"[{sftp.host}]:{sftp.port} ssh-ed25519 AAAA"), pinned
    key_line = subprocess.run(["ssh-keygen", "-y", "-f", str(host)], capture_output=True,
                              text=True, check=True).stdout.split()  # fmt: skip
    assert pinned.split()[1:] == key_line[:2]
    kept = key.read_bytes()
    cert.unlink()
    reissued = gateway("keys", "init", "-c", str(config))
    assert reissued.returncode == 0, reissued.stderr
    assert (
        f"signing key {key}: already present, kept; certificate {cert}: was missing, "
        "issued anew\n"
    ) in reissued.stdout
    assert key.read_bytes() == kept and cert.is_file()


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["scan"], ["ledger", "balance"], ["status"]]
)
def test_a_database_url_naming_no_database_exits_2_naming_the_key(
    tmp_path: Path, postgres_server: str, command: list[str]
) -> None:
    """SPEC §3: a wrong configuration gets exit 2 and one line naming the key path. A
    PostgreSQL URL naming a database (or a user) the server does not have is one: it
    exited 1, "database unavailable", which the unit restarts every few seconds for ever
    (`RestartPreventExitStatus=2`). A server that does not answer stays exit 1. `status`
    says it the same way (it showed the database "unreachable", exit 1), and `scan` does
    not also log it as a fault of ours (`scan.fault`, the alert for the machine's)."""
    from sqlalchemy.engine import make_url

    wrong = make_url(postgres_server).set(database="ekase_no_such_database")
    config = write_config(tmp_path, database_url=wrong.render_as_string(hide_password=False))
    extra = {"scan": ["--once"], "balance": ["--iban", A_MAIN]}.get(command[-1], [])
    done = gateway(*command, "-c", str(config), *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    [said] = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert said.startswith("ekase-gateway: gateway.database_url: ") and (
        'database "ekase_no_such_database" does not exist' in said
    ), said
    assert "scan.fault" not in done.stderr, done.stderr


def test_a_daemon_that_cannot_reach_its_database_at_start_says_so_in_its_log(
    tmp_path: Path,
) -> None:
    """A daemon started while its PostgreSQL is down exits 1 (systemd starts it again) with
    one line on stderr, and its log file says so too (`daemon.start_failed`, kind
    `database`): an operator watching the log saw nothing (a tester)."""
    config = write_config(
        tmp_path, database_url="postgresql+psycopg://x@127.0.0.1:1/x", log_file="gateway.jsonl"
    )
    done = gateway("run", "-c", str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("ekase-gateway: database unavailable"), done.stderr
    logged = [json.loads(line) for line in (tmp_path / "gateway.jsonl").read_text().splitlines()]
    [failed] = [e for e in logged if e["event"] == "daemon.start_failed"]
    assert failed["level"] == "error" and failed["kind"] == "database", failed
    assert "Connection refused" in failed["error"] or "connect" in failed["error"], failed


LEAVES = """
import os, sys
from pathlib import Path
from gateway import cli, files

paths = [Path(sys.argv[1], f"answer-{n}") for n in range(3)]
for path in paths:
    path.write_bytes(b"<Document/>")


def main(own_process: bool) -> int:
    files.sync_all(paths)  # as delivering and shelving a scan's answers does
    return 0


def left(code: int) -> None:
    print("left without teardown", flush=True)
    sys.exit(code)


cli.main = main
os._exit = left
sys.exit(cli.console())
"""


def test_a_command_that_synced_files_leaves_without_the_interpreters_teardown(
    tmp_path: Path,
) -> None:
    """`sync_all` syncs several files on a pool of threads; once the command is done they
    are ended, so that `console` still leaves at once (`os._exit`) instead of taking the
    heap apart object by object — after a big file, a noticeable part of a `scan`."""
    done = subprocess.run(
        [sys.executable, "-c", LEAVES, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "left without teardown\n"


@pytest.mark.parametrize(
    ("version_table", "schema"),
    [("gw_alembic_version", "gateway"), ("ledger_alembic_version", "ledger")],
)
def test_a_database_a_newer_release_upgraded_is_refused_in_one_line(
    config: Path, version_table: str, schema: str
) -> None:
    """An operator who rolls the code back after an upgrade: every command on a database
    at a revision this release does not have exits 2 with one line naming it (SPEC §9),
    writes nothing and migrates nothing. It was an Alembic traceback and exit 1 — the
    unit restarting the daemon for ever — and `status` told them to run `db upgrade`
    (tester D, stop 45)."""
    for words in (["keys", "init"], ["db", "upgrade"]):
        made = gateway(*words, "-c", str(config))
        assert made.returncode == 0, made.stderr
    database = config.parent / "spool" / "ledger.sqlite3"
    with sqlite3.connect(database) as conn:
        conn.execute(f"UPDATE {version_table} SET version_num = '0099'")
    for words in (["db", "upgrade"], ["scan", "--once"], ["status"], ["ledger", "accounts"]):
        done = gateway(*words, "-c", str(config))
        assert done.returncode == 2, (words, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (words, done.stderr)
        assert f"the database's {schema} schema is at revision 0099, which this release" in (
            lines[0]
        ), (words, lines)
    with sqlite3.connect(database) as conn:
        assert conn.execute(f"SELECT version_num FROM {version_table}").fetchall() == [("0099",)]
    if schema == "gateway":  # the other schema behind: not upgraded either (a review)
        with sqlite3.connect(database) as conn:
            conn.execute("UPDATE ledger_alembic_version SET version_num = '0003'")
        done = gateway("db", "upgrade", "-c", str(config))
        assert done.returncode == 2 and "gateway schema is at revision 0099" in done.stderr
        with sqlite3.connect(database) as conn:
            found = conn.execute("SELECT version_num FROM ledger_alembic_version").fetchall()
        assert found == [("0003",)]


def test_scan_whose_signing_key_is_missing_says_so_in_one_line(tmp_path: Path) -> None:
    """A start that cannot load its seal is the configuration's mistake: exit 2 and one line
    (it also logged it as `scan.fault`, a JSON line before it, the alert for the machine's
    faults)."""
    config = write_config(tmp_path)
    done = gateway("scan", "-c", str(config), "--once")
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("ekase-gateway: signing.key: ") and "not found" in line, line
    # and how a new installation makes them (a newcomer was not told: a tester)
    assert line.endswith(f"`ekase-gateway keys init -c {config}` makes them"), line
