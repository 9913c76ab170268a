"""`scan --once` claims its first file and starts reading it before it loads the
database layer (`gateway.readahead`) — a file big enough for a reading child; a small
one the pass reads in-process. Real `ekase-gateway` processes, a real spool."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import asice_writer, readahead
from gateway.clock import SystemClock
from gateway.inbound import asice
from gateway.inbound.reader import inline_bytes_max
from gateway.settings import load
from tests.pipeline_fixtures import CLIENT_A, CLIENT_B, Batch, Installation

EXE = str(Path(sys.executable).with_name("ekase-gateway"))
LATE = "23:59:59"  # real time drives the subprocess: book at any hour


def _scan(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "scan", "-c", str(config), "--once"], capture_output=True, text=True, timeout=120
    )


def _installation(base: Path, **gateway: object) -> Installation:
    inst = Installation.create(
        base, cutoff_internal=LATE, cutoff_external=LATE, eod_time=LATE, **gateway
    )
    inst.close()  # the subprocesses use the database; the test only reads files
    return inst


def _big(msg_id: str) -> bytes:
    """A file over `inline_bytes_max`: it has a reading child, so it is read ahead."""
    batch = Batch(msg_id=msg_id)
    for n in range(4000):
        batch.tx(f"E2E-{n}", "1.00")
    data = batch.build()
    assert len(data) > inline_bytes_max
    return data


def _answers(inst: Installation, client: str) -> list[str]:
    return sorted(p.name for p in inst.env.spool.outbox(client).glob("*.xml"))


def _left(inst: Installation, client: str) -> list[Path]:
    spool = inst.env.spool
    return [*spool.inbox(client).iterdir(), *spool.work(client).iterdir(), *spool.tmp().iterdir()]


def test_every_file_is_answered_once(tmp_path: Path) -> None:
    inst = _installation(tmp_path / "gw")
    for n in range(3):
        inst.drop(Batch(msg_id=f"RA-A{n}").tx(f"E2E-{n}", "1.00").build(), f"a{n}.xml")
    inst.drop(Batch(msg_id="RA-B0").tx("E2E-B", "1.00").build(), "b0.xml", client=CLIENT_B)
    done = _scan(inst.config)
    assert done.returncode == 0, done.stderr
    assert "processed 4 file(s): 4 answered" in done.stdout
    assert len(_answers(inst, CLIENT_A)) == 3 and len(_answers(inst, CLIENT_B)) == 1
    assert _left(inst, CLIENT_A) == [] and _left(inst, CLIENT_B) == []


def test_the_same_bytes_again_are_a_repeat(tmp_path: Path) -> None:
    """The second upload is read ahead too, then found known: its reader is closed and
    the original answer delivered again."""
    inst = _installation(tmp_path / "gw")
    data = Batch(msg_id="RA-DUP").tx("E2E-1", "1.00").build()
    inst.drop(data, "first.xml")
    assert _scan(inst.config).returncode == 0
    inst.drop(data, "again.xml")
    again = _scan(inst.config)
    assert again.returncode == 0, again.stderr
    assert "1 repeated" in again.stdout
    assert len(_answers(inst, CLIENT_A)) == 2
    assert _left(inst, CLIENT_A) == []


def test_a_database_that_is_down_leaves_the_claim_for_the_next_run(tmp_path: Path) -> None:
    inst = _installation(tmp_path / "gw")
    inst.drop(_big("RA-DOWN"), "down.xml")
    good = inst.config.read_text()
    inst.config.write_text(
        good.replace('"sqlite:///spool/ledger.sqlite3"', '"postgresql+psycopg://x@127.0.0.1:1/x"')
    )
    down = _scan(inst.config)
    assert down.returncode == 1 and "database unavailable" in down.stderr, down.stderr
    # one line, as README says (psycopg's hint was a second, unprefixed line)
    [said] = [line for line in down.stderr.splitlines() if not line.startswith("{")]
    assert said.startswith("ekase-gateway: database unavailable") and "Is the server" in said
    # and logged as a fault of ours, the alert for the machine's (README: `scan.fault`)
    assert '"event": "scan.fault"' in down.stderr, down.stderr
    [claimed] = list(inst.env.spool.work(CLIENT_A).glob("*__down.xml"))  # claimed, kept
    inst.config.write_text(good)
    up = _scan(inst.config)
    assert up.returncode == 0, up.stderr
    assert len(_answers(inst, CLIENT_A)) == 1 and not claimed.exists()
    assert _left(inst, CLIENT_A) == []


def test_a_file_another_process_holds_is_not_taken(tmp_path: Path) -> None:
    inst = _installation(tmp_path / "gw")
    path = inst.drop(_big("RA-LOCK"), "held.xml")
    settings = load(inst.config)
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert readahead.start(settings, SystemClock().now()) is None
        assert path.exists()
    finally:
        os.close(fd)
    first = readahead.start(settings, SystemClock().now())
    assert first is not None and not path.exists()
    first.release()  # its reader closed unused; the claim waits in work/ for the pipeline
    assert [p.name for p in inst.env.spool.work(CLIENT_A).glob("*__held.xml")]


def test_a_small_file_is_left_to_the_pass(tmp_path: Path) -> None:
    """Forking a reader would cost more than reading it: the pass reads it in-process."""
    inst = _installation(tmp_path / "gw")
    path = inst.drop(Batch(msg_id="RA-SMALL").tx("E2E-1", "1.00").build(), "small.xml")
    assert readahead.start(load(inst.config), SystemClock().now()) is None
    assert path.exists()


def test_a_signature_container_is_left_to_the_pass(tmp_path: Path) -> None:
    """A container is unzipped by the pass, never parsed: no reading child for it, even
    one big enough (its data file is read when its batch executes)."""
    inst = _installation(tmp_path / "gw")
    noise = asice.SignatureFile("META-INF/signatures0.xml", os.urandom(inline_bytes_max))
    container = asice_writer.write_container(
        "pay.xml", _big("RA-SIGNED"), [noise], moment=SystemClock().now()
    )
    assert len(container) > inline_bytes_max
    path = inst.drop(container, "pay.asice")
    assert readahead.start(load(inst.config), SystemClock().now()) is None
    assert path.exists()


def test_a_file_over_the_size_limit_is_left_to_the_pipeline(tmp_path: Path) -> None:
    inst = _installation(tmp_path / "gw", max_file_bytes=1000)
    big = Batch(msg_id="RA-BIG")
    for n in range(20):
        big.tx(f"E2E-{n}", "1.00")
    path = inst.drop(big.build(), "big.xml")
    assert readahead.start(load(inst.config), SystemClock().now()) is None
    assert path.exists()  # not claimed here; the pass rejects it unread (FF01)
    done = _scan(inst.config)
    assert done.returncode == 0 and "1 rejected as a whole" in done.stdout, done.stdout


def test_the_reader_starts_before_the_heavy_modules_are_loaded(tmp_path: Path) -> None:
    """What `scan` has loaded when it forks its reader is what the reading child starts
    with, and all it waits for: the database layer, logging, the seal's cryptography
    and the holiday tables load afterwards, while the child already reads."""
    inst = _installation(tmp_path / "gw")
    inst.drop(_big("RA-EARLY"), "early.xml")
    seen = tmp_path / "modules.txt"
    program = f"""
import sys
from gateway.inbound import reader
real = reader._serve
def serve(*args):
    with open({str(seen)!r}, "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
    return real(*args)
reader._serve = serve
from gateway.cli import main
code = main(["scan", "-c", {str(inst.config)!r}, "--once"])
with open({str(seen)!r} + ".after", "w") as out:
    out.write("\\n".join(sorted(sys.modules)))
sys.exit(code)
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "1 answered" in done.stdout
    loaded = {name.partition(".")[0] for name in seen.read_text().split()}
    assert "lxml" in loaded and "gateway" in loaded
    assert loaded.isdisjoint({"sqlalchemy", "structlog", "cryptography", "holidays", "alembic"}), (
        loaded & {"sqlalchemy", "structlog", "cryptography", "holidays", "alembic"}
    )
    # Nor does a SQLite installation ever load the PostgreSQL dialect.
    after = set(Path(f"{seen}.after").read_text().split())
    assert "sqlalchemy.dialects.sqlite" in after
    assert "sqlalchemy.dialects.postgresql" not in after


def test_a_client_in_that_cannot_be_listed_is_left_to_the_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan --once` failed at its start when the first client's in/ refused to be listed
    (EACCES): every client waited. The read-ahead passes over that client (the pass holds
    it) and takes the next one's file."""
    from tests.integration.test_client_faults import refuse_within

    inst = _installation(tmp_path / "gw")
    inst.drop(_big("RA-B"), "b.xml", CLIENT_B)
    refuse_within(monkeypatch, inst.env.spool.inbox(CLIENT_A))
    first = readahead.start(load(inst.config), SystemClock().now())
    assert first is not None and first.claim.client_id == CLIENT_B
    first.release()


def test_a_client_work_that_refuses_is_left_to_the_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Outside review.) A's in/ lists, its work/ refuses (mode 000): claiming A's big file
    (a move into work/) raised before the pipeline existed, so `scan --once` failed at its
    start for every client, on every run. The read-ahead leaves it to the pass, which
    holds A and answers B."""
    from tests.integration.test_client_faults import refuse_within

    inst = _installation(tmp_path / "gw")
    inst.drop(_big("RA-A"), "a.xml")
    refuse_within(monkeypatch, inst.env.spool.work(CLIENT_A))
    assert readahead.start(load(inst.config), SystemClock().now()) is None
    assert [p.name for p in inst.env.spool.inbox(CLIENT_A).iterdir()] == ["a.xml"]
