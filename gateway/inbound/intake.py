"""The intake: everything known about an inbound file on arrival, as one frozen value.

Who sent it (client, SFTP user, source address, key), what it is (its name in
`work/` and as uploaded, SHA-256, size) and when (received, processed). Every later
stage of the file's run takes this value instead of a handful of loose parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Intake:
    client_id: str
    path: Path  # the claimed file, in work/
    original_name: str  # as uploaded
    user: str | None  # SFTP user (from the upload receipt)
    source_ip: str | None
    key_fingerprint: str | None
    sha256: str
    size: int
    received: dt.datetime  # UTC
    now: dt.datetime  # UTC: when the run started
    timezone: ZoneInfo  # the treasury's
    # A signature container's data file, run as the batch it submits: the container as
    # uploaded (its name and SHA-256), which is what its client can match an answer to.
    carrier: tuple[str, str] | None = None

    @property
    def upload(self) -> str:
        """The upload as its client knows it, for an answer that can name nothing of its
        content (SPEC §6: the uploaded file and its SHA-256)."""
        return self.upload_within(None)

    def upload_within(self, chars_max: int | None) -> str:
        """`upload` in at most `chars_max` characters (None: any): the file names shortened
        in their middle as far as needed, the SHA-256 — what the client matches an answer
        by — always whole."""
        if self.carrier is not None:
            name, sha256 = self.carrier
            form = "file {}, SHA-256 " + sha256 + " (its data file {})"
            names: tuple[str, ...] = (name, self.original_name)
        else:
            form, names = "file {}, SHA-256 " + self.sha256, (self.original_name,)
        whole = form.format(*names)
        if chars_max is None or len(whole) <= chars_max:
            return whole
        each = max((chars_max - len(form.format(*[""] * len(names)))) // len(names), 3)
        return form.format(*(_middle_cut(n, each) for n in names))

    @property
    def claim_name(self) -> str:
        return self.path.name

    @property
    def received_local(self) -> dt.datetime:
        return self.received.astimezone(self.timezone)

    @property
    def now_local(self) -> dt.datetime:
        return self.now.astimezone(self.timezone)


def received_at(
    receipt: Mapping[str, Any] | None, arrived: dt.datetime, now: dt.datetime
) -> dt.datetime:
    """When a file was received (`take_in`): its receipt's time, else when it `arrived`."""
    text = (receipt or {}).get("received_at")
    if isinstance(text, str):
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return min(moment, now)
    return min(arrived, now)


def take_in(
    *,
    client_id: str,
    path: Path,
    original_name: str,
    receipt: Mapping[str, Any] | None,
    sha256: str,
    size: int,
    arrived: dt.datetime,
    now: dt.datetime,
    timezone: ZoneInfo,
) -> Intake:
    """The intake of a claimed file. It was received when the SFTP server made it visible
    in in/ (its receipt) or, with no receipt (an OpenSSH deployment), when it `arrived`
    (last changed in in/) — never later than now. Never by a time the client can set
    (the file's own times: `put -p`, WinSCP), which could put it before a cut-off."""
    receipt = receipt or {}
    received = received_at(receipt, arrived, now)

    def text_of(key: str) -> str | None:
        value = receipt.get(key)
        return str(value) if value is not None else None

    return Intake(
        client_id=client_id,
        path=path,
        original_name=original_name,
        user=text_of("sftp_user"),
        source_ip=text_of("source_ip"),
        key_fingerprint=text_of("key_fingerprint"),
        sha256=sha256,
        size=size,
        received=received,
        now=now,
        timezone=timezone,
    )


_KEPT_END = 8  # characters kept at a shortened name's end (its extension)


def _middle_cut(name: str, chars: int) -> str:
    """`name` in at most `chars` characters, an ellipsis in place of its middle."""
    if len(name) <= chars:
        return name
    end = min(_KEPT_END, (chars - 1) // 2)
    return name[: chars - 1 - end] + "…" + name[len(name) - end :]
