"""`ekase-gateway status -c CONFIG` on a real spool and database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import cli
from gateway.environment import open_environment
from gateway.pipeline import Pipeline
from tests.integration.daemon_fixtures import batch, drop, make_install


@pytest.mark.timeout(60)
def test_status_counts_waiting_in_progress_processed_rejected_and_last_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a pass that accepted one file and rejected another, status shows per client what
    waits, what is being uploaded, what was processed and rejected today, and the last answer."""
    install = make_install(tmp_path / "gw")
    inbox = install.folder("alpha", "in")
    drop(inbox, "good.xml", batch("STATUS-GOOD", "alpha", 2))
    drop(inbox, "broken.xml", b"this is not XML")
    # Every payment refused on its own (its creditor's IBAN has check digits 00: AC01):
    # answered payment by payment, archived — not rejected as a whole, though its group
    # status is RJCT.
    refused = re.sub(rb"<IBAN>LV\d\dHABA", b"<IBAN>LV00HABA", batch("STATUS-AC01", "alpha", 1))
    drop(inbox, "refused.xml", refused)
    env = open_environment(install.settings)
    try:
        Pipeline(env).run_once()
    finally:
        env.close()
    drop(inbox, "next.xml", batch("STATUS-NEXT", "alpha", 1))
    (inbox / "still-coming.xml.part").write_bytes(b"<Document")
    (install.folder("alpha", "work") / "20261125T000000-abcd__stuck.xml").write_bytes(b"x")
    capsys.readouterr()

    assert cli.main(["status", "-c", str(install.config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    alpha = next(c for c in report["clients"] if c["client_id"] == "alpha")
    beta = next(c for c in report["clients"] if c["client_id"] == "beta")
    assert (alpha["waiting"], alpha["uploading"], alpha["in_progress"]) == (1, 1, 1)
    assert (alpha["processed_today"], alpha["rejected_today"]) == (3, 1)
    assert alpha["undelivered"] == 0
    out_names = sorted(p.name for p in install.folder("alpha", "out").glob("*.xml"))
    assert alpha["last_answer"] == out_names[-1]
    assert alpha["last_answer_at"].startswith(report["day"])
    assert beta["processed_today"] == 0 and beta["last_answer"] is None

    assert cli.main(["status", "-c", str(install.config)]) == 0
    table = capsys.readouterr().out
    assert out_names[-1] in table and "alpha" in table and "beta" in table


def test_a_client_folder_no_client_owns_is_said_at_start_and_by_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client taken out of the configuration while a file waited in its in/: the file
    was ignored without a word (an outside tester). It still waits untouched (it is that
    client's), and the start and `status` say so."""
    install = make_install(tmp_path / "gw")
    gone = install.folder("alpha", "in").parent.parent / "gamma"
    (gone / "in").mkdir(parents=True)
    (gone / "in" / "orphan.xml").write_bytes(batch("ORPHAN", "alpha", 1))
    (gone / "test").mkdir()
    (gone.parent / "delta" / "in").mkdir(parents=True)  # empty, left behind: not said
    with capture_logs() as logged:
        env = open_environment(install.settings)
    try:
        Pipeline(env).run_once()
    finally:
        env.close()
    [said] = [e for e in logged if e["event"] == "spool.client_not_configured"]
    assert (said["client"], said["files_waiting"]) == ("gamma", 1), said
    assert (gone / "in" / "orphan.xml").exists()
    capsys.readouterr()
    assert cli.main(["status", "-c", str(install.config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unconfigured"] == [["gamma", 1]]
    assert cli.main(["status", "-c", str(install.config)]) == 0
    assert "  clients/gamma  1 file(s) in in/ and test/" in capsys.readouterr().out
