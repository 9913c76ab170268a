"""Fixtures of the tests that change the machine (accounts, install.sh, sshd): root only.

`installed_site` runs `systemd/install.sh` once per session — a real virtual environment
with the package pip-installed from this repository, which is what takes the time — and
the OpenSSH tests install their own site with `--venv` pointing at that environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_root
from tests.integration.system.helpers import (
    REPO,
    SCRATCH_PARENT,
    TAG,
    Accounts,
    Site,
    run_install,
)


@pytest.fixture(scope="session")
def root_scratch() -> Iterator[Path]:
    """A root-owned folder (0755) outside /tmp for the session's installations."""
    need_root("creates system accounts, root-owned folders and an sshd")
    folder = Path(tempfile.mkdtemp(prefix="ekase-test-", dir=SCRATCH_PARENT))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def installed_site(root_scratch: Path) -> Iterator[Site]:
    """install.sh in a throwaway prefix, as documented, with a unique service account:
    venv + pip install of this repository, folders, starter configuration, keys, unit."""
    account = f"eks{TAG}"
    made = Accounts(users=[account])
    prefix = root_scratch / "site"
    try:
        run_install("--prefix", str(prefix), "--user", account, "--source", str(REPO),
                    "--no-systemctl")
        yield Site(prefix, account, prefix / "opt" / "ekase-gateway" / ".venv")
    finally:
        for problem in made.remove():
            warnings.warn(problem, stacklevel=1)
