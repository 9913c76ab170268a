"""Fixtures shared by the pipeline's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
