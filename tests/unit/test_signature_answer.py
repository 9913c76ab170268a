"""The answer to the signature that completes a batch says what its run did (SPEC §11:
the batch runs as if received at that moment), never "executed" for payments that wait."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.signature_run import released

MON, TUE = dt.date(2026, 12, 7), dt.date(2026, 12, 8)
SAID = "released for execution as if received with this signature: "


@pytest.mark.parametrize(
    ("counts", "pending", "expected"),
    [
        ({"ACSC": 1}, None, "1 payment executed (ACSC)"),
        ({"PDNG": 2}, (MON, MON), "2 payments wait (PDNG) to execute on 2026-12-07"),
        (
            {"PDNG": 3},
            (MON, TUE),
            "3 payments wait (PDNG) to execute from 2026-12-07 to 2026-12-08",
        ),
        ({"PDNG": 1}, None, "1 payment waits (PDNG)"),
        (
            {"ACSC": 2, "PDNG": 1, "RJCT": 1},
            (TUE, TUE),
            "2 payments executed (ACSC), 1 waits (PDNG) to execute on 2026-12-08, "
            "1 rejected (RJCT)",
        ),
        ({"RJCT": 2}, None, "2 payments rejected (RJCT)"),
    ],
    ids=["executed", "wait for Monday", "wait for two days", "wait, no day", "mixed", "rejected"],
)
def test_released_says_what_the_run_did(
    counts: dict[str, int], pending: tuple[dt.date, dt.date] | None, expected: str
) -> None:
    """A user reading the answer to the last signature learns whether the batch's payments
    executed, wait (and until when) or were rejected, as the final pain.002 then lists."""
    assert released(counts, pending) == SAID + expected
