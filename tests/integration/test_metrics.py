"""Prometheus metrics and /healthz (SPEC §9): scraped from a real daemon, and the series
read from the spool and database on each scrape."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import paramiko
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from gateway import metrics, metrics_http
from gateway.environment import make_reader_engine
from gateway.outbound import statements
from tests.integration.daemon_fixtures import (
    CLIENTS,
    GATEWAY,
    Install,
    batch,
    close_sftp,
    free_port,
    make_install,
    running_daemon,
    sftp_client,
    wait_for,
)
from tests.pipeline_fixtures import A_MAIN, CLIENT_A, RIGA, TODAY, Batch, Installation

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(registry_or_port: CollectorRegistry | int) -> str:
    if isinstance(registry_or_port, int):
        url = f"http://127.0.0.1:{registry_or_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return str(response.read().decode())
    from prometheus_client import generate_latest

    return generate_latest(registry_or_port).decode()


def parse(exposition: str) -> tuple[Samples, set[str]]:
    """Every sample by (name, sorted labels), and the names of the families."""
    samples: Samples = {}
    families = set()
    for family in text_string_to_metric_families(exposition):
        families.add(family.name)
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def with_metrics(install: Install, port: int) -> None:
    with open(install.config, "a") as handle:
        handle.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')


def _descriptors_and_threads(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    [threads] = [int(line.split()[1]) for line in status.splitlines() if line[:8] == "Threads:"]
    return len(list(Path(f"/proc/{pid}/fd").iterdir())), threads


@pytest.mark.timeout(120)
def test_idle_connections_to_the_metrics_port_cannot_starve_the_sftp_server(
    tmp_path: Path,
) -> None:
    """Hundreds of connections to `[metrics] listen` that send a byte and then nothing
    (a tester: 1,005 of them took every descriptor, the SFTP server's accept() failed
    and no client could log in) hold a few of the daemon's descriptors and threads at most:
    the rest are closed at once, and an SFTP login and a listing still work."""
    install = make_install(tmp_path / "gw")
    port = free_port()
    with_metrics(install, port)
    with running_daemon(install) as daemon:
        daemon.wait_started()
        fds_before, threads_before = _descriptors_and_threads(daemon.process.pid)
        idle = []
        try:
            for _ in range(300):
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
                conn.send(b"G")
                idle.append(conn)
            time.sleep(1)
            fds, threads = _descriptors_and_threads(daemon.process.pid)
            assert fds - fds_before <= 2 * metrics_http.connections_max, (fds_before, fds)
            most = 2 * metrics_http.connections_max  # each served one and its deadline's timer
            assert threads - threads_before <= most, (threads_before, threads)
            client = sftp_client(install, "alpha-erp")
            try:
                assert client.listdir("/") is not None
            finally:
                close_sftp(client)
        finally:
            for conn in idle:
                conn.close()
        assert daemon.process.poll() is None, daemon.tail()
        assert wait_for(lambda: "ekase_files_total" in _scraped(port), 20)  # served again


def _scraped(port: int) -> str:
    """The metrics, or "" while the server still turns connections away: the idle ones it
    is closing may still fill its slots a moment after the client closed them (seen on a
    loaded machine as "Remote end closed connection without response")."""
    try:
        return scrape_text(port)
    except OSError:  # RemoteDisconnected, ConnectionResetError, URLError
        return ""


@pytest.mark.timeout(120)
def test_metrics_and_healthz_of_a_running_daemon(tmp_path: Path) -> None:
    """An operator's Prometheus scraping `[metrics] listen` during a real run sees the
    SPEC's series with their labels: the file answered by client and result, its payments
    and amount (decimal, by status and currency), its processing time, the open SFTP
    session, the refused login, the queue, the outbox backlog; /healthz answers 200.
    `status` names the running daemon's pid, and after SIGTERM says it is not running."""
    install = make_install(tmp_path / "gw")
    port = free_port()
    with_metrics(install, port)
    with running_daemon(install) as daemon:
        started = daemon.wait_started()
        assert started["metrics"] == f"127.0.0.1:{port}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
            assert health.status == 200 and health.read() == b"ok\n"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing", timeout=10)
        assert missing.value.code == 404
        # Each configured client's file series exist from 0 before its first file, so that
        # increase() sees a first rejection after a restart (a tester).
        samples, _ = parse(scrape_text(port))
        assert all(
            samples[("ekase_files_total", (("client", c), ("result", r)))] == 0
            for c in CLIENTS for r in ("RJCT", "ACSC", "DUPL")
        ), samples

        stranger = paramiko.ECDSAKey.generate()  # a key nobody configured
        transport = paramiko.Transport(("127.0.0.1", install.port))
        try:
            transport.start_client(timeout=10)
            with pytest.raises(paramiko.AuthenticationException):
                transport.auth_publickey("alpha-erp", stranger)
        finally:
            transport.close()

        client = sftp_client(install, "alpha-erp")
        try:
            assert wait_for(
                lambda: parse(scrape_text(port))[0].get(("ekase_sftp_sessions", ())) == 1.0, 10
            )
            client.putfo(io.BytesIO(batch("MET-1", "alpha", 3, amount_minor=150)), "/in/met.xml")
        finally:
            close_sftp(client)

        assert wait_for(lambda: bool(daemon.events("file.processed")), 30), daemon.tail()
        # What the file got depends on the hour (after the cut-off its payments wait):
        # the metrics must say what the log says.
        [line] = daemon.events("file.processed")
        [(status, count)] = line["counts"].items()
        files = ("ekase_files_total", (("client", "alpha"), ("result", line["group_status"])))
        assert wait_for(lambda: parse(scrape_text(port))[0].get(files) == 1, 10)
        assert wait_for(
            lambda: parse(scrape_text(port))[0].get(("ekase_sftp_sessions", ())) == 0.0, 10
        )
        # After the books close the same pass (or the first, racing the upload) writes
        # statements too, so the backlog can read 0 between the answer's delivery and
        # theirs: the scrape kept is one that shows everything delivered.
        scrapes: list[tuple[Samples, set[str]]] = []

        def delivered() -> bool:
            scrapes.append(parse(scrape_text(port)))
            return scrapes[-1][0].get(("ekase_outbox_backlog", ())) == 0.0

        assert wait_for(delivered, 10)
        found, families = scrapes[-1]
        shown = subprocess.run([GATEWAY, "status", "-c", str(install.config), "--json"],
                               capture_output=True, text=True, timeout=60, check=True)
        running = json.loads(shown.stdout)["daemon"]
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        after = subprocess.run([GATEWAY, "status", "-c", str(install.config), "--json"],
                               capture_output=True, text=True, timeout=60, check=True)

    assert (running["state"], running["pid"]) == ("running", daemon.process.pid)
    assert json.loads(after.stdout)["daemon"]["state"] == "not running"
    assert count == 3
    by_status = (("currency", "EUR"), ("status", status))
    assert found[("ekase_payments_total", by_status)] == 3
    assert found[("ekase_amount_total", by_status)] == pytest.approx(4.50)
    assert found[("ekase_file_seconds_count", ())] == 1
    assert ("ekase_file_seconds_bucket", (("le", "+Inf"),)) in found
    assert found[("ekase_sftp_logins_refused_total", ())] >= 1
    assert {
        labels for (name, labels) in found if name == "ekase_waiting_files"
    } == {(("client", c),) for c in CLIENTS}
    assert {
        "ekase_files", "ekase_payments", "ekase_amount", "ekase_file_seconds",
        "ekase_waiting_files", "ekase_sftp_sessions", "ekase_sftp_logins_refused",
        "ekase_outbox_backlog", "ekase_eod_last_timestamp_seconds",
    } <= families
    assert not any(name.endswith("_created") for name, _ in found)


def test_waiting_files_backlog_and_end_of_day_are_read_on_each_scrape(
    inst: Installation,
) -> None:
    """Series that other processes change are read when scraped: a file waiting in in/,
    an answer not yet delivered, and the end of the latest business day an account was
    stated for — whoever wrote it (here the `eod` code path, not the daemon)."""
    inst.submit(Batch(msg_id="EOD-1").tx("E-1", "5.00").build())
    inst.clock.set(dt.datetime.combine(TODAY, dt.time(18, 30), RIGA))
    statements.write_statements(inst.env, TODAY)
    (inst.inbox() / "next.xml").write_bytes(b"<Document/>")
    (inst.inbox() / "still.xml.part").write_bytes(b"<Doc")
    reader = make_reader_engine(inst.settings.database_url)
    try:
        registry = metrics.Metrics(inst.settings, reader).registry
        found, _ = parse(scrape_text(registry))
        with inst.env.engine.begin() as conn:
            from sqlalchemy import update

            from gateway import db

            conn.execute(update(db.outbox).values(delivered_at=None))
        undelivered, _ = parse(scrape_text(registry))
    finally:
        reader.dispose()
    assert found[("ekase_waiting_files", (("client", CLIENT_A),))] == 1
    end_of_day = dt.datetime.combine(TODAY, inst.settings.eod_time, RIGA).timestamp()
    assert found[("ekase_eod_last_timestamp_seconds", (("account", A_MAIN),))] == end_of_day
    assert undelivered[("ekase_outbox_backlog", ())] > 0


def test_a_file_in_the_pipeline_is_counted_by_status_and_currency(inst: Installation) -> None:
    """With metrics on, a real file run counts its payments per status and currency, and a
    currency code the gateway does not support (the client's text) is counted as `other`
    rather than becoming a label of its own."""
    reader = make_reader_engine(inst.settings.database_url)
    registry = metrics.enable(inst.settings, reader).registry
    try:
        data = (
            Batch(msg_id="COUNT-1")
            .tx("C-1", "10.00").tx("C-2", "2.50").tx("C-3", "1.00", currency="XAU")
            .build()
        )
        statuses = inst.submit(data).statuses()
        found, _ = parse(scrape_text(registry))
    finally:
        metrics.disable()
        reader.dispose()
    assert statuses == {"C-1": "ACSC", "C-2": "ACSC", "C-3": "RJCT"}
    assert found[("ekase_files_total", (("client", CLIENT_A), ("result", "PART")))] == 1
    assert found[("ekase_payments_total", (("currency", "EUR"), ("status", "ACSC")))] == 2
    assert found[("ekase_amount_total", (("currency", "EUR"), ("status", "ACSC")))] == 12.5
    assert found[("ekase_payments_total", (("currency", "other"), ("status", "RJCT")))] == 1
    assert not any(("currency", "XAU") in labels for _, labels in found)


def test_payments_executed_on_their_due_day_are_counted_by_that_status(
    inst: Installation,
) -> None:
    """Payments accepted to wait (PDNG: dated ahead, or after the cut-off — the nightly
    case) and executed by their day's run were never counted ACSC: after the money left,
    `ekase_payments_total{status="ACSC"}` stayed 0 (a tester). Each status a payment is
    answered with counts: PDNG at arrival, ACSC (or RJCT) when its day decides it; the
    same through a daemon's worker (`from_worker`)."""
    from ledger import calendar

    reader = make_reader_engine(inst.settings.database_url)
    registry = metrics.enable(inst.settings, reader).registry
    try:
        tomorrow = calendar.next_business_day(TODAY)
        answer = inst.submit(
            Batch(msg_id="DUE-M1", execution_date=tomorrow.isoformat())
            .tx("DM-1", "10.00").tx("DM-2", "2.50").tx("DM-3", "5000000.00")
            .build()
        )
        assert set(answer.statuses().values()) == {"PDNG"}
        inst.clock.set(dt.datetime.combine(tomorrow, dt.time(9), RIGA).astimezone(dt.UTC))
        inst.run()  # the due run: two are booked, one has no funds
        after = {k: v for a in inst.new_answers() for k, v in a.statuses().items()}
        metrics.from_worker("payments", [("ACSC", "EUR", 1, 700)])  # a worker's, 7.00 EUR
        found, _ = parse(scrape_text(registry))
    finally:
        metrics.disable()
        reader.dispose()
    assert after == {"DM-1": "ACSC", "DM-2": "ACSC", "DM-3": "RJCT"}
    money = ("ekase_payments_total", "ekase_amount_total")
    eur = {
        (name, labels[1][1]): value for (name, labels), value in found.items()
        if name in money and labels[0] == ("currency", "EUR")
    }  # fmt: skip
    assert eur == {
        ("ekase_payments_total", "PDNG"): 3, ("ekase_amount_total", "PDNG"): 5000012.5,
        ("ekase_payments_total", "ACSC"): 3, ("ekase_amount_total", "ACSC"): 19.5,
        ("ekase_payments_total", "RJCT"): 1, ("ekase_amount_total", "RJCT"): 5000000.0,
    }


def test_a_trial_run_is_counted_as_such_not_as_an_accepted_file(inst: Installation) -> None:
    """A file in test/ executes nothing (SPEC §15), yet counted `result="ACCP"` like a
    batch that did, while `status` leaves trials out of what was processed (a tester):
    its result is TRIAL, and its payments are not counted."""
    from tests.integration.test_trial_runs import trial, trial_batch

    reader = make_reader_engine(inst.settings.database_url)
    registry = metrics.enable(inst.settings, reader).registry
    try:
        assert trial(inst, trial_batch()).shelf == "trials"
        found, _ = parse(scrape_text(registry))
    finally:
        metrics.disable()
        reader.dispose()
    files = {
        dict(labels)["result"]: value for (name, labels), value in found.items()
        if name == "ekase_files_total" and dict(labels)["client"] == CLIENT_A and value
    }  # fmt: skip
    assert files == {"TRIAL": 1}
    assert not any(v for (name, _), v in found.items() if name == "ekase_payments_total")


def test_a_file_whose_payments_cannot_be_read_for_counting_is_still_counted(
    inst: Installation,
) -> None:
    """The daemon counts a worker's file by reading its payments; with the database gone
    at that moment the answered file was not counted at all (an outside tester,
    PostgreSQL backends terminated): it is counted among the files, its payments are
    not, and the log says so."""
    import structlog.testing

    reader = make_reader_engine(inst.settings.database_url)
    registry = metrics.enable(inst.settings, reader).registry
    try:
        from sqlalchemy import select

        from gateway import db

        inst.submit(Batch(msg_id="LOST-1").tx("L-1", "1.00").build())
        with inst.env.engine.connect() as conn:
            file_id = conn.execute(
                select(db.files.c.id).where(db.files.c.msg_id == "LOST-1")
            ).scalar_one()
        gone = make_reader_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
        processed = metrics._Processed(file_id, "archive", "ACSC")
        with structlog.testing.capture_logs() as logs:
            metrics.file_processed(gone, "lost", processed, 0.1)
        gone.dispose()
        found, _ = parse(scrape_text(registry))
    finally:
        metrics.disable()
        reader.dispose()
    assert found[("ekase_files_total", (("client", "lost"), ("result", "ACSC")))] == 1
    assert [e["event"] for e in logs] == ["metrics.file_failed"]


SPEC_NAMES = {
    "ekase_files_total", "ekase_payments_total", "ekase_amount_total", "ekase_file_seconds",
    "ekase_waiting_files", "ekase_sftp_sessions", "ekase_sftp_logins_refused_total",
    "ekase_outbox_backlog", "ekase_eod_last_timestamp_seconds",
}


def test_dashboard_and_alert_rules_use_only_series_the_gateway_exports(
    inst: Installation,
) -> None:
    """The Grafana dashboard and the alert rules shipped beside the unit query series the
    daemon really exports (a renamed metric would leave a blank panel or an alert that can
    never fire), and between them they cover every series of SPEC §9."""
    import json
    import re

    import yaml

    reader = make_reader_engine(inst.settings.database_url)
    try:
        exposition = scrape_text(metrics.Metrics(inst.settings, reader).registry)
    finally:
        reader.dispose()
    exported = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    for family in text_string_to_metric_families(exposition):
        # A labelled counter has no samples before its first count: name them by type.
        exported.update({family.name, *(family.name + s for s in suffixes.get(family.type, ()))})
    systemd = Path(__file__).resolve().parents[2] / "systemd"
    dashboard = json.loads((systemd / "grafana-dashboard.json").read_text())
    panel_queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((systemd / "ekase-alerts.yml").read_text())
    alert_queries = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = set()
    for query in panel_queries + alert_queries:
        used.update(re.findall(r"\b(?:ekase|process)_[a-z_]+", query))
    assert used - exported == set()
    covered = {name for name in SPEC_NAMES if any(u.startswith(name) for u in used)}
    assert covered == SPEC_NAMES
    assert all(r.get("annotations", {}).get("summary") for g in rules["groups"] for r in g["rules"])
