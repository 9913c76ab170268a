"""Upload receipts: who delivered which bytes, written before the file is visible.

A receipt lies at `<spool>/receipts/<client>/<file name>.json` while its file
waits in `<spool>/clients/<client>/in/<file name>`; the pipeline moves both
when it claims the file. A receipt is written whole (temporary dotfile, fsync, link,
fsync of the folder: a reader never sees half of one) and never over another: it takes
its file's name for every process serving the spool (`write_receipt`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.files import write_once

RECEIPTS_DIR = "receipts"


@dataclass(frozen=True, slots=True)
class UploadReceipt:
    """A file that has just become visible in a client's `in/` folder."""

    client_id: str
    sftp_user: str
    source_ip: str
    key_fingerprint: str  # "SHA256:…" of the key the user logged in with
    file_name: str  # the visible name in in/
    uploaded_as: str  # the name the client wrote it under (differs after a rename)
    size_bytes: int
    sha256: str  # hex of the file's bytes
    received_at: dt.datetime  # UTC, when the file became visible
    path: Path  # the file in in/
    receipt_path: Path  # its receipt

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "sftp_user": self.sftp_user,
            "source_ip": self.source_ip,
            "key_fingerprint": self.key_fingerprint,
            "file_name": self.file_name,
            "uploaded_as": self.uploaded_as,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "received_at": self.received_at.isoformat(),
        }

    def renamed(self, new_name: str, path: Path, receipt_path: Path) -> UploadReceipt:
        return replace(self, file_name=new_name, path=path, receipt_path=receipt_path)


def receipt_dir(spool_dir: Path, client_id: str) -> Path:
    return spool_dir / RECEIPTS_DIR / client_id


def receipt_path(spool_dir: Path, client_id: str, file_name: str) -> Path:
    return receipt_dir(spool_dir, client_id) / f"{file_name}.json"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def write_receipt(receipt: UploadReceipt) -> bool:
    """Write the receipt whole or not at all, never over another: False if one is there.
    A receipt takes its file's name in in/ before the file is moved there, for every
    process (two daemons may serve one spool): of two uploads of one name published at
    the same moment, one gets the name and the other is refused, never overwritten. It is
    read-only: it goes with its file to the archive, which is immutable (SPEC §5), and
    nothing writes it again (moving it needs only its folder). Its mtime is `received_at`
    to the microsecond: a client's files run in that order (`arrival`), read with one stat."""
    target = receipt.receipt_path
    target.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(receipt.to_json(), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    if not write_once(target, data, mode=0o440):
        return False
    at_ns = (receipt.received_at - _EPOCH) // dt.timedelta(microseconds=1) * 1000
    try:
        os.utime(target, ns=(at_ns, at_ns))
    except BaseException:
        target.unlink(missing_ok=True)  # the name is not taken by a receipt that failed
        raise
    return True


def read_receipt(path: Path, file_path: Path) -> UploadReceipt | None:
    """The receipt at `path`, or None if it is missing or unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return UploadReceipt(
            client_id=str(raw["client_id"]),
            sftp_user=str(raw["sftp_user"]),
            source_ip=str(raw["source_ip"]),
            key_fingerprint=str(raw["key_fingerprint"]),
            file_name=str(raw["file_name"]),
            uploaded_as=str(raw.get("uploaded_as", raw["file_name"])),
            size_bytes=int(raw["size_bytes"]),
            sha256=str(raw["sha256"]),
            received_at=dt.datetime.fromisoformat(str(raw["received_at"])),
            path=file_path,
            receipt_path=path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_receipt(path: Path) -> None:
    path.unlink(missing_ok=True)
