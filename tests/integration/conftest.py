"""Fixtures shared by the pipeline's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sftp_fixtures import RunningServer, make_keys, running_server
from tests.pipeline_fixtures import Installation


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One installation built once (keys, schema, funding), copied for each test."""
    base = tmp_path_factory.mktemp("template")
    Installation.create(base).close()
    return base


@pytest.fixture
def inst(template: Path, tmp_path: Path) -> Iterator[Installation]:
    """A fresh copy of the template installation, closed after the test."""
    installation = Installation.copy_of(template, tmp_path / "gw")
    yield installation
    installation.close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Client keys for the SFTP server tests (made once per module)."""
    return make_keys(tmp_path_factory.mktemp("client-keys"))


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path]) -> Iterator[RunningServer]:
    """A built-in SFTP server on a free loopback port (a module may run its own)."""
    with running_server(tmp_path / "gw", keys, auth_failures_before_penalty=50) as running:
        yield running
