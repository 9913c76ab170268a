"""The spool's `rates/` drop folder, and the schema upgrade that brings the rate and
announcement tables to a database made before them (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import OperationalError

from gateway import db, migrations
from gateway.clock import FixedClock
from gateway.environment import Environment, open_environment
from gateway.migrations import HEAD, VERSION_TABLE, run_upgrade
from gateway.rates import drop, ecb, store
from gateway.settings import load
from ledger import migrations as ledger_migrations
from ledger.engine import make_engine
from tests.pipeline_fixtures import RIGA, write_config
from tests.rates_fixtures import BILLION_LAUGHS, HIST_ZIP, KNOWN_DAY, daily, ecb_xml

NOW = dt.datetime(2024, 11, 19, 9, 0, tzinfo=RIGA)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Environment]:
    settings = load(write_config(tmp_path, database_url=database_url))
    environment = open_environment(
        settings, clock=FixedClock(NOW.astimezone(dt.UTC)), need_sealer=False
    )
    yield environment
    environment.close()


def put(env: Environment, name: str, data: bytes, age_seconds: float = 60.0) -> Path:
    folder = drop.folder(env)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    stamp = NOW.timestamp() - age_seconds  # by the environment's clock
    os.utime(path, (stamp, stamp))
    return path


def stored_count(env: Environment) -> int:
    with env.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(db.rates)).scalar_one())


def test_dropped_files_are_imported_and_shelved_with_findings(env: Environment) -> None:
    """The daemon imports what staff drop into `rates/`: a good file goes to `done/`,
    a bad one to `refused/`, each beside a findings file saying what happened."""
    put(env, "eurofxref-daily.xml", ecb_xml(daily()))
    put(env, "bomb.xml", BILLION_LAUGHS)
    put(env, ".eurofxref-hist.zip.part", HIST_ZIP.read_bytes())  # still being copied
    put(env, "just-copied.xml", ecb_xml(daily(dt.date(2024, 11, 15))), age_seconds=0)

    results = drop.import_dropped(env)

    by_name = {r.name: r for r in results}
    assert set(by_name) == {"eurofxref-daily.xml", "bomb.xml"}
    folder = drop.folder(env)
    good = by_name["eurofxref-daily.xml"]
    assert good.imported and good.moved_to == folder / "done" / "eurofxref-daily.xml"
    assert (folder / "done" / "eurofxref-daily.xml.findings.txt").read_text() == (
        "eurofxref-daily.xml: 1 day(s) 2024-11-18: 12 rate(s) added, 0 corrected, 0 unchanged\n"
    )
    bad = by_name["bomb.xml"]
    assert not bad.imported and bad.moved_to == folder / "refused" / "bomb.xml"
    assert (folder / "refused" / "bomb.xml.findings.txt").read_text() == (
        "bomb.xml: refused: a DTD (DOCTYPE) is not allowed\n"
    )
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        ".eurofxref-hist.zip.part", "just-copied.xml",
    ]  # fmt: skip
    assert stored_count(env) == 12
    with env.engine.connect() as conn:
        assert store.rates_for_day(conn, dt.date(2024, 11, 19)).rate_date == KNOWN_DAY

    # The same daily file dropped again the next day does not overwrite the first.
    put(env, "eurofxref-daily.xml", ecb_xml(daily()))
    (again,) = drop.import_dropped(env, wall_now=NOW.timestamp() - 30)
    assert again.moved_to == folder / "done" / "eurofxref-daily.xml.1"
    assert "12 unchanged" in (folder / "done" / "eurofxref-daily.xml.1.findings.txt").read_text()
    # Once settled, the file copied a moment ago is taken too.
    (late,) = drop.import_dropped(env, wall_now=NOW.timestamp() + 60)
    assert late.name == "just-copied.xml" and late.imported


def test_a_file_dated_on_a_day_the_ecb_never_publishes_is_refused(env: Environment) -> None:
    """A file whose rates are dated on a Saturday (SPEC §13) goes to `refused/`, with a
    findings line naming the date and why, and none of its rates is stored."""
    put(env, "saturday.xml", ecb_xml({**daily(), **daily(dt.date(2024, 11, 15))} | {
        dt.date(2024, 11, 16): daily()[KNOWN_DAY],
    }))  # fmt: skip
    (result,) = drop.import_dropped(env)
    folder = drop.folder(env)
    assert not result.imported and result.moved_to == folder / "refused" / "saturday.xml"
    assert (folder / "refused" / "saturday.xml.findings.txt").read_text() == (
        "saturday.xml: refused: 2024-11-16 is not an ECB business day: "
        "the ECB publishes no rates dated on it\n"
    )
    assert stored_count(env) == 0


def test_a_database_fault_leaves_the_file_to_be_tried_again(
    env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of ours is no verdict on the file: it stays in `rates/`, unjudged."""
    path = put(env, "eurofxref-daily.xml", ecb_xml(daily()))

    def broken(*args: object, **kwargs: object) -> object:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(store, "store", broken)
    with pytest.raises(OperationalError):
        drop.import_dropped(env)
    assert path.exists()
    assert not any((drop.folder(env) / "done").iterdir())
    assert not any((drop.folder(env) / "refused").iterdir())


def test_an_older_database_gains_the_rate_tables(tmp_path: Path, database_url: str) -> None:
    """A database at revision 0005 (before rates), as Alembic made it, is upgraded: the
    tables appear, empty and usable, and the version is the head."""
    engine = make_engine(database_url)
    for package, revision in ((ledger_migrations, ledger_migrations.HEAD), (migrations, "0005")):
        assert package.__file__ is not None
        config = ledger_migrations.alembic_config(
            engine, Path(package.__file__).parent, package.VERSION_TABLE
        )
        command.upgrade(config, revision)
    assert not {"gw_rates", "gw_announcements"} & set(sa.inspect(engine).get_table_names())
    run_upgrade(engine)
    with engine.begin() as conn:
        version = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
        assert version == HEAD
        tables = set(sa.inspect(conn).get_table_names())
        assert {"gw_rates", "gw_announcements"} <= tables
    now = dt.datetime(2024, 11, 19, 9, tzinfo=dt.UTC)
    rate_file = ecb.parse(ecb_xml(daily()), today=now.date())
    assert isinstance(rate_file, ecb.RateFile)
    found = store.store(engine, rate_file.days, source="ecb", form="xml", now=now)
    assert isinstance(found, store.Imported) and found.added == 12
    engine.dispose()
