"""An upgrade while the release before still runs (a tester): systemd/install.sh ran
`db upgrade` with the service still up, and a daemon from before ledger migration 0003 went
on booking on the migrated database without adding to `ledger_account_days`, which 0003
filled once from the postings and which this release's daily limits read — the payment it
booked in that window was never counted, and the account passed its `daily_limit` (AM14).
No release migrates while a daemon runs on the spool (`db_schema.upgrade_database`; the
release before keeps the heartbeat `run/daemon.json`, which names no host).

The old release is taken from this repository's own history (`git archive`), run with the
same virtual environment, on a clock set to a business morning (its seal certificate is
issued now, so the morning is the next business day).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import holidays
import pytest

from tests.conftest import need
from tests.integration.daemon_fixtures import free_port

REPO = Path(__file__).resolve().parents[2]
OLD_RELEASE = "0a1f675^"  # ledger schema 0002, gateway 0010: before ledger_account_days
A_EUR = "LV31TREL9100000000001"
B_EUR = "LV52TREL9100000000011"

pytestmark = pytest.mark.slow

LAUNCHER = '''
import datetime as dt, os, sys, time
_start = time.time()
_base = dt.datetime.fromisoformat(os.environ["FAKE_NOW"]).replace(tzinfo=dt.UTC)
import gateway.clock as _c
_c.SystemClock.now = lambda self: _base + dt.timedelta(seconds=time.time() - _start)
if __name__ == "__main__":
    from gateway.cli import console
    sys.argv[0] = "ekase-gateway"
    sys.exit(console())
'''


def _pain001(msg_id: str, amount: str, day: dt.date) -> bytes:
    codes = (
        f'<RgltryRptg><Dtls><Tp>EKK</Tp><Cd>2231</Cd><Amt Ccy="EUR">{amount}</Amt></Dtls>'
        f'<Dtls><Tp>IKK</Tp><Cd>21.3.9.9</Cd><Amt Ccy="EUR">{amount}</Amt></Dtls></RgltryRptg>'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"><CstmrCdtTrfInitn>'
        f"<GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{day}T08:00:00</CreDtTm><NbOfTxs>1</NbOfTxs>"
        f"<CtrlSum>{amount}</CtrlSum><InitgPty><Nm>A</Nm></InitgPty></GrpHdr>"
        f"<PmtInf><PmtInfId>{msg_id}-P</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>false</BtchBookg>"
        f"<NbOfTxs>1</NbOfTxs><CtrlSum>{amount}</CtrlSum><ReqdExctnDt>{day}</ReqdExctnDt>"
        f"<Dbtr><Nm>Budžeta iestāde A</Nm></Dbtr><DbtrAcct><Id><IBAN>{A_EUR}</IBAN></Id></DbtrAcct>"
        "<DbtrAgt><FinInstnId><BIC>TRELLV22</BIC></FinInstnId></DbtrAgt>"
        f"<CdtTrfTxInf><PmtId><EndToEndId>{msg_id}-E</EndToEndId></PmtId>"
        f'<Amt><InstdAmt Ccy="EUR">{amount}</InstdAmt></Amt><Cdtr><Nm>Budžeta iestāde B</Nm></Cdtr>'
        f"<CdtrAcct><Id><IBAN>{B_EUR}</IBAN></Id></CdtrAcct>{codes}"
        "<RmtInf><Ustrd>test</Ustrd></RmtInf></CdtTrfTxInf></PmtInf></CstmrCdtTrfInitn></Document>"
    ).encode()


def _next_business_morning() -> dt.datetime:
    lv = holidays.country_holidays("LV")
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    while day.weekday() >= 5 or day in lv:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(8, 0))  # 10:00 in Riga


def _answer_with(out: Path, text: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for f in sorted(out.glob("*pain.002*.xml")):
            body = f.read_text()
            if text in body:
                return body
        time.sleep(0.2)
    return None


def test_a_daily_limit_holds_across_the_documented_upgrade(tmp_path: Path) -> None:
    need((REPO / ".git").exists(), "the release before is taken from the repository's history")
    old = tmp_path / "old-release"
    old.mkdir()
    archive = tmp_path / "old.tar"
    subprocess.run(
        ["git", "-C", str(REPO), "archive", "-o", str(archive), OLD_RELEASE, "gateway", "ledger"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(old)
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    morning = _next_business_morning()
    site = tmp_path / "site"
    config = site / "gateway.toml"

    def run(
        tree: Path, *args: str, minutes: int = 0, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1",
                   FAKE_NOW=(morning + dt.timedelta(minutes=minutes)).isoformat())
        return subprocess.run([sys.executable, str(launcher), *args], env=env, text=True,
                              capture_output=True, **kw)  # type: ignore[call-overload]

    made = run(old, "demo", "--dir", str(site), "--port", str(free_port()), timeout=120)
    assert made.returncode == 0, made.stderr
    text = config.read_text()
    needle = f'iban = "{A_EUR}"\n  currency = "EUR"\n'
    assert needle in text
    config.write_text(text.replace(needle, needle + '  daily_limit = "2000"\n', 1))
    assert run(old, "db", "upgrade", "-c", str(config), timeout=120).returncode == 0

    # The previous release's service is running.
    env = dict(os.environ, PYTHONPATH=str(old), PYTHONDONTWRITEBYTECODE="1",
               FAKE_NOW=morning.isoformat())
    log = (tmp_path / "old-daemon.out").open("w")
    daemon = subprocess.Popen([sys.executable, str(launcher), "run", "-c", str(config)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(6)
        assert daemon.poll() is None, (tmp_path / "old-daemon.out").read_text()[-2000:]
        # `db upgrade` with the service still up (as install.sh ran it): refused.
        refused = run(REPO, "db", "upgrade", "-c", str(config), timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert f"a daemon (pid {daemon.pid} on this host; heartbeat in " in refused.stderr
        # A client uploads before `systemctl restart`.
        inbox = site / "spool" / "clients" / "iestade-a" / "in"
        (inbox / "a.xml").write_bytes(_pain001("LIM-A", "1500.00", morning.date()))
        _answer_with(site / "spool" / "clients" / "iestade-a" / "out", "LIM-A", 30)
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()

    # `systemctl restart`: the current release takes over.
    up = run(REPO, "db", "upgrade", "-c", str(config), minutes=5, timeout=120)
    assert up.returncode == 0, up.stderr
    inbox = site / "spool" / "clients" / "iestade-a" / "in"
    b = inbox / "b.xml"
    b.write_bytes(_pain001("LIM-B", "1000.00", morning.date()))
    past = time.time() - 60
    os.utime(b, (past, past))
    scan = run(REPO, "scan", "-c", str(config), "--once", minutes=6, timeout=120)
    assert scan.returncode == 0, scan.stderr

    balance = run(REPO, "ledger", "balance", "-c", str(config), "--iban", A_EUR, minutes=7,
                  timeout=60)
    answer_b = _answer_with(site / "spool" / "clients" / "iestade-a" / "out", "LIM-B", 5)
    assert answer_b is not None
    # 1500.00 already debited today (whoever booked it) + 1000.00 > daily_limit 2000.00.
    assert "AM14" in answer_b, (
        "LIM-B (1000.00) was accepted although 1500.00 left the account earlier the same "
        f"day and its daily_limit is 2000.00; balance now {balance.stdout.strip()}"
    )


def _schema_behind(path: Path):  # type: ignore[no-untyped-def]
    """A database at the release before's gateway schema (one revision behind)."""
    from alembic import command

    from gateway import migrations as gateway_migrations
    from gateway.db_schema import upgrade_ledger
    from ledger.engine import make_engine
    from ledger.migrations import alembic_config

    engine = make_engine(f"sqlite:///{path}")
    upgrade_ledger(engine)
    before = f"{int(gateway_migrations.HEAD) - 1:04d}"
    folder = Path(gateway_migrations.__file__).parent
    command.upgrade(alembic_config(engine, folder, gateway_migrations.VERSION_TABLE), before)
    return engine


@pytest.mark.parametrize("whose", ["this process", "another process"])
def test_a_killed_earlier_daemons_heartbeat_does_not_stop_the_upgrade(
    tmp_path: Path, whose: str
) -> None:
    """An earlier release's `run/daemon.json` names no host, and a daemon killed (kill -9,
    the OOM killer, a power cut) leaves it: its pid counted as alive blocked every
    migration, and so every start of this release, while any process had that pid — this
    one too, a container's daemon being pid 1 again (a reviewer). It is judged by the
    age of its beat, as another host's; a fresh one still stops the upgrade."""
    from gateway import environment
    from gateway.db_schema import upgrade_database
    from gateway.errors import UsageError

    now = dt.datetime.now(dt.UTC)
    run = tmp_path / "spool" / "run"
    run.mkdir(parents=True)
    pid = os.getpid() if whose == "this process" else os.getppid()

    def beat(at: dt.datetime) -> None:
        (run / "daemon.json").write_text(json.dumps({
            "pid": pid, "started_at": (at - dt.timedelta(hours=1)).isoformat(),
            "heartbeat_at": at.isoformat(),
        }))  # fmt: skip

    engine = _schema_behind(tmp_path / "gw.sqlite3")
    try:
        beat(now - dt.timedelta(seconds=5))
        if whose == "another process":
            with pytest.raises(UsageError, match=f"a daemon \\(pid {pid} on this host; heartbeat"):
                upgrade_database(engine, lambda: environment._daemon_running(run.parent, now))
        beat(now - dt.timedelta(days=3))
        upgrade_database(engine, lambda: environment._daemon_running(run.parent, now))
        from gateway import migrations as gateway_migrations
        from gateway.db_schema import schema_revisions

        assert schema_revisions(engine).endswith(f"gateway schema {gateway_migrations.HEAD}")
    finally:
        engine.dispose()
