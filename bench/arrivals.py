"""How the small files arrive in the clients' in/ folders, `arrivals_per_second`, each
client's in turn:

- drop: as the built-in SFTP server leaves an upload — its receipt written first, then the
  whole file renamed into in/ — by this process, so the daemon does none of the server's
  work for them;
- sftp: uploaded through the daemon's own SFTP server, one connection per client made
  before the first file, each file a task of its own so that a slow one delays no other.

Either way the receipt's `received_at`, taken just before the rename into in/ on the
gateway's clock (pinned by the bench: `workday.wall_of` gives it back on the wall clock),
is when the file arrived.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bench.installation import Installation
from bench.workloads import Client
from gateway.clock import SystemClock
from gateway.files import fsync_dir
from gateway.sftp.receipts import UploadReceipt, receipt_path, write_receipt

ARRIVALS = ("drop", "sftp")
arrivals_per_second = 100


@dataclass(frozen=True, slots=True)
class Upload:
    client: Client
    staged: Path  # written beforehand beside the spool, on the same filesystem
    sha256: str
    size_bytes: int


def _key(inst: Installation) -> Path:
    return inst.folder / "keys" / "bench"


def put(upload: Upload, inst: Installation, key_fingerprint: str) -> None:
    """The upload's receipt, then the file renamed into in/, as the built-in server does."""
    spool = inst.folder / "spool"
    client_id = upload.client.id
    name = upload.staged.name
    target = inst.inbox(client_id) / name
    receipt = UploadReceipt(
        client_id=client_id, sftp_user=f"{client_id}-erp", source_ip="127.0.0.1",
        key_fingerprint=key_fingerprint, file_name=name, uploaded_as=name,
        size_bytes=upload.size_bytes, sha256=upload.sha256,
        received_at=SystemClock().now(), path=target,
        receipt_path=receipt_path(spool, client_id, name),
    )  # fmt: skip
    write_receipt(receipt)
    os.replace(upload.staged, target)
    fsync_dir(target.parent)


def drop(uploads: Sequence[Upload], inst: Installation) -> None:
    fingerprint = asyncssh.read_public_key(f"{_key(inst)}.pub").get_fingerprint("sha256")
    start = time.monotonic()
    for k, upload in enumerate(uploads):
        delay = start + k / arrivals_per_second - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        put(upload, inst, fingerprint)


async def _upload_all(uploads: Sequence[Upload], inst: Installation, port: int) -> None:
    key = asyncssh.read_private_key(_key(inst))
    connections = {}
    for client in inst.clients:
        user = f"{client.id}-erp"
        connections[client.id] = await asyncssh.connect(
            "127.0.0.1", port, username=user, client_keys=[key], known_hosts=None
        )
    sessions = {cid: await conn.start_sftp_client() for cid, conn in connections.items()}
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for k, upload in enumerate(uploads):
        await asyncio.sleep(max(0.0, start + k / arrivals_per_second - loop.time()))
        session = sessions[upload.client.id]
        tasks.append(asyncio.create_task(session.put(upload.staged, f"/in/{upload.staged.name}")))
    await asyncio.gather(*tasks)
    for conn in connections.values():
        conn.close()
        await conn.wait_closed()


def upload(uploads: Sequence[Upload], inst: Installation, port: int) -> None:
    asyncio.run(_upload_all(uploads, inst, port))
