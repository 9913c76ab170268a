"""A funded installation to copy for every run, made with the gateway's own functions."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.databases import Backend
from bench.workloads import Client, write_config
from gateway.clock import SystemClock
from gateway.environment import open_environment
from gateway.funding import fund
from gateway.keys import init_host_key, init_signing_key
from gateway.settings import load


@dataclass(frozen=True, slots=True)
class Installation:
    folder: Path
    database_url: str
    clients: tuple[Client, ...]

    @property
    def config(self) -> Path:
        return self.folder / "gateway.toml"

    def inbox(self, client_id: str) -> Path:
        return self.folder / "spool" / "clients" / client_id / "in"


def prepare(
    folder: Path, backend: Backend, name: str, clients: Sequence[Client], funded: dict[str, str]
) -> Installation:
    """Keys, a migrated database with the clients' accounts, and `funded` (IBAN → amount)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = backend.create(name)
    settings = load(write_config(folder, url, clients))
    init_signing_key(
        settings.signing.key, settings.signing.certificate, now=SystemClock().now()
    )
    init_host_key(settings.sftp.host_key)
    env = open_environment(settings)
    try:
        for iban, amount in funded.items():
            fund(env, iban, amount, key=f"bench:{iban}")
    finally:
        env.close()
    return Installation(folder, url, tuple(clients))


def copy(template: Installation, backend: Backend, folder: Path, name: str) -> Installation:
    """A fresh copy of `template` in `folder`, with a database of its own."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(template.folder, folder)
    url = backend.create(name, template=template.database_url)
    write_config(folder, url, template.clients)
    return Installation(folder, url, template.clients)


def remove(installation: Installation, backend: Backend) -> None:
    backend.drop(installation.database_url)
    shutil.rmtree(installation.folder, ignore_errors=True)
