"""`ekase-gateway status` output: what an operator reads first."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from gateway.status import ClientStatus, render, to_json

RIGA = ZoneInfo("Europe/Riga")
DAY = dt.date(2026, 11, 25)


def _status(client_id: str, **overrides: object) -> ClientStatus:
    values: dict[str, object] = {
        "client_id": client_id, "waiting": 0, "uploading": 0, "in_progress": 0,
        "processed_today": 0, "rejected_today": 0, "undelivered": 0,
        "last_answer": None, "last_answer_at": None,
    }
    values.update(overrides)
    return ClientStatus(**values)  # type: ignore[arg-type]


def test_table_has_one_aligned_line_per_client_with_last_answer() -> None:
    """Each client is one line under a header, columns aligned, the last answer with its time."""
    text = render(
        [
            _status("iestade-a", waiting=2, in_progress=1, processed_today=14, rejected_today=3,
                    last_answer="20261125T101501_pain.002.001.03_GW1.xml",
                    last_answer_at=dt.datetime(2026, 11, 25, 10, 15, 2, tzinfo=RIGA)),
            _status("b", uploading=1),
        ],
        DAY,
    )
    lines = text.splitlines()
    assert lines[0] == "today: 2026-11-25"
    header, first, second = lines[1:]
    assert header.split()[:2] == ["client", "waiting"]
    assert first.split()[:7] == ["iestade-a", "2", "0", "1", "14", "3", "0"]
    assert first.endswith("20261125T101501_pain.002.001.03_GW1.xml at 2026-11-25 10:15:02")
    assert second.split() == ["b", "0", "1", "0", "0", "0", "0", "-"]
    starts = [header.index("waiting"), header.index("processed today")]
    assert [first.index(" 2 ") + 1, first.index(" 14 ") + 1] == starts


def test_json_output_is_machine_readable() -> None:
    """`status --json` gives scripts and monitoring the same numbers, with ISO timestamps."""
    at = dt.datetime(2026, 11, 25, 10, 15, 2, tzinfo=RIGA)
    data = json.loads(to_json([_status("a", waiting=1, last_answer="x.xml", last_answer_at=at)],
                              DAY))
    assert data["day"] == "2026-11-25"
    assert data["clients"][0]["waiting"] == 1
    assert data["clients"][0]["last_answer_at"] == "2026-11-25T10:15:02+02:00"
