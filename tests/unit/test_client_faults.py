"""Which faults are one client's alone (`faults.client_fault`, SPEC §6, §9): a full disk
under the spool stops every client; a client's own folder refused or its quota reached
holds that client only. (The spool's folders are only looked at, never written.)"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from gateway.faults import client_fault
from gateway.spool import Spool


@pytest.mark.parametrize(
    ("code", "kind"), [(errno.EPERM, "permissions"), (errno.EDQUOT, "disk_full")]
)
def test_a_refusal_or_a_quota_in_a_clients_out_is_that_clients(
    tmp_path: Path, code: int, kind: str
) -> None:
    """An out/ the gateway may not write, or a client's quota reached: that client held."""
    spool = Spool(tmp_path)
    target = spool.outbox("alpha") / "answer.xml"
    fault = client_fault(OSError(code, "refused", str(target)), spool, "alpha")
    assert fault is not None and fault.kind == kind and fault.path == str(target)
    assert client_fault(OSError(code, "refused", str(target)), spool, "beta") is None


def test_no_space_on_the_spools_own_disk_is_every_clients(tmp_path: Path) -> None:
    """No space left on the spool's own filesystem is the machine's disk full, even on a
    path in one client's out/: the pass stops for every client, none is held alone."""
    spool = Spool(tmp_path)
    for target in (spool.outbox("alpha") / "answer.xml", spool.work("alpha") / "x.xml"):
        assert client_fault(OSError(errno.ENOSPC, "No space", str(target)), spool, "alpha") is None
    assert client_fault(OSError(errno.ENOSPC, "No space"), spool, "alpha") is None  # no path
