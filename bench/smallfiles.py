"""Many small files through the running daemon (SPEC §10): 1,000 files of 20 payments from
50 clients, arriving at 100 a second.

`ekase-gateway run` (built-in SFTP server and watcher) runs on a funded installation; the
files arrive as bench/arrivals.py says. A file's latency runs from its arrival in in/ (its
receipt's `received_at`) to the rename of its answer into out/ (the answer's inode change
time); an answer is matched to its file by the pain.002's OrgnlMsgId, the file's own MsgId.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from bench import arrivals, installation, workday
from bench.arrivals import Upload
from bench.databases import Backend
from bench.installation import Installation
from bench.measure import children, kib
from bench.workloads import SMALL_FILE_CLIENTS, Client
from gateway import samples

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
files_total = 1_000
payments_per_file = 20
ready_seconds_max = 60
answers_wait_seconds_max = 600
stop_seconds_max = 30
poll_seconds = 0.2


@dataclass(frozen=True, slots=True)
class SmallFiles:
    files: int
    arrivals: str  # drop or sftp (bench/arrivals.py)
    latencies: list[float]  # seconds, of the files answered
    arrivals_per_second: float  # as they arrived in in/
    files_per_second: float  # answered, from the first arrival to the last answer
    daemon_peak_mb: float


def stage(folder: Path, clients: Sequence[Client], day: dt.date) -> list[Upload]:
    """The files, each client's in turn, each named by its MsgId; a client's files are
    numbered apart (no AM05)."""
    folder.mkdir(parents=True, exist_ok=True)
    uploads = []
    for k in range(files_total):
        client = clients[k % len(clients)]
        others = [c.ibans[0] for c in clients if c is not client]
        msg_id = f"SF-{k:04d}"
        first = k // len(clients) * payments_per_file
        data = samples.to_bytes(
            samples.erp_run(
                client.ibans[0], payments_per_file, others,
                msg_id=msg_id, execution_date=day, first=first,
            )
        )  # fmt: skip
        staged = folder / f"{msg_id}.xml"
        staged.write_bytes(data)
        uploads.append(Upload(client, staged, hashlib.sha256(data).hexdigest(), len(data)))
    return uploads


def start_daemon(inst: Installation) -> tuple[subprocess.Popen[bytes], int]:
    """The daemon, once it has finished starting up; and its SFTP port."""
    log = inst.folder / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [EXE, "run", "-c", str(inst.config)], stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + ready_seconds_max
    while b'"daemon.recovered"' not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_daemon(proc)
            raise SystemExit(f"the daemon did not start:\n{log.read_text()[-4000:]}")
        time.sleep(poll_seconds)
    started = next(
        json.loads(line) for line in log.read_text().splitlines() if '"daemon.started"' in line
    )
    return proc, int(started["listen"].rpartition(":")[2])


def stop_daemon(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM, as systemd stops it; the peak memory (MB) of the daemon and the processes
    it started (its workers), added, before they went."""
    tree: list[int] = []
    pending = [proc.pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children(pid))
    peak_mb = sum(kib(pid, "VmHWM") for pid in tree) / 1024
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(stop_seconds_max)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return peak_mb


def _answers(inst: Installation) -> Iterator[Path]:
    for client in inst.clients:
        out = inst.folder / "spool" / "clients" / client.id / "out"
        for entry in os.scandir(out):
            if "_pain.002." in entry.name and entry.name.endswith(".xml"):
                yield Path(entry.path)


def wait_for_answers(proc: subprocess.Popen[bytes], inst: Installation, count: int) -> None:
    deadline = time.monotonic() + answers_wait_seconds_max
    while sum(1 for _ in _answers(inst)) < count and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon stopped ({proc.returncode}); see its daemon.log")
        time.sleep(poll_seconds)


def answered(inst: Installation) -> dict[str, float]:
    """When each file's first answer appeared in out/, by the file's MsgId."""
    times: dict[str, float] = {}
    for path in _answers(inst):
        _, element = next(etree.iterparse(str(path), tag="{*}OrgnlMsgId"))
        appeared = path.stat().st_ctime_ns / 1e9
        times[element.text or ""] = min(appeared, times.get(element.text or "", appeared))
    return times


def arrived(inst: Installation) -> dict[str, float]:
    """When each file arrived in in/, by its MsgId (the file's name), from the receipts
    shelved with the files."""
    times = {}
    for path in (inst.folder / "spool").rglob("*.receipt.json"):
        receipt = json.loads(path.read_text())
        received = workday.wall_of(dt.datetime.fromisoformat(receipt["received_at"]))
        times[receipt["file_name"].removesuffix(".xml")] = received
    return times


def measure(backend: Backend, folder: Path, arrival: str) -> SmallFiles:
    clients = SMALL_FILE_CLIENTS
    funded = {client.ibans[0]: "1000000" for client in clients}
    inst = installation.prepare(folder / backend.key, backend, "small_files", clients, funded)
    uploads = stage(folder / f"staged-{backend.key}", clients, workday.today())
    proc, port = start_daemon(inst)
    try:
        if arrival == "sftp":
            arrivals.upload(uploads, inst, port)
        else:
            arrivals.drop(uploads, inst)
        wait_for_answers(proc, inst, len(uploads))
    finally:
        peak_mb = stop_daemon(proc)
    answers, appeared = answered(inst), arrived(inst)
    installation.remove(inst, backend)
    latencies = [answers[m] - t for m, t in appeared.items() if m in answers]
    first, last_arrival = min(appeared.values()), max(appeared.values())
    last_answer = max(answers.values(), default=first)
    return SmallFiles(
        files=len(uploads),
        arrivals=arrival,
        latencies=latencies,
        arrivals_per_second=(len(appeared) - 1) / (last_arrival - first),
        files_per_second=len(latencies) / max(last_answer - first, 1e-9),
        daemon_peak_mb=peak_mb,
    )
