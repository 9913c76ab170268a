"""camt.052.001.02, the intraday account report: opening and interim booked balance (ITBD).

`closing_minor` of the report is the interim balance at `to_datetime`; it must
reconcile with the opening and the entries booked so far, like a statement.
"""

from __future__ import annotations

from typing import BinaryIO

from gateway.outbound import account_report, camt_v02, xmlwrite
from gateway.outbound.account_report import AccountReport
from gateway.outbound.camt_v02 import Balance

MESSAGE = "camt.052.001.02"


def write(report: AccountReport, out: BinaryIO) -> None:
    """Write `report` as a BkToCstmrAcctRpt with one Rpt to `out`."""
    opening, interim = account_report.balances(report)
    summary = account_report.check(report)
    shown = (
        Balance("OPBD", opening, report.from_datetime.date()),
        Balance("ITBD", interim, report.to_datetime),
    )
    with xmlwrite.document(out, MESSAGE, "BkToCstmrAcctRpt") as w:
        camt_v02.group_header(w, report)
        camt_v02.account_section(w, report, "Rpt", shown, summary)
