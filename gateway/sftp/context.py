"""State shared by every connection of one listening SFTP server."""

from __future__ import annotations

import os
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.clock import Clock
from gateway.settings import Settings
from gateway.sftp.guard import AuthPenalty, LogThrottle, SessionLimit, Slots
from gateway.sftp.quota import WaitingBytes
from gateway.sftp.receipts import UploadReceipt

if TYPE_CHECKING:
    from gateway.sftp.connection import Connection

UploadHook = Callable[[UploadReceipt], None]

HASH_CACHE_ENTRIES_MAX = 1024
REFUSAL_LOG_SECONDS = 60.0


def file_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class Uploader:
    """Who wrote a file that is still under a temporary name."""

    sha256: str
    user: str
    source_ip: str
    key_fingerprint: str
    uploaded_as: str


@dataclass(slots=True)
class ServerContext:
    """State shared by all connections of one listening server."""

    settings: Settings
    log: Any
    on_upload: UploadHook | None
    penalty: AuthPenalty
    sessions: SessionLimit
    logins: Slots  # connections not logged in yet (`guard.LoginSlots`)
    waiting: WaitingBytes
    handles: Slots  # open files, per user and in all (`guard.OpenHandles`)
    throttle: LogThrottle  # lines said once a minute per key (refusals, loop errors)
    clock: Clock  # the environment's: an upload's receipt says when it was received
    connections: set[Connection] = field(default_factory=set)
    # Uploads refused for passing the client's waiting-bytes limit, by client (for metrics).
    uploads_refused: Counter[str] = field(default_factory=Counter)
    # Files closed under a temporary name, by (dev, inode, size, mtime), so that
    # the usual rename to the final name need not read the file again.
    uploaders: OrderedDict[tuple[int, int, int, int], Uploader] = field(
        default_factory=OrderedDict
    )
    # The local paths of /in (or /test) names an open upload will take: one upload per name
    # at a time, so that the second is refused when it opens, not after it sent its bytes.
    writing: set[str] = field(default_factory=set)
    # The hidden files this server's uploads are written to: counted by `waiting` as
    # reserved, not as found on disk (another process's are found on disk, `quota`).
    temps: set[str] = field(default_factory=set)

    def log_limited(self, key: str, level: str, event: str, **fields: Any) -> None:
        """Log `event` unless a line of `key` was logged less than a minute ago (a flood is
        logged once a minute per key, with how many lines it held back)."""
        held_back = self.throttle.allow(key)
        if held_back is None:
            return
        getattr(self.log, level)(
            event, **fields, logged_again_after_seconds=self.throttle.seconds,
            held_back=held_back,
        )  # fmt: skip

    def log_refusal_once(self, address: str, reason: str, **fields: Any) -> None:
        self.log_limited(
            f"refused {address} {reason}", "warning", "sftp.connection.refused", source_ip=address,
            reason=reason, **fields,
        )  # fmt: skip

    def client_dir(self, client_id: str) -> Path:
        return self.settings.spool_dir / "clients" / client_id

    def remember(self, st: os.stat_result, uploader: Uploader) -> None:
        self.uploaders[file_identity(st)] = uploader
        while len(self.uploaders) > HASH_CACHE_ENTRIES_MAX:
            self.uploaders.popitem(last=False)

    def notify(self, receipt: UploadReceipt) -> None:
        if self.on_upload is None:
            return
        try:
            self.on_upload(receipt)
        except Exception:  # a broken hook must not break the front door
            self.log.exception("sftp.upload.hook_failed", file=receipt.file_name)


