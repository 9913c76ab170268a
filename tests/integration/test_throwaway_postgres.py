"""`make test` on a machine without `EKASE_TEST_DATABASE_URL` still runs every PostgreSQL test:
the session starts a throwaway cluster from the machine's `initdb`/`pg_ctl` (SPEC §2)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests import throwaway_postgres
from tests.conftest import need


def _data_directory(url: str) -> Path:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return Path(conn.execute(text("SHOW data_directory")).scalar_one())
    finally:
        engine.dispose()


def test_without_the_variable_a_throwaway_cluster_serves_and_is_removed() -> None:
    """With no URL named, a cluster of the session's own answers on a loopback port (never
    root's: initdb refuses root, so a root run hands it to an unprivileged account), with
    a database `test`; when the block ends it is stopped and its folder is gone."""
    need(throwaway_postgres.find_server_binaries() is not None, "no initdb/pg_ctl installed")
    with throwaway_postgres.server_url({}) as url:
        assert url is not None
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:") and url.endswith("/test")
        data = _data_directory(url)
        owner = pwd.getpwuid(data.stat().st_uid).pw_name
        if os.geteuid() == 0:
            assert owner == throwaway_postgres.cluster_account
        else:
            assert owner == pwd.getpwuid(os.geteuid()).pw_name
        port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert not data.parent.exists(), "the cluster's folder is removed"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="test",
                        connect_timeout=5)


def test_a_named_server_is_used_as_it_is() -> None:
    """`EKASE_TEST_DATABASE_URL` still selects an existing server: nothing is started."""
    named = "postgresql+psycopg://someone@db.example:5433/elsewhere"
    with throwaway_postgres.server_url({"EKASE_TEST_DATABASE_URL": named}) as url:
        assert url == named


def test_the_sessions_server_is_the_throwaway_one_when_none_is_named(postgres_server: str) -> None:
    """This very session: without the variable, the PostgreSQL tests ran against a cluster
    in a temporary folder, not against a server of the machine."""
    named = os.environ.get("EKASE_TEST_DATABASE_URL")
    if named:
        assert postgres_server == named
        return
    data = _data_directory(postgres_server)
    assert data.parent.name.startswith("ekase-pg-"), data
    assert ":5432/" not in postgres_server
