"""A writer opening a file in the instant the gateway holds a read lease on it does not
end the gateway's process (`files.open_for_writing`).

A reviewer: the kernel tells a lease holder that a writer breaks its lease by SIGIO, whose
default action ends the process, and nothing in the gateway handled it; an OpenSSH client
sending a name again (a second `put`) in the instant a pass's listing held the lease on
that file in in/ would have killed the worker (or `scan --once`) listing it. Here the
writer's open is made to land while the lease is held, in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import need

CHILD = r"""
import fcntl, subprocess, sys, time
from pathlib import Path
from gateway import files

path = Path(sys.argv[1])
real = fcntl.fcntl
opener = []

def lease_then_a_client_opens(fd, cmd, arg=0):
    result = real(fd, cmd, arg)
    if cmd == fcntl.F_SETLEASE and arg == fcntl.F_RDLCK:
        opener.append(subprocess.Popen([sys.executable, "-c",
            "import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))", str(path)]))
        time.sleep(0.3)  # the writer's open breaks the lease meanwhile
    return result

fcntl.fcntl = lease_then_a_client_opens
print(files.open_for_writing(path), flush=True)
opener[0].wait(10)
"""


def test_a_writer_breaking_the_lease_does_not_end_the_process(tmp_path: Path) -> None:
    path = tmp_path / "pay.xml"
    path.write_bytes(b"<Document/>")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    need("None" not in done.stdout, "no read lease can be taken on this file system")
    assert done.returncode == 0, f"the process holding the lease ended: {done.returncode}"
    assert done.stdout.strip() == "False"
