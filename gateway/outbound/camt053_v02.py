"""camt.053.001.02, the end-of-day statement: OPBD and CLBD that reconcile with every entry.

The report is checked (`account_report.check`, `account_report.checked`): a statement
that does not add up is refused with `ReportInvariantError`, never delivered — before a
byte is written, or, when its totals were counted beforehand and its entries are read
once as they are written, at the end of its writing.
"""

from __future__ import annotations

from typing import BinaryIO

from gateway.outbound import account_report, camt_v02, xmlwrite
from gateway.outbound.account_report import AccountReport
from gateway.outbound.camt_v02 import Balance

MESSAGE = "camt.053.001.02"


def write(report: AccountReport, out: BinaryIO) -> None:
    """Write `report` as a BkToCstmrStmt with one Stmt to `out`."""
    opening, closing = account_report.balances(report)
    summary = account_report.check(report)
    shown = (
        Balance("OPBD", opening, report.from_datetime.date()),
        Balance("CLBD", closing, report.to_datetime.date()),
    )
    with xmlwrite.document(out, MESSAGE, "BkToCstmrStmt") as w:
        camt_v02.group_header(w, report)
        camt_v02.account_section(w, report, "Stmt", shown, summary)
