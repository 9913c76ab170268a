"""Fixtures shared by every test: where the official XSDs are, which databases to use.

PostgreSQL: `EKASE_TEST_DATABASE_URL` names a server to use; without it the session
starts a throwaway cluster of its own (`tests/throwaway_postgres.py`), so a fresh
machine runs the PostgreSQL half of the suite too.

In CI (`EKASE_REQUIRE_ALL=1`, set by `.ci/run`) a missing PostgreSQL, XSD folder
or `xmlsec1` fails the test instead of skipping it, so nothing skips silently.
Tests that need root (system accounts, sshd, tmpfs) call `need_root`: CI runs as
root; a run by another user skips them and says so at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import settings
from lxml import etree
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
REQUIRE_ALL = os.environ.get("EKASE_REQUIRE_ALL") == "1"

# Hypothesis runs the same examples every time (CI must not pass or fail by luck), with
# no example database to replay from; `HYPOTHESIS_PROFILE=explore` searches at random.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


ROOT_ONLY = "needs root"


def need(condition: bool, reason: str) -> None:
    """Skip when a real part is missing on a laptop; fail in CI."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_root(what: str) -> None:
    """For tests that create system accounts, start sshd or mount: skipped (with the
    reason) when not run as root, a failure in CI, which runs as root."""
    need(os.geteuid() == 0, f"{ROOT_ONLY} ({what}); run as root, as CI does")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses PostgreSQL carries the `postgres` marker (`pytest -m postgres`):
    those asking for `pg_url` and the PostgreSQL half of those parametrised over databases."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if "postgres_server" in getattr(item, "fixturenames", ()) or "postgresql" in params:
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say in one line how many tests a non-root run left out, and how to run them."""
    skipped = terminalreporter.stats.get("skipped", [])
    root_only = [r for r in skipped if ROOT_ONLY in str(getattr(r, "longrepr", ""))]
    if root_only:
        terminalreporter.write_line(
            f"{len(root_only)} test(s) need root and were skipped: "
            "run `make test` as root (as CI does) to run every test."
        )


def _xsd_folders() -> list[Path]:
    """Where the official XSDs may be: `EKASE_XSD_DIR`, else `../shared/iso20022` beside
    this checkout or, for a clone of a local repository (`git clone . /tmp/fresh`),
    beside the repository it was cloned from."""
    if "EKASE_XSD_DIR" in os.environ:
        return [Path(os.environ["EKASE_XSD_DIR"])]
    folders = [REPO.parent / "shared" / "iso20022"]
    origin = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    if origin and "://" not in origin and ":" not in origin.split("/")[0]:
        folders.append((REPO / origin).resolve().parent / "shared" / "iso20022")
    return folders


@pytest.fixture(scope="session")
def xsd_dir() -> Path:
    folders = _xsd_folders()
    found = next((f for f in folders if f.is_dir()), None)
    shown = " or ".join(map(str, folders))
    need(found is not None, f"official XSDs not found at {shown} (set EKASE_XSD_DIR)")
    assert found is not None
    return found


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command run in-process (`cli.main`) points the log at its own stream
    (`logs.configure`): the next test on this worker starts from structlog's defaults, not
    with its lines going to a stream captured for another test."""
    yield
    structlog.reset_defaults()


_schemas: dict[str, etree.XMLSchema] = {}


@pytest.fixture(scope="session")
def assert_valid(xsd_dir: Path):  # type: ignore[no-untyped-def]
    """Validate XML bytes or a file against the official XSD of its message type."""

    def check(document: bytes | Path, message: str) -> None:
        if message not in _schemas:
            _schemas[message] = etree.XMLSchema(etree.parse(str(xsd_dir / f"{message}.xsd")))
        if isinstance(document, Path):
            tree = etree.parse(str(document))
        else:
            tree = etree.fromstring(document).getroottree()
        schema = _schemas[message]
        if not schema.validate(tree):
            raise AssertionError(f"{message} invalid: {schema.error_log}")

    return check


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The PostgreSQL every test of the session uses: the one `EKASE_TEST_DATABASE_URL`
    names, or else a throwaway cluster started from the machine's server binaries."""
    from tests import throwaway_postgres

    with throwaway_postgres.server_url(os.environ) as url:
        need(
            url is not None,
            "PostgreSQL server binaries (initdb, pg_ctl) not found: `make test` installs them "
            "(apt-get install postgresql), or set EKASE_TEST_DATABASE_URL",
        )
        assert url is not None
        yield url


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test (dropped afterwards)."""
    url = postgres_server
    from sqlalchemy import create_engine

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    need(path is not None, "xmlsec1 not installed (apt-get install xmlsec1)")
    assert path is not None
    return path
