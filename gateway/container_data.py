"""A signature container's data file on disk (SPEC §11): where it is written while the
container is read, when it is too big to be held (`asice.read_container`), and taken in
as a batch of its own — a container that is the submission, or a container tried in
`test/` (SPEC §15)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from gateway.environment import Environment
from gateway.files import fsync_file, write_in_place
from gateway.inbound import asice
from gateway.inbound.intake import Intake, take_in


def scratch_path(env: Environment, intake: Intake) -> Path:
    """Where the data file of the container `intake` is written while it is read, when it
    is too big to be held (`asice.read_container`)."""
    return env.spool.tmp() / f"{intake.claim_name}.data.xml"


def taken_in(intake: Intake, container: asice.Container, path: Path) -> Intake:
    """The container's data file written at `path` and taken in as a batch of its own,
    received with the container (`intake`), which carries it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if container.data_path is None:
        assert container.data is not None
        write_in_place(path, container.data, mode=0o444)
    elif container.data_path != path:  # read into a scratch file: the same bytes, linked
        path.unlink(missing_ok=True)
        os.link(container.data_path, path)
        fsync_file(path)
    receipt = {"sftp_user": intake.user, "source_ip": intake.source_ip,
               "key_fingerprint": intake.key_fingerprint,
               "received_at": intake.received.isoformat()}  # fmt: skip
    data = take_in(
        client_id=intake.client_id, path=path, original_name=container.data_name,
        receipt=receipt, sha256=container.data_sha256.hex(), size=container.data_size,
        arrived=intake.received, now=intake.now, timezone=intake.timezone,
    )  # fmt: skip
    return dataclasses.replace(data, carrier=(intake.original_name, intake.sha256))
