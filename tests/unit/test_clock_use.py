"""Time only through the environment's clock (`gateway/clock.py`): cut-offs, receipts,
seals and certificates are all judged by one clock that tests and `--now` runs replace."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Reading the wall clock directly; `time.monotonic` (durations) is not a time of day.
WALL_CLOCK = re.compile(
    r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time|time\.time_ns)\("
)
THE_CLOCK = REPO / "gateway" / "clock.py"


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    """Every other module is given the time: no `datetime.now()`, `date.today()` or
    `time.time()` outside `gateway/clock.py`."""
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for package in ("gateway", "ledger")
        for path in sorted((REPO / package).rglob("*.py"))
        if path != THE_CLOCK
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WALL_CLOCK.search(line)
    ]
    assert found == []
