"""Which faults are one client's alone (`faults.client_fault`, SPEC §6, §9): a full disk
under the spool stops every client; a client's own folder refused or its quota reached
holds that client only. (The spool's folders are only looked at, never written.)"""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

import pytest

from gateway.faults import client_fault, same_hold
from gateway.spool import Spool
from tests.conftest import need


@pytest.mark.parametrize(
    ("code", "kind"), [(errno.EPERM, "permissions"), (errno.EDQUOT, "disk_full")]
)
def test_a_refusal_or_a_quota_in_a_clients_out_is_that_clients(
    tmp_path: Path, code: int, kind: str
) -> None:
    """An out/ the gateway may not write, or a client's quota reached: that client held,
    the fault naming the file and the client's folder it lies in (what the operator
    mends: a temporary name changes with every try, tester A, stop 45); two faults in
    one folder are one hold."""
    spool = Spool(tmp_path)
    target = spool.outbox("alpha") / ".answer.xml.sig.1a2b.tmp"
    fault = client_fault(OSError(code, "refused", str(target)), spool, "alpha")
    assert fault is not None and fault.kind == kind and fault.path == str(target)
    assert fault.folder == str(spool.outbox("alpha"))
    assert client_fault(OSError(code, "refused", str(target)), spool, "beta") is None
    again = client_fault(OSError(code, "refused", str(target) + ".2"), spool, "alpha")
    assert again is not None and same_hold(fault, again)
    elsewhere = spool.root / "archive" / "alpha" / "x.xml"
    shelf = client_fault(OSError(code, "refused", str(elsewhere)), spool, "alpha")
    assert shelf is not None and not same_hold(fault, shelf)


def test_no_space_on_the_spools_own_disk_is_every_clients(tmp_path: Path) -> None:
    """No space left on the spool's own filesystem is the machine's disk full, even on a
    path in one client's out/: the pass stops for every client, none is held alone."""
    spool = Spool(tmp_path)
    for target in (spool.outbox("alpha") / "answer.xml", spool.work("alpha") / "x.xml"):
        assert client_fault(OSError(errno.ENOSPC, "No space", str(target)), spool, "alpha") is None
    assert client_fault(OSError(errno.ENOSPC, "No space"), spool, "alpha") is None  # no path


def test_no_space_on_a_clients_own_filesystem_is_that_clients(tmp_path: Path) -> None:
    """A client's folder on a filesystem of its own (here a link into /dev/shm, a tmpfs)
    that is full: that client is held, not every client."""
    spool = Spool(tmp_path)
    own = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        need(own.stat().st_dev != tmp_path.stat().st_dev, "/dev/shm on the test's filesystem")
        spool.outbox("alpha").parent.mkdir(parents=True, exist_ok=True)
        spool.outbox("alpha").symlink_to(own)
        target = spool.outbox("alpha") / "answer.xml"
        fault = client_fault(OSError(errno.ENOSPC, "No space", str(target)), spool, "alpha")
        assert fault is not None and fault.kind == "disk_full", fault
    finally:
        shutil.rmtree(own)
