"""Two gateway processes on one spool and one database never execute a file twice (SPEC §7)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from bench import workday
from tests.pipeline_fixtures import A_MAIN, NS002, Batch, Installation

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / ".venv" / "bin" / "ekase-gateway"
FILES = 24


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_scans_at_once_answer_each_file_once_and_book_it_once(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """Two `scan --once` processes started together on the same installation (SQLite and
    PostgreSQL): every file gets exactly one answer, every payment is booked once, and
    the books balance."""
    extra = {}
    if database == "postgresql":
        extra["database_url"] = request.getfixturevalue("pg_url")
    inst = Installation.create(tmp_path / "gw", need_sealer=True, **extra)
    before = inst.balance(A_MAIN)
    for n in range(FILES):
        batch = Batch(msg_id=f"TWO-{n:03d}")
        for k in range(40):
            batch.tx(f"TWO-{n:03d}-{k:03d}", "1.00")
        inst.drop(batch.build(), f"two-{n:03d}.xml")
    inst.close()

    # The scans' clock reads the installation's business morning (the files arrive then):
    # on a weekend or at night the payments would only wait.
    command = [str(GATEWAY), "scan", "-c", str(inst.config), "--once"]
    pin = workday.pinned(inst.clock.now())
    first, second = (
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=pin)
        for _ in range(2)
    )  # fmt: skip
    outputs = [p.communicate(timeout=240) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    # Between them they processed each file once (how they shared the work is up to timing).
    processed = [int(out.split("processed ")[1].split(" ")[0]) for out, _ in outputs]
    assert sum(processed) == FILES, outputs

    answered: Counter[str] = Counter()
    for path in inst.env.spool.outbox("iestade-a").glob("*pain.002*.xml"):
        doc = etree.parse(str(path))
        answered[doc.findtext(".//p:OrgnlMsgId", namespaces=NS002)] += 1
    assert answered == Counter({f"TWO-{n:03d}": 1 for n in range(FILES)})

    after = Installation.copy_of(inst.base, tmp_path / "inspect")
    try:
        assert after.balance(A_MAIN) == before - FILES * 40 * 100
        after.env.ledger.check_invariants()
    finally:
        after.close()
