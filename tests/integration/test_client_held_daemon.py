"""A client held by a fault of its own folder, as an operator sees it on a real daemon:
its out/ made immutable (`chattr +i`, root only), its upload is booked and its answer
waits; the daemon's heartbeat and `ekase-gateway status` name the client, the folder and
the fault until it clears, and no longer afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need, need_root
from tests.integration.daemon_fixtures import (
    GATEWAY,
    Install,
    answers_per_msg_id,
    batch,
    drop,
    free_port,
    make_install,
    running_daemon,
    wait_for,
)


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], Path]]:
    """Makes a folder immutable (`chattr +i`) for the test, writable again whatever
    happens."""
    need_root("chattr +i")
    need(shutil.which("chattr") is not None, "chattr (e2fsprogs) is not installed")
    made: list[Path] = []

    def freeze(folder: Path) -> Path:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            need(False, f"chattr +i is not supported on the filesystem of {folder}")
        made.append(folder)
        return folder

    yield freeze
    for folder in made:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def _status(install: Install) -> tuple[str, dict[str, Any]]:
    config = str(install.config)
    text = subprocess.run([GATEWAY, "status", "-c", config], capture_output=True, text=True)
    shown = subprocess.run(
        [GATEWAY, "status", "-c", config, "--json"], capture_output=True, text=True, check=True
    )
    return text.stdout, json.loads(shown.stdout)


def _metric(port: int, name: str) -> str:
    """The exposition lines of the series `name` on the daemon's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


def test_status_names_the_held_client_while_its_out_folder_refuses_us(
    tmp_path: Path, immutable: Callable[[Path], Path]
) -> None:
    install = make_install(tmp_path, rescan_seconds=1, settle_seconds=0)
    port = free_port()
    with open(install.config, "a") as handle:
        handle.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    out = immutable(install.folder("alpha", "out"))
    with running_daemon(install) as daemon:
        daemon.wait_started()
        drop(install.folder("alpha", "in"), "a.xml", batch("HELD-A", "alpha", 2))
        drop(install.folder("beta", "in"), "b.xml", batch("FREE-B", "beta", 2))
        assert wait_for(lambda: answers_per_msg_id(install.folder("beta", "out"))["FREE-B"], 30)
        assert wait_for(lambda: bool(daemon.events("client.fault")), 30), daemon.tail()

        def held() -> bool:
            return "CLIENT HELD alpha" in _status(install)[0]

        assert wait_for(held, 30, interval=0.5), daemon.tail()
        text, shown = _status(install)
        [line] = [s for s in text.splitlines() if "CLIENT HELD alpha" in s]
        assert str(out) in line and "permissions" in line, line
        # not "unbooked": a file of it may be booked, its answer waiting (its own line says)
        assert "unbooked" not in line and "(each shown below: booked or not)" in line, line
        [d] = shown["daemons"]
        assert set(d["held"]) == {"alpha"} and d["held"]["alpha"]["kind"] == "permissions"
        assert "CLIENT HELD beta" not in text
        # …and the metrics an alert is built on (a tester: no series named the held client)
        series = _metric(port, "ekase_client_held{")
        assert 'ekase_client_held{client="alpha"} 1.0' in series, series
        assert 'ekase_client_held{client="beta"} 0.0' in series, series

        subprocess.run(["chattr", "-i", str(out)], check=True)
        assert wait_for(lambda: answers_per_msg_id(out)["HELD-A"] == 1, 30), daemon.tail()
        assert wait_for(lambda: not held(), 30, interval=0.5), _status(install)[0]
        assert _status(install)[1]["daemons"][0]["held"] == {}
        assert wait_for(lambda: bool(daemon.events("client.recovered")), 30), daemon.tail()
        assert wait_for(
            lambda: 'ekase_client_held{client="alpha"} 0.0' in _metric(port, "ekase_client_held{"),
            10,
        )
    # Said once by the daemon for its workers together, naming the folder to mend: each
    # worker said it (the leader delivers to every client's out/), at a temporary file's
    # name (tester A, stop 45).
    [fault] = daemon.events("client.fault")
    assert fault["client"] == "alpha" and fault["folder"] == str(out), fault
    assert [e["client"] for e in daemon.events("client.recovered")] == ["alpha"]


def test_a_file_held_by_its_archive_folder_is_told_resumed_once(
    tmp_path: Path, immutable: Callable[[Path], Path]
) -> None:
    """The client's archive folder refuses us: its file, booked and answered, waits in work/
    to be shelved, taken up again at every pass (each 1 s here) until the folder is mended.
    The log says it resumed once, not at every pass (a tester: ~720 lines an hour a file)."""
    install = make_install(tmp_path, rescan_seconds=1, settle_seconds=0)
    shelf = install.spool / "archive" / "alpha"
    shelf.mkdir(parents=True, exist_ok=True)
    immutable(shelf)
    with running_daemon(install) as daemon:
        daemon.wait_started()
        drop(install.folder("alpha", "in"), "a.xml", batch("SHELF-A", "alpha", 2))
        assert wait_for(lambda: bool(daemon.events("client.fault")), 30), daemon.tail()
        time.sleep(5)  # five passes or so, each taking the file up again
        text, _ = _status(install)
        assert "a.xml: answered (its answer delivered); the file waits to be shelved" in text, text
        subprocess.run(["chattr", "-i", str(shelf)], check=True)
        assert wait_for(lambda: any(shelf.rglob("*__a.xml")), 30), daemon.tail()
    assert answers_per_msg_id(install.folder("alpha", "out"))["SHELF-A"] == 1
    assert len(daemon.events("file.resumed")) == 1, daemon.events("file.resumed")


def test_a_fault_both_workers_wait_out_counts_the_files_of_both(
    tmp_path: Path, immutable: Callable[[Path], Path]
) -> None:
    """The spool's tmp/ refuses us (a fault of ours, not a client's): each worker's file
    waits. `ekase_fault_waiting_files` and `status` count the files of both workers, not
    those of whichever reported last (a tester: 1 shown while 2 waited), and go back to 0
    once the fault clears."""
    install = make_install(tmp_path, rescan_seconds=1, settle_seconds=0, workers=2)
    port = free_port()
    with open(install.config, "a") as handle:
        handle.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    with running_daemon(install) as daemon:
        daemon.wait_started()
        tmp = immutable(install.spool / "tmp")
        drop(install.folder("alpha", "in"), "a.xml", batch("FAULT-A", "alpha", 2))
        drop(install.folder("beta", "in"), "b.xml", batch("FAULT-B", "beta", 2))

        def waiting() -> float:
            return float(_metric(port, "ekase_fault_waiting_files ").split()[1])

        assert wait_for(lambda: {e.get("worker") for e in daemon.events("pass.fault")} >= {0, 1},
                        30), daemon.tail()  # fmt: skip
        assert wait_for(lambda: waiting() == 2, 30), waiting()
        assert "2 claimed file(s) wait" in _status(install)[0], _status(install)[0]
        subprocess.run(["chattr", "-i", str(tmp)], check=True)
        assert wait_for(lambda: waiting() == 0, 60), waiting()
    assert answers_per_msg_id(install.folder("alpha", "out"))["FAULT-A"] == 1
    assert answers_per_msg_id(install.folder("beta", "out"))["FAULT-B"] == 1
