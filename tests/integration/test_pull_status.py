"""`status` and the log show requests and cancellations like files (SPEC §15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway import cli
from gateway.environment import open_environment
from gateway.pipeline import Pipeline
from tests.integration.daemon_fixtures import drop, iban, make_install, today_riga
from tests.unit import pull_samples as s


@pytest.mark.timeout(60)
def test_requests_are_counted_and_logged_like_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install = make_install(tmp_path / "gw")
    inbox = install.folder("alpha", "in")
    wanted = s.Wanted(
        message="camt.052.001.02", iban=iban("alpha"), from_date=today_riga().isoformat(),
        to_date=None, from_time=None,
    )  # fmt: skip
    drop(inbox, "ask.xml", s.to_bytes(s.camt060("05", (wanted,), msg_id="ASK-1")))
    drop(inbox, "cancel.xml", s.to_bytes(s.camt055("09", msg_id="CXL-1")))
    drop(inbox, "bad.xml", s.to_bytes(s.camt060("05", (s.Wanted(iban=iban("beta")),))))
    capsys.readouterr()
    env = open_environment(install.settings)
    try:
        Pipeline(env).run_once()
    finally:
        env.close()
    logged = capsys.readouterr().out
    lines = [line for line in logged.splitlines() if "file.processed" in line]
    assert len(lines) == 3, logged
    by_file = {name: next(line for line in lines if f"file={name}" in line) for name in
               ("ask.xml", "cancel.xml", "bad.xml")}  # fmt: skip
    assert "msg_id=ASK-1" in by_file["ask.xml"] and "group_status=ACCP" in by_file["ask.xml"]
    assert "msg_id=CXL-1" in by_file["cancel.xml"] and "group_status=RJCR" in by_file["cancel.xml"]
    assert "reason=AC02" in by_file["bad.xml"] and "shelf=rejected" in by_file["bad.xml"]

    assert cli.main(["status", "-c", str(install.config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    alpha = next(c for c in report["clients"] if c["client_id"] == "alpha")
    assert (alpha["processed_today"], alpha["rejected_today"]) == (3, 1)
    assert alpha["undelivered"] == 0 and alpha["in_progress"] == 0
    out_names = sorted(p.name for p in install.folder("alpha", "out").glob("*.xml"))
    assert any("camt.052.001.02" in n for n in out_names)
    assert any("camt.029.001.10" in n for n in out_names)
    assert any("admi.002.001.01" in n for n in out_names)
