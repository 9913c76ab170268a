"""The PostgreSQL server stopped and started under the running daemon (SPEC §6, issue 14.5).

The test starts a PostgreSQL cluster of its own (`tests/throwaway_postgres.py`, the
machine's `initdb`/`pg_ctl`), separate from the session's, so that it can stop it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import throwaway_postgres
from tests.conftest import need
from tests.integration.daemon_fixtures import (
    GATEWAY,
    Install,
    answers_per_msg_id,
    batch,
    close_sftp,
    free_port,
    make_install,
    running_daemon,
    sftp_client,
    wait_for,
)
from tests.integration.test_metrics import parse, scrape_text, with_metrics

UPLOADS = {"DBA-1": "alpha", "DBA-2": "beta", "DBA-3": "alpha"}


@pytest.fixture
def own_cluster() -> Iterator[throwaway_postgres.Cluster]:
    """A PostgreSQL server for this test alone, stopped and removed afterwards."""
    bin_dir = throwaway_postgres.find_server_binaries()
    need(bin_dir is not None, "PostgreSQL server binaries (initdb, pg_ctl) not found")
    assert bin_dir is not None
    cluster = throwaway_postgres.start(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()


def _status(install: Install) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [GATEWAY, "status", "-c", str(install.config), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def _upload(install: Install, msg_id: str, client: str) -> None:
    sftp = sftp_client(install, f"{client}-erp")
    try:
        with sftp.open(f"/in/{msg_id}.xml", "wb") as handle:
            handle.write(batch(msg_id, client, 5))
    finally:
        close_sftp(sftp)


@pytest.mark.timeout(240)
def test_files_uploaded_while_the_database_is_down_wait_and_are_answered_once(
    tmp_path: Path, own_cluster: throwaway_postgres.Cluster
) -> None:
    """With the database server stopped under the running daemon, clients can still
    upload; their files are answered 0 times, none is quarantined or rejected, and the
    daemon alerts (`pass.fault` at error, `ekase_faults_total{kind="database"}`, `status`
    showing the fault and what waits, though it cannot read the database). When the server
    is back, every file is answered exactly once."""
    install = make_install(tmp_path / "gw", database_url=f'"{own_cluster.url}"')
    port = free_port()
    with_metrics(install, port)
    spool = install.spool
    with running_daemon(install) as daemon:
        daemon.wait_started()
        own_cluster.pause()
        for msg_id, client in UPLOADS.items():
            _upload(install, msg_id, client)

        assert wait_for(lambda: bool(daemon.events("pass.fault")), 60), daemon.tail()
        fault = daemon.events("pass.fault")[0]
        assert fault["level"] == "error" and fault["kind"] == "database", fault
        outs = [install.folder(c, "out") for c in ("alpha", "beta")]
        assert answers_per_msg_id(*outs) == {}
        waiting = [
            p.name for c in ("alpha", "beta") for a in ("in", "work")
            for p in install.folder(c, a).iterdir() if p.name.endswith(".xml")
        ]  # fmt: skip
        assert len(waiting) == len(UPLOADS), waiting
        assert not (spool / "quarantine").exists() or not any((spool / "quarantine").rglob("*"))
        assert not (spool / "rejected").exists() or not any((spool / "rejected").rglob("*.xml"))
        samples, _ = parse(scrape_text(port))
        assert samples[("ekase_faults_total", (("kind", "database"),))] >= 1
        code, shown = _status(install)
        assert code == 1, shown  # the database cannot be read: said, and the rest is shown
        assert shown["database_error"], shown
        # what the database holds is unknown, not zero
        assert shown["pending"] is None, shown
        assert {c["undelivered"] for c in shown["clients"]} == {None}, shown["clients"]
        assert {c["processed_today"] for c in shown["clients"]} == {None}, shown["clients"]
        assert shown["daemon"]["fault"]["kind"] == "database", shown["daemon"]
        shown_waiting = sum(c["waiting"] + c["in_progress"] for c in shown["clients"])
        assert shown_waiting == len(UPLOADS), shown

        own_cluster.resume()
        assert wait_for(
            lambda: answers_per_msg_id(*outs) == {m: 1 for m in UPLOADS}, 120
        ), daemon.tail()
        assert wait_for(lambda: bool(daemon.events("pass.recovered")), 30), daemon.tail()
        code, shown = _status(install)
        assert code == 0 and shown["daemon"]["fault"] is None, shown
        assert daemon.events("daemon.failed") == [] and daemon.process.poll() is None
    assert answers_per_msg_id(*outs) == {m: 1 for m in UPLOADS}  # and no second answer
