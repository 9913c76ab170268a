"""Alembic migrations of the gateway's tables (version table `gw_alembic_version`)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from ledger.migrations import Migrated, upgrade_to_head

VERSION_TABLE = "gw_alembic_version"
HEAD = "0018"  # the newest revision in versions/ (a test compares it with Alembic's head)


def run_upgrade(engine: Engine) -> Migrated | None:
    return upgrade_to_head(engine, Path(__file__).parent, VERSION_TABLE, HEAD, "gateway")
