"""How the outcome of a cancellation is summed up for the client (SPEC §15)."""

from __future__ import annotations

import pytest

from gateway.pull_codes import (
    CancellationStatus,
    Confirmation,
    GroupCancellationStatus,
    RequestReason,
    confirmation,
    group_status,
)

ACCR, RJCR = CancellationStatus.ACCR, CancellationStatus.RJCR


@pytest.mark.parametrize(
    ("statuses", "group", "message"),
    [
        ([ACCR], GroupCancellationStatus.ACCR, Confirmation.CNCL),
        ([ACCR, ACCR], GroupCancellationStatus.ACCR, Confirmation.CNCL),
        ([ACCR, RJCR], GroupCancellationStatus.PACR, Confirmation.PACR),
        ([RJCR, ACCR, RJCR], GroupCancellationStatus.PACR, Confirmation.PACR),
        ([RJCR], GroupCancellationStatus.RJCR, Confirmation.RJCR),
        ([], GroupCancellationStatus.RJCR, Confirmation.RJCR),
    ],
)
def test_all_some_or_none_cancelled(
    statuses: list[CancellationStatus], group: GroupCancellationStatus, message: Confirmation
) -> None:
    """CNCL when all were cancelled, RJCR when none (nothing named counts as none), PACR
    when some; groups and payment informations say ACCR/PACR/RJCR the same way."""
    assert group_status(iter(statuses)) is group
    assert confirmation(iter(statuses)) is message


def test_every_request_reason_has_its_meaning() -> None:
    assert {reason.meaning for reason in RequestReason} >= {"Invalid file format", "Narrative"}
