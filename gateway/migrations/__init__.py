"""Alembic migrations of the gateway's tables (version table `gw_alembic_version`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Engine

from ledger.migrations import alembic_config

VERSION_TABLE = "gw_alembic_version"


def run_upgrade(engine: Engine) -> None:
    command.upgrade(alembic_config(engine, Path(__file__).parent, VERSION_TABLE), "head")
