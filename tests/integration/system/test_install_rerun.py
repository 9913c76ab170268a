"""A re-run of `systemd/install.sh` (after adding a client, to upgrade) stops the running
service before it changes anything (no daemon of the release before runs on the new code
or the migrated schema) and starts it at its end. One that fails in between — the
configuration just edited has a mistake, pip has no network, `sshd -t` refuses — left the
service stopped (a reviewer): it is started again as it was.

systemctl is called only without --prefix: the copy run here lets a prefixed run call it,
and a stub `systemctl` records the calls. Root only (install.sh refuses anyone else:
`root_scratch`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.system.helpers import INSTALL_SH

pytestmark = [pytest.mark.xdist_group("system")]

_PREFIX_TURNS_SYSTEMCTL_OFF = '    prefix="$(cd "$prefix" && pwd)"\n    systemctl=0\n'


def _rerun(tmp_path: Path, *, active: bool) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """install.sh, able to call a stub systemctl, over an installed release whose
    configuration no longer reads."""
    script = INSTALL_SH.read_text()
    assert _PREFIX_TURNS_SYSTEMCTL_OFF in script
    copy = tmp_path / "systemd" / "install.sh"
    copy.parent.mkdir()
    copy.write_text(
        script.replace(_PREFIX_TURNS_SYSTEMCTL_OFF, '    prefix="$(cd "$prefix" && pwd)"\n')
    )
    calls, stubs = tmp_path / "systemctl.calls", tmp_path / "bin"
    stubs.mkdir()
    (stubs / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'[ "$1" = is-active ] && exit {0 if active else 3}\nexit 0\n'
    )
    venv = tmp_path / "venv" / "bin"  # its python runs, but reads no configuration
    venv.mkdir(parents=True)
    (venv / "python").write_text(
        '#!/bin/sh\n[ "$1" = "-c" ] && [ -z "$2" ] && exit 0\n'
        'echo "install.sh: client[1].user[0].name: duplicate user alpha-erp" >&2\nexit 1\n'
    )
    (venv / "ekase-gateway").write_text("#!/bin/sh\nexit 0\n")
    for made in (stubs / "systemctl", venv / "python", venv / "ekase-gateway"):
        made.chmod(0o755)
    for folder in (tmp_path, tmp_path / "venv", venv):
        folder.chmod(0o755)
    done = subprocess.run(
        ["bash", str(copy), "--prefix", str(tmp_path / "site"), "--user", "nobody",
         "--venv", str(tmp_path / "venv")],
        env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done, calls.read_text().splitlines() if calls.exists() else []


def _folder(root_scratch: Path, name: str) -> Path:
    """A folder the service account can reach (pytest's own is root's alone)."""
    shutil.rmtree(root_scratch / name, ignore_errors=True)
    (root_scratch / name).mkdir()
    return root_scratch / name


def test_a_failed_rerun_starts_the_service_it_stopped_again(root_scratch: Path) -> None:
    done, called = _rerun(_folder(root_scratch, "rerun-active"), active=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "is not a valid configuration" in done.stderr, done.stderr
    assert called == [
        "is-active --quiet ekase-gateway.service", "stop ekase-gateway.service",
        "start ekase-gateway.service",
    ], called  # fmt: skip
    assert "starting ekase-gateway.service again" in done.stderr


def test_a_failed_run_leaves_a_service_that_did_not_run_alone(root_scratch: Path) -> None:
    done, called = _rerun(_folder(root_scratch, "rerun-inactive"), active=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert called == ["is-active --quiet ekase-gateway.service"], called
