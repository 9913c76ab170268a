"""Many small files through the running daemon (SPEC §10): 1,000 files of 20 payments from
50 clients, arriving at 100 a second.

`ekase-gateway run` (built-in SFTP server and watcher) runs on a funded installation. Each
file is put into its client's in/ the way the built-in server leaves an upload: its receipt
first, then the whole file renamed into in/. No SSH is involved, so the daemon does none of
the server's work for these files. A file's latency runs from that rename to the rename of
its answer into out/ (the answer's inode change time); an answer is matched to its file by
the pain.002's OrgnlMsgId, which is the file's own MsgId.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from lxml import etree

from bench import installation
from bench.databases import Backend
from bench.installation import Installation
from bench.measure import kib
from bench.workloads import SMALL_FILE_CLIENTS, Client
from gateway import samples
from gateway.sftp.receipts import UploadReceipt, fsync_dir, receipt_path, write_receipt

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
files_total = 1_000
payments_per_file = 20
arrivals_per_second = 100
ready_seconds_max = 60
answers_wait_seconds_max = 600
stop_seconds_max = 30
poll_seconds = 0.2


@dataclass(frozen=True, slots=True)
class Upload:
    client: Client
    msg_id: str
    staged: Path  # written beforehand beside the spool, on the same filesystem
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class SmallFiles:
    files: int
    latencies: list[float]  # seconds, of the files answered
    arrivals_per_second: float  # as they were put into in/
    files_per_second: float  # answered, from the first arrival to the last answer
    daemon_peak_mb: float


def stage(folder: Path, clients: Sequence[Client], day: dt.date) -> list[Upload]:
    """The files, each client's in turn; a client's files are numbered apart (no AM05)."""
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
        uploads.append(Upload(client, msg_id, staged, hashlib.sha256(data).hexdigest(), len(data)))
    return uploads


def start_daemon(inst: Installation) -> subprocess.Popen[bytes]:
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
    return proc


def stop_daemon(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM, as systemd stops it; the daemon's own peak memory (MB) before it went."""
    peak_mb = kib(proc.pid, "VmHWM") / 1024
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(stop_seconds_max)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return peak_mb


def put(upload: Upload, inst: Installation, key_fingerprint: str) -> float:
    """The upload's receipt, then the file renamed into in/; the moment it appeared there."""
    spool = inst.folder / "spool"
    client_id = upload.client.id
    name = upload.staged.name
    target = inst.inbox(client_id) / name
    receipt = UploadReceipt(
        client_id=client_id, sftp_user=f"{client_id}-erp", source_ip="127.0.0.1",
        key_fingerprint=key_fingerprint, file_name=name, uploaded_as=name,
        size_bytes=upload.size_bytes, sha256=upload.sha256,
        received_at=dt.datetime.now(dt.UTC), path=target,
        receipt_path=receipt_path(spool, client_id, name),
    )  # fmt: skip
    write_receipt(receipt)
    os.replace(upload.staged, target)
    appeared = time.time()
    fsync_dir(target.parent)
    return appeared


def drop(uploads: Sequence[Upload], inst: Installation) -> dict[str, float]:
    """Each upload at its moment, `arrivals_per_second`; when each appeared, by MsgId."""
    key = asyncssh.read_public_key(inst.folder / "keys" / "bench.pub")
    fingerprint = key.get_fingerprint("sha256")
    appeared = {}
    start = time.monotonic()
    for k, upload in enumerate(uploads):
        delay = start + k / arrivals_per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        appeared[upload.msg_id] = put(upload, inst, fingerprint)
    return appeared


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


def measure(backend: Backend, folder: Path) -> SmallFiles:
    clients = SMALL_FILE_CLIENTS
    funded = {client.ibans[0]: "1000000" for client in clients}
    inst = installation.prepare(folder / backend.key, backend, "small_files", clients, funded)
    uploads = stage(folder / f"staged-{backend.key}", clients, dt.date.today())
    proc = start_daemon(inst)
    try:
        appeared = drop(uploads, inst)
        wait_for_answers(proc, inst, len(uploads))
    finally:
        peak_mb = stop_daemon(proc)
    answers = answered(inst)
    installation.remove(inst, backend)
    latencies = [answers[m] - t for m, t in appeared.items() if m in answers]
    first, last_arrival = min(appeared.values()), max(appeared.values())
    last_answer = max(answers.values(), default=first)
    return SmallFiles(
        files=len(uploads),
        latencies=latencies,
        arrivals_per_second=(len(appeared) - 1) / (last_arrival - first),
        files_per_second=len(latencies) / max(last_answer - first, 1e-9),
        daemon_peak_mb=peak_mb,
    )
