"""`ekase-gateway demo` (what `make run` calls) as a newcomer meets it."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from gateway.environment import open_environment
from gateway.settings import load
from tests.integration.daemon_fixtures import GATEWAY, answers, free_port, wait_for


def _demo(cwd: Path, port: int) -> str:
    done = subprocess.run(
        [GATEWAY, "demo", "--dir", "demo", "--port", str(port)],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout


def _balances(cwd: Path, ibans: list[str]) -> dict[str, tuple[int, str]]:
    env = open_environment(load(cwd / "demo" / "gateway.toml"), need_sealer=False)
    try:
        return {iban: env.ledger.balance(iban) for iban in ibans}
    finally:
        env.close()


def _upload_command(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("sftp ")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.timeout(90)
def test_demo_is_made_once_then_reused_unchanged(tmp_path: Path) -> None:
    """The first `demo` makes a loadable installation with two funded institutions; the second
    reuses it: same keys and samples, no second funding, the same upload command."""
    first = _demo(tmp_path, free_port())
    demo = tmp_path / "demo"
    settings = load(demo / "gateway.toml")
    assert [c.id for c in settings.clients] == ["iestade-a", "iestade-b"]
    for client in settings.clients:
        assert sorted(a.currency for a in client.accounts) == ["EUR", "USD"]
    users = {u.name: (u.kind, u.mode) for c in settings.clients for u in c.users}
    assert users["iestade-a-view"] == ("person", "view")
    assert all(mode == "manage" for name, (_, mode) in users.items() if name.endswith("-erp"))
    for user in users:
        assert (demo / "authorized_keys" / user).read_text().startswith('from="127.0.0.1,::1" ')
    samples = sorted(p.name for p in (demo / "samples").glob("*.xml"))
    assert samples == ["all-valid.xml", "future-dated.xml", "partly-invalid.xml"]
    eur = [a.iban for c in settings.clients for a in c.accounts if a.currency == "EUR"]
    balances = _balances(tmp_path, eur)
    assert all(minor > 0 for minor, _ in balances.values()), balances

    kept = [*demo.glob("keys/*"), *demo.glob("signing/*"), *demo.glob("samples/*"),
            demo / "ssh_host_ed25519_key", demo / "known_hosts", demo / "gateway.toml"]
    before = {p: p.read_bytes() for p in kept}
    second = _demo(tmp_path, free_port())  # another port must not change the existing demo
    assert "reused" in second and "created" in first
    assert {p: p.read_bytes() for p in kept} == before
    assert _balances(tmp_path, eur) == balances
    assert _upload_command(second) == _upload_command(first)


@pytest.mark.timeout(90)
def test_printed_sftp_command_uploads_and_an_answer_appears(tmp_path: Path) -> None:
    """`demo --run` prints an sftp command and a folder before starting; the command, run in
    bash exactly as printed, uploads a sample and its pain.002 appears in that folder."""
    port = free_port()
    log_path = tmp_path / "demo-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [GATEWAY, "demo", "--dir", "demo", "--port", str(port), "--run"],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: '"daemon.started"' in log_path.read_text(), 30), (
            log_path.read_text()
        )
        output = log_path.read_text()
        printed = output.split('{"', 1)[0]  # what was printed before the daemon's log lines
        command = _upload_command(printed)
        match = re.search(r"appears in (\S+)/", printed)
        assert match is not None, printed
        out = tmp_path / match.group(1)

        subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, timeout=30,
                       capture_output=True)
        assert wait_for(lambda: len(answers(out)) == 1, 20), (
            f"no pain.002 appeared; daemon log:\n{log_path.read_text()[-3000:]}"
        )
        assert answers(out)[0].group_status in ("ACSC", "ACCP")

        for sample, suffix, expected in (
            ("partly-invalid", "-PART", "PART"),
            ("future-dated", "-FUTURE", "ACCP"),
        ):
            subprocess.run(["bash", "-c", command.replace("all-valid", sample)], cwd=tmp_path,
                           check=True, timeout=30, capture_output=True)

            def answered(suffix: str = suffix) -> list[str]:
                return [a.group_status for a in answers(out) if a.original_msg_id.endswith(suffix)]

            assert wait_for(lambda: bool(answered()), 20), (
                f"no answer for {sample}; daemon log:\n{log_path.read_text()[-3000:]}"
            )
            assert answered() == [expected], (sample, answered())

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
